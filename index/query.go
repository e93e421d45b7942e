package index

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/bleve/v2/search/searcher"
	bindex "github.com/blevesearch/bleve_index_api"

	"github.com/wirescope/wirescope/index/sketch"
)

// compiler turns a query string into a query over the document's one
// field (see fields.go): each field:value clause becomes terms "field=…"
// analyzed as the field is indexed.
type compiler struct{}

// badQuery returns an ErrBadQuery error with a message for the query's
// author.
func badQuery(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadQuery, fmt.Sprintf(format, args...))
}

// compileText parses text in Bleve's query string syntax; nil for "".
func (cq compiler) compileText(text string) (query.Query, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	if op := booleanWord(text); op != "" {
		return nil, badQuery("the query string has no %s operator: clauses are optional by default; prefix a clause "+
			"with + to require it and with - to exclude it (+dst.service:checkout +status:>=500 -method:get)", op)
	}
	if tok := groupingToken(text); tok != "" {
		return nil, badQuery("the query syntax is invalid at %q: parentheses do not group clauses in this syntax; "+
			"write the clauses side by side, + before each one required (%s)", tok, queryExample)
	}
	parsed, err := query.NewQueryStringQuery(text).Parse()
	if err != nil {
		return nil, badQuery("the query syntax is invalid (%s): %s", strings.TrimPrefix(err.Error(), "parse error: "), queryExample)
	}
	return cq.convert(parsed)
}

// queryExample shows the query syntax in errors about it.
const queryExample = "for example outcome:server_error, or +dst.service:checkout +status:>=500 -method:get"

// groupingToken returns the first clause outside quotes that opens or
// closes a group with parentheses, which Bleve's query string syntax does
// not have: it would read "(status:500" as the field "(status" and "((" as
// a word. A value with balanced parentheses (path:/a(b)) is no group.
func groupingToken(text string) string {
	inQuote := false
	start, depth, opens := -1, 0, false
	for i := 0; i <= len(text); i++ {
		c := byte(' ')
		if i < len(text) {
			c = text[i]
		}
		if c == '"' && i < len(text) && (i == 0 || text[i-1] != '\\') {
			inQuote = !inQuote
		}
		space := i == len(text) || !inQuote && (c == ' ' || c == '\t' || c == '\n')
		switch {
		case space:
			if start >= 0 && (opens || depth != 0) {
				return text[start:i]
			}
			start, depth, opens = -1, 0, false
			continue
		case start < 0:
			start = i
			// A clause that begins with "(" (after + or -) opens a group.
			opens = strings.HasPrefix(strings.TrimLeft(text[i:], "+-"), "(")
		}
		if !inQuote && c == '(' {
			depth++
		} else if !inQuote && c == ')' {
			depth--
		}
	}
	return ""
}

// booleanWord returns the first AND, OR, NOT, && or || standing alone
// outside quotes in a query string: Lucene syntax Bleve reads as words.
func booleanWord(text string) string {
	inQuote := false
	start := -1
	for i := 0; i <= len(text); i++ {
		if i < len(text) && text[i] == '"' && (i == 0 || text[i-1] != '\\') {
			inQuote = !inQuote
		}
		space := i == len(text) || text[i] == ' ' || text[i] == '\t' || text[i] == '\n'
		switch {
		case !space && start < 0:
			start = i
		case space && start >= 0:
			if w := text[start:i]; !inQuote {
				switch w {
				case "AND", "OR", "NOT", "&&", "||":
					return w
				}
			}
			start = -1
		}
	}
	return ""
}

