package truth

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	sharedcorpus "github.com/wirescope/wirescope/internal/corpus"
)

// corpus returns the shared corpus directory or skips the test.
func corpus(t *testing.T) string {
	t.Helper()
	dir, ok := sharedcorpus.Dir()
	if !ok {
		t.Skip("shared corpus not found (looked for ../shared/corpus beside the repository); skipping corpus tests")
	}
	return dir
}

// needTshark skips the test when tshark is not on PATH.
func needTshark(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(Tshark); err != nil {
		t.Skipf("tshark not on PATH (%v); skipping tests that run it", err)
	}
}

// truthFiles lists the corpus truth files, optionally only those in the
// given protocol folders.
func truthFiles(t *testing.T, dir string, protos ...string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(protos) > 0 {
		files = slices.DeleteFunc(files, func(f string) bool {
			return !slices.Contains(protos, filepath.Base(filepath.Dir(f)))
		})
	}
	if len(files) == 0 {
		t.Fatalf("no truth files in %s (folders %v)", dir, protos)
	}
	return files
}

// capturePath returns the capture a truth file describes.
func capturePath(t *testing.T, truthPath string) string {
	t.Helper()
	stem := strings.TrimSuffix(truthPath, ".truth.json")
	for _, ext := range []string{".pcap", ".pcapng"} {
		if _, err := os.Stat(stem + ext); err == nil {
			return stem + ext
		}
	}
	t.Fatalf("no capture beside %s", truthPath)
	return ""
}

func name(path string) string {
	return filepath.Base(filepath.Dir(path)) + "/" + strings.TrimSuffix(filepath.Base(path), ".truth.json")
}

func messages(rows [][]string, col int, sep string) int {
	n := 0
	for _, row := range rows {
		n += len(strings.Split(column(row, col), sep))
	}
	return n
}

func TestLoadCorpus(t *testing.T) {
	dir := corpus(t)
	var sawHTTP, sawDNS int
	for _, path := range truthFiles(t, dir) {
		t.Run(name(path), func(t *testing.T) {
			f, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if f.File == "" || f.Tool == "" {
				t.Errorf("file = %q, tool = %q; want both set", f.File, f.Tool)
			}
			if f.PacketCount.Result <= 0 || f.PacketCount.Cmd == "" {
				t.Errorf("packet_count = %+v; want a positive result and its command", f.PacketCount)
			}
			if h := f.HTTP; h != nil {
				sawHTTP++
				if got := messages(h.RequestsListing.Result, 2, " "); got != h.RequestCount {
					t.Errorf("request_count = %d, requests listing has %d messages", h.RequestCount, got)
				}
				if got := messages(h.ResponsesListing.Result, 2, " "); got != h.ResponseCount {
					t.Errorf("response_count = %d, responses listing has %d messages", h.ResponseCount, got)
				}
				if len(h.Pairs) != h.RequestCount {
					t.Errorf("%d pairs for %d requests", len(h.Pairs), h.RequestCount)
				}
				answered := 0
				for _, p := range h.Pairs {
					if p.Status != 0 {
						answered++
					}
				}
				if answered+len(h.ResponsesWithoutRequest) != h.ResponseCount {
					t.Errorf("%d answered requests + %d responses without request != %d responses",
						answered, len(h.ResponsesWithoutRequest), h.ResponseCount)
				}
			}
			if d := f.DNS; d != nil {
				sawDNS++
				if got, want := len(d.Queries)+len(d.Responses), messages(d.Listing.Result, 2, ";"); got != want {
					t.Errorf("%d queries + responses, listing has %d messages", got, want)
				}
			}
		})
	}
	if sawHTTP == 0 || sawDNS == 0 {
		t.Errorf("corpus had %d files with an http section and %d with a dns section; want some of each", sawHTTP, sawDNS)
	}
}

