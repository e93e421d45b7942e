package dissect_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/grpc"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/internal/corpus"
)

// http2Truth is what the corpus's truth files say of HTTP/2 and gRPC.
type http2Truth struct {
	HTTP2 struct {
		// [tcp stream, stream id, :method, :path, :status]; null where
		// tshark decoded no such field.
		Streams [][]any `json:"streams_method_path_status"`
	} `json:"http2"`
	GRPC json.RawMessage `json:"grpc"`
}

type grpcTruth struct {
	// [tcp stream, stream id, :path, HTTP status, grpc-status]
	Calls    [][]any `json:"calls_path_httpstatus_grpcstatus"`
	Messages struct {
		Result int `json:"result"`
	} `json:"grpc_message_count"`
}

// beyondTshark lists the fields wirescope decodes where tshark's truth has
// none, and why: checked, not skipped.
var beyondTshark = map[string]map[string]string{
	// tshark 4.0 does not reassemble the 16 KiB header block spread over
	// CONTINUATION frames in many segments ("Unreassembled fragment").
	"http2/arkime_http2-nghttp2.pcap": {"13": "GET /"},
	// After `Upgrade: h2c` the upgrade's request is stream 1 (RFC 7540
	// §3.2): tshark shows stream 1's response without a request.
	"http2/suricata-verify_http2-range.pcap": {"1": "GET /eicar"},
}

// TestCorpusHTTP2 checks the HTTP/2 and gRPC captures of the corpus
// against tshark's truth: one call per HTTP/2 stream that carried headers,
// with tshark's stream id, :method, :path and :status (a PUSH_PROMISE's
// request for its promised stream); for gRPC, the path, the HTTP status,
// grpc-status by name and the messages counted; and against golden files
// of the whole output.
func TestCorpusHTTP2(t *testing.T) {
	dir, ok := corpus.Dir()
	if !ok {
		t.Skip("the shared corpus (../shared/corpus beside the repository) is not present")
	}
	var matches []string
	for _, sub := range []string{"http2", "grpc"} {
		m, _ := filepath.Glob(filepath.Join(dir, sub, "*.pcap*"))
		matches = append(matches, m...)
	}
	if len(matches) < 7 {
		t.Fatalf("found %d HTTP/2 and gRPC captures, want 7", len(matches))
	}
	for _, m := range matches {
		name := filepath.Base(filepath.Dir(m)) + "/" + filepath.Base(m)
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(strings.TrimSuffix(strings.TrimSuffix(m, ".pcapng"), ".pcap") + ".truth.json")
			if err != nil {
				t.Fatal(err)
			}
			var tr http2Truth
			if err := json.Unmarshal(b, &tr); err != nil {
				t.Fatal(err)
			}
			var gt grpcTruth
			isGRPC := len(tr.GRPC) > 0 && string(tr.GRPC) != `"none"`
			if isGRPC {
				if err := json.Unmarshal(tr.GRPC, &gt); err != nil {
					t.Fatal(err)
				}
			}
			calls, _, _ := run(t, dissect.Options{}, m)
			var streams []*dissect.Call
			for _, c := range calls {
				if c.Proto == "http2" || c.Proto == "grpc" {
					streams = append(streams, c)
				}
			}
			// The same streams, in the same order of first appearance.
			var want, got []string
			for _, row := range tr.HTTP2.Streams {
				sid := fmt.Sprint(row[1])
				mp := fmt.Sprint(row[2], " ", row[3])
				if row[2] == nil {
					mp = beyondTshark[name][sid]
					if mp == "" {
						t.Fatalf("stream %s: tshark has no :method, and the test says nothing of it", sid)
					}
				}
				want = append(want, fmt.Sprintf("stream %s %s %v", sid, mp, row[4]))
			}
			for _, c := range streams {
				status := c.Status
				if c.Proto == "grpc" {
					status = fmt.Sprint(c.Extra.Get("http_status"))
				}
				got = append(got, fmt.Sprintf("stream %v %s %s %s", c.Extra.Get("stream_id"), c.Method, c.Path, status))
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("streams:\n%s\ntshark's:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if !isGRPC {
				for _, c := range streams {
					if c.Proto != "http2" || c.Error != "" || c.Outcome() != proto.OK {
						t.Errorf("stream %v: proto %s error %q outcome %v", c.Extra.Get("stream_id"), c.Proto, c.Error, c.Outcome())
					}
				}
			} else {
				messages := 0
				for i, row := range gt.Calls {
					if i >= len(streams) {
						t.Fatalf("%d gRPC calls, tshark %d", len(streams), len(gt.Calls))
					}
					c := streams[i]
					wantStatus := ""
					if row[4] != nil {
						wantStatus = grpc.CodeName(fmt.Sprint(row[4]))
					}
					if c.Proto != "grpc" || c.Path != row[2] || c.Status != wantStatus || fmt.Sprint(c.Extra.Get("http_status")) != fmt.Sprint(row[3]) {
						t.Errorf("call %d: %s %s status %q http %v, tshark %v", i, c.Proto, c.Path, c.Status, c.Extra.Get("http_status"), row)
					}
					if wantStatus == "" && c.Outcome() != proto.Incomplete {
						t.Errorf("call %d: no grpc-status captured, outcome %v", i, c.Outcome())
					}
					for _, k := range []string{"request_messages", "response_messages"} {
						n, _ := c.Extra.Get(k).(int64)
						messages += int(n)
					}
				}
				if messages != gt.Messages.Result {
					t.Errorf("%d gRPC messages counted, tshark %d", messages, gt.Messages.Result)
				}
			}
			checkGolden(t, name, calls)
		})
	}
}