func (cq compiler) convert(q query.Query) (query.Query, error) {
	switch q := q.(type) {
	case nil:
		return nil, nil
	case *query.BooleanQuery:
		if q.Filter != nil {
			return nil, badQuery("filter clauses are not supported")
		}
		var out query.BooleanQuery
		var err error
		if out.Must, err = cq.convert(q.Must); err != nil {
			return nil, err
		}
		if out.Should, err = cq.convert(q.Should); err != nil {
			return nil, err
		}
		if out.MustNot, err = cq.convert(q.MustNot); err != nil {
			return nil, err
		}
		return &out, nil
	case *query.ConjunctionQuery:
		subs, err := cq.convertAll(q.Conjuncts)
		if err != nil {
			return nil, err
		}
		return query.NewConjunctionQuery(subs), nil
	case *query.DisjunctionQuery:
		subs, err := cq.convertAll(q.Disjuncts)
		if err != nil {
			return nil, err
		}
		d := query.NewDisjunctionQuery(subs)
		d.SetMin(q.Min)
		return d, nil
	case *query.MatchQuery:
		if q.FieldVal == "" && !strings.ContainsFunc(q.Match, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) {
			return nil, badQuery("the query syntax is invalid at %q: a bare word needs letters or digits (%s)", q.Match, queryExample)
		}
		return cq.eachField(q.FieldVal, func(f string) (query.Query, error) {
			return cq.match(f, q.Match, q.Fuzziness, q.Prefix)
		})
	case *query.MatchPhraseQuery:
		// Without term positions a phrase matches its words in any order.
		return cq.eachField(q.FieldVal, func(f string) (query.Query, error) {
			return cq.match(f, q.MatchPhrase, q.Fuzziness, 0)
		})
	case *query.WildcardQuery:
		return cq.eachField(q.FieldVal, func(f string) (query.Query, error) {
			return cq.pattern(f, wildcardToRegexp(lower(q.Wildcard)), q.Wildcard)
		})
	case *query.RegexpQuery:
		if strings.Contains(q.Regexp, "/") {
			// path:/api/cart/ is a path ending in a slash, which the
			// parser takes for a regular expression between slashes.
			return cq.eachField(q.FieldVal, func(f string) (query.Query, error) {
				return cq.match(f, "/"+q.Regexp+"/", 0, 0)
			})
		}
		if _, err := syntax.Parse(q.Regexp, syntax.Perl); err != nil {
			return nil, badQuery("regular expression /%s/: %v", q.Regexp, err)
		}
		return cq.eachField(q.FieldVal, func(f string) (query.Query, error) {
			return cq.pattern(f, "(?:"+q.Regexp+")", "/"+q.Regexp+"/")
		})
	case *query.NumericRangeQuery:
		return cq.numeric(q)
	case *query.MatchAllQuery, *query.MatchNoneQuery:
		return q, nil
	case *query.DateRangeQuery:
		return nil, badQuery("time ranges are not part of the query string: use the from and to arguments")
	}
	return nil, badQuery("unsupported query clause %T", q)
}

func (cq compiler) convertAll(qs []query.Query) ([]query.Query, error) {
	out := make([]query.Query, 0, len(qs))
	for _, q := range qs {
		c, err := cq.convert(q)
		if err != nil {
			return nil, err
		}
		if c != nil {
			out = append(out, c)
		}
	}
	return out, nil
}

// checkField returns an error for a field the language does not have.
func checkField(f string) error {
	if k, ok := fieldKinds[f]; ok && k != kindInternal {
		return nil
	}
	return badQuery("unknown field %q; fields are %s", f, strings.Join(FieldNames(), ", "))
}

// FieldNames lists the fields of the query language.
func FieldNames() []string {
	out := []string{fieldProto, fieldMethod, fieldPath, fieldRoute, fieldStatus, fieldOutcome, fieldError}
	out = append(out, sideFields[0]...)
	out = append(out, sideFields[1]...)
	return append(out, fieldLatency)
}

// DefaultFieldNames lists the fields a word without a field name is
// matched against.
func DefaultFieldNames() []string { return slices.Clone(defaultFields) }

// eachField applies fn to field, or to every default field when field is
// empty, and ORs the results.
func (cq compiler) eachField(field string, fn func(string) (query.Query, error)) (query.Query, error) {
	if field != "" {
		if err := checkField(field); err != nil {
			return nil, err
		}
		return fn(field)
	}
	var subs []query.Query
	for _, f := range defaultFields {
		q, err := fn(f)
		if err != nil {
			return nil, err
		}
		if _, none := q.(*query.MatchNoneQuery); !none {
			subs = append(subs, q)
		}
	}
	if len(subs) == 0 {
		return query.NewMatchNoneQuery(), nil
	}
	if len(subs) == 1 {
		return subs[0], nil
	}
	return query.NewDisjunctionQuery(subs), nil
}

