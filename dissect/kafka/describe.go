package kafka

import (
	"encoding/binary"
	"encoding/hex"
	"reflect"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wirescope/wirescope/dissect/proto"
)

// maxListed caps the topics in a path and the partition errors listed.
const maxListed = 16

// describeRequest sets what a decoded request says on its call: path,
// extra, body. Produce and Fetch, the bulk of a busy connection, are read
// field by field; every other API by reflection over kmsg's struct.
func (c *conn) describeRequest(call *proto.Call, kreq kmsg.Request) {
	var w walker
	w.c = c
	w.display = !c.lim.Summary
	w.max = c.lim.MaxBodyDisplay
	switch r := kreq.(type) {
	case *kmsg.ProduceRequest:
		c.produceRequest(call, r, &w)
	case *kmsg.FetchRequest:
		for _, t := range r.Topics {
			w.addTopic(c.topicName(t.Topic, t.TopicID))
		}
		if w.display {
			w.json = append(w.json, `{"max_wait_ms":`...)
			w.json = strconv.AppendInt(w.json, int64(r.MaxWaitMillis), 10)
			w.json = append(w.json, `,"min_bytes":`...)
			w.json = strconv.AppendInt(w.json, int64(r.MinBytes), 10)
			w.json = append(w.json, `,"max_bytes":`...)
			w.json = strconv.AppendInt(w.json, int64(r.MaxBytes), 10)
			w.json = append(w.json, `,"partitions":{`...)
			for i, t := range r.Topics {
				if i > 0 {
					w.json = append(w.json, ',')
				}
				w.json = appendJSONString(w.json, c.topicName(t.Topic, t.TopicID))
				w.json = append(w.json, ":{"...)
				for j, p := range t.Partitions {
					if j > 0 {
						w.json = append(w.json, ',')
					}
					w.json = append(w.json, '"')
					w.json = strconv.AppendInt(w.json, int64(p.Partition), 10)
					w.json = append(w.json, `":`...)
					w.json = strconv.AppendInt(w.json, p.FetchOffset, 10)
				}
				w.json = append(w.json, '}')
			}
			w.json = append(w.json, "}}"...)
		}
		if r.SessionID != 0 {
			call.Extra.Set("fetch_session", int(r.SessionID))
		}
		if r.MaxWaitMillis > 0 {
			call.Extra.Set("max_wait_ms", int(r.MaxWaitMillis))
		}
	case *kmsg.SASLAuthenticateRequest:
		if u := saslUser(r.SASLAuthBytes); u != "" {
			call.Extra.Set("user", u)
		}
		w.display = false
	case *kmsg.SASLHandshakeRequest:
		call.Extra.Set("mechanism", r.Mechanism)
		w.display = false
	default:
		w.walk(reflect.ValueOf(kreq).Elem(), "")
	}
	c.finish(call, &w, &call.Request)
}

// finish sets the path, the group and the body a walk found.
func (c *conn) finish(call *proto.Call, w *walker, m *proto.Message) {
	if call.Path == "" {
		switch {
		case len(w.topics) > 0:
			call.Path = strings.Join(w.topics, ",")
			if w.moreTopics > 0 {
				call.Path += ",…"
				call.Extra.Set("topics", len(w.topics)+w.moreTopics)
			}
		case w.group != "":
			call.Path = w.group
		}
	}
	if w.group != "" {
		call.Extra.Set("group", w.group)
	}
	if w.member != "" {
		call.Extra.Set("member_id", w.member)
	}
	if w.txn != "" {
		call.Extra.Set("transactional_id", w.txn)
	}
	if w.display && len(w.json) > 0 {
		cut := w.cut
		m.SetBody(w.json, c.lim.MaxBodyDisplay)
		m.BodyTruncated = m.BodyTruncated || cut
	}
}

