package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// flowTLSState says what a flow line of `dissect --flows` says of the TLS
// the connection carried: "decrypted"; "no key" when a key log was given
// but holds none of the session's secrets ("decryption":"no key for this
// session"); "encrypted" for a flow marked "encrypted":true and not read
// otherwise (no key log given); else its "decryption" as it is.
func flowTLSState(flow map[string]any) string {
	d, _ := flow["decryption"].(string)
	switch {
	case d == "decrypted":
		return d
	case strings.HasPrefix(d, "no key for"):
		return "no key"
	case flow["encrypted"] == true:
		return "encrypted"
	}
	return d
}

// tlsManifest is the manifest.json scripts/record-tls.sh writes beside its
// captures: what the clients did in each scenario.
type tlsManifest struct {
	Scenarios []struct {
		Name, Description string
		// Pcap and Keylog are file names in the manifest's directory.
		Pcap, Keylog string
		Server       struct {
			IP   string
			Port int
		}
		// Handshakes are the scenario's connections in order: the SNI sent
		// ("" for none), the version agreed or the alert that ended the
		// handshake, the cipher suite agreed (IANA name and number), the
		// ClientHellos sent (2 after a HelloRetryRequest).
		Handshakes []struct {
			SNI, Status, Cipher string
			CipherID            string `json:"cipher_id"`
			ClientHellos        int    `json:"client_hellos"`
		}
		// Calls are the HTTP requests the clients made, with the status
		// each got; Proto is "http" or "http2".
		Calls []struct{ Proto, Method, Path, Status string }
		// KeyUpdates counts the TLS 1.3 KeyUpdate messages each side sent
		// in all the scenario's connections.
		KeyUpdates struct{ Client, Server int } `json:"key_updates"`
	}
}

// tlsVersions names the versions a ServerHello agrees on as the tls
// records' status does.
var tlsVersions = map[string]string{"0x0300": "SSL3.0", "0x0301": "TLS1.0", "0x0302": "TLS1.1", "0x0303": "TLS1.2", "0x0304": "TLS1.3"}

// tlsAlerts names TLS alert descriptions as RFC 8446 (and, for those it
// retired, RFC 5246) does.
var tlsAlerts = map[string]string{
	"0": "close_notify", "10": "unexpected_message", "20": "bad_record_mac", "21": "decryption_failed",
	"22": "record_overflow", "30": "decompression_failure", "40": "handshake_failure", "41": "no_certificate",
	"42": "bad_certificate", "43": "unsupported_certificate", "44": "certificate_revoked", "45": "certificate_expired",
	"46": "certificate_unknown", "47": "illegal_parameter", "48": "unknown_ca", "49": "access_denied",
	"50": "decode_error", "51": "decrypt_error", "60": "export_restriction", "70": "protocol_version",
	"71": "insufficient_security", "80": "internal_error", "86": "inappropriate_fallback", "90": "user_canceled",
	"100": "no_renegotiation", "109": "missing_extension", "110": "unsupported_extension",
	"111": "certificate_unobtainable", "112": "unrecognized_name", "113": "bad_certificate_status_response",
	"114": "bad_certificate_hash_value", "115": "unknown_psk_identity", "116": "certificate_required",
	"120": "no_application_protocol",
}

// tlsHandshake is a connection's handshake as tshark reads it.
type tlsHandshake struct {
	// Conn is tshark's tcp.stream, Client the client's port.
	Conn   int
	Client string
	// SNI and JA3 are the first ClientHello's (a HelloRetryRequest makes
	// the client send a second); Version, CipherID and JA3S the last
	// ServerHello's (the one after a HelloRetryRequest).
	SNI, JA3                string
	Version, CipherID, JA3S string
	// Alert is the first fatal alert's name.
	Alert        string
	ClientHellos int
	// ClientKeyUpdates and ServerKeyUpdates count the TLS 1.3 KeyUpdate
	// messages each side sent (seen only with the key log: they are
	// encrypted).
	ClientKeyUpdates, ServerKeyUpdates int
}