func termQuery(t string) *query.TermQuery {
	q := query.NewTermQuery(t)
	q.SetField(termsField)
	return q
}

// match is field:text: the text analyzed as the field is, every term
// required.
func (cq compiler) match(field, text string, fuzziness, prefix int) (query.Query, error) {
	if field == fieldLatency {
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, badQuery("latency_ms takes a number of milliseconds or a range (latency_ms:>500), not %q", text)
		}
		return cq.latencyRange(&v, &v, true, true), nil
	}
	words := analyze(field, text)
	if len(words) == 0 {
		return query.NewMatchNoneQuery(), nil
	}
	subs := make([]query.Query, len(words))
	for i, w := range words {
		if fuzziness > 0 {
			fq := query.NewFuzzyQuery(term(field, w))
			fq.SetFuzziness(fuzziness)
			fq.SetPrefix(len(field) + 1 + prefix)
			fq.SetField(termsField)
			subs[i] = fq
		} else {
			subs[i] = termQuery(term(field, w))
		}
	}
	if len(subs) == 1 {
		return subs[0], nil
	}
	return query.NewConjunctionQuery(subs), nil
}

// pattern matches the field's terms against a regular expression.
func (cq compiler) pattern(field, re, orig string) (query.Query, error) {
	if field == fieldLatency {
		return nil, badQuery("latency_ms takes numbers and ranges, not %s", orig)
	}
	q := query.NewRegexpQuery(regexp.QuoteMeta(field+"=") + re)
	q.SetField(termsField)
	return q, nil
}

