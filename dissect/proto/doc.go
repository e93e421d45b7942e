// Package proto defines what a protocol dissector is and what it produces.
//
// A dissector (one sub-package of dissect per protocol) implements
// StreamProtocol for TCP, DatagramProtocol for UDP, or both. The engine in
// package dissect shows it the first bytes each side of a flow sends; once
// Detect says yes, the engine hands the flow's data to a parser the protocol
// creates, in order, with gaps reported rather than hidden. Parsers turn that
// data into Call records, one per request/response exchange, and hand them to
// an Emitter.
//
// The Call record is a stable contract: `wirescope dissect --format jsonl`
// prints it and other tools parse it. Its JSON is written by AppendJSON, by
// hand and without reflection, because it is on the hot path of every
// dissection; encoding/json reads it back (UnmarshalJSON).
package proto
