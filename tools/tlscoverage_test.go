package tools

import (
	"strings"
	"testing"
)

// TestTLSCoverageText: what an agent cannot read is said first-hand and
// grouped by why; a process read through one library and loading another
// is read; lists are bounded; drops are told.
func TestTLSCoverageText(t *testing.T) {
	if got := tlsCoverageText(&TLSCoverage{State: "off: load the TLS probes: operation not permitted"}); got !=
		"TLS plaintext: off: load the TLS probes: operation not permitted (TLS traffic on this node is read only with a key log)" {
		t.Errorf("off: %q", got)
	}
	c := &TLSCoverage{State: "on", Dropped: 3, LostBytes: 3 << 14, Processes: []TLSProcess{
		{PID: 10, Comm: "nginx", Library: "OpenSSL 3.0.19", Probed: true},
		{PID: 11, Comm: "curl", Library: "OpenSSL 3.0.19", Probed: true, Exited: true},
		{PID: 11, Comm: "curl", Library: "NSS", Reason: "NSS not supported"},
		{PID: 12, Comm: "app", Reason: "statically linked without symbols"},
		{PID: 13, Comm: "java", Library: "Java", Reason: "Java (JSSE) not supported"},
	}}
	for i := range 10 {
		c.Processes = append(c.Processes, TLSProcess{PID: 100 + i, Comm: "server", Library: "Go 1.26.8 crypto/tls", Probed: true})
	}
	got := tlsCoverageText(c)
	for _, want := range []string{
		"read from Go 1.26.8 crypto/tls (server 100, server 101, server 102, server 103, server 104, server 105, server 106, server 107, 2 more); OpenSSL 3.0.19 (curl 11 (exited), nginx 10)",
		"NOT readable (their TLS traffic is opaque here, not absent): Java (JSSE) not supported (java 13); statically linked without symbols (app 12)",
		"also loaded by processes read above, not read itself: NSS not supported (curl 11)",
		"dropped 3 chunks of plaintext (48.0KiB)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "NOT readable (their TLS traffic is opaque here, not absent): NSS") {
		t.Error("curl, read through OpenSSL, is listed as not readable")
	}
	if got := tlsCoverageText(&TLSCoverage{State: "on"}); got != "TLS plaintext: on; no process's TLS library probed yet" {
		t.Errorf("nothing yet: %q", got)
	}
}
