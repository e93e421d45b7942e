// Package truth reads and writes the "truth" files that record what tshark
// reports for a packet capture, so dissector tests can compare their own
// results against an independent reference.
//
// The shared corpus (see CorpusDir) holds one <name>.truth.json beside each
// capture, produced with tshark 4.0.17. This package models the subset of that
// schema the dissector tests use: the packet count, the HTTP request and
// response listings with the request/response pairs derived from them, and the
// DNS listing with the queries and responses derived from it. Generate runs
// the same tshark commands the corpus files record and derives those fields the
// same way, so captures recorded for this project (scripts/record-testdata.sh)
// get truth files that can be compared with the corpus ones.
//
// The corpus writes the string "none" where a section or list is absent or
// empty; Load accepts it (and JSON null) wherever a section or list is
// expected, and the types here write "none" back for empty values.
package truth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// none is the corpus's marker for an absent section or an empty list.
const none = "none"

// File is one truth file.
type File struct {
	// File is the capture's name: "<proto>/<name>" in the corpus, the base
	// name in files written by Generate.
	File      string
	SizeBytes int64
	SHA256    string
	// Tool is the first line of `tshark --version`.
	Tool string
	// DecodeAs lists the tshark -d rules the corpus used for this capture
	// ("none" in JSON). Generate applies none.
	DecodeAs List[string]
	// Notes says where tshark is known to be incomplete; "" when the file
	// has none ("none" in JSON).
	Notes       string
	PacketCount Count
	// HTTP is nil when tshark saw no HTTP request or response ("none").
	HTTP *HTTP
	// DNS is nil when tshark saw no DNS message ("none").
	DNS *DNS
}

// Count is a number together with the shell command that produced it.
type Count struct {
	Cmd    string `json:"cmd,omitempty"`
	Result int    `json:"result"`
}

// Listing is tshark's `-T fields` output, one row per frame and one string per
// field, together with the command that produced it.
type Listing struct {
	Cmd    string         `json:"cmd,omitempty"`
	Result List[[]string] `json:"result"`
}

// HTTP is the http section of a truth file.
type HTTP struct {
	// RequestsListing has the columns frame.number, tcp.stream,
	// http.request.method, http.request.uri, http.host, http.response_in.
	RequestsListing Listing `json:"requests_listing"`
	// ResponsesListing has the columns frame.number, tcp.stream,
	// http.response.code, http.request_in.
	ResponsesListing Listing `json:"responses_listing"`
	// RequestCount and ResponseCount count messages, not frames.
	RequestCount  int `json:"request_count"`
	ResponseCount int `json:"response_count"`
	// Pairs has one entry per request, in listing order.
	Pairs List[Pair] `json:"pairs_method_uri_status"`
	// ResponsesWithoutRequest holds the status codes of the responses no
	// request was paired with, in listing order.
	ResponsesWithoutRequest List[int] `json:"responses_without_request"`
	Derived                 string    `json:"derived,omitempty"`
}

// Pair is a request and the status of the response tshark matched to it.
// In JSON it is the array [method, uri, status]; an empty Method or URI and a
// zero Status are written as null (tshark reported no value, or no response).
type Pair struct {
	Method string
	URI    string
	Status int
}

// DNS is the dns section of a truth file.
type DNS struct {
	// Listing has the columns frame.number, dns.id, dns.flags.response,
	// dns.qry.name, dns.qry.type, dns.flags.rcode, dns.count.answers.
	Listing   Listing        `json:"listing"`
	Queries   List[Query]    `json:"queries"`
	Responses List[Response] `json:"responses"`
	Derived   string         `json:"derived,omitempty"`
}

// Query is one DNS query message.
type Query struct {
	Frame int    `json:"frame"`
	ID    string `json:"id"` // as tshark prints it, e.g. "0x1a2b"
	QName string `json:"qname"`
	QType string `json:"qtype"` // mnemonic, e.g. "AAAA"
}

// Response is one DNS response message.
type Response struct {
	Frame   int    `json:"frame"`
	ID      string `json:"id"`
	QName   string `json:"qname"`
	QType   string `json:"qtype"`
	RCode   string `json:"rcode"` // mnemonic, e.g. "NXDomain"
	Answers int    `json:"answers"`
}

