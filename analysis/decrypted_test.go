package analysis

import "testing"

func TestDecrypted(t *testing.T) {
	for _, c := range []struct {
		s       string
		ok      bool
		library string
	}{
		{"decrypted", true, ""},
		{"decrypted: OpenSSL 3.0 uprobe", true, "OpenSSL 3.0"},
		{"decrypted: Go 1.26 crypto/tls uprobe", true, "Go 1.26 crypto/tls"},
		{"no key log", false, ""},
		{"not decryptable: decrypted later", false, ""},
		{"", false, ""},
	} {
		if got := Decrypted(c.s); got != c.ok {
			t.Errorf("Decrypted(%q) = %v", c.s, got)
		}
		if got := DecryptedBy(c.s); got != c.library {
			t.Errorf("DecryptedBy(%q) = %q, want %q", c.s, got, c.library)
		}
	}
}
