// Package tlslib finds the TLS libraries a process uses, for the node
// agent's uprobes that read TLS plaintext: which library and version, the
// file to attach to as the agent (on the host, as root) opens it inside
// the process's mount namespace (/proc/PID/root/…), that file's identity
// (so that one library file is probed once), the file offsets of the
// functions to probe and, for Go, the offset of every return instruction
// of those functions and the struct offsets from a *tls.Conn to its
// socket's file descriptor. When a process cannot be probed, the target
// says why, in words an SRE reads in a tool answer.
//
// [Inspect] reads /proc/PID/maps (shared libraries: libssl, libgnutls,
// libnss3, libjvm) and the executable (Go's crypto/tls, OpenSSL or
// BoringSSL linked statically, Node's embedded OpenSSL, or a static
// stripped binary that cannot be known to do TLS from its file alone).
// What it learns from a file is cached by the file's device, inode, size
// and modification time, so calling it at every exec costs a readlink, a
// few stats and the read of the maps file once a binary has been seen.
//
// Offsets are file offsets: the symbol's virtual address converted through
// the PT_LOAD program header that contains it (vaddr - p_vaddr +
// p_offset), which is what the kernel's uprobe API takes and what
// cilium/ebpf's link.UprobeOptions.Address means (the Uprobe symbol
// argument then left empty); for a dynamic symbol it equals what
// link.OpenExecutable(path).Uprobe(symbol, …) computes itself.
//
// It imports nothing of wirescope's. ELF parsing is portable; Inspect
// itself reads /proc and works on Linux only.
package tlslib

import (
	"errors"
	"fmt"
)

// Kind is the TLS implementation a target is.
type Kind uint8

// The kinds of TLS implementations. Unknown is a process whose file says
// nothing (statically linked and stripped, not Go): whether it does TLS
// cannot be known from the file alone.
const (
	None Kind = iota
	Unknown
	OpenSSL
	BoringSSL
	GoTLS
	GnuTLS
	NodeOpenSSL // OpenSSL linked into the node executable
	Java        // JSSE, TLS written in Java: nothing to probe in a native library
	NSS         // Mozilla NSS (libssl3.so, libnss3.so)
)

var kindNames = [...]string{"none", "unknown", "OpenSSL", "BoringSSL", "Go crypto/tls", "GnuTLS", "OpenSSL (node)", "Java", "NSS"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Probeable reports whether the agent has uprobe programs for the kind
// (OpenSSL's API: OpenSSL, BoringSSL, node's OpenSSL; and Go).
func (k Kind) Probeable() bool {
	switch k {
	case OpenSSL, BoringSSL, NodeOpenSSL, GoTLS, GnuTLS:
		return true
	}
	return false
}

// Target is one TLS library a process uses, and where to probe it.
type Target struct {
	// PID is the process inspected.
	PID int
	// Kind is the implementation.
	Kind Kind
	// Library names it with its version when known: "OpenSSL 3.0.19",
	// "OpenSSL 1.1.1w", "BoringSSL", "Go 1.26.8 crypto/tls", "GnuTLS
	// 3.7.9", "Java".
	Library string
	// Major and Minor are the library's version (Go: 1 and 26) when known,
	// zero otherwise.
	Major, Minor uint8
	// Path is the file to attach uprobes to, as the agent (host, root)
	// opens it: /proc/PID/root + the path the process maps it at, or
	// /proc/PID/exe when the executable is not reachable by its path (a
	// deleted or replaced file), or /proc/PID/map_files/START-END for a
	// deleted library. Empty for a target without a file (Unknown).
	Path string
	// Dev and Ino identify Path's file (stat through Path): probe the same
	// file once. Zero when the stat failed.
	Dev, Ino uint64
	// MapDev and MapIno are the device and inode /proc/PID/maps shows for
	// the library (zero for the executable): the inode the kernel's uprobes
	// key on, the underlying one when the file comes through overlayfs,
	// where stat through Path shows the overlay's.
	MapDev, MapIno uint64
	// Symbols maps each function to probe to its file offset (see the
	// package doc): SSL_read, SSL_write, SSL_read_ex, SSL_write_ex (those
	// present) for the OpenSSL API; "crypto/tls.(*Conn).Read" and
	// "crypto/tls.(*Conn).Write" for Go; gnutls_record_recv,
	// gnutls_record_send and gnutls_handshake for GnuTLS.
	Symbols map[string]uint64
	// Returns, for Go only, maps each function of Symbols to the file
	// offsets of all its return instructions: Go's stacks move, so return
	// probes (uretprobes) are unsafe and the agent attaches a uprobe at each.
	Returns map[string][]uint64
	// GoFD, for Go only, gives the offsets from a *tls.Conn to its socket's
	// file descriptor.
	GoFD *GoOffsets
	// Reason is set when the target cannot be probed: a kind without a
	// probe program ("Java (JSSE) not supported", "NSS not supported"),
	// a file without what probing needs ("statically linked without
	// symbols", "Go without symbols: …"), a library without the functions.
	// Empty when it can be probed.
	Reason string
}

// GoOffsets are the byte offsets from a *crypto/tls.Conn to the socket's
// file descriptor, for a connection over a *net.TCPConn (or any net.Conn
// whose first field is net.conn: UDP, Unix):
//
//	iface := *(conn + ConnConn)        // tls.Conn.conn, a net.Conn interface
//	c := *(conn + ConnConn + IfaceData) // its data word: *net.TCPConn
//	fd := *(c + NetConnFD)              // net.conn.fd, a *net.netFD
//	sysfd := *(int*)(fd + NetFDPFD + PFDSysfd) // netFD.pfd.Sysfd
//
// A tls.Conn over another net.Conn (a wrapper) has its own type in the
// interface's itab (the first word), which the probe may check.
type GoOffsets struct {
	ConnConn  uint64 // tls.Conn.conn
	IfaceData uint64 // the data word of an interface value (the pointer size)
	NetConnFD uint64 // net.conn.fd
	NetFDPFD  uint64 // net.netFD.pfd
	PFDSysfd  uint64 // internal/poll.FD.Sysfd (an int)
	// RegABI is true when the functions take their arguments in registers
	// (Go 1.17 on amd64, 1.18 on arm64, and later).
	RegABI bool
	// Source says where the offsets come from: "DWARF", or "layout of Go
	// 1.x" when the binary has no DWARF (built with -w or stripped).
	Source string
}

// ErrExited is returned (wrapped) by Inspect when the process is gone.
var ErrExited = errors.New("process exited")

// Reasons a target cannot be probed, as tool answers show them.
const (
	ReasonStaticStripped = "statically linked without symbols"
	ReasonJava           = "Java (JSSE) not supported"
	ReasonNSS            = "NSS not supported"
)