// Derivation notes, as the corpus words them.
const (
	httpDerived = "request_count/response_count = number of messages in requests_listing/responses_listing " +
		"(several messages in one frame are space-aggregated); pairs: request matched to the response whose " +
		"http.request_in equals the request frame (status null = no response seen by tshark)"
	dnsDerived = "queries/responses parsed from listing (';'-aggregated when several DNS messages share a frame); " +
		"qtype/rcode numbers mapped to names"
)

// List is a JSON list that the corpus writes as "none" when it is empty.
// Unmarshalling accepts "none", null or an array; marshalling writes "none"
// for an empty list.
type List[T any] []T

// UnmarshalJSON implements json.Unmarshaler.
func (l *List[T]) UnmarshalJSON(b []byte) error {
	if isNone(b) {
		*l = nil
		return nil
	}
	var v []T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*l = v
	return nil
}

// MarshalJSON implements json.Marshaler.
func (l List[T]) MarshalJSON() ([]byte, error) {
	if len(l) == 0 {
		return marshal(none)
	}
	return marshal([]T(l))
}

// marshal is json.Marshal without HTML escaping: the corpus writes "&", "<"
// and ">" as they are.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// isNone reports whether b is JSON null or the string "none".
func isNone(b []byte) bool {
	b = bytes.TrimSpace(b)
	return bytes.Equal(b, []byte("null")) || bytes.Equal(b, []byte(`"none"`))
}

// UnmarshalJSON implements json.Unmarshaler for the [method, uri, status] form.
func (p *Pair) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("pair: %w", err)
	}
	if len(raw) != 3 {
		return fmt.Errorf("pair: want [method, uri, status], got %d elements", len(raw))
	}
	var method, uri *string
	var status *int
	if err := json.Unmarshal(raw[0], &method); err != nil {
		return fmt.Errorf("pair method: %w", err)
	}
	if err := json.Unmarshal(raw[1], &uri); err != nil {
		return fmt.Errorf("pair uri: %w", err)
	}
	if err := json.Unmarshal(raw[2], &status); err != nil {
		return fmt.Errorf("pair status: %w", err)
	}
	*p = Pair{Method: deref(method), URI: deref(uri), Status: deref(status)}
	return nil
}

// MarshalJSON implements json.Marshaler.
func (p Pair) MarshalJSON() ([]byte, error) {
	return marshal([3]any{nullIfZero(p.Method), nullIfZero(p.URI), nullIfZero(p.Status)})
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func nullIfZero[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

// fileJSON is File's JSON form; HTTP, DNS and Notes take "none".
type fileJSON struct {
	File        string          `json:"file"`
	SizeBytes   int64           `json:"size_bytes,omitempty"`
	SHA256      string          `json:"sha256,omitempty"`
	Tool        string          `json:"tool,omitempty"`
	DecodeAs    List[string]    `json:"decode_as"`
	Notes       json.RawMessage `json:"notes"`
	PacketCount Count           `json:"packet_count"`
	HTTP        json.RawMessage `json:"http"`
	DNS         json.RawMessage `json:"dns"`
}

// UnmarshalJSON implements json.Unmarshaler. Members not modelled here are
// ignored.
func (f *File) UnmarshalJSON(b []byte) error {
	var raw fileJSON
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := File{
		File:        raw.File,
		SizeBytes:   raw.SizeBytes,
		SHA256:      raw.SHA256,
		Tool:        raw.Tool,
		DecodeAs:    raw.DecodeAs,
		PacketCount: raw.PacketCount,
	}
	if len(raw.Notes) > 0 && !isNone(raw.Notes) {
		if err := json.Unmarshal(raw.Notes, &out.Notes); err != nil {
			return fmt.Errorf("notes: %w", err)
		}
	}
	if len(raw.HTTP) > 0 && !isNone(raw.HTTP) {
		out.HTTP = new(HTTP)
		if err := json.Unmarshal(raw.HTTP, out.HTTP); err != nil {
			return fmt.Errorf("http: %w", err)
		}
	}
	if len(raw.DNS) > 0 && !isNone(raw.DNS) {
		out.DNS = new(DNS)
		if err := json.Unmarshal(raw.DNS, out.DNS); err != nil {
			return fmt.Errorf("dns: %w", err)
		}
	}
	*f = out
	return nil
}

// MarshalJSON implements json.Marshaler.
func (f File) MarshalJSON() ([]byte, error) {
	raw := fileJSON{
		File:        f.File,
		SizeBytes:   f.SizeBytes,
		SHA256:      f.SHA256,
		Tool:        f.Tool,
		DecodeAs:    f.DecodeAs,
		PacketCount: f.PacketCount,
	}
	var err error
	notes := f.Notes
	if notes == "" {
		notes = none
	}
	if raw.Notes, err = marshal(notes); err != nil {
		return nil, err
	}
	if raw.HTTP, err = marshalSection(f.HTTP); err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	if raw.DNS, err = marshalSection(f.DNS); err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	return marshal(raw)
}

func marshalSection[T any](s *T) ([]byte, error) {
	if s == nil {
		return marshal(none)
	}
	return marshal(s)
}

// Load reads a truth file.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read truth file: %w", err)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse truth file %s: %w", path, err)
	}
	return &f, nil
}