func (c *conn) produceRequest(call *proto.Call, r *kmsg.ProduceRequest, w *walker) {
	call.Extra.Set("acks", int(r.Acks))
	if r.TransactionID != nil {
		w.txn = *r.TransactionID
	}
	var records, bytes int64
	if w.display {
		w.json = append(w.json, `{"acks":`...)
		w.json = strconv.AppendInt(w.json, int64(r.Acks), 10)
		w.json = append(w.json, `,"timeout_ms":`...)
		w.json = strconv.AppendInt(w.json, int64(r.TimeoutMillis), 10)
		w.json = append(w.json, `,"partitions":{`...)
	}
	for i, t := range r.Topics {
		name := c.topicName(t.Topic, t.TopicID)
		w.addTopic(name)
		if w.display {
			if i > 0 {
				w.json = append(w.json, ',')
			}
			w.json = appendJSONString(w.json, name)
			w.json = append(w.json, ":{"...)
		}
		for j, p := range t.Partitions {
			n, codec := countRecords(p.Records)
			records += n
			bytes += int64(len(p.Records))
			if w.display {
				if j > 0 {
					w.json = append(w.json, ',')
				}
				w.json = append(w.json, '"')
				w.json = strconv.AppendInt(w.json, int64(p.Partition), 10)
				w.json = append(w.json, `":{"records":`...)
				w.json = strconv.AppendInt(w.json, n, 10)
				w.json = append(w.json, `,"bytes":`...)
				w.json = strconv.AppendInt(w.json, int64(len(p.Records)), 10)
				if codec != "" {
					w.json = append(w.json, `,"compression":"`...)
					w.json = append(w.json, codec...)
					w.json = append(w.json, '"')
				}
				w.json = append(w.json, '}')
			}
		}
		if w.display {
			w.json = append(w.json, '}')
		}
	}
	if w.display {
		w.json = append(w.json, "}}"...)
	}
	call.Extra.Set("records", records)
	call.Extra.Set("record_bytes", bytes)
}

// describeResponse sets the status and what a decoded response says.
// whole: the response decoded without error (or as far as it was kept).
func (c *conn) describeResponse(call *proto.Call, resp kmsg.Response, whole bool) {
	var w walker
	w.c = c
	w.display = !c.lim.Summary
	w.max = c.lim.MaxBodyDisplay
	w.response = true
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		for _, t := range r.Topics {
			name := c.topicName(t.Topic, t.TopicID)
			for _, p := range t.Partitions {
				w.partitionError(name, p.Partition, p.ErrorCode)
				if p.ErrorMessage != nil && w.message == "" {
					w.message = *p.ErrorMessage
				}
			}
		}
		w.throttle = r.ThrottleMillis
		w.display = false
	case *kmsg.FetchResponse:
		w.topError(r.ErrorCode)
		var records, bytes int64
		for _, t := range r.Topics {
			name := c.topicName(t.Topic, t.TopicID)
			// An incremental fetch (KIP-227) may name no topic: the
			// response's are the path then.
			w.addTopic(name)
			for _, p := range t.Partitions {
				w.partitionError(name, p.Partition, p.ErrorCode)
				n, _ := countRecords(p.RecordBatches)
				records += n
				bytes += int64(len(p.RecordBatches))
			}
		}
		call.Extra.Set("records", records)
		call.Extra.Set("record_bytes", bytes)
		w.throttle = r.ThrottleMillis
		w.display = false
	case *kmsg.SASLAuthenticateResponse:
		w.topError(r.ErrorCode)
		if r.ErrorMessage != nil {
			w.message = *r.ErrorMessage
		}
		w.display = false
	case *kmsg.MetadataResponse:
		var ids proto.Extra
		for _, t := range r.Topics {
			if t.Topic != nil && t.TopicID != ([16]byte{}) {
				if c.topicNames == nil {
					c.topicNames = map[[16]byte]string{}
				}
				if len(c.topicNames) < 4096 {
					c.topicNames[t.TopicID] = *t.Topic
				}
				if len(ids) < maxTopicIDs {
					ids = append(ids, proto.Field{Key: uuid(t.TopicID), Value: *t.Topic})
				}
			}
		}
		if len(ids) > 0 {
			// The names of the IDs the client's other connections use
			// (see NewCorrelation).
			call.Extra.Set("topic_ids", ids)
		}
		w.walk(reflect.ValueOf(resp).Elem(), "")
	default:
		w.walk(reflect.ValueOf(resp).Elem(), "")
	}
	switch {
	case w.status != "":
		call.Status = w.status
	case whole:
		call.Status = "OK"
	}
	if len(w.partErrors) > 0 {
		call.Extra.Set("partition_errors", w.partErrors)
		if w.morePartErrors > 0 {
			call.Extra.Set("partition_errors_more", w.morePartErrors)
		}
	}
	if w.message != "" {
		call.Extra.Set("error_message", w.message)
	}
	if w.throttle > 0 {
		call.Extra.Set("throttle_ms", int(w.throttle))
	}
	if call.Path == "" && len(w.topics) > 0 {
		call.Path = strings.Join(w.topics, ",")
	}
	if w.display && len(w.json) > 0 {
		call.Response.SetBody(w.json, c.lim.MaxBodyDisplay)
		call.Response.BodyTruncated = call.Response.BodyTruncated || w.cut
	}
}