// status is what the tls record's status should say: the alert that ended
// the handshake, else the version agreed.
func (h *tlsHandshake) status() string {
	if h.Alert != "" {
		return h.Alert
	}
	return h.Version
}

// key is what the test compares of a handshake.
func (h *tlsHandshake) key() string {
	return fmt.Sprintf("sni %q status %q ja3 %q ja3s %q", h.SNI, h.status(), h.JA3, h.JA3S)
}

func (h *tlsHandshake) String() string {
	s := fmt.Sprintf("conn %d (client port %s) %s", h.Conn, h.Client, h.key())
	if h.CipherID != "" {
		s += " cipher " + h.CipherID
	}
	if h.ClientHellos > 1 {
		s += fmt.Sprintf(" (%d ClientHellos)", h.ClientHellos)
	}
	return s
}

// tsharkHandshakes reads pcap's TLS handshakes with tshark (more: further
// tshark arguments, the key log), one per connection with a ClientHello, in
// the order of tshark's tcp.stream.
func tsharkHandshakes(t *testing.T, pcap string, more ...string) []*tlsHandshake {
	t.Helper()
	byConn := map[int]*tlsHandshake{}
	var out []*tlsHandshake
	get := func(conn int) *tlsHandshake {
		h := byConn[conn]
		if h == nil {
			h = &tlsHandshake{Conn: conn}
			byConn[conn] = h
			out = append(out, h)
		}
		return h
	}
	for _, protos := range tsharkPackets(t, pcap, append([]string{"-J", "tcp tls"}, more...)...) {
		conn, src := -1, ""
		for i := range protos {
			p := &protos[i]
			switch p.Name {
			case "tcp":
				conn, _ = strconv.Atoi(p.show("tcp.stream"))
				src = p.show("tcp.srcport")
			case "tls":
				for _, hs := range p.all("tls.handshake") {
					switch hs.show("tls.handshake.type") {
					case "1": // ClientHello
						h := get(conn)
						h.ClientHellos++
						if h.ClientHellos == 1 {
							h.Client = src
							h.SNI = hs.show("tls.handshake.extensions_server_name")
							h.JA3 = hs.show("tls.handshake.ja3")
						}
					case "2": // ServerHello (or HelloRetryRequest)
						h := get(conn)
						v := hs.show("tls.handshake.extensions.supported_version")
						if v == "" {
							v = hs.show("tls.handshake.version")
						}
						if h.Version = tlsVersions[v]; h.Version == "" {
							t.Fatalf("%s: conn %d: ServerHello version %q", pcap, conn, v)
						}
						h.CipherID = hs.show("tls.handshake.ciphersuite")
						h.JA3S = hs.show("tls.handshake.ja3s")
					case "24": // KeyUpdate
						if h := get(conn); src == h.Client {
							h.ClientKeyUpdates++
						} else {
							h.ServerKeyUpdates++
						}
					}
				}
				for _, a := range p.all("tls.alert_message") {
					h := get(conn)
					if a.show("tls.alert_message.level") != "2" || h.Alert != "" {
						continue
					}
					desc := a.show("tls.alert_message.desc")
					if h.Alert = tlsAlerts[desc]; h.Alert == "" {
						t.Fatalf("%s: conn %d: alert %q", pcap, conn, desc)
					}
				}
			}
		}
	}
	return slices.DeleteFunc(out, func(h *tlsHandshake) bool {
		if h.ClientHellos == 0 {
			t.Logf("%s: conn %d: TLS without a ClientHello", pcap, h.Conn)
		}
		return h.ClientHellos == 0
	})
}

