package proto

import "strings"

// Problem is the kind of trouble a call's Error describes. The JSON record
// keeps Error as text whose first words name the kind ("no response:
// connection reset", "truncated: …"); inside wirescope the kind travels as
// this typed value (Call.Problem), so nothing parses the text again.
type Problem uint8

// Problems. The zero value means "not set": Call.ProblemKind reads it from
// Error then.
const (
	problemUnset Problem = iota
	// NoProblem: Error is empty.
	NoProblem
	// Unanswered: a request no response answered ("no response").
	Unanswered
	// Orphan: a response whose request was not captured ("no request").
	Orphan
	// Truncated: bytes of the call were not captured or were dropped to
	// bound memory ("truncated").
	Truncated
	// Malformed: bytes that do not parse as the protocol ("malformed").
	Malformed
	// OtherProblem: any other text.
	OtherProblem
)

// problemPrefixes are the words Error begins with, by Problem.
var problemPrefixes = [...]string{Unanswered: "no response", Orphan: "no request", Truncated: "truncated", Malformed: "malformed"}

func (p Problem) String() string {
	switch {
	case p == NoProblem || p == problemUnset:
		return ""
	case int(p) < len(problemPrefixes):
		return problemPrefixes[p]
	}
	return "other"
}

// ProblemOf names the kind of an Error text, by its first words.
func ProblemOf(text string) Problem {
	if text == "" {
		return NoProblem
	}
	for p := Unanswered; p <= Malformed; p++ {
		if pre := problemPrefixes[p]; strings.HasPrefix(text, pre) && (len(text) == len(pre) || text[len(pre)] == ':') {
			return p
		}
	}
	return OtherProblem
}

// Fail records a problem on the call: Problem set, Error the problem's
// words and, when given, ": " and the detail ("no response: connection
// reset").
func (c *Call) Fail(p Problem, detail string) {
	c.Problem = p
	c.Error = p.String()
	if detail != "" {
		c.Error += ": " + detail
	}
}

// ProblemKind returns the call's Problem: as set, else read from Error
// (calls built by hand, or set by a parser that wrote Error alone).
func (c *Call) ProblemKind() Problem {
	if c.Problem != problemUnset {
		return c.Problem
	}
	return ProblemOf(c.Error)
}