// topicName names a topic by its name, or by its ID (Produce and Fetch
// 13+): as a Metadata response of the connection named it, else as a UUID.
func (c *conn) topicName(name string, id [16]byte) string {
	if name != "" || id == ([16]byte{}) {
		return name
	}
	if n, ok := c.topicNames[id]; ok {
		return n
	}
	return uuid(id)
}

func uuid(id [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:], id[10:])
	return string(b[:])
}

// countRecords counts the records of a produce or fetch's record batches
// (magic 2: the count in each batch's header, compressed or not) or
// message set (magic 0 and 1: one per message, a compressed wrapper
// counting one), and names the first batch's compression.
func countRecords(b []byte) (n int64, codec string) {
	first := true
	for len(b) >= 17 {
		size := int64(int32(binary.BigEndian.Uint32(b[8:])))
		if size < 5 || 12+size > int64(len(b)) {
			break // the last batch of a fetch may be cut short
		}
		magic := b[16]
		var attrs int
		switch {
		case magic == 2 && size >= 49:
			n += int64(int32(binary.BigEndian.Uint32(b[57:])))
			attrs = int(binary.BigEndian.Uint16(b[21:]))
		case magic < 2 && size >= 6:
			n++
			attrs = int(b[17])
		default:
			return n, codec
		}
		if first {
			codec = codecs[attrs&7]
			first = false
		}
		b = b[12+size:]
	}
	return n, codec
}

var codecs = [8]string{"", "gzip", "snappy", "lz4", "zstd", "codec5", "codec6", "codec7"}

// saslUser reads the user name from a SASL PLAIN message
// ([authzid] NUL authcid NUL passwd) or a SCRAM client-first message
// (n,,n=user,r=nonce); the rest is never kept.
func saslUser(b []byte) string {
	if i := strings.Index(string(b), "n="); strings.HasPrefix(string(b), "n,") || strings.HasPrefix(string(b), "y,") || strings.HasPrefix(string(b), "p=") {
		if i >= 0 {
			u := string(b[i+2:])
			if j := strings.IndexByte(u, ','); j >= 0 {
				return u[:j]
			}
		}
		return ""
	}
	parts := strings.SplitN(string(b), "\x00", 3)
	if len(parts) == 3 {
		return parts[1]
	}
	return ""
}

// walker reads a kmsg request or response by reflection: the topics,
// group, member and transactional ID it names, the error codes it carries
// (by topic and partition), and a JSON rendering for display without the
// secrets some APIs carry (SASL bytes, delegation token HMACs, SCRAM
// credentials, configuration values named like passwords).
type walker struct {
	c          *conn
	topics     []string
	moreTopics int
	group      string
	member     string
	txn        string
	// what errors were found
	response       bool
	status         string
	message        string
	throttle       int32
	partErrors     []string
	morePartErrors int
	topic          string
	partition      int64 // -1: not inside a partition
	// display
	display bool
	json    []byte
	max     int
	cut     bool
}

func (w *walker) addTopic(t string) {
	if t == "" {
		return
	}
	for _, s := range w.topics {
		if s == t {
			return
		}
	}
	if len(w.topics) == maxListed {
		w.moreTopics++
		return
	}
	w.topics = append(w.topics, t)
}

func (w *walker) topError(code int16) {
	if code != 0 && w.status == "" {
		w.status = errorName(code)
	}
}

func (w *walker) partitionError(topic string, partition int32, code int16) {
	if code == 0 {
		return
	}
	name := errorName(code)
	if w.status == "" {
		w.status = name
	}
	if len(w.partErrors) == maxListed {
		w.morePartErrors++
		return
	}
	e := topic
	if partition >= 0 {
		e += "/" + strconv.Itoa(int(partition))
	}
	w.partErrors = append(w.partErrors, e+" "+name)
}

// secretFields are kmsg fields never shown.
var secretFields = map[string]bool{
	"SASLAuthBytes": true, "HMAC": true, "SaltedPassword": true, "Salt": true, "TokenID": true,
}

// secretConfig says whether a configuration's value is a secret by its
// name.
func secretConfig(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "password") || strings.Contains(n, "secret") || strings.Contains(n, "jaas") || strings.HasSuffix(n, ".key")
}

var tagsType = reflect.TypeFor[kmsg.Tags]()

// placeFields name the topic and partition a struct is about.
var placeFields = map[string]bool{"Topic": true, "TopicName": true, "TopicID": true, "Partition": true, "PartitionIndex": true}

