package proto

// Carried is a protocol that travels inside another protocol's messages
// rather than on a connection of its own: gRPC and GraphQL inside HTTP
// requests. It is registered like any protocol (dissect's registry); the
// parsers of the protocols that carry others (HTTP/1, HTTP/2) ask Carry for
// each request they read, and the carried protocol rewrites the call they
// finish into its own record. Neither side names the other: a carried
// protocol is added without touching its carriers.
type Carried interface {
	Protocol
	// Carry looks at a request's start: carrier is the carrying protocol's
	// name ("http", "http2"), method and path its request's, h its headers
	// (names lower case), lim the parser's limits (with defaults; in
	// Summary mode a carriage keeps no body for display). It returns nil
	// when the request is not the protocol's, else a Carriage for this one
	// request.
	Carry(carrier, method, path string, h Headers, lim *Limits) Carriage
}

// Carriage follows one carried request and its response through the
// carrier's parser, which calls it from one goroutine.
type Carriage interface {
	// Headers receives the header blocks after the request's own: the
	// response's headers and trailers, and request trailers; role says
	// whose. The carrier decodes them even when Limits.Summary keeps them
	// out of the call.
	Headers(r Role, h Headers)
	// Body receives the body bytes of the request (Client) and of the
	// response (Server) as they arrive, after the carrier's framing
	// (chunked coding, HTTP/2 frames and padding) and before content
	// decoding. b is valid only during the call. Bytes the capture lost are
	// not delivered: Gap says so.
	Body(r Role, b []byte)
	// Gap says the role's body lost bytes here (not captured, or dropped
	// to bound memory): what follows does not continue what came before.
	Gap(r Role)
	// Finish is given the carrier's finished call (its Proto the
	// carrier's) and returns the records to emit in its place: c rewritten
	// into the carried protocol's record, or several when one request
	// carried several operations, or c unchanged when the exchange proved
	// not to be the protocol's after all.
	Finish(c *Call) []*Call
}

// CarriedBuffering is a Carriage that keeps bytes between calls (a request
// body it needs to see whole); the carrier adds them to what it reports
// through Buffering.
type CarriedBuffering interface {
	Buffered() int
}

// Carry asks the registered carried protocols, in the order they were
// registered, whether a request is theirs: the first Carriage returned, or
// nil.
func Carry(carrier, method, path string, h Headers, lim *Limits) Carriage {
	r := registered.Load()
	if r == nil {
		return nil
	}
	for _, p := range r.carried {
		if cr := p.Carry(carrier, method, path, h, lim); cr != nil {
			return cr
		}
	}
	return nil
}