// The tshark invocations, as the corpus records them (after "tshark -r FILE").
var (
	packetCountArgs = []string{"-T", "fields", "-e", "frame.number"}
	httpRequestArgs = []string{"-2", "-Y", "http.request", "-T", "fields",
		"-e", "frame.number", "-e", "tcp.stream", "-e", "http.request.method", "-e", "http.request.uri",
		"-e", "http.host", "-e", "http.response_in", "-E", "occurrence=a", "-E", "aggregator=/s"}
	httpResponseArgs = []string{"-2", "-Y", "http.response", "-T", "fields",
		"-e", "frame.number", "-e", "tcp.stream", "-e", "http.response.code", "-e", "http.request_in",
		"-E", "occurrence=a", "-E", "aggregator=/s"}
	dnsArgs = []string{"-Y", "dns", "-T", "fields",
		"-e", "frame.number", "-e", "dns.id", "-e", "dns.flags.response", "-e", "dns.qry.name",
		"-e", "dns.qry.type", "-e", "dns.flags.rcode", "-e", "dns.count.answers",
		"-E", "occurrence=a", "-E", "aggregator=;"}
)

// Tshark is the tshark binary Generate and TsharkVersion run.
var Tshark = "tshark"

// Generate runs tshark on a capture and builds its truth: the packet count,
// the HTTP listings and the DNS listing, with the fields derived from them.
// Notes and Tool are left empty. File is the capture's base name.
func Generate(pcapPath string) (*File, error) {
	data, err := os.ReadFile(pcapPath)
	if err != nil {
		return nil, fmt.Errorf("read capture: %w", err)
	}
	sum := sha256.Sum256(data)
	base := filepath.Base(pcapPath)
	f := &File{
		File:      base,
		SizeBytes: int64(len(data)),
		SHA256:    hex.EncodeToString(sum[:]),
	}

	out, err := runTshark(pcapPath, packetCountArgs)
	if err != nil {
		return nil, err
	}
	f.PacketCount = Count{Cmd: shellCmd(base, packetCountArgs, " | wc -l"), Result: bytes.Count(out, []byte("\n"))}
	if f.PacketCount.Result == 0 {
		return nil, fmt.Errorf("tshark read no packets from %s", pcapPath)
	}

	reqs, err := listing(pcapPath, httpRequestArgs)
	if err != nil {
		return nil, err
	}
	resps, err := listing(pcapPath, httpResponseArgs)
	if err != nil {
		return nil, err
	}
	if len(reqs.Result) > 0 || len(resps.Result) > 0 {
		if f.HTTP, err = deriveHTTP(reqs, resps); err != nil {
			return nil, fmt.Errorf("derive http truth for %s: %w", base, err)
		}
	}

	dnsList, err := listing(pcapPath, dnsArgs)
	if err != nil {
		return nil, err
	}
	if len(dnsList.Result) > 0 {
		if f.DNS, err = deriveDNS(dnsList); err != nil {
			return nil, fmt.Errorf("derive dns truth for %s: %w", base, err)
		}
	}
	return f, nil
}

