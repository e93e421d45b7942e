package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// radiusManifest is what scripts/record-radius.sh says radclient did.
type radiusManifest struct {
	Secrets   []string `json:"secrets"`
	Scenarios []struct {
		Name     string `json:"name"`
		Pcap     string `json:"pcap"`
		AuthPort int    `json:"auth_port"`
		AcctPort int    `json:"acct_port"`
		Requests []struct {
			Code            string `json:"code"`
			ID              int    `json:"id"`
			User            string `json:"user"`
			Response        string `json:"response"`
			Retransmissions int    `json:"retransmissions"`
			AcctStatusType  string `json:"acct_status_type"`
		} `json:"requests"`
		Tshark struct {
			Requests  int `json:"requests"`
			Responses int `json:"responses"`
		} `json:"tshark"`
	} `json:"scenarios"`
}

// radiusCodes names the RADIUS codes tshark prints as numbers.
var radiusCodes = map[string]string{"1": "Access-Request", "2": "Access-Accept", "3": "Access-Reject",
	"4": "Accounting-Request", "5": "Accounting-Response", "11": "Access-Challenge", "12": "Status-Server",
	"40": "Disconnect-Request", "41": "Disconnect-ACK", "42": "Disconnect-NAK", "43": "CoA-Request",
	"44": "CoA-ACK", "45": "CoA-NAK"}

// TestRADIUSRecorded records RADIUS from a real FreeRADIUS and radclient
// (PAP accepted and rejected, a reply with Reply-Message and
// Session-Timeout, a user rejected by policy, CHAP, accounting Start,
// Interim-Update and Stop, Status-Server to both ports, a request the
// server drops for a wrong shared secret, one sent three times) and checks
// every request radclient sent — code, identifier, User-Name, the response
// it received or none, retransmissions, Acct-Status-Type — against the
// dissection, and tshark's reading of the same capture: its requests,
// answered or not, and its responses, by code, User-Name and identifier,
// retransmissions counted once. No password nor shared secret shows.
func TestRADIUSRecorded(t *testing.T) {
	needRecording(t, "freeradius", "radclient", "jq")
	var m radiusManifest
	dir := recordManifest(t, "record-radius.sh", 4*time.Minute, &m)
	if len(m.Scenarios) < 6 {
		t.Fatalf("manifest.json has %d scenarios", len(m.Scenarios))
	}
	for _, s := range m.Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			pcap := filepath.Join(dir, s.Pcap)
			calls := dissectFile(t, pcap, m.Secrets)
			var got, want, gotIDs []string
			for _, c := range calls {
				if c.Proto != "radius" {
					t.Errorf("a %s call", c.Proto)
					continue
				}
				resp := c.Status
				if c.Error != "" {
					if resp != "" || !strings.HasPrefix(c.Error, "no response") {
						t.Errorf("%s %q: status %q, error %q", c.Method, c.Path, c.Status, c.Error)
					}
					resp = "none"
				}
				ast, _ := c.Extra.Get("acct_status_type").(string)
				got = append(got, fmt.Sprintf("%s %q id=%d -> %s retrans=%d acct=%s", c.Method, c.Path,
					extraInt(c.Extra.Get("id")), resp, extraInt(c.Extra.Get("retransmissions")), ast))
				gotIDs = append(gotIDs, fmt.Sprintf("%s %q %d", c.Method, c.Path, extraInt(c.Extra.Get("id"))))
				if strings.Contains(c.Request.Body, "Password = ") && !strings.Contains(c.Request.Body, "Password = [redacted]") {
					t.Errorf("%s %q: a password shown: %s", c.Method, c.Path, c.Request.Body)
				}
			}
			for _, r := range s.Requests {
				resp := r.Response
				if resp == "" {
					resp = "none"
				}
				want = append(want, fmt.Sprintf("%s %q id=%d -> %s retrans=%d acct=%s", r.Code, r.User, r.ID, resp,
					r.Retransmissions, r.AcctStatusType))
			}
			sameCounts(t, "requests, against radclient", got, want)
			reqs, resps, packets := tsharkRADIUS(t, pcap, s.AuthPort, s.AcctPort)
			sent := 0
			for _, r := range s.Requests {
				sent += 1 + r.Retransmissions
			}
			if packets != sent || packets != s.Tshark.Requests || len(resps) != s.Tshark.Responses {
				t.Errorf("tshark reads %d request packets and %d responses; radclient sent %d, the recording read %d and %d",
					packets, len(resps), sent, s.Tshark.Requests, s.Tshark.Responses)
			}
			sameCounts(t, "requests, against tshark (retransmissions once)", gotIDs, reqs)
			var answered []string
			for _, c := range calls {
				if c.Status != "" {
					answered = append(answered, fmt.Sprintf("%s %d", c.Status, extraInt(c.Extra.Get("id"))))
				}
			}
			sameCounts(t, "responses, against tshark", answered, resps)
		})
	}
}

// tsharkRADIUS returns tshark's reading of a capture: each request as
// "CODE "USER" ID", a retransmission (the same code, identifier and
// authenticator from the same port again) once, and each response as
// "CODE ID"; and how many request packets it read.
func tsharkRADIUS(t *testing.T, pcap string, authPort, acctPort int) (reqs, resps []string, reqPackets int) {
	t.Helper()
	out, err := exec.Command("tshark", "-r", pcap, "-d", fmt.Sprintf("udp.port==%d,radius", authPort),
		"-d", fmt.Sprintf("udp.port==%d,radius", acctPort), "-Y", "radius", "-T", "fields",
		"-e", "radius.code", "-e", "radius.id", "-e", "radius.User_Name", "-e", "radius.authenticator",
		"-e", "udp.srcport").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 5 {
			continue
		}
		name, ok := radiusCodes[f[0]]
		if !ok {
			t.Errorf("tshark reads code %s", f[0])
			continue
		}
		if strings.HasSuffix(name, "-Request") || name == "Status-Server" {
			reqPackets++
			k := strings.Join(f, "\t")
			if seen[k] {
				continue
			}
			seen[k] = true
			reqs = append(reqs, fmt.Sprintf("%s %q %s", name, f[2], f[1]))
			continue
		}
		resps = append(resps, name+" "+f[1])
	}
	return reqs, resps, reqPackets
}
