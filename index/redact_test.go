package index

import (
	"bytes"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index/callstore"
	"github.com/wirescope/wirescope/internal/redact"
)

// indexSecrets are the secrets secretCalls carry; none may be stored or
// indexed.
var indexSecrets = []string{"QueryPass123", "OAUTHCODE", "STATEVALUE42", "UPPERPASS", "FORMPASS77", "JSONTOKEN9",
	"LOCATIONTOKEN7", "USERINFOPASS", "alice-user", "AMZSIG0042", "TRAILERTOKEN5"}

// secretCalls are HTTP calls with secrets in the request target, the
// bodies, a Location header, URL userinfo and a trailer, and one call
// without secrets whose path names tokens.
func secretCalls() []*proto.Call {
	ts := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	ep := func(ip string, port uint16) proto.Endpoint {
		return proto.Endpoint{IP: netip.MustParseAddr(ip), Port: port}
	}
	return []*proto.Call{
		{
			ID: "c-oauth", Proto: "http", TS: ts, LatencyNS: 2e6, Src: ep("10.0.0.2", 40000), Dst: ep("10.0.0.9", 80),
			Method: "POST", Path: "/sso/callback?password=QueryPass123&code=OAUTHCODE&State=STATEVALUE42&lang=en",
			Status: "302",
			Request: proto.Message{
				Headers: proto.Headers{{Name: "host", Value: "shop"}, {Name: "content-type", Value: "application/x-www-form-urlencoded"}},
				Body:    "user=ann&PASSWORD=FORMPASS77&remember=1",
			},
			Response: proto.Message{
				Headers: proto.Headers{{Name: "location", Value: "https://app.example/cb?access_token=LOCATIONTOKEN7&next=%2Fhome"},
					{Name: "content-type", Value: "application/json"}},
				Body: `{"Access_Token":"JSONTOKEN9","expires_in":3600}`,
			},
			Extra: proto.Extra{{Key: "version", Value: "1.1"},
				{Key: "response_trailers", Value: map[string]string{"x-session-token": "TRAILERTOKEN5"}}},
		},
		{
			ID: "c-upper", Proto: "http", TS: ts.Add(time.Second), LatencyNS: 1e6, Src: ep("10.0.0.2", 40001), Dst: ep("10.0.0.9", 80),
			Method: "GET", Path: "/login?PASSWORD=UPPERPASS&X-Amz-Signature=AMZSIG0042", Status: "200",
		},
		{
			ID: "c-proxy", Proto: "http", TS: ts.Add(2 * time.Second), LatencyNS: 1e6, Src: ep("10.0.0.2", 40002), Dst: ep("10.0.0.9", 3128),
			Method: "GET", Path: "http://alice-user:USERINFOPASS@proxy.example/files", Status: "200",
		},
		{
			ID: "c-plain", Proto: "http", TS: ts.Add(3 * time.Second), LatencyNS: 1e6, Src: ep("10.0.0.2", 40003), Dst: ep("10.0.0.9", 80),
			Method: "GET", Path: "/tokens/list?sort=asc", Status: "200",
		},
	}
}

