package index

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/mapping"
	bindex "github.com/blevesearch/bleve_index_api"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index/sketch"
)

// A call's Bleve document has one indexed field, termsField, whose terms
// are "name=value": the searchable fields of the query language flattened
// into one dictionary per segment. Bleve builds, writes and merges one term
// dictionary (an FST) and one set of postings per field and segment, and
// builds a map of term frequencies per field and document; with the
// twenty-odd fields of a call that per-field work was about a quarter of
// the indexing time. The query compiler (query.go) turns field:value
// clauses into terms of this field, so the language keeps its field names.
const termsField = "t"

// The logical fields. Every term is lower case.
const (
	fieldProto   = "proto"
	fieldMethod  = "method"
	fieldPath    = "path"
	fieldRoute   = "route"
	fieldStatus  = "status"
	fieldOutcome = "outcome"
	fieldError   = "error"
	// fieldLatency holds the latency's sketch bin (2% wide) as four hex
	// digits; ranges check the calls of the bins at their edges against
	// the exact latency in their document key.
	fieldLatency = "latency_ms"
	// fieldMinute holds the call's Unix minute as eight hex digits, so
	// that a time window selects whole minutes by term before the exact
	// check on the document key.
	fieldMinute = "_minute"
)

// endpointFields are the identity fields of each side, after "src." or
// "dst.".
var endpointFields = []string{"ip", "port", "pod", "namespace", "workload", "service", "node", "version"}

// defaultFields are searched by a query term without a field name.
var defaultFields = []string{fieldPath, fieldRoute, fieldError, fieldMethod, fieldStatus}

type fieldKind uint8

const (
	// kindKeyword: the whole value, lower-cased, is one term.
	kindKeyword fieldKind = iota
	// kindWords: the value's words (runs of letters and digits; an ID-like
	// path segment stays whole), and the whole value (for a path, its
	// template) for wildcards.
	kindWords
	// kindNumber: a keyword whose values are decimal numbers, so that
	// ranges apply.
	kindNumber
	// kindLatency: latency_ms, numeric only (see fieldLatency).
	kindLatency
	// kindInternal: not part of the query language.
	kindInternal
)

// fieldKinds says how each field is indexed.
var fieldKinds = map[string]fieldKind{
	fieldProto: kindKeyword, fieldMethod: kindKeyword, fieldStatus: kindNumber, fieldOutcome: kindKeyword,
	fieldPath: kindWords, fieldRoute: kindKeyword, fieldError: kindWords, fieldLatency: kindLatency,
	fieldMinute: kindInternal,
}

// sideFields[0] are the "src." field names in endpointFields order,
// sideFields[1] the "dst." ones.
var sideFields [2][]string

func init() {
	for i, side := range []string{"src.", "dst."} {
		for _, f := range endpointFields {
			name := side + f
			sideFields[i] = append(sideFields[i], name)
			fieldKinds[name] = kindKeyword
			if f == "port" {
				fieldKinds[name] = kindNumber
			}
		}
	}
}

// term returns the physical term of value v (already analyzed) in field.
func term(field, v string) string { return field + "=" + v }

// newMapping returns the index mapping: one keyword field, indexed only:
// not stored, without term vectors, without doc values (results sort on
// the document ID, which carries the time), excluded from _all.
func newMapping() *mapping.IndexMappingImpl {
	m := mapping.NewIndexMapping()
	f := mapping.NewKeywordFieldMapping()
	f.Store = false
	f.IncludeTermVectors = false
	f.IncludeInAll = false
	f.DocValues = false
	root := mapping.NewDocumentStaticMapping()
	root.AddFieldMappingsAt(termsField, f)
	m.DefaultMapping = root
	m.DefaultAnalyzer = keyword.Name
	m.StoreDynamic = false
	m.IndexDynamic = false
	m.DocValuesDynamic = false
	return m
}

