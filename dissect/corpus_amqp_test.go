package dissect_test

import (
	"strings"
	"testing"

	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/proto"
)

// amqpTruth is what the corpus's truth files say of AMQP: per packet
// tshark decoded, its frame, the protocol header's fields, and the frame
// types, channels, and the classes and methods of its method frames.
type amqpTruth struct {
	AMQP struct {
		Fields struct {
			Result [][]string `json:"result"`
		} `json:"fields_listing"`
		Info struct {
			Result [][]string `json:"result"`
		} `json:"info_listing"`
	} `json:"amqp"`
}

// amqpNames are the class.method names tshark's numbers stand for.
var amqpNames = map[string]string{
	"10.10": "connection.start", "10.11": "connection.start-ok", "10.30": "connection.tune", "10.31": "connection.tune-ok",
	"10.40": "connection.open", "10.41": "connection.open-ok", "10.50": "connection.close", "10.51": "connection.close-ok",
	"20.10": "channel.open", "20.11": "channel.open-ok", "20.40": "channel.close", "20.41": "channel.close-ok",
	"40.10": "exchange.declare", "40.11": "exchange.declare-ok", "50.10": "queue.declare", "50.11": "queue.declare-ok",
	"50.20": "queue.bind", "50.21": "queue.bind-ok", "60.20": "basic.consume", "60.21": "basic.consume-ok",
	"60.40": "basic.publish", "60.50": "basic.return", "60.60": "basic.deliver", "60.80": "basic.ack",
}

// TestCorpusAMQP checks the AMQP captures of the corpus against tshark:
// every method frame tshark decodes is accounted for by a call — the
// method that starts it, the reply that answers it (extra reply when it is
// not the method's own "-ok": a channel.close or connection.close the
// server answered with), the client's close-ok to that close (extra
// close_ok) — and no call claims a method tshark does not show; the
// statuses of the calls answered by a close are the reply codes tshark
// names in its Info column; the calls that start an exchange number what
// the non-reply methods tshark shows number. deepflow_amqp1 is AMQP 0-9-1
// (its header says 0-9-1), not AMQP 1.0.
func TestCorpusAMQP(t *testing.T) {
	forCorpus(t, "amqp", 3, func(t *testing.T, m string, tr *amqpTruth) {
		calls, _, _ := run(t, dissect.Options{}, m)
		var want, got, wantCodes, gotCodes []string
		for _, row := range tr.AMQP.Fields.Result {
			classes, ids := strings.Split(row[6], ";"), strings.Split(row[7], ";")
			for k := range classes {
				if classes[k] == "" {
					continue
				}
				name, ok := amqpNames[classes[k]+"."+ids[k]]
				if !ok {
					t.Fatalf("frame %s: class %s method %s is not in the test's table", row[0], classes[k], ids[k])
				}
				want = append(want, name)
			}
		}
		for _, row := range tr.AMQP.Info.Result {
			if _, after, ok := strings.Cut(row[2], "reply="); ok {
				code, _, _ := strings.Cut(after, " - ")
				if code = strings.TrimSpace(code); code != "Normal shutdown" {
					wantCodes = append(wantCodes, code)
				}
			}
		}
		for _, c := range calls {
			if c.Proto != "amqp" {
				t.Errorf("a %s call", c.Proto)
				continue
			}
			if c.Error != "" && c.ProblemKind() != proto.Unanswered {
				t.Errorf("%s %q: error %q", c.Method, c.Path, c.Error)
			}
			if c.Method != "" {
				got = append(got, c.Method)
			}
			reply, _ := c.Extra.Get("reply").(string)
			switch {
			case reply != "":
				got = append(got, reply)
			case c.Status != "" && !c.OneWay && c.Method != "":
				got = append(got, c.Method+"-ok")
			}
			if c.Extra.Get("close_ok") == true {
				got = append(got, reply+"-ok")
			}
			// A basic.return's status is its reply code (NO_ROUTE), not a
			// close's.
			if c.Status != "" && c.Status != "OK" && !c.OneWay {
				gotCodes = append(gotCodes, c.Status)
			}
			if c.Method == "" && c.Extra.Get("reply") == nil {
				t.Errorf("a call without a method: %+v", c)
			}
		}
		sameStrings(t, "method frames", got, want)
		sameStrings(t, "reply codes", gotCodes, wantCodes)
	})
}
