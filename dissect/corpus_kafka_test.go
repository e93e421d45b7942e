package dissect_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/proto"
)

// kafkaTruth is what the corpus's truth files say of Kafka: per message
// tshark decoded, its frame, TCP stream, API key and version (requests
// only), correlation ID, and for a response the frame of its request.
type kafkaTruth struct {
	Kafka struct {
		Fields struct {
			Result [][]string `json:"result"`
		} `json:"fields_listing"`
	} `json:"kafka"`
}

// TestCorpusKafka checks the Kafka captures of the corpus against tshark:
// every request tshark decodes is a call with its API, version and
// correlation ID, and no other; a request whose response is in the
// capture (tshark matched it, or it did not because it cannot read the
// request's version: a response with the request's correlation ID on its
// stream) has a status, and one without is unanswered. Responses whose
// request is not in the capture come alone on a connection the capture
// joined late (a server's bytes are not recognised as Kafka without a
// request), so they are not calls.
func TestCorpusKafka(t *testing.T) {
	forCorpus(t, "kafka", 3, func(t *testing.T, m string, tr *kafkaTruth) {
		calls, _, _ := run(t, dissect.Options{}, m)
		type key struct{ stream, corr string }
		responded := map[key]bool{}
		for _, row := range tr.Kafka.Fields.Result {
			if row[2] == "" {
				responded[key{row[1], row[4]}] = true
			}
		}
		var want, got []string
		for _, row := range tr.Kafka.Fields.Result {
			if row[2] == "" {
				continue
			}
			k, _ := strconv.Atoi(row[2])
			answer := "unanswered"
			if responded[key{row[1], row[4]}] {
				answer = "answered"
			}
			want = append(want, fmt.Sprintf("%s v%s #%s %s", kmsg.NameForKey(int16(k)), row[3], row[4], answer))
		}
		for _, c := range calls {
			if c.Proto != "kafka" {
				t.Errorf("a %s call", c.Proto)
				continue
			}
			answer := "answered"
			switch {
			case c.ProblemKind() == proto.Unanswered:
				answer = "unanswered"
			case c.Error != "" || c.Status == "":
				t.Errorf("%s %q: status %q, error %q", c.Method, c.Path, c.Status, c.Error)
			}
			got = append(got, fmt.Sprintf("%s v%d #%d %s", c.Method, c.Extra.Get("api_version"), c.Extra.Get("correlation_id"), answer))
		}
		sameStrings(t, "requests", got, want)
	})
}

// sameStrings fails unless got and want hold the same strings as often.
func sameStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	n := map[string]int{}
	for _, s := range got {
		n[s]++
	}
	for _, s := range want {
		n[s]--
	}
	for s, d := range n {
		switch {
		case d > 0:
			t.Errorf("%s: %d more %q than tshark", what, d, s)
		case d < 0:
			t.Errorf("%s: %d fewer %q than tshark", what, -d, s)
		}
	}
	if t.Failed() {
		t.Logf("got %q\nwant %q", got, want)
	}
}