// walk reads v, a field named name (or a slice's element: ""), appending
// its JSON while within the display bound.
func (w *walker) walk(v reflect.Value, name string) {
	if w.display && len(w.json) > w.max {
		w.cut = true
		w.display = false
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			w.appendRaw("null")
			return
		}
		w.walk(v.Elem(), name)
	case reflect.Struct:
		saved := w.partition
		savedTopic := w.topic
		w.partition = -1
		w.appendRaw("{")
		first := true
		var configName string
		t := v.Type()
		// What names the topic and partition comes first, whatever the
		// fields' order (a Metadata topic's ErrorCode precedes its name).
		for i := range t.NumField() {
			if f := t.Field(i); placeFields[f.Name] {
				w.note(f.Name, v.Field(i))
			}
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Name == "Version" || f.Type == tagsType || !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			if !placeFields[f.Name] {
				w.note(f.Name, fv)
			}
			if f.Name == "Name" && fv.Kind() == reflect.String {
				configName = fv.String()
			}
			if w.display {
				if !first {
					w.json = append(w.json, ',')
				}
				first = false
				w.json = appendJSONString(w.json, f.Name)
				w.json = append(w.json, ':')
			}
			if secretFields[f.Name] || (f.Name == "Value" && configName != "" && secretConfig(configName)) {
				w.appendRaw(`"[redacted]"`)
				continue
			}
			w.walk(fv, f.Name)
		}
		w.appendRaw("}")
		w.partition = saved
		w.topic = savedTopic
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if v.IsNil() {
				w.appendRaw("null")
				return
			}
			w.appendRaw(`"` + strconv.Itoa(v.Len()) + ` bytes"`)
			return
		}
		if v.IsNil() {
			w.appendRaw("[]")
			return
		}
		w.appendRaw("[")
		for i := range v.Len() {
			if i > 0 {
				w.appendRaw(",")
			}
			w.walk(v.Index(i), "")
		}
		w.appendRaw("]")
	case reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 && v.Len() == 16 {
			var id [16]byte
			reflect.Copy(reflect.ValueOf(&id).Elem(), v)
			w.appendString(uuid(id))
			return
		}
		w.appendRaw(`"…"`)
	case reflect.String:
		w.appendString(v.String())
	case reflect.Bool:
		w.appendRaw(strconv.FormatBool(v.Bool()))
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		w.appendRaw(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		w.appendRaw(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		w.appendRaw(strconv.FormatFloat(v.Float(), 'g', -1, 64))
	default:
		w.appendRaw("null")
	}
}

// note reads what a field says of the call.
func (w *walker) note(name string, v reflect.Value) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	switch name {
	case "Topic", "TopicName":
		if v.Kind() == reflect.String {
			w.topic = v.String()
			w.addTopic(v.String())
		}
	case "TopicID":
		if v.Kind() == reflect.Array && v.Len() == 16 {
			var id [16]byte
			reflect.Copy(reflect.ValueOf(&id).Elem(), v)
			if id != ([16]byte{}) && w.topic == "" {
				w.topic = w.c.topicName("", id)
				w.addTopic(w.topic)
			}
		}
	case "Topics", "TopicNames":
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String {
			for i := range v.Len() {
				w.addTopic(v.Index(i).String())
			}
		}
	case "Group", "GroupID":
		if v.Kind() == reflect.String && w.group == "" {
			w.group = v.String()
		}
	case "MemberID":
		if v.Kind() == reflect.String && w.member == "" && !w.response {
			w.member = v.String()
		}
	case "TransactionalID":
		if v.Kind() == reflect.String && w.txn == "" {
			w.txn = v.String()
		}
	case "Partition", "PartitionIndex":
		if v.Kind() == reflect.Int32 {
			w.partition = v.Int()
		}
	case "ErrorCode":
		if v.Kind() == reflect.Int16 && w.response {
			code := int16(v.Int())
			if w.partition >= 0 || w.topic != "" {
				w.partitionError(w.topic, int32(w.partition), code)
			} else {
				w.topError(code)
			}
		}
	case "ErrorMessage":
		if v.Kind() == reflect.String && w.message == "" && w.response {
			w.message = v.String()
		}
	case "ThrottleMillis":
		if v.Kind() == reflect.Int32 {
			w.throttle = int32(v.Int())
		}
	}
}

func (w *walker) appendRaw(s string) {
	if w.display {
		w.json = append(w.json, s...)
	}
}

func (w *walker) appendString(s string) {
	if w.display {
		w.json = appendJSONString(w.json, s)
	}
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte { return proto.AppendValue(b, s) }