// dissectRecords runs `wirescope dissect` with args and returns its calls
// and, apart, its flow lines.
func dissectRecords(t *testing.T, args ...string) (calls []proto.Call, flows []map[string]any) {
	t.Helper()
	stdout, _, err := runCmd(t, append([]string{"dissect", "--format", "jsonl"}, args...)...)
	if err != nil {
		t.Fatalf("dissect %s: %v", strings.Join(args, " "), err)
	}
	var callLines []string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("dissect %s: line %q: %v", strings.Join(args, " "), line, err)
		}
		if m["kind"] == "flow" {
			flows = append(flows, m)
		} else {
			callLines = append(callLines, line)
		}
	}
	return parseCalls(t, strings.Join(callLines, "\n")), flows
}

// handshakeRecords returns wirescope's tls handshake records by client port,
// each as tlsHandshake.key says it, and its HTTP calls (http, http2) as
// callKey("PROTO METHOD", path, status), sorted.
func handshakeRecords(t *testing.T, calls []proto.Call) (handshakes map[string]string, http []string) {
	t.Helper()
	handshakes = map[string]string{}
	for _, c := range calls {
		switch {
		case c.Proto == "tls" && c.Method == "handshake":
			client := strconv.Itoa(int(c.Src.Port))
			h := &tlsHandshake{SNI: c.Path, Alert: c.Status, JA3: asString(c.Extra.Get("ja3")), JA3S: asString(c.Extra.Get("ja3s"))}
			if _, dup := handshakes[client]; dup {
				t.Errorf("two handshake records for client port %s: %+v", client, c)
			}
			handshakes[client] = h.key()
		case c.Proto == "http" || c.Proto == "http2":
			http = append(http, callKey(c.Proto+" "+c.Method, c.Path, c.Status))
		}
	}
	slices.Sort(http)
	return handshakes, http
}

// compareHandshakes checks wirescope's handshake records (handshakeRecords)
// against tshark's.
func compareHandshakes(t *testing.T, what string, got map[string]string, want []*tlsHandshake) {
	t.Helper()
	for _, h := range want {
		switch g, ok := got[h.Client]; {
		case !ok:
			t.Errorf("%s: no handshake record for tshark's %v", what, h)
		case g != h.key():
			t.Errorf("%s: client port %s: handshake record %s, tshark's %s", what, h.Client, g, h.key())
		}
		delete(got, h.Client)
	}
	for client, g := range got {
		t.Errorf("%s: handshake record for client port %s that tshark does not see: %s", what, client, g)
	}
}

// exchangeKeys returns tshark's exchanges as handshakeRecords returns
// wirescope's calls, sorted.
func exchangeKeys(truth []*exchange) []string {
	var keys []string
	for _, e := range truth {
		keys = append(keys, callKey(e.Proto+" "+e.Method, e.Path, e.Status))
	}
	slices.Sort(keys)
	return keys
}

