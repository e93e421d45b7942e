//go:build !linux

package bpf

import (
	"errors"
	"log/slog"
)

// TLSProbes needs Linux; see tls_linux.go.
type TLSProbes struct{ SyscallHook string }

// ErrTLSClosed is returned by ReadChunk once Close ran.
var ErrTLSClosed = errors.New("TLS probes closed")

var errTLSLinux = errors.New("TLS plaintext probes need Linux (eBPF uprobes)")

// OpenTLS fails: the probes need Linux.
func OpenTLS(*slog.Logger, TLSOptions) (*TLSProbes, error) { return nil, errTLSLinux }

// AttachOpenSSL fails: the probes need Linux.
func (t *TLSProbes) AttachOpenSSL(string, Library, map[string]uint64) (*Attached, error) {
	return nil, errTLSLinux
}

// AttachGnuTLS fails: the probes need Linux.
func (t *TLSProbes) AttachGnuTLS(string, Library, map[string]uint64) (*Attached, error) {
	return nil, errTLSLinux
}

// Attached lists nothing.
func (t *TLSProbes) Attached() []Attached { return nil }

// Counters are zero.
func (t *TLSProbes) Counters() (TLSCounters, error) { return TLSCounters{}, errTLSLinux }

// ReadExec fails.
func (t *TLSProbes) ReadExec() (uint32, error) { return 0, ErrTLSClosed }

// Close does nothing.
func (t *TLSProbes) Close() error { return nil }