// forWords calls fn with each run of letters and digits in s, lower-cased.
func forWords(s string, fn func(word string)) {
	start := -1
	for i := 0; i <= len(s); {
		r, n := rune(0), 1
		if i < len(s) {
			if c := s[i]; c < utf8.RuneSelf {
				r = rune(c)
			} else {
				r, n = utf8.DecodeRuneInString(s[i:])
			}
		}
		word := i < len(s) && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' ||
			r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)))
		switch {
		case word && start < 0:
			start = i
		case !word && start >= 0:
			fn(lower(s[start:i]))
			start = -1
		}
		i += n
	}
}

// forPathWords is forWords for a request path: a segment that looks like
// an ID (see Route) is one word, so that a UUID is one term, not five.
func forPathWords(p string, fn func(word string)) {
	for len(p) > 0 {
		i := strings.IndexAny(p, "/?&=#;")
		seg := p
		if i >= 0 {
			seg, p = p[:i], p[i+1:]
		} else {
			p = ""
		}
		if idLike(seg) {
			fn(lower(seg))
		} else {
			forWords(seg, fn)
		}
	}
}

// analyze returns the terms a field's value (from a document or a query)
// gives, without the field name.
func analyze(field, v string) []string {
	var out []string
	switch fieldKinds[field] {
	case kindWords:
		if field == fieldPath {
			forPathWords(v, func(w string) { out = append(out, w) })
		} else {
			forWords(v, func(w string) { out = append(out, w) })
		}
	default:
		if field == sideFields[0][0] || field == sideFields[1][0] {
			if a, err := netip.ParseAddr(v); err == nil {
				v = a.String() // as indexed: fd00:0::1 is fd00::1
			}
		}
		if v != "" {
			out = append(out, lower(v))
		}
	}
	return out
}

// lower is strings.ToLower without an allocation for strings already
// lower case.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= utf8.RuneSelf {
			return strings.ToLower(s)
		}
	}
	return s
}

// docField is the one field of a call's document. Its terms are computed
// when the document is built, not by a Bleve analyzer. It is indexed, not
// stored, and has no term vectors or doc values.
type docField struct {
	terms []string
	freqs bindex.TokenFrequencies
	// tfs is room for one TokenFreq per term, carved from the batch's
	// slab by the docBuilder so that Analyze, which runs on Bleve's
	// analysis workers, allocates only the map.
	tfs []bindex.TokenFreq
}

func (f *docField) Name() string                         { return termsField }
func (f *docField) ArrayPositions() []uint64             { return nil }
func (f *docField) Options() bindex.FieldIndexingOptions { return bindex.IndexField }
func (f *docField) Value() []byte                        { return nil }
func (f *docField) EncodedFieldType() byte               { return 't' }
func (f *docField) AnalyzedLength() int                  { return len(f.terms) }
func (f *docField) AnalyzedTokenFrequencies() bindex.TokenFrequencies {
	return f.freqs
}

func (f *docField) NumPlainTextBytes() uint64 {
	var n int
	for _, t := range f.terms {
		n += len(t)
	}
	return uint64(n)
}

func (f *docField) Size() int {
	n := 64
	for _, t := range f.terms {
		n += 16 + len(t)
	}
	return n
}

// Analyze computes the term frequencies Bleve indexes. Bleve calls it on
// its analysis workers. The terms' bytes are shared with the strings, not
// copied: Bleve only reads them.
func (f *docField) Analyze() {
	f.freqs = make(bindex.TokenFrequencies, len(f.terms))
	tfs := f.tfs
	if len(tfs) < len(f.terms) {
		tfs = make([]bindex.TokenFreq, len(f.terms))
	}
	for i, t := range f.terms {
		if tf, ok := f.freqs[t]; ok {
			tf.SetFrequency(tf.Frequency() + 1)
			continue
		}
		tf := &tfs[i]
		tf.Term = unsafe.Slice(unsafe.StringData(t), len(t))
		tf.SetFrequency(1)
		f.freqs[t] = tf
	}
}