// TestTLSRecorded records TLS from real servers and clients
// (scripts/record-tls.sh: nginx with OpenSSL 3; curl, openssl s_client;
// TLS 1.2 with AES-GCM, ChaCha20-Poly1305 and AES-CBC with HMAC, TLS 1.3
// with its three suites, HTTP/1.1 and HTTP/2, resumed sessions, a
// HelloRetryRequest, KeyUpdates both ways, and handshakes refused: a wrong SNI, none, an expired
// certificate, an unknown CA, TLS 1.0 offered to a TLS 1.2 server), each
// scenario's capture with the clients' key log, and checks `wirescope
// dissect` against tshark's reading of each capture:
//   - with --tls-keylog: the same HTTP requests (method, path, status) in
//     http and http2, and one tls handshake record per connection: SNI,
//     status (version agreed, or the alert that ended the handshake, which
//     in TLS 1.3 may be encrypted), JA3 and JA3S; the flows decrypted;
//   - without a key log: the same handshake records (from what is in
//     clear), no HTTP, the connections' flows marked encrypted;
//   - with another scenario's key log: the same, the flows saying no key;
//   - a key log anyone may read is refused, one only its owner may read
//     taken.
//
// tshark's own reading is checked against the manifest the script writes
// (what the clients did and got, the KeyUpdates each side sent), so that a capture tshark cannot decrypt
// does not pass for one with nothing in it.
func TestTLSRecorded(t *testing.T) {
	needRecording(t, "curl", "openssl", "h2load", "jq")
	var m tlsManifest
	dir := recordManifest(t, "record-tls.sh", 4*time.Minute, &m)
	if len(m.Scenarios) < 10 {
		t.Fatalf("manifest.json has %d scenarios", len(m.Scenarios))
	}
	// wrongKeys is a key log of another recording for each scenario: the
	// next scenario's with secrets in it.
	wrongKeys := map[string]string{}
	for i, s := range m.Scenarios {
		for j := 1; j < len(m.Scenarios); j++ {
			o := m.Scenarios[(i+j)%len(m.Scenarios)]
			if fi, err := os.Stat(filepath.Join(dir, o.Keylog)); err == nil && fi.Size() > 0 {
				wrongKeys[s.Name] = filepath.Join(dir, o.Keylog)
				break
			}
		}
	}
	tsharkTLS := []string{"-o", "tls.desegment_ssl_records:TRUE", "-o", "tls.desegment_ssl_application_data:TRUE"}

	for _, s := range m.Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			pcap, keys := filepath.Join(dir, s.Pcap), filepath.Join(dir, s.Keylog)
			// tshark is told the port is TLS rather than left to its
			// heuristics, which once missed a whole capture in CI.
			plain := append([]string{"-d", "tcp.port==" + strconv.Itoa(s.Server.Port) + ",tls"}, tsharkTLS...)
			withKeys := append([]string{"-o", "tls.keylog_file:" + keys}, plain...)
			ports := map[string]string{strconv.Itoa(s.Server.Port): ""}

			// tshark, with the key log and without, against the manifest.
			hs := tsharkHandshakes(t, pcap, withKeys...)
			hsClear := tsharkHandshakes(t, pcap, plain...)
			truth := tsharkExchanges(t, pcap, ports, withKeys...)
			truthClear := tsharkExchanges(t, pcap, ports, plain...)
			want := exchangeKeys(truth)
			var summary []string
			for _, h := range hs {
				summary = append(summary, fmt.Sprintf("%q %s %s", h.SNI, h.status(), h.CipherID))
			}
			t.Logf("%s: tshark sees %d handshake(s) [%s], %d call(s) with the key log, %d without",
				s.Description, len(hs), strings.Join(summary, "; "), len(truth), len(truthClear))
			var manifestCalls []string
			for _, c := range s.Calls {
				manifestCalls = append(manifestCalls, callKey(c.Proto+" "+c.Method, c.Path, c.Status))
			}
			slices.Sort(manifestCalls)
			if !slices.Equal(want, manifestCalls) {
				t.Fatalf("tshark decrypts %d call(s), the clients made %d; only tshark's: %q; only the clients': %q",
					len(want), len(manifestCalls), missing(want, manifestCalls), missing(manifestCalls, want))
			}
			if len(truthClear) != 0 {
				t.Fatalf("tshark sees %d call(s) without the key log", len(truthClear))
			}
			var clientUpdates, serverUpdates int
			for _, h := range hs {
				clientUpdates += h.ClientKeyUpdates
				serverUpdates += h.ServerKeyUpdates
			}
			if clientUpdates != s.KeyUpdates.Client || serverUpdates != s.KeyUpdates.Server {
				t.Fatalf("tshark sees %d KeyUpdate(s) from the client and %d from the server, the manifest says %d and %d",
					clientUpdates, serverUpdates, s.KeyUpdates.Client, s.KeyUpdates.Server)
			}
			if len(hs) != len(s.Handshakes) || len(hsClear) != len(hs) {
				t.Fatalf("tshark sees %d handshake(s) (%d without the key log), the manifest says %d", len(hs), len(hsClear), len(s.Handshakes))
			}
			for i, h := range hs {
				w := s.Handshakes[i]
				if h.SNI != w.SNI || h.status() != w.Status || (w.CipherID != "" && h.CipherID != w.CipherID) || h.ClientHellos != w.ClientHellos {
					t.Fatalf("handshake %d: tshark sees %v, the manifest says %+v", i, h, w)
				}
				if c := hsClear[i]; c.Conn != h.Conn || c.SNI != h.SNI || c.JA3 != h.JA3 || c.JA3S != h.JA3S {
					t.Fatalf("handshake %d: without the key log tshark sees %v, with it %v", i, c, h)
				} else if c.status() != h.status() {
					t.Logf("handshake %d: without the key log tshark sees %s (the alert is encrypted)", i, c.status())
				}
			}
			// The connections that carried HTTP: their flows must say
			// what became of it.
			carried := map[string]bool{}
			for _, e := range truth {
				for _, h := range hs {
					if h.Conn == e.Conn {
						carried[h.Client] = true
					}
				}
			}
			checkFlows := func(what string, flows []map[string]any, state string) {
				t.Helper()
				seen := map[string]bool{}
				for _, f := range flows {
					src, _ := f["src"].(map[string]any)
					client := fmt.Sprint(src["port"])
					if !carried[client] {
						continue
					}
					seen[client] = true
					if got := flowTLSState(f); got != state {
						t.Errorf("%s: flow of client port %s: TLS state %q, want %q: %v", what, client, got, state, f)
					}
				}
				for client := range carried {
					if !seen[client] {
						t.Errorf("%s: no flow line for client port %s (a connection that carried HTTP)", what, client)
					}
				}
			}

			// With the key log: everything tshark decrypts.
			calls, flows := dissectRecords(t, "--tls-keylog", keys, "--flows", pcap)
			got, http := handshakeRecords(t, calls)
			compareHandshakes(t, "with the key log", got, hs)
			if !slices.Equal(http, want) {
				t.Errorf("with the key log: %d call(s), tshark's %d; only wirescope's: %q; only tshark's: %q",
					len(http), len(want), missing(http, want), missing(want, http))
			}
			checkFlows("with the key log", flows, "decrypted")

			// Without: the handshakes as far as they are in clear.
			calls, flows = dissectRecords(t, "--flows", pcap)
			got, http = handshakeRecords(t, calls)
			compareHandshakes(t, "without a key log", got, hsClear)
			if len(http) != 0 {
				t.Errorf("without a key log: calls %q", http)
			}
			checkFlows("without a key log", flows, "encrypted")

			// Another recording's key log: as without one, the flows
			// saying why.
			calls, flows = dissectRecords(t, "--tls-keylog", wrongKeys[s.Name], "--flows", pcap)
			got, http = handshakeRecords(t, calls)
			compareHandshakes(t, "with another recording's key log", got, hsClear)
			if len(http) != 0 {
				t.Errorf("with another recording's key log: calls %q", http)
			}
			checkFlows("with another recording's key log", flows, "no key")
		})
	}

	// A key log is a secret: one others may read is refused, naming its
	t.Run("mcp", func(t *testing.T) { tlsOverMCP(t, dir, &m) })
	// mode.
	t.Run("keylog-mode", func(t *testing.T) {
		s := m.Scenarios[0]
		keys := filepath.Join(t.TempDir(), "world-readable.keys")
		b, err := os.ReadFile(filepath.Join(dir, s.Keylog))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keys, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(keys, 0o644); err != nil {
			t.Fatal(err)
		}
		pcap := filepath.Join(dir, s.Pcap)
		_, _, err = runCmd(t, "dissect", "--tls-keylog", keys, pcap)
		if err == nil || !(strings.Contains(err.Error(), "0644") || strings.Contains(err.Error(), "-rw-r--r--")) {
			t.Errorf("a key log of mode 0644: %v, want an error naming its mode", err)
		}
		if err := os.Chmod(keys, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := runCmd(t, "dissect", "--tls-keylog", keys, pcap); err != nil {
			t.Errorf("a key log of mode 0600: %v", err)
		}
	})
}