// TsharkVersion returns the first line of `tshark --version`.
func TsharkVersion() (string, error) {
	out, err := exec.Command(Tshark, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("run %s --version: %w", Tshark, err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line), nil
}

// runTshark runs `tshark -r pcap args...` and returns its standard output.
// Like the corpus's shell commands it does not fail on tshark's exit status
// alone (tshark exits non-zero on, for instance, a capture cut short, after
// printing what it could read); it fails when tshark cannot be run, or when it
// exits non-zero without printing anything.
func runTshark(pcap string, args []string) ([]byte, error) {
	cmd := exec.Command(Tshark, append([]string{"-r", pcap}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && (!errors.As(err, &exitErr) || stdout.Len() == 0) {
		msg := strings.TrimSpace(lastLine(stderr.String()))
		if msg != "" {
			return nil, fmt.Errorf("run tshark on %s: %w: %s", pcap, err, msg)
		}
		return nil, fmt.Errorf("run tshark on %s: %w", pcap, err)
	}
	return stdout.Bytes(), nil
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// listing runs a `-T fields` command and splits its output into rows.
func listing(pcap string, args []string) (Listing, error) {
	out, err := runTshark(pcap, args)
	if err != nil {
		return Listing{}, err
	}
	return Listing{Cmd: shellCmd(filepath.Base(pcap), args, ""), Result: parseFields(out)}, nil
}

// parseFields splits tshark's `-T fields` output: one row per line, one
// column per tab.
func parseFields(out []byte) [][]string {
	var rows [][]string
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSuffix(line, "\n")
		line = strings.TrimSuffix(line, "\r")
		rows = append(rows, strings.Split(line, "\t"))
	}
	return rows
}

// shellCmd renders an invocation the way the corpus records it.
func shellCmd(base string, args []string, pipe string) string {
	parts := []string{"tshark", "-r", shellQuote(base)}
	for _, a := range args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ") + " 2>/dev/null" + pipe
}

// shellQuote quotes s for a POSIX shell when it needs quoting. The corpus
// writes -E aggregator=';' with the quotes around the value only, so a
// name=value argument keeps its name bare.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, needsQuote) < 0 {
		return s
	}
	if name, value, ok := strings.Cut(s, "="); ok && name != "" && strings.IndexFunc(name, needsQuote) < 0 {
		return name + "=" + shellQuote(value)
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func needsQuote(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	}
	return !strings.ContainsRune("-_./:,+@%=", r)
}

// column returns row[i], or "" when the row is short.
func column(row []string, i int) string {
	if i < len(row) {
		return row[i]
	}
	return ""
}

// split splits an aggregated field into one value per message; the empty
// field is one empty value.
func split(field, sep string) []string {
	return strings.Split(field, sep)
}

// nth returns the i-th value of an aggregated field, or "" when there are
// fewer values (tshark leaves out fields a message does not have).
func nth(values []string, i int) string {
	if i < len(values) {
		return values[i]
	}
	return ""
}

// atoi parses a decimal field; "" and anything unparsable give 0.
func atoi(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0
	}
	return n
}

// frameNumber parses the frame.number column, which tshark always prints.
func frameNumber(row []string) (int, error) {
	n, err := strconv.Atoi(column(row, 0))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad frame number %q in row %q", column(row, 0), row)
	}
	return n, nil
}

// deriveHTTP derives counts, pairs and unmatched responses from the listings.
// Several messages in one frame are space-aggregated ("-E aggregator=/s");
// the number of methods (codes) in a row is its number of messages. Each
// request is paired with the first response not yet paired whose
// http.request_in is the request's frame.
func deriveHTTP(reqs, resps Listing) (*HTTP, error) {
	h := &HTTP{RequestsListing: reqs, ResponsesListing: resps, Derived: httpDerived}

	type response struct {
		status int
		paired bool
	}
	var responses []*response
	byRequestFrame := map[int][]*response{}
	for _, row := range resps.Result {
		if _, err := frameNumber(row); err != nil {
			return nil, fmt.Errorf("responses listing: %w", err)
		}
		codes := split(column(row, 2), " ")
		requestIn := split(column(row, 3), " ")
		for i, code := range codes {
			r := &response{status: atoi(code)}
			responses = append(responses, r)
			if f := atoi(nth(requestIn, i)); f > 0 {
				byRequestFrame[f] = append(byRequestFrame[f], r)
			}
		}
	}
	h.ResponseCount = len(responses)

	for _, row := range reqs.Result {
		frame, err := frameNumber(row)
		if err != nil {
			return nil, fmt.Errorf("requests listing: %w", err)
		}
		methods := split(column(row, 2), " ")
		uris := split(column(row, 3), " ")
		for i, method := range methods {
			p := Pair{Method: method, URI: nth(uris, i)}
			for _, r := range byRequestFrame[frame] {
				if !r.paired {
					r.paired = true
					p.Status = r.status
					break
				}
			}
			h.Pairs = append(h.Pairs, p)
		}
	}
	h.RequestCount = len(h.Pairs)

	for _, r := range responses {
		if !r.paired {
			h.ResponsesWithoutRequest = append(h.ResponsesWithoutRequest, r.status)
		}
	}
	return h, nil
}

