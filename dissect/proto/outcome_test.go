package proto

import (
	"strings"
	"testing"
)

// testRcode describes a protocol whose status GOOD is ok and any other a
// server error.
type testRcode struct{}

func (testRcode) Name() string { return "test-rcode" }
func (testRcode) Describe() Description {
	return Description{Outcome: func(c *Call) Outcome {
		if c.Status == "GOOD" {
			return OK
		}
		return ServerError
	}}
}

func TestOutcome(t *testing.T) {
	Register(testRcode{})
	for _, c := range []struct {
		proto, status, err string
		want               Outcome
	}{
		{"http", "200", "", OK},
		{"http", "204", "", OK},
		{"http", "304", "", OK},
		{"http", "200", "truncated: 10 body bytes missing from the capture", OK},
		{"http", "404", "", ClientError},
		{"http", "401", "", ClientError},
		{"http", "503", "", ServerError},
		{"http", "", "no response: connection reset", NoResponse},
		{"http", "", "no response", NoResponse},
		{"http", "200", "no request", OK},
		{"http", "", "truncated: header block larger than 65536 bytes", Incomplete},
		{"dns", "", "no response", NoResponse},
		{"dns", "", "malformed: max DNS recursion level hit", Incomplete},
		// A protocol that describes its own classes.
		{"test-rcode", "GOOD", "", OK},
		{"test-rcode", "BAD", "", ServerError},
		{"test-rcode", "", "no response", NoResponse},
		// Not registered: HTTP's numeric classes, else OK.
		{"unknown", "503", "", ServerError},
		{"unknown", "FAIL", "", OK},
	} {
		call := Call{Proto: c.proto, Status: c.status, Error: c.err}
		if got := call.Outcome(); got != c.want {
			t.Errorf("%s %q %q: %v, want %v", c.proto, c.status, c.err, got, c.want)
		}
	}
	if !ServerError.Failed() || !NoResponse.Failed() || OK.Failed() || Incomplete.Failed() || ServerError.String() != "server_error" {
		t.Error("Failed/String")
	}
}

// TestProblem: the typed kind of Error, set by Fail, read from the text
// when not set, and kept through JSON (which carries only the text).
func TestProblem(t *testing.T) {
	for text, want := range map[string]Problem{
		"": NoProblem, "no response": Unanswered, "no response: connection reset": Unanswered, "no request": Orphan,
		"truncated: 10 body bytes missing from the capture": Truncated, "malformed: bad status line": Malformed,
		"no responses were expected": OtherProblem, "timeout": OtherProblem,
	} {
		if got := ProblemOf(text); got != want {
			t.Errorf("ProblemOf(%q) = %v, want %v", text, got, want)
		}
	}
	var c Call
	c.Fail(Unanswered, "stream reset CANCEL")
	if c.Error != "no response: stream reset CANCEL" || c.ProblemKind() != Unanswered || c.Outcome() != NoResponse {
		t.Errorf("Fail: %q %v %v", c.Error, c.ProblemKind(), c.Outcome())
	}
	// A parser's own words after a kind's: the typed kind wins over the text.
	c = Call{Status: "200", Error: "no response seen, then one came"}
	c.Problem = Truncated
	if c.ProblemKind() != Truncated || c.Outcome() != OK {
		t.Errorf("typed kind: %v %v", c.ProblemKind(), c.Outcome())
	}
	var back Call
	c.Fail(Orphan, "")
	if err := back.UnmarshalJSON(c.AppendJSON(nil)); err != nil || back.Problem != Orphan || back.Error != "no request" {
		t.Errorf("through JSON: %v %v %q", err, back.Problem, back.Error)
	}
}

// TestOneWayOutcome: a one-way message is neither a failure nor rated, even
// with nothing answering it, and keeps its mark through JSON.
func TestOneWayOutcome(t *testing.T) {
	c := Call{Proto: "websocket", Method: "text", Path: "/chat", OneWay: true}
	if o := c.Outcome(); o != OneWay || o.Failed() || o.Rated() || o.String() != "one_way" {
		t.Errorf("outcome %v failed %v rated %v", o, o.Failed(), o.Rated())
	}
	if !OK.Rated() || !ServerError.Rated() || Incomplete.Rated() {
		t.Error("Rated")
	}
	var back Call
	if err := back.UnmarshalJSON(c.AppendJSON(nil)); err != nil || !back.OneWay || back.Outcome() != OneWay {
		t.Errorf("through JSON: %v %+v", err, back)
	}
	plainCall := Call{Proto: "http", Status: "200"}
	if plain := plainCall.AppendJSON(nil); strings.Contains(string(plain), "one_way") {
		t.Errorf("a call's JSON says one_way: %s", plain)
	}
}