// TestLoadCorpusValues spot-checks the "none" strings and nulls.
func TestLoadCorpusValues(t *testing.T) {
	dir := corpus(t)
	load := func(rel string) *File {
		t.Helper()
		f, err := Load(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	methods := load("http1/zeek_http_methods.truth.json")
	if methods.Notes == "" {
		t.Error("zeek_http_methods: notes empty")
	}
	if got, want := methods.HTTP.Pairs[2], (Pair{Method: "OPTIONS", URI: "", Status: 400}); got != want {
		t.Errorf("zeek_http_methods pair 2 = %+v, want %+v (null uri)", got, want)
	}
	if got := len(methods.HTTP.ResponsesWithoutRequest); got != 22 {
		t.Errorf("zeek_http_methods: %d responses without request, want 22", got)
	}
	if methods.DecodeAs != nil {
		t.Errorf(`zeek_http_methods: decode_as = %q, want nil for "none"`, methods.DecodeAs)
	}
	if methods.DNS != nil {
		t.Error(`zeek_http_methods: dns = "none" loaded as a section`)
	}

	bro := load("http1/zeek_http_bro.org.truth.json")
	if !slices.Contains(bro.HTTP.Pairs, Pair{Method: "GET", URI: "/js/jquery.cycle.all.min.js"}) {
		t.Error("zeek_http_bro.org: request without response (null status) not found")
	}
	if bro.HTTP.ResponsesWithoutRequest != nil {
		t.Errorf(`zeek_http_bro.org: responses_without_request = %v, want nil for "none"`, bro.HTTP.ResponsesWithoutRequest)
	}

	get := load("http1/zeek_http_get.truth.json")
	if get.Notes != "" {
		t.Errorf(`zeek_http_get: notes = %q, want "" for "none"`, get.Notes)
	}

	icmp := load("icmp/zeek_icmp-destunreach-udp.truth.json")
	if icmp.DNS == nil || icmp.DNS.Queries != nil || len(icmp.DNS.Responses) != 1 {
		t.Fatalf(`zeek_icmp-destunreach-udp: dns = %+v, want queries "none" and one response`, icmp.DNS)
	}
	want := Response{Frame: 1, ID: "0x98a4", QName: "secure.ed4.net", QType: "A", RCode: "NoError", Answers: 1}
	if icmp.DNS.Responses[0] != want {
		t.Errorf("zeek_icmp-destunreach-udp response = %+v, want %+v", icmp.DNS.Responses[0], want)
	}

	mongo := load("mongodb/arkime_mongo.truth.json")
	if want := (List[string]{"tcp.port==27017,mongo", "tcp.port==30000,mongo"}); !reflect.DeepEqual(mongo.DecodeAs, want) {
		t.Errorf("arkime_mongo: decode_as = %q, want %q", mongo.DecodeAs, want)
	}

	udp := load("dns/arkime_dns-udp.truth.json")
	if got := udp.DNS.Queries[2]; got.QType != "ANY" || got.Frame != 5 {
		t.Errorf("arkime_dns-udp query 2 = %+v, want frame 5 type ANY", got)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.truth.json")); err == nil {
		t.Error("Load of a missing file: no error")
	}
	for name, content := range map[string]string{
		"truncated":   `{"file": "x.pcap", "http": {`,
		"pair length": `{"file": "x.pcap", "http": {"pairs_method_uri_status": [["GET", "/"]]}}`,
		"pair status": `{"file": "x.pcap", "http": {"pairs_method_uri_status": [["GET", "/", "200"]]}}`,
		"bad list":    `{"file": "x.pcap", "dns": {"queries": "some"}}`,
		"bad section": `{"file": "x.pcap", "dns": 3}`,
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil {
			t.Errorf("%s: Load accepted %s", name, content)
		}
	}
}

func TestNoneAndNull(t *testing.T) {
	const in = `{
		"file": "x.pcap",
		"notes": null,
		"packet_count": {"cmd": "c", "result": 7},
		"http": {
			"requests_listing": {"cmd": "r", "result": "none"},
			"responses_listing": {"cmd": "s", "result": null},
			"pairs_method_uri_status": [[null, null, null], ["GET", "/", 200]],
			"responses_without_request": [100, 404]
		},
		"dns": "none",
		"other": {"ignored": true}
	}`
	var f File
	if err := json.Unmarshal([]byte(in), &f); err != nil {
		t.Fatal(err)
	}
	want := File{
		File:        "x.pcap",
		PacketCount: Count{Cmd: "c", Result: 7},
		HTTP: &HTTP{
			RequestsListing:         Listing{Cmd: "r"},
			ResponsesListing:        Listing{Cmd: "s"},
			Pairs:                   List[Pair]{{}, {Method: "GET", URI: "/", Status: 200}},
			ResponsesWithoutRequest: List[int]{100, 404},
		},
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("got  %+v\nwant %+v", f, want)
	}
}

func TestWriteRoundTrip(t *testing.T) {
	f := &File{
		File:        "x.pcap",
		Tool:        "TShark",
		PacketCount: Count{Cmd: "c", Result: 3},
		HTTP: &HTTP{
			RequestsListing: Listing{Cmd: "r", Result: List[[]string]{{"1", "0", "GET", "/a?b=1&c=2", "h", ""}}},
			RequestCount:    1,
			Pairs:           List[Pair]{{Method: "GET", URI: "/a?b=1&c=2"}},
		},
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`"notes": "none"`, `"dns": "none"`, `"responses_listing": {`, `"result": "none"`,
		`"responses_without_request": "none"`, `"/a?b=1&c=2",`, "null\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	var back File
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, f) {
		t.Errorf("round trip:\ngot  %+v\nwant %+v", back, *f)
	}
}

// TestWriteRoundTripCorpus re-encodes every corpus file and loads it back.
func TestWriteRoundTripCorpus(t *testing.T) {
	dir := corpus(t)
	for _, path := range truthFiles(t, dir) {
		f, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := f.Write(&buf); err != nil {
			t.Fatalf("%s: %v", name(path), err)
		}
		var back File
		if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
			t.Fatalf("%s: %v", name(path), err)
		}
		if !reflect.DeepEqual(&back, f) {
			t.Errorf("%s: round trip changed the file", name(path))
		}
	}
}

func TestDeriveHTTP(t *testing.T) {
	// As tshark lists nginx.pcap: an interim 100 without request_in, and
	// three pipelined requests in frame 250 whose responses tshark
	// attributes to that frame only once.
	reqs := Listing{Result: List[[]string]{
		{"98", "9", "POST", "/upload", "shop.test:8080", "100"},
		{"250", "23", "GET GET GET", "/index.html /css/shop.css /search?q=socks", "shop shop shop", "253 253 253"},
		{"300", "24", "", "", "", ""},
	}}
	resps := Listing{Result: List[[]string]{
		{"99", "9", "100", ""},
		{"100", "9", "201", "98"},
		{"253", "23", "200", "250"},
		{"255", "23", "200", ""},
		{"257", "23", "404 500", " "},
	}}
	h, err := deriveHTTP(reqs, resps)
	if err != nil {
		t.Fatal(err)
	}
	wantPairs := List[Pair]{
		{Method: "POST", URI: "/upload", Status: 201},
		{Method: "GET", URI: "/index.html", Status: 200},
		{Method: "GET", URI: "/css/shop.css"},
		{Method: "GET", URI: "/search?q=socks"},
		{},
	}
	if !reflect.DeepEqual(h.Pairs, wantPairs) {
		t.Errorf("pairs = %+v\nwant   %+v", h.Pairs, wantPairs)
	}
	if want := (List[int]{100, 200, 404, 500}); !reflect.DeepEqual(h.ResponsesWithoutRequest, want) {
		t.Errorf("responses without request = %v, want %v", h.ResponsesWithoutRequest, want)
	}
	if h.RequestCount != 5 || h.ResponseCount != 6 {
		t.Errorf("counts = %d requests, %d responses; want 5, 6", h.RequestCount, h.ResponseCount)
	}

	if _, err := deriveHTTP(Listing{Result: List[[]string]{{"x", "0", "GET"}}}, Listing{}); err == nil {
		t.Error("bad frame number accepted")
	}
}

func TestDeriveDNS(t *testing.T) {
	l := Listing{Result: List[[]string]{
		{"1", "0x0001", "0", "a.example", "1", "", "0"},
		{"2", "0x0002;0x0003", "0;0", "b.example;c.example", "28;33", "", "0;0"},
		{"3", "0x0002;0x0003", "1;1", "b.example;c.example", "28;33", "0;3", "1;0"},
		{"4", "0x0004", "1", "d.example", "65534", "13", "0"},
	}}
	d, err := deriveDNS(l)
	if err != nil {
		t.Fatal(err)
	}
	wantQ := List[Query]{
		{Frame: 1, ID: "0x0001", QName: "a.example", QType: "A"},
		{Frame: 2, ID: "0x0002", QName: "b.example", QType: "AAAA"},
		{Frame: 2, ID: "0x0003", QName: "c.example", QType: "SRV"},
	}
	wantR := List[Response]{
		{Frame: 3, ID: "0x0002", QName: "b.example", QType: "AAAA", RCode: "NoError", Answers: 1},
		{Frame: 3, ID: "0x0003", QName: "c.example", QType: "SRV", RCode: "NXDomain", Answers: 0},
		{Frame: 4, ID: "0x0004", QName: "d.example", QType: "TYPE65534", RCode: "RCODE13", Answers: 0},
	}
	if !reflect.DeepEqual(d.Queries, wantQ) {
		t.Errorf("queries = %+v\nwant     %+v", d.Queries, wantQ)
	}
	if !reflect.DeepEqual(d.Responses, wantR) {
		t.Errorf("responses = %+v\nwant       %+v", d.Responses, wantR)
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		"1": "A", "2": "NS", "5": "CNAME", "6": "SOA", "12": "PTR", "15": "MX", "16": "TXT", "28": "AAAA",
		"33": "SRV", "41": "OPT", "43": "DS", "46": "RRSIG", "48": "DNSKEY", "64": "SVCB", "65": "HTTPS",
		"255": "ANY", "999": "TYPE999", "": "",
	} {
		if got := TypeName(in); got != want {
			t.Errorf("TypeName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"0": "NoError", "1": "FormErr", "2": "ServFail", "3": "NXDomain", "4": "NotImp", "5": "Refused",
		"15": "RCODE15", "": "",
	} {
		if got := RCodeName(in); got != want {
			t.Errorf("RCodeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCommandsMatchCorpus checks that the commands Generate records are the
// corpus's, character for character.
func TestCommandsMatchCorpus(t *testing.T) {
	dir := corpus(t)
	for _, path := range truthFiles(t, dir) {
		f, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if f.DecodeAs != nil {
			continue // the corpus commands carry -d rules, which Generate does not apply
		}
		base := filepath.Base(capturePath(t, path))
		check := func(what, got, want string) {
			t.Helper()
			if got != want {
				t.Errorf("%s %s command:\ngot  %s\nwant %s", name(path), what, got, want)
			}
		}
		check("packet_count", shellCmd(base, packetCountArgs, " | wc -l"), f.PacketCount.Cmd)
		if f.HTTP != nil {
			check("requests_listing", shellCmd(base, httpRequestArgs, ""), f.HTTP.RequestsListing.Cmd)
			check("responses_listing", shellCmd(base, httpResponseArgs, ""), f.HTTP.ResponsesListing.Cmd)
		}
		if f.DNS != nil {
			check("dns listing", shellCmd(base, dnsArgs, ""), f.DNS.Listing.Cmd)
		}
	}
}

// compare reports the differences between a generated truth and the expected
// one in the fields Generate derives.
func compare(t *testing.T, label string, got, want *File) {
	t.Helper()
	diff := func(field string, g, w any) {
		t.Helper()
		if !reflect.DeepEqual(g, w) {
			gj, _ := json.Marshal(g)
			wj, _ := json.Marshal(w)
			t.Errorf("%s %s:\ngot  %s\nwant %s", label, field, gj, wj)
		}
	}
	diff("packet_count", got.PacketCount.Result, want.PacketCount.Result)
	if (got.HTTP == nil) != (want.HTTP == nil) {
		t.Errorf("%s http section: generated present=%t, expected present=%t", label, got.HTTP != nil, want.HTTP != nil)
	} else if got.HTTP != nil {
		g, w := got.HTTP, want.HTTP
		diff("http requests_listing", g.RequestsListing.Result, w.RequestsListing.Result)
		diff("http responses_listing", g.ResponsesListing.Result, w.ResponsesListing.Result)
		diff("http request_count", g.RequestCount, w.RequestCount)
		diff("http response_count", g.ResponseCount, w.ResponseCount)
		diff("http pairs_method_uri_status", g.Pairs, w.Pairs)
		diff("http responses_without_request", g.ResponsesWithoutRequest, w.ResponsesWithoutRequest)
	}
	if (got.DNS == nil) != (want.DNS == nil) {
		t.Errorf("%s dns section: generated present=%t, expected present=%t", label, got.DNS != nil, want.DNS != nil)
	} else if got.DNS != nil {
		diff("dns listing", got.DNS.Listing.Result, want.DNS.Listing.Result)
		diff("dns queries", got.DNS.Queries, want.DNS.Queries)
		diff("dns responses", got.DNS.Responses, want.DNS.Responses)
	}
}

// TestGenerateMatchesCorpus runs Generate on the HTTP/1.x and DNS corpus
// captures and checks that it reproduces what the corpus records.
func TestGenerateMatchesCorpus(t *testing.T) {
	dir := corpus(t)
	needTshark(t)
	for _, path := range truthFiles(t, dir, "http1", "dns") {
		t.Run(name(path), func(t *testing.T) {
			t.Parallel()
			want, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			pcap := capturePath(t, path)
			got, err := Generate(pcap)
			if err != nil {
				t.Fatal(err)
			}
			if got.SizeBytes != want.SizeBytes || got.SHA256 != want.SHA256 {
				t.Errorf("size/sha256 = %d/%s, corpus says %d/%s", got.SizeBytes, got.SHA256, want.SizeBytes, want.SHA256)
			}
			compare(t, name(path), got, want)
		})
	}
}

// TestGenerateSectionsAcrossCorpus runs Generate on every other corpus
// capture that tshark reads without decode-as rules, checking in particular
// that it reports "none" exactly where the corpus does.
func TestGenerateSectionsAcrossCorpus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs tshark on the whole corpus; skipped with -short")
	}
	dir := corpus(t)
	needTshark(t)
	for _, path := range truthFiles(t, dir) {
		proto := filepath.Base(filepath.Dir(path))
		if proto == "http1" || proto == "dns" {
			continue // TestGenerateMatchesCorpus
		}
		t.Run(name(path), func(t *testing.T) {
			t.Parallel()
			want, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if want.DecodeAs != nil {
				t.Skipf("the corpus used decode-as rules %q, which Generate does not apply", want.DecodeAs)
			}
			got, err := Generate(capturePath(t, path))
			if err != nil {
				t.Fatal(err)
			}
			compare(t, name(path), got, want)
		})
	}
}

// TestGenerateMatchesTestdata checks that the truth files recorded with
// scripts/record-testdata.sh are current for their captures.
func TestGenerateMatchesTestdata(t *testing.T) {
	needTshark(t)
	found := false
	for _, pcap := range []string{"../../http1/testdata/nginx.pcap", "../../dns/testdata/dnsmasq.pcap"} {
		truthPath := strings.TrimSuffix(pcap, ".pcap") + ".truth.json"
		if _, err := os.Stat(truthPath); err != nil {
			continue
		}
		found = true
		want, err := Load(truthPath)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Generate(pcap)
		if err != nil {
			t.Fatal(err)
		}
		if got.SHA256 != want.SHA256 {
			t.Errorf("%s: sha256 %s, truth file says %s; re-run scripts/record-testdata.sh", pcap, got.SHA256, want.SHA256)
		}
		compare(t, pcap, got, want)
	}
	if !found {
		t.Skip("no recorded testdata truth files; run scripts/record-testdata.sh")
	}
}

func TestGenerateErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Generate(filepath.Join(dir, "missing.pcap")); err == nil {
		t.Error("Generate of a missing file: no error")
	}
	needTshark(t)
	junk := filepath.Join(dir, "junk.pcap")
	if err := os.WriteFile(junk, []byte("not a capture\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(junk); err == nil {
		t.Error("Generate of a file that is not a capture: no error")
	}
}

func TestCorpusDir(t *testing.T) {
	dir, ok := sharedcorpus.Dir()
	if !ok {
		t.Skip("shared corpus not found")
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		t.Errorf("corpus.Dir() = %s, which has no README.md: %v", dir, err)
	}
}