// deriveDNS splits the listing into query and response messages. Several
// messages in one frame are ';'-aggregated; dns.flags.response has one value
// per message.
func deriveDNS(l Listing) (*DNS, error) {
	d := &DNS{Listing: l, Derived: dnsDerived}
	for _, row := range l.Result {
		frame, err := frameNumber(row)
		if err != nil {
			return nil, fmt.Errorf("dns listing: %w", err)
		}
		ids := split(column(row, 1), ";")
		flags := split(column(row, 2), ";")
		names := split(column(row, 3), ";")
		types := split(column(row, 4), ";")
		rcodes := split(column(row, 5), ";")
		answers := split(column(row, 6), ";")
		// Queries carry no rcode in tshark 4.0, so rcodes and answers
		// are indexed by response, not by message.
		nResp := 0
		for i, flag := range flags {
			id, name, qtype := nth(ids, i), nth(names, i), TypeName(nth(types, i))
			if flag == "1" {
				d.Responses = append(d.Responses, Response{
					Frame: frame, ID: id, QName: name, QType: qtype,
					RCode:   RCodeName(nth(rcodes, nResp)),
					Answers: atoi(nth(answers, i)),
				})
				nResp++
				continue
			}
			d.Queries = append(d.Queries, Query{Frame: frame, ID: id, QName: name, QType: qtype})
		}
	}
	return d, nil
}

// typeNames are the DNS RR type mnemonics, as tshark 4.0 names them (its
// descriptions' first word), with "ANY" for 255 as the corpus writes it.
var typeNames = map[int]string{
	1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG", 9: "MR", 10: "NULL",
	11: "WKS", 12: "PTR", 13: "HINFO", 14: "MINFO", 15: "MX", 16: "TXT", 17: "RP", 18: "AFSDB",
	19: "X25", 20: "ISDN", 21: "RT", 22: "NSAP", 23: "NSAP-PTR", 24: "SIG", 25: "KEY", 26: "PX",
	27: "GPOS", 28: "AAAA", 29: "LOC", 30: "NXT", 31: "EID", 32: "NIMLOC", 33: "SRV", 34: "ATMA",
	35: "NAPTR", 36: "KX", 37: "CERT", 38: "A6", 39: "DNAME", 40: "SINK", 41: "OPT", 42: "APL",
	43: "DS", 44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 49: "DHCID",
	50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA", 55: "HIP", 57: "RKEY", 58: "TALINK", 59: "CDS",
	60: "CDNSKEY", 61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD", 64: "SVCB", 65: "HTTPS", 99: "SPF",
	100: "UINFO", 101: "UID", 102: "GID", 103: "UNSPEC", 104: "NID", 105: "L32", 106: "L64",
	107: "LP", 108: "EUI48", 109: "EUI64", 249: "TKEY", 250: "TSIG", 251: "IXFR", 252: "AXFR",
	253: "MAILB", 254: "MAILA", 255: "ANY", 256: "URI", 257: "CAA", 32768: "TA", 32769: "DLV",
}

// rcodeNames are the DNS RCODE mnemonics (RFC 6895) for the 4-bit header field.
var rcodeNames = map[int]string{
	0: "NoError", 1: "FormErr", 2: "ServFail", 3: "NXDomain", 4: "NotImp", 5: "Refused",
	6: "YXDomain", 7: "YXRRSet", 8: "NXRRSet", 9: "NotAuth", 10: "NotZone", 11: "DSOTYPENI",
}

// TypeName maps a dns.qry.type value ("28") to its mnemonic ("AAAA"). Unknown
// numbers become "TYPE<n>" (RFC 3597); a value that is not a number is
// returned unchanged.
func TypeName(v string) string {
	n, err := strconv.Atoi(v)
	if err != nil {
		return v
	}
	if name, ok := typeNames[n]; ok {
		return name
	}
	return "TYPE" + v
}

// RCodeName maps a dns.flags.rcode value ("3") to its mnemonic ("NXDomain").
// Unknown numbers become "RCODE<n>"; a value that is not a number is
// returned unchanged.
func RCodeName(v string) string {
	n, err := strconv.Atoi(v)
	if err != nil {
		return v
	}
	if name, ok := rcodeNames[n]; ok {
		return name
	}
	return "RCODE" + v
}

// Write writes f as indented JSON followed by a newline.
func (f *File) Write(w io.Writer) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return fmt.Errorf("encode truth file: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write truth file: %w", err)
	}
	return nil
}
