//go:build !lean

package main

import (
	"log/slog"

	"github.com/wirescope/wirescope/capture/segstore"
	"github.com/wirescope/wirescope/capture/tlsplain"
)

// tlsPlaintext is the agent's TLS plaintext reader, or why there is none.
type tlsPlaintext struct {
	r      *tlsplain.Reader
	status string // "on", or "off: why"
}

// startTLSPlaintext starts reading TLS plaintext into store. Where the
// probes cannot load, the agent captures packets without it and says why.
func startTLSPlaintext(on bool, store *segstore.Store, o tlsplain.Options, logger *slog.Logger) *tlsPlaintext {
	if !on {
		return &tlsPlaintext{status: "off (--tls-plaintext=false)"}
	}
	r, err := tlsplain.Start(store, o)
	if err != nil {
		logger.Warn("TLS plaintext is not read: the probes cannot load; packets are captured as before", "err", err)
		return &tlsPlaintext{status: "off: " + err.Error()}
	}
	return &tlsPlaintext{r: r, status: "on"}
}

// Close stops the reader; it may be called twice.
func (p *tlsPlaintext) Close() {
	if p.r != nil {
		p.r.Close()
	}
}

// opaque says why a connection's TLS plaintext cannot be read (see
// tlsplain.Reader.Opaque); "" without a reader.
func (p *tlsPlaintext) opaque(procs [2]segstore.Proc) string {
	if p.r == nil {
		return ""
	}
	return p.r.Opaque(procs)
}
