package dissect_test

import (
	stdtls "crypto/tls"
	"strconv"
	"strings"
	"testing"

	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/proto"
)

// tlsTruth is what the corpus's truth files say of TLS: per ClientHello
// [frame, tcp stream, version, SNI, ALPN offered ("a;b")], per ServerHello
// [frame, tcp stream, version, supported_version, cipher, ALPN selected].
type tlsTruth struct {
	TLS struct {
		ClientHellos struct {
			Result [][]string `json:"result"`
		} `json:"client_hello_listing"`
		ServerHellos struct {
			Result [][]string `json:"result"`
		} `json:"server_hello_listing"`
	} `json:"tls"`
}

// TestCorpusTLS checks the TLS captures of the corpus against tshark's
// truth: one handshake call per ClientHello, with its SNI and the ALPN
// offered, and the ServerHello's version, cipher suite and ALPN; JA3 and
// JA3S are checked against tshark in TestTLSRecorded (tshark 4.0's truth
// files do not hold them).
func TestCorpusTLS(t *testing.T) {
	forCorpus(t, "tls", 4, func(t *testing.T, m string, tr *tlsTruth) {
		calls, flows, _ := run(t, dissect.Options{}, m)
		var hs []*dissect.Call
		for _, c := range calls {
			if c.Proto == "tls" {
				hs = append(hs, c)
			}
		}
		chs, shs := tr.TLS.ClientHellos.Result, tr.TLS.ServerHellos.Result
		if len(hs) != len(chs) || len(chs) != len(shs) {
			t.Fatalf("%d handshake calls, tshark %d ClientHellos and %d ServerHellos", len(hs), len(chs), len(shs))
		}
		for i, c := range hs {
			ch, sh := chs[i], shs[i]
			version := sh[2]
			if sh[3] != "" {
				version = sh[3]
			}
			v, _ := strconv.ParseUint(strings.TrimPrefix(version, "0x"), 16, 16)
			wantStatus := map[uint64]string{0x0303: "TLS1.2", 0x0304: "TLS1.3"}[v]
			id, _ := strconv.ParseUint(strings.TrimPrefix(sh[4], "0x"), 16, 16)
			if c.Method != "handshake" || c.Path != ch[3] || c.Status != wantStatus || c.Outcome() != proto.OK {
				t.Errorf("handshake %d: %s %q %s (%v), tshark's SNI %q version %s", i, c.Method, c.Path, c.Status, c.Outcome(), ch[3], version)
			}
			if got := c.Extra.Get("cipher"); got != stdtls.CipherSuiteName(uint16(id)) {
				t.Errorf("handshake %d: cipher %v, tshark's %s", i, got, sh[4])
			}
			var offered []string
			if a, ok := c.Extra.Get("alpn_offered").([]string); ok {
				offered = a
			}
			if got := strings.Join(offered, ";"); got != ch[4] {
				t.Errorf("handshake %d: ALPN offered %q, tshark's %q", i, got, ch[4])
			}
			if got, _ := c.Extra.Get("alpn").(string); got != sh[5] {
				t.Errorf("handshake %d: ALPN selected %q, tshark's %q", i, got, sh[5])
			}
			for _, k := range []string{"ja3", "ja3s", "ja4", "ja4s"} {
				if s, _ := c.Extra.Get(k).(string); s == "" {
					t.Errorf("handshake %d: no %s", i, k)
				}
			}
		}
		for _, f := range flows {
			if f.Proto == "tls" && (!f.Encrypted || f.Decryption != "no key log") {
				t.Errorf("flow %s: encrypted %v decryption %q, want encrypted, no key log", f.ID, f.Encrypted, f.Decryption)
			}
		}
	})
}