// appendDocKey appends a call's Bleve document ID, its key: the bitwise
// complement of its time (Unix nanoseconds, offset to sort as unsigned) in
// 16 hex digits, the call ID, '~' and the latency in hex. Keys sort newest first, then by call
// ID, which is the order of search results, and carry what the exact
// checks of time windows and latency ranges need, so those read neither
// doc values nor the call store.
func appendDocKey(b []byte, ts time.Time, id string, latencyNS int64) []byte {
	b = appendKeyTime(b, ts.UnixNano())
	b = append(b, id...)
	b = append(b, '~')
	return strconv.AppendUint(b, uint64(max(latencyNS, 0)), 16)
}

// keyPrefix is the start of the keys of calls at Unix nanoseconds ns.
func keyPrefix(ns int64) string { return string(appendKeyTime(nil, ns)) }

func appendKeyTime(b []byte, ns int64) []byte { return appendHex(b, ^(uint64(ns) ^ 1<<63), 16) }

// docKeyParts are what a document key holds.
type docKeyParts struct {
	ts        int64 // Unix nanoseconds
	id        string
	latencyNS int64
}

// parseKey splits a document key.
func parseKey(k string) (docKeyParts, bool) {
	var p docKeyParts
	tilde := strings.LastIndexByte(k, '~')
	if len(k) < 16 || tilde < 16 {
		return p, false
	}
	var v uint64
	for i := 0; i < 16; i++ {
		c := k[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return p, false
		}
		v = v<<4 | uint64(d)
	}
	lat, err := strconv.ParseUint(k[tilde+1:], 16, 63)
	if err != nil {
		return p, false
	}
	return docKeyParts{ts: int64(^v ^ 1<<63), id: k[16:tilde], latencyNS: int64(lat)}, true
}

// unixMinute returns the Unix minute of Unix nanoseconds ns.
func unixMinute(ns int64) int64 {
	m := ns / int64(time.Minute)
	if ns < 0 && ns%int64(time.Minute) != 0 {
		m--
	}
	return m
}

// ceilMinute returns the first Unix minute starting at or after ns.
func ceilMinute(ns int64) int64 {
	m := unixMinute(ns)
	if ns != m*int64(time.Minute) {
		m++
	}
	return m
}

// minuteValue is the _minute value of Unix minute m.
func minuteValue(m int64) string { return string(appendHex(nil, uint64(uint32(m)), 8)) }

// latencyValue is the latency_ms value of a latency bin: the bin offset
// to be positive, in four hex digits.
func latencyValue(bin int32) string { return string(appendHex(nil, uint64(uint16(bin+1<<15)), 4)) }

// appendHex appends the low n hex digits of v.
func appendHex(b []byte, v uint64, n int) []byte {
	const digits = "0123456789abcdef"
	for shift := 4 * (n - 1); shift >= 0; shift -= 4 {
		b = append(b, digits[v>>uint(shift)&0xf])
	}
	return b
}

// docBuilder builds the Bleve documents of a batch. What they are made of
// (term bytes and strings, fields, documents) is carved from slabs shared
// by the batch's documents, a few allocations for a batch instead of
// several for each document: allocating and collecting them was a tenth
// of the indexing time. The slabs are never reused: Bleve holds the
// documents until the batch is indexed.
type docBuilder struct {
	// left is how many documents are still to be built, to size slabs.
	left   int
	buf    []byte // term bytes and keys; a document's are appended in place
	ends   []int  // scratch: where each term of the document being built ends
	terms  []string
	tfs    []bindex.TokenFreq
	fields []docField
	docs   []document.Document
	dfs    []document.Field
}

// slabSize is how many documents' worth a docBuilder slab holds.
const slabSize = 1024

// carve returns the next n elements of *slab, making a new slab of at
// least min elements when it has fewer than n left.
func carve[T any](slab *[]T, n, min int) []T {
	if cap(*slab)-len(*slab) < n {
		*slab = make([]T, 0, max(n, min))
	}
	l := len(*slab)
	*slab = (*slab)[:l+n]
	return (*slab)[l : l+n : l+n]
}

