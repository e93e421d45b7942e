package bpf

import (
	"net/netip"
	"time"
)

// ChunkBytes and MaxChunks are tls.bpf.c's CHUNK and MAX_CHUNKS: a call's
// plaintext comes in chunks of ChunkBytes, at most MaxChunks of them; the
// last chunk of a longer call stands for the rest of it (Len − Offset)
// though it holds only ChunkBytes.
const (
	ChunkBytes = 16384
	MaxChunks  = 4
)

// TLSOptions bound what the TLS probes take.
type TLSOptions struct {
	// RingBytes is the size of the ring buffer the chunks pass through
	// (a power of two; default 8 MiB).
	RingBytes uint32
	// BytesPerSecond caps the plaintext read in one second, all processes
	// together (default 64 MiB); what is over it is dropped and counted.
	BytesPerSecond uint64
	// RawSyscalls makes the probes learn sockets from the one raw
	// tracepoint on every system call's entry instead of the eight
	// per-call tracepoints, as they do where tracefs cannot be mounted.
	RawSyscalls bool
}

// Library says which TLS library a probe reads, told with each chunk.
type Library struct {
	Kind  uint8  `json:"kind"` // capture.LibOpenSSL etc.
	Major uint8  `json:"major"`
	Minor uint8  `json:"minor"`
	Name  string `json:"name"` // "OpenSSL 3.0.19"
}

// Attached is a library file the probes are attached to.
type Attached struct {
	Path    string  `json:"path"`
	Library Library `json:"library"`
	// Functions lists the functions probed; Missing those the file does
	// not have (SSL_read_ex before OpenSSL 1.1.1).
	Functions []string `json:"functions"`
	Missing   []string `json:"missing,omitempty"`
}

// Chunk is plaintext one call of a TLS library read or wrote.
type Chunk struct {
	Time     time.Time
	PID, TID uint32
	// Comm is the calling thread's comm (a process's threads may name
	// themselves; most keep the process's).
	Comm     string
	CgroupID uint64
	FD       int32
	Library  Library
	// Read is set for plaintext a read returned (the peer sent it);
	// otherwise the process wrote it.
	Read bool
	// Local and Remote are the socket's addresses, IPv4 unmapped.
	Local, Remote netip.AddrPort
	// Len is the call's whole length, Offset where Data starts in it;
	// Data is shorter than Len-Offset only for the call's last chunk
	// when the call was cut (over 64 KiB).
	Len, Offset uint32
	// Lost is how many bytes of this socket and direction were dropped
	// (ring full, over the rate) before this chunk.
	Lost uint32
	Data []byte
}

// TLSCounters are the probes' counts since OpenTLS.
type TLSCounters struct {
	Calls      uint64 `json:"calls"`       // library calls that returned plaintext
	Chunks     uint64 `json:"chunks"`      // chunks sent to user space
	Bytes      uint64 `json:"bytes"`       // plaintext bytes in them
	RingFull   uint64 `json:"ring_full"`   // chunks dropped: the ring was full
	OverRate   uint64 `json:"over_rate"`   // chunks dropped: over BytesPerSecond
	CutCalls   uint64 `json:"cut_calls"`   // calls over 64 KiB, kept only in part
	NoSocket   uint64 `json:"no_socket"`   // calls whose socket was not learned
	NotTCP     uint64 `json:"not_tcp"`     // calls on a descriptor that is no TCP socket
	ReadFaults uint64 `json:"read_faults"` // plaintext the probe could not read
	LostBytes  uint64 `json:"lost_bytes"`  // bytes of the chunks dropped
	GoConn     uint64 `json:"go_conn"`     // Go calls whose *tls.Conn did not lead to a socket (of NoSocket)
	GoFD       uint64 `json:"go_fd"`       // Go calls whose socket's descriptor could not be read (of NoSocket)
}

// GoOffsets lead from a *crypto/tls.Conn to its socket's descriptor
// (bpf/tlslib.GoOffsets has how they are found).
type GoOffsets struct {
	ConnConn, IfaceData, NetConnFD, NetFDPFD, PFDSysfd uint64
}
