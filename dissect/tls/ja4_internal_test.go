package tls

import "testing"

// TestJA4Vectors: the hashes and pieces of FoxIO's JA4 and JA4S
// specifications (technical_details/JA4.md, JA4S.md), worked examples.
func TestJA4Vectors(t *testing.T) {
	ciphers := []int{0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035}
	exts := []int{0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015}
	sigs := []int{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601}
	h := &clientHello{version: 0x0303, ciphers: append([]int{0x0a0a}, ciphers...), exts: append([]int{0x1a1a}, exts...),
		sigAlgs: sigs, versions: []int{0x2a2a, 0x0304, 0x0303}, alpn: []string{"h2", "http/1.1"}}
	h.fingerprint()
	if want := "t13d1516h2_8daaf6152771_e5627efa2ab1"; h.ja4 != want {
		t.Errorf("JA4 %s, want %s", h.ja4, want)
	}
	h.sigAlgs = nil
	h.fingerprint()
	if want := "t13d1516h2_8daaf6152771_6d807ffa2a79"; h.ja4 != want {
		t.Errorf("JA4 without signature algorithms %s, want %s", h.ja4, want)
	}
	s := &serverHello{legacy: 0x0303, version: 0x0303, cipher: 0xc030, exts: []int{0x0005, 0x0017, 0xff01, 0x0000}}
	s.fingerprint()
	if want := "t120400_c030_4e8089b08790"; s.ja4s != want {
		t.Errorf("JA4S %s, want %s", s.ja4s, want)
	}
	for in, want := range map[string]string{"": "00", "h2": "h2", "http/1.1": "h1", "a": "aa", "\xab": "ab", "\xab\xcd": "ad", "0\xab": "3b", "0\xab\xcd1": "01"} {
		if got := ja4ALPN(in); got != want {
			t.Errorf("ALPN %q: %q, want %q", in, got, want)
		}
	}
}
