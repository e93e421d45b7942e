// Package capture reads captured packets and decodes their link, network and
// transport headers.
//
// A Source yields packets in capture order: OpenFile reads classic pcap
// (microsecond and nanosecond, either byte order) and pcapng (every section and
// interface, per-interface link types and timestamp resolutions), optionally
// gzip-compressed; Merge interleaves several sources by timestamp. A damaged
// file is not an error: the source yields every packet before the damage and
// then reports a Warning naming the byte offset where reading stopped. A
// packet longer than the limit (MaxPacket, 256 KiB by default, whatever snap
// length the file declares) is skipped without being held in memory and
// reported as a Warning with its size and offset; reading goes on after it.
//
// Decoder turns a frame into a Decoded summary (addresses, ports, TCP header,
// payload) without allocating: it reuses one set of gopacket layers for every
// packet, and the slices it returns alias the frame. IPv4 fragments are
// reassembled (that path allocates, as it must keep the fragments).
package capture
