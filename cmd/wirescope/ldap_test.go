package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// ldapManifest is what scripts/record-ldap.sh says its clients did.
type ldapManifest struct {
	Secrets   []string `json:"secrets"`
	Scenarios []struct {
		Name        string `json:"name"`
		Pcap        string `json:"pcap"`
		Port        int    `json:"port"`
		Connections int    `json:"connections"`
		Encrypted   bool   `json:"encrypted_after_starttls"`
		Operations  []struct {
			Op        string `json:"op"`
			DN        string `json:"dn"`
			Result    string `json:"result"`
			Entries   int    `json:"entries"`
			OID       string `json:"oid"`
			Encrypted bool   `json:"encrypted"`
		} `json:"operations"`
	} `json:"scenarios"`
}

// ldapExtended names the extended operations the recordings use, as the
// dissector names them in the path.
var ldapExtended = map[string]string{
	"1.3.6.1.4.1.4203.1.11.3": "whoami", "1.3.6.1.4.1.4203.1.11.1": "passwordModify", "1.3.6.1.4.1.1466.20037": "startTLS",
}

// TestLDAPRecorded records LDAP from a real slapd (OpenLDAP) and its
// clients (ldap-utils: binds right and wrong, anonymous and as users,
// searches of every scope with and/or/not filters, a base that does not
// exist, a size limit, adds (one existing), modifies, a rename, compares
// true and false, deletes, a password change, whoami, StartTLS) and checks
// every operation the clients issued — operation, DN (the bind DN, the
// search base, the entry; an extended operation's name), result, entries
// returned — against the dissection, and tshark's reading of the same
// capture; after StartTLS the flow is handed to TLS and nothing is read in
// the clear; no password shows.
func TestLDAPRecorded(t *testing.T) {
	needRecording(t, "slapd", "ldapsearch", "jq", "openssl")
	var m ldapManifest
	dir := recordManifest(t, "record-ldap.sh", 4*time.Minute, &m)
	if len(m.Scenarios) < 4 {
		t.Fatalf("manifest.json has %d scenarios", len(m.Scenarios))
	}
	for _, s := range m.Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			pcap := filepath.Join(dir, s.Pcap)
			calls := dissectFile(t, pcap, m.Secrets)
			var got, want []string
			tls := 0
			for _, c := range calls {
				if c.Proto == "tls" {
					tls++
					continue
				}
				if c.Proto != "ldap" {
					t.Errorf("a %s call", c.Proto)
					continue
				}
				if c.Error != "" {
					t.Errorf("%s %q: error %q", c.Method, c.Path, c.Error)
				}
				n := extraInt(c.Extra.Get("entries"))
				got = append(got, fmt.Sprintf("%s %q %s entries=%d", c.Method, c.Path, c.Status, n))
			}
			for _, op := range s.Operations {
				if op.Encrypted {
					continue
				}
				path := op.DN
				if op.Op == "extended" {
					path = ldapExtended[op.OID]
				}
				if op.Op == "unbind" || op.Op == "abandon" {
					path = ""
				}
				want = append(want, fmt.Sprintf("%s %q %s entries=%d", op.Op, path, op.Result, op.Entries))
			}
			sameCounts(t, "operations, against the clients", got, want)
			sameCounts(t, "requests, against tshark", ldapMethods(calls), tsharkLDAPRequests(t, pcap, s.Port))
			if s.Encrypted && tls != s.Connections {
				t.Errorf("%d TLS handshakes after StartTLS on %d connections", tls, s.Connections)
			}
		})
	}
}

func ldapMethods(calls []proto.Call) []string {
	var out []string
	for _, c := range calls {
		if c.Proto == "ldap" {
			out = append(out, c.Method)
		}
	}
	return out
}

// tsharkLDAPRequests returns the operation of every LDAP request tshark
// reads in a capture, named as the dissector names them.
func tsharkLDAPRequests(t *testing.T, pcap string, port int) []string {
	t.Helper()
	out, err := exec.Command("tshark", "-r", pcap, "-d", fmt.Sprintf("tcp.port==%d,ldap", port), "-Y", "ldap",
		"-T", "fields", "-e", "ldap.protocolOp", "-E", "occurrence=a", "-E", "aggregator=,").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	names := map[string]string{"0": "bind", "2": "unbind", "3": "search", "6": "modify", "8": "add", "10": "delete",
		"12": "modifyDN", "14": "compare", "16": "abandon", "23": "extended"}
	var ops []string
	for _, line := range strings.Fields(string(out)) {
		for _, op := range strings.Split(line, ",") {
			if n, ok := names[op]; ok {
				ops = append(ops, n)
			}
		}
	}
	return ops
}
