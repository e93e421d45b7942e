//go:build !linux

package tlsplain

import (
	"errors"

	"github.com/wirescope/wirescope/bpf"
)

// Start fails: the probes need Linux.
func Start(Writer, Options) (*Reader, error) {
	return nil, errors.New("TLS plaintext probes need Linux (eBPF uprobes)")
}

// Close does nothing.
func (r *Reader) Close() error { return nil }

func (r *Reader) counters() (bpf.TLSCounters, error) { return bpf.TLSCounters{}, nil }
func (r *Reader) hook() string                       { return "" }