// wildcardToRegexp turns a wildcard pattern ('*' any run, '?' any
// character) into a regular expression.
func wildcardToRegexp(w string) string {
	var b strings.Builder
	for _, r := range w {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	return b.String()
}

// numeric is a range (or, from a bare number, an equality) over a
// numeric field.
func (cq compiler) numeric(q *query.NumericRangeQuery) (query.Query, error) {
	field := q.FieldVal
	incl := func(p *bool, def bool) bool {
		if p == nil {
			return def
		}
		return *p
	}
	minIncl, maxIncl := incl(q.InclusiveMin, true), incl(q.InclusiveMax, false)
	equality := q.Min != nil && q.Max != nil && *q.Min == *q.Max
	switch {
	case field == "":
		// A bare number: it matches a status (the text alternative the
		// parser adds covers the other default fields).
		field = fieldStatus
	case checkField(field) != nil:
		return nil, checkField(field)
	}
	switch fieldKinds[field] {
	case kindLatency:
		return cq.latencyRange(q.Min, q.Max, minIncl, maxIncl), nil
	case kindNumber:
		return &decimalRangeQuery{field: field, min: q.Min, max: q.Max, minIncl: minIncl, maxIncl: maxIncl}, nil
	}
	if equality {
		// field:123 on a text field: the parser's text alternative
		// matches it.
		return query.NewMatchNoneQuery(), nil
	}
	return nil, badQuery("%s is not numeric; ranges apply to status, src.port, dst.port and latency_ms", field)
}

// decimalRangeQuery matches the terms of a field whose values are
// decimal numbers (status, ports) within a range, read from the term
// dictionary: these fields have few distinct values.
type decimalRangeQuery struct {
	field            string
	min, max         *float64
	minIncl, maxIncl bool
}

func (q *decimalRangeQuery) in(v float64) bool {
	if q.min != nil && (v < *q.min || v == *q.min && !q.minIncl) {
		return false
	}
	if q.max != nil && (v > *q.max || v == *q.max && !q.maxIncl) {
		return false
	}
	return true
}

func (q *decimalRangeQuery) Searcher(ctx context.Context, r bindex.IndexReader, m mapping.IndexMapping,
	opts search.SearcherOptions) (search.Searcher, error) {
	prefix := q.field + "="
	fd, err := r.FieldDictPrefix(termsField, []byte(prefix))
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	var terms [][]byte
	for {
		e, err := fd.Next()
		if err != nil {
			return nil, err
		}
		if e == nil {
			break
		}
		if v, err := strconv.ParseFloat(e.Term[len(prefix):], 64); err == nil && q.in(v) {
			terms = append(terms, []byte(e.Term))
		}
	}
	return searcher.NewMultiTermSearcherBytes(ctx, r, terms, termsField, 1, opts, false)
}

// latencyRange returns the query for latencies (in milliseconds) within
// bounds; calls without a latency match no range.
func (cq compiler) latencyRange(minMS, maxMS *float64, minIncl, maxIncl bool) query.Query {
	lo, hi := int64(1), int64(math.MaxInt64)
	if minMS != nil {
		ns := *minMS * 1e6
		if minIncl {
			ns = math.Ceil(ns)
		} else {
			ns = math.Floor(ns) + 1
		}
		lo = max(lo, clampNS(ns))
	}
	if maxMS != nil {
		ns := *maxMS * 1e6
		if maxIncl {
			ns = math.Floor(ns)
		} else {
			ns = math.Ceil(ns) - 1
		}
		hi = min(hi, clampNS(ns))
	}
	if lo > hi {
		return query.NewMatchNoneQuery()
	}
	return &latencyRangeQuery{lo: lo, hi: hi}
}

func clampNS(v float64) int64 {
	switch {
	case v >= math.MaxInt64:
		return math.MaxInt64
	case v <= 0:
		return 0
	}
	return int64(v)
}

// latencyRangeQuery matches calls with lo <= LatencyNS <= hi. Calls in
// the sketch bins strictly between those of lo and hi match by term; those
// in the two edge bins by the latency in their document key.
type latencyRangeQuery struct {
	lo, hi int64
}

func (q *latencyRangeQuery) Searcher(ctx context.Context, r bindex.IndexReader, m mapping.IndexMapping,
	opts search.SearcherOptions) (search.Searcher, error) {
	loBin, hiBin := sketch.Index(float64(q.lo)), sketch.Index(float64(q.hi))
	prefix := fieldLatency + "="
	fd, err := r.FieldDictRange(termsField, []byte(term(fieldLatency, latencyValue(loBin))),
		[]byte(term(fieldLatency, latencyValue(hiBin))))
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	var inner, edge [][]byte
	loTerm, hiTerm := prefix+latencyValue(loBin), prefix+latencyValue(hiBin)
	for {
		e, err := fd.Next()
		if err != nil {
			return nil, err
		}
		if e == nil {
			break
		}
		if e.Term == loTerm || e.Term == hiTerm {
			edge = append(edge, []byte(e.Term))
		} else {
			inner = append(inner, []byte(e.Term))
		}
	}
	check := func(key string) bool {
		k, ok := parseKey(key)
		return ok && k.latencyNS >= q.lo && k.latencyNS <= q.hi
	}
	return edgeSearcher(ctx, r, inner, edge, check, opts)
}

// edgeSearcher matches the documents of the inner terms, and those of the
// edge terms whose key passes check. The edge documents are checked up
// front and matched by key: a filtering searcher inside conjunctions would
// be advanced back and forth and check documents again and again.
func edgeSearcher(ctx context.Context, r bindex.IndexReader, inner, edge [][]byte, check func(key string) bool,
	opts search.SearcherOptions) (search.Searcher, error) {
	var keys []string
	for _, t := range edge {
		tfr, err := r.TermFieldReader(ctx, t, termsField, false, false, false)
		if err != nil {
			return nil, err
		}
		var d bindex.TermFieldDoc
		for {
			next, err := tfr.Next(d.Reset())
			if err != nil {
				tfr.Close()
				return nil, err
			}
			if next == nil {
				break
			}
			key, err := r.ExternalID(next.ID)
			if err != nil {
				tfr.Close()
				return nil, err
			}
			if check(key) {
				keys = append(keys, key)
			}
		}
		tfr.Close()
	}
	var subs []search.Searcher
	if len(inner) > 0 {
		s, err := searcher.NewMultiTermSearcherBytes(ctx, r, inner, termsField, 1, opts, false)
		if err != nil {
			return nil, err
		}
		subs = append(subs, s)
	}
	if len(keys) > 0 {
		s, err := searcher.NewDocIDSearcher(ctx, r, keys, 1, opts)
		if err != nil {
			for _, s := range subs {
				s.Close()
			}
			return nil, err
		}
		subs = append(subs, s)
	}
	switch len(subs) {
	case 0:
		return searcher.NewMatchNoneSearcher(r)
	case 1:
		return subs[0], nil
	}
	return searcher.NewDisjunctionSearcher(ctx, r, subs, 0, opts)
}

// timeRangeQuery matches calls with from <= TS < to (Unix nanoseconds):
// the whole minutes inside by term, the calls of the minutes at the edges
// by the time in their document key.
type timeRangeQuery struct {
	from, to int64
}

func (q *timeRangeQuery) Searcher(ctx context.Context, r bindex.IndexReader, m mapping.IndexMapping,
	opts search.SearcherOptions) (search.Searcher, error) {
	first, last := unixMinute(q.from), unixMinute(q.to-1)
	fd, err := r.FieldDictRange(termsField, []byte(term(fieldMinute, minuteValue(max(first, 0)))),
		[]byte(term(fieldMinute, minuteValue(max(last, 0)))))
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	var inner, edge [][]byte
	firstTerm, lastTerm := term(fieldMinute, minuteValue(first)), term(fieldMinute, minuteValue(last))
	firstWhole := q.from == first*int64(time.Minute)
	lastWhole := q.to == (last+1)*int64(time.Minute)
	for {
		e, err := fd.Next()
		if err != nil {
			return nil, err
		}
		if e == nil {
			break
		}
		if e.Term == firstTerm && !firstWhole || e.Term == lastTerm && !lastWhole {
			edge = append(edge, []byte(e.Term))
		} else {
			inner = append(inner, []byte(e.Term))
		}
	}
	check := func(key string) bool {
		k, ok := parseKey(key)
		return ok && k.ts >= q.from && k.ts < q.to
	}
	return edgeSearcher(ctx, r, inner, edge, check, opts)
}

// filterQuery returns the query for f; nil when f sets nothing. A call
// matches when its source or its destination matches every endpoint field
// set, and its protocol matches.
func filterQuery(f Filter) query.Query {
	var parts []query.Query
	vals := f.endpointValues()
	var sides []query.Query
	for side := range 2 {
		var conj []query.Query
		for i, v := range vals {
			if v != "" {
				conj = append(conj, termQuery(term(sideFields[side][i], v)))
			}
		}
		if len(conj) == 1 {
			sides = append(sides, conj[0])
		} else if len(conj) > 1 {
			sides = append(sides, query.NewConjunctionQuery(conj))
		}
	}
	if len(sides) > 0 {
		parts = append(parts, query.NewDisjunctionQuery(sides))
	}
	if f.Protocol != "" {
		parts = append(parts, termQuery(term(fieldProto, lower(f.Protocol))))
	}
	switch len(parts) {
	case 0:
		return nil
	case 1:
		return parts[0]
	}
	return query.NewConjunctionQuery(parts)
}

// endpointValues returns the filter's endpoint fields as indexed terms,
// in endpointFields order; "" for those not set.
func (f Filter) endpointValues() [8]string {
	ip := f.IP
	if a, err := netip.ParseAddr(ip); err == nil {
		ip = a.String()
	}
	var port string
	if f.Port != 0 {
		port = strconv.Itoa(int(f.Port))
	}
	return [8]string{lower(ip), port, lower(f.Pod), lower(f.Namespace), lower(f.Workload), lower(f.Service), lower(f.Node), lower(f.Version)}
}

// conjoin ANDs the non-nil queries; match-all for none.
func conjoin(qs ...query.Query) query.Query {
	qs = slices.DeleteFunc(qs, func(q query.Query) bool { return q == nil })
	switch len(qs) {
	case 0:
		return query.NewMatchAllQuery()
	case 1:
		return qs[0]
	}
	return query.NewConjunctionQuery(qs)
}
