package graphql

// scanner reads a JSON body as it arrives and keeps, for each object at the
// operation level — the top-level object, or each object of a top-level
// array (a batch) — the raw values of a few keys, each up to its own cap.
// Everything else (variables, data) is walked over without being kept, so
// a response of any size costs the scanner a few kilobytes.
type scanner struct {
	want []keyCap // the keys kept and their caps

	started bool
	batch   bool // the body is an array of objects
	failed  bool // not a JSON object or array of objects
	lost    bool // bytes were lost: what came after them is not read
	done    bool // the top level closed
	depth   int
	inStr   bool
	esc     bool

	readingKey bool

	// At the operation level: reading a key, or a value.
	expectKey bool
	key       []byte
	keyLong   bool
	value     int  // the index in want of the key whose value is kept; -1 none
	inValue   bool // a value at the operation level has begun

	cur      element
	elements []element
	more     int // elements beyond maxElements
	kept     int // bytes kept in all elements' values, at most maxKept
}

type keyCap struct {
	key string
	cap int
}

// element is one object at the operation level: the kept values by the
// index of their key in want.
type element struct {
	values [][]byte
	cut    []bool // the value was longer than its cap, or the body ended in it
	whole  bool   // the object closed
}

// maxElements bounds the operations of a batch that are read.
const maxElements = 256

// maxKey bounds a key compared.
const maxKey = 32

// maxKept bounds the bytes a scanner keeps in all: a batch of operations
// each near its cap would otherwise keep maxElements times as much.
const maxKept = 256 << 10

func newScanner(want ...keyCap) *scanner {
	return &scanner{want: want, value: -1}
}

// level is the depth of the operation-level objects' members.
func (s *scanner) level() int {
	if s.batch {
		return 2
	}
	return 1
}

func (s *scanner) write(b []byte) {
	if s.failed || s.done || s.lost {
		return
	}
	for _, c := range b {
		if !s.started {
			switch c {
			case ' ', '\t', '\r', '\n':
				continue
			case '{':
				s.started, s.depth = true, 1
				s.openElement()
				continue
			case '[':
				s.started, s.batch, s.depth = true, true, 1
				continue
			}
			s.failed = true
			return
		}
		if s.inStr {
			switch {
			case s.esc:
				s.esc = false
			case c == '\\':
				s.esc = true
			case c == '"':
				s.inStr = false
				if s.readingKey {
					s.readingKey, s.expectKey = false, false
					continue
				}
			}
			if s.readingKey {
				s.addKey(c)
			} else {
				s.keep(c)
			}
			continue
		}
		lvl := s.level()
		switch c {
		case '"':
			s.inStr = true
			if s.depth == lvl && s.expectKey {
				s.readingKey = true
				s.key, s.keyLong = s.key[:0], false
				continue
			}
			s.keep(c)
		case '{', '[':
			if s.batch && s.depth == 1 {
				if c == '[' {
					s.failed = true // a batch holds objects only
					return
				}
				s.depth++
				s.openElement()
				continue
			}
			s.keep(c)
			s.depth++
		case '}', ']':
			s.depth--
			switch {
			case s.depth == lvl-1:
				s.closeElement()
				if !s.batch {
					s.done = true
					return
				}
			case s.depth == 0:
				s.done = true
				return
			default:
				s.keep(c)
			}
		case ':':
			if s.depth == lvl && !s.inValue && !s.expectKey {
				s.startValue()
				continue
			}
			s.keep(c)
		case ',':
			if s.depth == lvl {
				s.endValue()
				s.expectKey = true
				continue
			}
			s.keep(c)
		case ' ', '\t', '\r', '\n':
		default:
			s.keep(c)
		}
	}
}

// addKey gathers a key's byte.
func (s *scanner) addKey(c byte) {
	if len(s.key) < maxKey {
		s.key = append(s.key, c)
	} else {
		s.keyLong = true
	}
}

func (s *scanner) openElement() {
	s.cur = element{values: make([][]byte, len(s.want)), cut: make([]bool, len(s.want))}
	s.expectKey, s.inValue, s.value = true, false, -1
}

func (s *scanner) closeElement() {
	s.endValue()
	s.cur.whole = true
	if len(s.elements) < maxElements {
		s.elements = append(s.elements, s.cur)
	} else {
		s.more++
	}
	s.cur = element{}
	s.expectKey = false
}

func (s *scanner) startValue() {
	s.inValue = true
	s.value = -1
	if s.keyLong {
		return
	}
	for i, w := range s.want {
		if string(s.key) == w.key {
			s.value = i
			s.cur.values[i] = s.cur.values[i][:0]
			s.cur.cut[i] = false
		}
	}
}

func (s *scanner) endValue() {
	s.inValue, s.value = false, -1
}

// keep adds a byte of a value at or below the operation level to the value
// being kept, if any.
func (s *scanner) keep(c byte) {
	if s.value < 0 {
		return
	}
	v := &s.cur.values[s.value]
	if len(*v) < s.want[s.value].cap && s.kept < maxKept {
		*v = append(*v, c)
		s.kept++
	} else {
		s.cur.cut[s.value] = true
	}
}

// gap says bytes were lost: the object being read ends there, cut.
func (s *scanner) gap() { s.lost = true }

// finish returns the elements read: whole ones, and the one the body ended
// in (not whole, its last value cut).
func (s *scanner) finish() []element {
	if s.started && !s.done && !s.failed && s.cur.values != nil {
		if s.value >= 0 {
			s.cur.cut[s.value] = true
		}
		if len(s.elements) < maxElements {
			s.elements = append(s.elements, s.cur)
		}
		s.cur = element{}
	}
	return s.elements
}

// buffered is about the memory the kept values take.
func (s *scanner) buffered() int {
	n := cap(s.key)
	for _, e := range s.elements {
		for _, v := range e.values {
			n += cap(v)
		}
	}
	for _, v := range s.cur.values {
		n += cap(v)
	}
	return n
}