// build returns the document of c, keyed by appendDocKey. All of its terms are
// written into one buffer and viewed as strings. c has been redacted
// (Index.Add): its path's secrets are masked, so that no term, and so no
// prefix or wildcard query, holds a secret.
func (db *docBuilder) build(c *proto.Call) *document.Document {
	// Slabs hold slabSize documents, or as many as are left to build.
	slab := min(max(db.left, 1), slabSize)
	db.left--
	need := 512 + len(c.Path) + 2*len(c.Error) + len(c.ID)
	if cap(db.buf)-len(db.buf) < need {
		db.buf = make([]byte, 0, max(need, 256*slab))
	}
	// The document's bytes start at base. Should they outgrow the slab
	// after all, append copies it: the documents built before keep the
	// old one.
	base := len(db.buf)
	buf := db.buf
	ends := db.ends[:0] // where each term ends in buf
	add := func(field string, v ...string) {
		buf = append(buf, field...)
		buf = append(buf, '=')
		for _, p := range v {
			buf = appendLower(buf, p)
		}
		ends = append(ends, len(buf))
	}
	keyword := func(field, v string) {
		if v != "" {
			add(field, v)
		}
	}
	keyword(fieldProto, c.Proto)
	keyword(fieldMethod, c.Method)
	keyword(fieldStatus, c.Status)
	keyword(fieldOutcome, c.Outcome().String())
	if c.Path != "" {
		if urlPath(c) {
			forPathWords(c.Path, func(w string) { add(fieldPath, w) })
			keyword(fieldPath, TemplatePath(c.Path))
		} else {
			forWords(c.Path, func(w string) { add(fieldPath, w) })
			keyword(fieldPath, c.Path)
		}
	}
	keyword(fieldRoute, Route(c))
	if c.Error != "" {
		forWords(c.Error, func(w string) { add(fieldError, w) })
		keyword(fieldError, c.Error)
	}
	if c.LatencyNS > 0 {
		add(fieldLatency, latencyValue(sketch.Index(float64(c.LatencyNS))))
	}
	add(fieldMinute, minuteValue(unixMinute(c.TS.UnixNano())))
	var scratch [48]byte
	for i, ep := range [2]*proto.Endpoint{&c.Src, &c.Dst} {
		names := sideFields[i]
		if ep.IP.IsValid() {
			add(names[0], string(ep.IP.AppendTo(scratch[:0])))
		}
		if ep.Port != 0 {
			add(names[1], string(strconv.AppendUint(scratch[:0], uint64(ep.Port), 10)))
		}
		keyword(names[2], ep.Pod)
		keyword(names[3], ep.Namespace)
		keyword(names[4], ep.Workload)
		keyword(names[5], ep.Service)
		keyword(names[6], ep.Node)
		keyword(names[7], ep.Version)
	}
	termsEnd := len(buf)
	buf = appendDocKey(buf, c.TS, c.ID, c.LatencyNS)
	db.buf, db.ends = buf, ends
	// buf is complete: view the terms and the key in it.
	all := unsafe.String(unsafe.SliceData(buf), len(buf))
	terms := carve(&db.terms, len(ends), 32*slab)
	start := base
	for i, end := range ends {
		terms[i] = all[start:end]
		start = end
	}
	f := &carve(&db.fields, 1, slab)[0]
	*f = docField{terms: terms, tfs: carve(&db.tfs, len(terms), 32*slab)}
	d := &carve(&db.docs, 1, slab)[0]
	// Room for the _id field Bleve adds.
	d.Fields = append(carve(&db.dfs, 2, 2*slab)[:0], f)
	d.SetID(all[termsEnd:])
	return d
}

// appendLower appends s lower-cased.
func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf {
			return append(b, strings.ToLower(s)...)
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}