// TestSecretsNotIndexed: a secret is neither found by a search (for the
// secret, its prefixes or a wildcard inside it) nor present in what the
// index keeps: the call store's records, the Bleve terms, the files.
func TestSecretsNotIndexed(t *testing.T) {
	ix, dir := openTest(t, nil)
	calls := secretCalls()
	before := make([][]byte, len(calls))
	for i, c := range calls {
		before[i] = c.AppendJSON(nil)
	}
	mustAdd(t, ix, calls)
	for i, c := range calls {
		if got := c.AppendJSON(nil); !bytes.Equal(got, before[i]) {
			t.Errorf("Add changed the call it was given:\n%s\nwas\n%s", got, before[i])
		}
	}

	for _, q := range []string{"QueryPass123", "querypass123", "Query*", "querypass*", "path:Query*", "OAUTHCODE", "OAUTH*",
		"oauthc*", "path:oauthcode", "STATEVALUE42", "statev*", "UPPERPASS", "UPPER*", "*pass1*", "USERINFOPASS", "alice*",
		"AMZSIG*", "path:*SIG0042", "LOCATIONTOKEN7", "path:/.*querypass.*/"} {
		found, total := searchAll(t, ix, Query{Text: q})
		if total != 0 || len(found) != 0 {
			t.Errorf("search %q finds %d calls (%s)", q, total, strings.Join(ids(found), " "))
		}
	}
	// What is not secret is still found.
	for q, want := range map[string]string{"callback": "c-oauth", "tokens": "c-plain", "amz": "c-upper",
		"proxy": "c-proxy", "lang": "c-oauth"} {
		found, _ := searchAll(t, ix, Query{Text: q})
		if len(found) != 1 || found[0].ID != want {
			t.Errorf("search %q finds %v, want %s", q, ids(found), want)
		}
	}

	got, err := ix.Get("c-oauth")
	if err != nil {
		t.Fatal(err)
	}
	for what, v := range map[string]string{
		"path":     got.Path,
		"body":     got.Request.Body,
		"location": got.Response.Headers.Get("location"),
		"json":     got.Response.Body,
	} {
		if !strings.Contains(v, "[redacted]") {
			t.Errorf("Get: %s %q is not redacted", what, v)
		}
	}
	if want := "/sso/callback?password=[redacted]&code=[redacted]&State=[redacted]&lang=en"; got.Path != want {
		t.Errorf("Get: path %q, want %q", got.Path, want)
	}

	// The call store's records, decoded.
	for _, p := range ix.partitionsIn(time.Time{}, time.Time{}) {
		n := 0
		err := p.store.Scan(int64(callstore.HeaderSize), func(_ callstore.Entry, c *proto.Call) error {
			n++
			assertNoSecret(t, "call store record "+c.ID, c.AppendJSON(nil))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("partition %s: no records scanned", p.name())
		}
		// The Bleve terms.
		dict, err := p.bl.FieldDict(termsField)
		if err != nil {
			t.Fatal(err)
		}
		terms := 0
		for e, err := dict.Next(); e != nil || err != nil; e, err = dict.Next() {
			if err != nil {
				t.Fatal(err)
			}
			terms++
			assertNoSecret(t, "index term", []byte(e.Term))
		}
		dict.Close()
		if terms == 0 {
			t.Errorf("partition %s: no terms", p.name())
		}
	}

	// Every file the index wrote, as bytes.
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		assertNoSecret(t, path, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Error("no files")
	}
}

// assertNoSecret fails when b holds any of indexSecrets, in any case.
func assertNoSecret(t *testing.T, what string, b []byte) {
	t.Helper()
	lb := bytes.ToLower(b)
	for _, s := range indexSecrets {
		if bytes.Contains(lb, []byte(strings.ToLower(s))) {
			t.Errorf("%s holds %q", what, s)
		}
	}
}

// TestAddRedactsOnce: Add copies only the calls it masks something in,
// so calls without secrets are stored as given.
func TestAddRedactsOnce(t *testing.T) {
	ix, _ := openTest(t, nil)
	calls := genCalls(200, 7, time.Hour)
	mustAdd(t, ix, calls)
	found, _ := searchAll(t, ix, Query{Limit: MaxLimit})
	if len(found) != len(calls) {
		t.Fatalf("%d calls found, %d added", len(found), len(calls))
	}
	for _, c := range calls {
		got, err := ix.Get(c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := got.AppendJSON(nil), c.AppendJSON(nil); !bytes.Equal(a, b) {
			t.Fatalf("call without secrets changed:\n%s\nstored as\n%s", b, a)
		}
	}
}

// BenchmarkRedact is what Add's redaction costs per call of
// BenchmarkIngest's calls (JSON bodies of up to 256 bytes, no secrets):
// compare its ns/op with the CPU time per call BenchmarkIngest reports.
func BenchmarkRedact(b *testing.B) {
	calls := ingestCalls()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		redact.Call(calls[i%len(calls)])
		i++
	}
}
