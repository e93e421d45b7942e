// Package dissect turns captured packets into API calls.
//
// An Engine takes packets in capture order. TCP is reassembled with
// gopacket's reassembly package (out-of-order segments, retransmissions,
// overlaps, connections that start mid-stream, gaps), with memory bounded per
// connection and in total; UDP is handled per datagram. For every flow the
// engine shows the first bytes each side sends to the protocols of All (or
// Options.Protocols) and hands the flow to the first one that recognises them;
// ports only decide the order in which protocols are asked. The protocol's
// parser turns the flow into Call records, which the engine completes with
// endpoints, a stable ID and Kubernetes identities (through an Identifier) and
// passes to Options.OnCall.
//
// Nothing disappears silently: flows no protocol understood are reported
// through Options.OnFlow like every other flow, requests without responses
// and calls cut by a capture gap are emitted with Error set, and bytes
// dropped to stay within memory bounds are counted in Stats.
//
// The package does not log; problems are counted in Stats.
package dissect
