package main

import (
	"path/filepath"
	"testing"
	"time"
)

// natsManifest is what scripts/record-nats.sh says its clients did and its
// server counted.
type natsManifest struct {
	Secrets   []string `json:"secrets"`
	Scenarios []struct {
		Name        string         `json:"name"`
		Pcap        string         `json:"pcap"`
		Connections int            `json:"connections"`
		ClientOps   map[string]int `json:"client_ops"`
		ServerOps   map[string]int `json:"server_ops"`
		Errors      map[string]int `json:"errors"`
		Publishes   map[string]int `json:"publishes"`
		Requests    struct {
			Answered     int `json:"answered"`
			NoResponders int `json:"no_responders"`
			TimedOut     int `json:"timed_out"`
		} `json:"requests"`
		Served  int `json:"served"`
		Ignored int `json:"ignored"`
		Varz    struct {
			InMsgs   int64 `json:"in_msgs"`
			OutMsgs  int64 `json:"out_msgs"`
			InBytes  int64 `json:"in_bytes"`
			OutBytes int64 `json:"out_bytes"`
		} `json:"varz"`
		Secrets []string `json:"secrets"`
	} `json:"scenarios"`
}

// TestNATSRecorded records a real nats-server (embedded in
// test/natsapps/cmd/natsclient) and nats.go clients (scripts/record-nats.sh:
// pub/sub with a queue group, request/reply answered, to no responders and
// timed out, headers, verbose mode, user/password with permission
// violations and a wrong password, a payload over max_payload) and checks
// wirescope's calls against what the clients wrote and read, counted on
// their connections (every operation by name, the -ERR texts, the requests'
// results, the publishes by subject), and against the server's own counters
// (server.Varz: messages and bytes in and out). tshark 4.0 has no NATS
// dissector, so the server's counters are the second reading. No password
// is in the output.
func TestNATSRecorded(t *testing.T) {
	needRecording(t, "go", "jq")
	var m natsManifest
	dir := recordManifest(t, "record-nats.sh", 5*time.Minute, &m)
	if len(m.Scenarios) < 6 {
		t.Fatalf("manifest.json has %d scenarios", len(m.Scenarios))
	}
	for _, s := range m.Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			calls := dissectFile(t, filepath.Join(dir, s.Pcap), append(append([]string(nil), m.Secrets...), s.Secrets...))
			methods := map[string]int{}
			var errs, wantErrs, publishes, wantPublishes []string
			var requests, wantRequests, served, wantServed []string
			unansweredPings := 0
			var inMsgs, outMsgs, inBytes, outBytes int64
			for _, c := range calls {
				if c.Proto != "nats" {
					t.Errorf("a %s call", c.Proto)
					continue
				}
				methods[c.Method]++
				replyTo := extraString(c.Extra, "reply_to")
				size := func(body int64, header string) int64 { return body + int64(extraInt(c.Extra.Get(header))) }
				switch {
				case c.Method == "PING" && c.Error != "":
					unansweredPings++
					continue
				case c.Error != "" && !(c.Error == "no response" && replyTo != ""):
					t.Errorf("%s %q: error %q", c.Method, c.Path, c.Error)
				case c.OneWay && (c.Method == "CONNECT" || c.Method == "PING"):
					t.Errorf("a one-way %s", c.Method)
				}
				switch c.Method {
				case "PUB", "HPUB":
					publishes = append(publishes, c.Path)
					if c.Status != "Maximum Payload Violation" {
						inMsgs++
						inBytes += size(c.Request.BodySize, "header_size")
					}
					if replyTo != "" {
						requests = append(requests, c.Status+c.Error)
						if c.Status == "OK" {
							outMsgs++ // the reply delivered
							outBytes += size(c.Response.BodySize, "reply_header_size")
						}
					}
				case "MSG", "HMSG":
					outMsgs++
					if replyTo == "" {
						outBytes += size(c.Response.BodySize, "header_size")
						break
					}
					// A delivered request: its answer is the client's
					// publish to the reply subject.
					if c.OneWay {
						// Never answered: a delivery like any other.
						outBytes += size(c.Response.BodySize, "header_size")
					} else {
						outBytes += size(c.Request.BodySize, "header_size")
					}
					served = append(served, c.Status)
					if c.Status == "OK" {
						publishes = append(publishes, replyTo)
						inMsgs++
						inBytes += size(c.Response.BodySize, "reply_header_size")
					}
				}
				if c.Status != "" && c.Status != "OK" && c.Status != "no responders" {
					errs = append(errs, c.Status)
				}
			}
			for text, n := range s.Errors {
				for range n {
					wantErrs = append(wantErrs, text)
				}
			}
			for subject, n := range s.Publishes {
				for range n {
					wantPublishes = append(wantPublishes, subject)
				}
			}
			for status, n := range map[string]int{"OK": s.Requests.Answered, "no responders": s.Requests.NoResponders, "no response": s.Requests.TimedOut} {
				for range n {
					wantRequests = append(wantRequests, status)
				}
			}
			for range s.Served {
				wantServed = append(wantServed, "OK")
			}
			for range s.Ignored {
				wantServed = append(wantServed, "")
			}
			sameCounts(t, "-ERR texts, against what the clients read", errs, wantErrs)
			sameCounts(t, "publishes by subject, against what the clients wrote", publishes, wantPublishes)
			sameCounts(t, "requests by result, against the requester's", requests, wantRequests)
			sameCounts(t, "delivered requests, answered or not, against the responder's", served, wantServed)

			// Every operation: the client's, and the server's deliveries
			// less the replies matched to their requests.
			ops := s.ClientOps
			for _, c := range []struct {
				method string
				want   int
			}{
				{"CONNECT", ops["CONNECT"]},
				{"SUB", ops["SUB"]},
				{"UNSUB", ops["UNSUB"]},
				{"PING", ops["PING"] + s.ServerOps["PING"]},
				{"PUB+HPUB+answered MSG", ops["PUB"] + ops["HPUB"]},
				{"MSG+HMSG", s.ServerOps["MSG"] + s.ServerOps["HMSG"] - s.Requests.Answered - s.Requests.NoResponders},
			} {
				got := methods[c.method]
				switch c.method {
				case "PUB+HPUB+answered MSG":
					got = methods["PUB"] + methods["HPUB"] + s.Served
				case "MSG+HMSG":
					got = methods["MSG"] + methods["HMSG"]
				}
				if got != c.want {
					t.Errorf("%d %s calls, want %d (the clients' operations %v, the server's %v)", got, c.method, c.want, ops, s.ServerOps)
				}
			}
			// PINGs unanswered: those after a -ERR the server closed on.
			if want := ops["PING"] + s.ServerOps["PING"] - s.ServerOps["PONG"] - ops["PONG"]; unansweredPings != want {
				t.Errorf("%d PINGs unanswered, want %d", unansweredPings, want)
			}
			// The server's counters: messages in (every publish read, but
			// one over max_payload), out (deliveries; its 503 status
			// messages are not counted), and their bytes.
			for _, c := range []struct {
				what      string
				got, want int64
			}{{"messages in", inMsgs, s.Varz.InMsgs}, {"messages out", outMsgs, s.Varz.OutMsgs},
				{"bytes in", inBytes, s.Varz.InBytes}, {"bytes out", outBytes, s.Varz.OutBytes}} {
				if c.got != c.want {
					t.Errorf("%s: %d in the dissection, %d by the server's count", c.what, c.got, c.want)
				}
			}
			t.Logf("%d calls %v; the server: in %d messages, %d bytes; out %d, %d", len(calls), methods,
				s.Varz.InMsgs, s.Varz.InBytes, s.Varz.OutMsgs, s.Varz.OutBytes)
		})
	}
}
