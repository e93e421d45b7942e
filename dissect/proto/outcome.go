package proto

// Outcome classifies how a call ended, so that error rates mean the same in
// every summary.
type Outcome uint8

// Outcomes.
const (
	// OK: a response that reports success.
	OK Outcome = iota
	// ClientError: the server answered that the request was wrong (HTTP
	// 4xx; DNS NXDOMAIN, FORMERR and the like).
	ClientError
	// ServerError: the server failed (HTTP 5xx; DNS SERVFAIL, REFUSED,
	// NOTIMP).
	ServerError
	// NoResponse: a request no response answered (Error "no response…").
	NoResponse
	// Incomplete: the capture cannot say (a response without its request,
	// a call cut before its status).
	Incomplete
	// OneWay: a message no answer is expected for (a pub/sub push, a
	// WebSocket message, a Kafka produce with acks=0): neither a success
	// nor a failure, and not counted in error rates.
	OneWay

	// NumOutcomes is how many outcomes there are.
	NumOutcomes = iota
)

var outcomeNames = [...]string{"ok", "client_error", "server_error", "no_response", "incomplete", "one_way"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Failed reports whether the outcome counts as an error: anything but OK,
// Incomplete and OneWay.
func (o Outcome) Failed() bool { return o == ClientError || o == ServerError || o == NoResponse }

// Rated reports whether the outcome counts in an error rate's denominator:
// the calls whose success or failure is known (not Incomplete, not OneWay).
func (o Outcome) Rated() bool { return o != Incomplete && o != OneWay }

// Outcome classifies the call by its status, whatever its Error says about
// capture damage (a 200 whose body lost bytes in a gap is still OK), as its
// protocol's Description says.
func (c *Call) Outcome() Outcome {
	if c.OneWay {
		return OneWay
	}
	if c.ProblemKind() == Unanswered {
		return NoResponse
	}
	if c.Status == "" {
		return Incomplete
	}
	if f := Described(c.Proto).Outcome; f != nil {
		return f(c)
	}
	// Numeric statuses: HTTP and protocols that borrow its classes.
	if len(c.Status) == 3 && c.Status[1] >= '0' && c.Status[1] <= '9' {
		switch c.Status[0] {
		case '4':
			return ClientError
		case '5', '6', '7', '8', '9':
			return ServerError
		}
	}
	return OK
}
