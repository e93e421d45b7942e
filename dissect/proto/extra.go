package proto

import "encoding/json"

// Extra holds a call's protocol-specific fields in the order they were set.
// It is encoded as a JSON object. A slice rather than a map: calls carry a
// handful of fields, and a slice costs one small allocation per call and
// keeps the output in a stable order without sorting keys.
type Extra []Field

// Field is one extra field. Value is a string, a number, a bool, or a slice
// or map of those.
type Field struct {
	Key   string
	Value any
}

// Get returns the value set for key, or nil.
func (x Extra) Get(key string) any {
	for _, f := range x {
		if f.Key == key {
			return f.Value
		}
	}
	return nil
}

// Set sets key to v, replacing a value set before.
func (x *Extra) Set(key string, v any) {
	for i := range *x {
		if (*x)[i].Key == key {
			(*x)[i].Value = v
			return
		}
	}
	*x = append(*x, Field{Key: key, Value: v})
}

// AppendJSON appends the fields as a JSON object.
func (x Extra) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	for i, f := range x {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f.Key)
		b = append(b, ':')
		b = AppendValue(b, f.Value)
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (x Extra) MarshalJSON() ([]byte, error) { return x.AppendJSON(nil), nil }

// UnmarshalJSON reads a JSON object keeping the order of its fields.
// Numbers become json.Number, so integers keep their exact value.
func (x *Extra) UnmarshalJSON(data []byte) error {
	var out Extra
	null, err := decodeObject(data, "extra", func(key string, d *json.Decoder) error {
		var v any
		if err := d.Decode(&v); err != nil {
			return err
		}
		out = append(out, Field{Key: key, Value: v})
		return nil
	})
	_ = null // out stays nil for a JSON null
	if err == nil {
		*x = out
	}
	return err
}
