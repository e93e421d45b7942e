package main

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wirescope/wirescope/dissect/proto"
)

// kafkaManifest is what scripts/record-kafka.sh says its clients and
// broker did.
type kafkaManifest struct {
	Secrets   []string `json:"secrets"`
	Scenarios []struct {
		Name        string         `json:"name"`
		Pcap        string         `json:"pcap"`
		Port        int            `json:"port"`
		Connections int            `json:"connections"`
		Requests    map[string]int `json:"requests"`
		Errors      map[string]int `json:"errors"`
		OneWay      int            `json:"one_way"`
		// Unanswered are the requests the broker never answered, by API:
		// a fetch long-poll the consumer's close cut, an authentication
		// kfake answers by closing the connection.
		Unanswered      map[string]int `json:"unanswered_requests"`
		Topics          []string       `json:"topics"`
		RecordsProduced int            `json:"records_produced"`
		RecordsConsumed int            `json:"records_consumed"`
	} `json:"scenarios"`
}

// TestKafkaRecorded records Kafka from franz-go's kfake broker and real
// clients — franz-go producers (every compression codec, acks=all, 1 and
// 0), a consumer group, a producer to a topic that does not exist, kcat
// (librdkafka), SASL PLAIN with a right and a wrong password — and checks
// the dissection against the broker's log of every request and the errors
// it answered, and against tshark's reading of the same capture: the same
// requests by API (tshark reads every request's key, even of versions it
// cannot decode), the same errors, the records produced, the acks=0
// produces one-way, no password shown.
func TestKafkaRecorded(t *testing.T) {
	needRecording(t, "go", "jq", "kcat")
	var m kafkaManifest
	dir := recordManifest(t, "record-kafka.sh", 5*time.Minute, &m)
	if len(m.Scenarios) < 6 {
		t.Fatalf("manifest.json has %d scenarios", len(m.Scenarios))
	}
	for _, s := range m.Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			pcap := filepath.Join(dir, s.Pcap)
			calls := dissectFile(t, pcap, m.Secrets)
			var got, want, gotErrors, wantErrors, gotUnanswered, wantUnanswered []string
			oneWay, produced, fetched := 0, 0, 0
			paths := map[string]bool{}
			for _, c := range calls {
				if c.Proto != "kafka" {
					t.Errorf("a %s call", c.Proto)
					continue
				}
				got = append(got, c.Method)
				for _, p := range strings.Split(c.Path, ",") {
					paths[p] = true
				}
				switch c.Method {
				case "Produce":
					// Records the broker took (acks=0: sent).
					if c.Status == "OK" || c.OneWay {
						produced += extraInt(c.Extra.Get("records"))
					}
				case "Fetch":
					fetched += extraInt(c.Extra.Get("records"))
				}
				switch {
				case c.OneWay:
					oneWay++
					if c.Method != "Produce" || extraInt(c.Extra.Get("acks")) != 0 {
						t.Errorf("a one-way %s (acks %v)", c.Method, c.Extra.Get("acks"))
					}
				case c.ProblemKind() == proto.Unanswered:
					gotUnanswered = append(gotUnanswered, c.Method)
				case c.Method == "Fetch" && strings.HasPrefix(c.Error, "truncated: the connection closed during the fetch's long poll"):
					// Not answered either: cut by the client's close while
					// the broker waited for records.
					gotUnanswered = append(gotUnanswered, c.Method)
				case c.Error != "" || c.Status == "":
					t.Errorf("%s %q: status %q, error %q", c.Method, c.Path, c.Status, c.Error)
				case c.Status != "OK":
					gotErrors = append(gotErrors, c.Status)
				}
			}
			for name, n := range s.Requests {
				for range n {
					want = append(want, name)
				}
			}
			for name, n := range s.Errors {
				for range n {
					wantErrors = append(wantErrors, name)
				}
			}
			for name, n := range s.Unanswered {
				for range n {
					wantUnanswered = append(wantUnanswered, name)
				}
			}
			sameCounts(t, "requests, against the broker's log", got, want)
			sameCounts(t, "unanswered requests, against the broker's log", gotUnanswered, wantUnanswered)
			sameCounts(t, "error statuses, against the broker's responses", gotErrors, wantErrors)
			sameCounts(t, "requests, against tshark", got, tsharkKafkaRequests(t, pcap, s.Port))
			if oneWay != s.OneWay {
				t.Errorf("%d one-way produces, the client sent %d with acks=0", oneWay, s.OneWay)
			}
			if produced != s.RecordsProduced {
				t.Errorf("produces carry %d records, the client produced %d", produced, s.RecordsProduced)
			}
			if fetched < s.RecordsConsumed {
				t.Errorf("fetches returned %d records, the consumer read %d", fetched, s.RecordsConsumed)
			}
			for _, topic := range s.Topics {
				if !paths[topic] {
					t.Errorf("no call names topic %q", topic)
				}
			}
		})
	}
}

// tsharkKafkaRequests returns the API name of every request tshark reads in
// a capture, the port decoded as Kafka.
func tsharkKafkaRequests(t *testing.T, pcap string, port int) []string {
	t.Helper()
	out, err := exec.Command("tshark", "-r", pcap, "-d", "tcp.port=="+strconv.Itoa(port)+",kafka",
		"-Y", "kafka.request_key", "-T", "fields", "-e", "kafka.request_key", "-E", "occurrence=a", "-E", "aggregator=,").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	var names []string
	for _, line := range strings.Fields(string(out)) {
		for _, k := range strings.Split(line, ",") {
			key, err := strconv.Atoi(k)
			if err != nil {
				t.Fatalf("tshark's request key %q", k)
			}
			names = append(names, kmsg.NameForKey(int16(key)))
		}
	}
	slices.Sort(names)
	return names
}
