package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// diameterManifest is what scripts/record-diameter.sh read from
// freeDiameter's message dumps.
type diameterManifest struct {
	Scenarios []struct {
		Name        string `json:"name"`
		Pcap        string `json:"pcap"`
		Port        int    `json:"port"`
		Connections int    `json:"connections"`
		Requests    []struct {
			Command    string `json:"command"`
			Code       int    `json:"code"`
			HopByHop   string `json:"hop_by_hop"`
			Sender     string `json:"sender"`
			FromServer bool   `json:"from_server"`
			Result     string `json:"result"`
			ErrorBit   bool   `json:"error_bit"`
		} `json:"requests"`
	} `json:"scenarios"`
}

// TestDiameterRecorded records Diameter between two real freeDiameter
// peers (CER/CEA, DWR/DWA from either side, DPR/DPA) and a client whose
// Credit-Control and NASREQ requests freeDiameter answers or relays to the
// other peer (errors with the E bit: application unsupported, unable to
// deliver), and checks every request freeDiameter logged — command,
// Hop-by-Hop Identifier, result, E bit, which side sent it — against the
// dissection, and tshark's reading of the same capture.
func TestDiameterRecorded(t *testing.T) {
	needRecording(t, "freeDiameterd", "jq", "openssl", "go")
	var m diameterManifest
	dir := recordManifest(t, "record-diameter.sh", 3*time.Minute, &m)
	if len(m.Scenarios) < 2 {
		t.Fatalf("manifest.json has %d scenarios", len(m.Scenarios))
	}
	for _, s := range m.Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			pcap := filepath.Join(dir, s.Pcap)
			calls := dissectFile(t, pcap, nil)
			var got, short []string
			fromServer := 0
			for _, c := range calls {
				if c.Proto != "diameter" {
					t.Errorf("a %s call", c.Proto)
					continue
				}
				if c.Error != "" {
					t.Errorf("%s %q: error %q", c.Method, c.Path, c.Error)
				}
				hbh := fmt.Sprintf("0x%08x", extraInt(c.Extra.Get("hop_by_hop")))
				eb := c.Extra.Get("error_bit") == true
				server := c.Extra.Get("direction") == "server"
				if server {
					fromServer++
				}
				got = append(got, fmt.Sprintf("%s %s %s e=%v server=%v", c.Method, hbh, c.Status, eb, server))
				short = append(short, fmt.Sprintf("%s %s %s", c.Method, hbh, c.Status))
			}
			var want []string
			wantServer := 0
			for _, r := range s.Requests {
				want = append(want, fmt.Sprintf("%s %s %s e=%v server=%v", r.Command, r.HopByHop, r.Result, r.ErrorBit, r.FromServer))
				if r.FromServer {
					wantServer++
				}
			}
			sameCounts(t, "requests, against freeDiameter's log", got, want)
			sameCounts(t, "requests, against tshark", short, tsharkDiameter(t, pcap, s.Port))
			if s.Name == "peers" && wantServer == 0 {
				t.Log("no DWR from the server side in this recording")
			}
			if fromServer != wantServer {
				t.Errorf("%d requests from the server side, want %d", fromServer, wantServer)
			}
		})
	}
}

// tsharkDiameter returns every Diameter request tshark reads in a
// capture with its answer's Result-Code, as the dissector names them:
// "CCR 0x7e570002 DIAMETER_APPLICATION_UNSUPPORTED".
func tsharkDiameter(t *testing.T, pcap string, port int) []string {
	t.Helper()
	out, err := exec.Command("tshark", "-r", pcap, "-d", fmt.Sprintf("tcp.port==%d,diameter", port), "-Y", "diameter",
		"-T", "fields", "-e", "tcp.stream", "-e", "diameter.cmd.code", "-e", "diameter.flags.request", "-e", "diameter.hopbyhopid",
		"-e", "diameter.Result-Code").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	cmds := map[string]string{"257": "CER", "280": "DWR", "282": "DPR", "272": "CCR", "265": "AAR"}
	names := map[string]string{"2001": "DIAMETER_SUCCESS", "3002": "DIAMETER_UNABLE_TO_DELIVER", "3007": "DIAMETER_APPLICATION_UNSUPPORTED"}
	type req struct{ cmd, hbh, rc string }
	var reqs []*req
	waiting := map[string]*req{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 5 {
			continue
		}
		k := f[0] + " " + f[1] + " " + f[3]
		if f[2] == "1" || f[2] == "True" {
			r := &req{cmd: cmds[f[1]], hbh: f[3]}
			if r.cmd == "" {
				r.cmd = "cmd-" + f[1]
			}
			reqs = append(reqs, r)
			waiting[k] = r
		} else if r, ok := waiting[k]; ok {
			r.rc = names[f[4]]
			if r.rc == "" {
				if _, err := strconv.Atoi(f[4]); err == nil {
					r.rc = f[4]
				}
			}
			delete(waiting, k)
		} else {
			t.Errorf("tshark: an answer to no request: %s", line)
		}
	}
	var s []string
	for _, r := range reqs {
		s = append(s, r.cmd+" "+r.hbh+" "+r.rc)
	}
	return s
}
