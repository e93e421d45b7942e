package tools

import (
	"strings"
	"testing"
)

// TestDecryptedText: a flow read from its TLS library says which, one read
// with a key log says decrypted, one not read says why; capture_status
// counts those read by uprobes per library beside the key log's.
func TestDecryptedText(t *testing.T) {
	for _, c := range []struct {
		decryption string
		want       string
	}{
		{"decrypted", "tls (decrypted)"},
		{"decrypted: OpenSSL 3.0 uprobe", "tls (decrypted: OpenSSL 3.0 uprobe)"},
		{"decrypted: Go 1.26 crypto/tls uprobe", "tls (decrypted: Go 1.26 crypto/tls uprobe)"},
		{"no key log", "tls (encrypted: no key log)"},
	} {
		f := Flow{Transport: "tcp", Protocol: "tls", Encrypted: true, Decryption: c.decryption}
		if got := flowLine(&f); !strings.Contains(got, " "+c.want+" ") {
			t.Errorf("%q: %s", c.decryption, got)
		}
	}
	st := Status{Encrypted: 9, Decrypted: 1, HandshakeOnly: 2, DecryptedBy: map[string]uint64{"OpenSSL 3.0": 4, "Go 1.26 crypto/tls": 2}}
	want := " (decrypted with the key log: 1; decrypted from their TLS library by uprobes: OpenSSL 3.0 4, Go 1.26 crypto/tls 2; handshake only, not decrypted: 2; no handshake seen: 0; not dissected yet: 0)"
	if got := encryptedText(&st); got != want {
		t.Errorf("status:\n got %s\nwant %s", got, want)
	}
	st.DecryptedBy = nil
	if got := encryptedText(&st); strings.Contains(got, "uprobe") {
		t.Errorf("status without uprobes: %s", got)
	}
	if got := encryptedText(&Status{}); got != "" {
		t.Errorf("no encrypted flows: %q", got)
	}
}
