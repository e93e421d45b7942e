package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// mqttManifest is what scripts/record-mqtt.sh says its clients did.
type mqttManifest struct {
	Secrets   []string `json:"secrets"`
	Scenarios []struct {
		Name   string `json:"name"`
		Pcap   string `json:"pcap"`
		Server struct {
			Port int `json:"port"`
		} `json:"server"`
		TCPConnections int `json:"tcp_connections"`
		Connections    []struct {
			Client   string `json:"client"`
			Version  string `json:"version"`
			ClientID string `json:"client_id"`
			Calls    []struct {
				Method    string `json:"method"`
				Path      string `json:"path"`
				Status    string `json:"status"`
				Direction string `json:"direction"`
				QoS       *int   `json:"qos"`
				Retain    *bool  `json:"retain"`
				Alias     bool   `json:"alias"`
			} `json:"calls"`
		} `json:"connections"`
		Publishes map[string]int `json:"publishes"`
		Secrets   []string       `json:"secrets"`
	} `json:"scenarios"`
}

// TestMQTTRecorded records a real mosquitto broker driven by mosquitto_pub
// and mosquitto_sub over MQTT 3.1, 3.1.1 and 5.0 (scripts/record-mqtt.sh:
// QoS 0, 1 and 2, retained messages, the broker publishing to subscribers,
// a refused password, properties and a topic alias) and checks wirescope's
// calls against what the clients printed — each CONNECT with its client id
// and status, each PUBLISH with its topic, direction, QoS, retain flag and
// the acknowledgement's reason, each SUBSCRIBE with the QoS granted — and
// against tshark's reading of the same capture: as many CONNECTs and
// SUBSCRIBEs, as many PUBLISH packets per topic. No password is in the
// output.
func TestMQTTRecorded(t *testing.T) {
	needRecording(t, "mosquitto", "mosquitto_pub", "mosquitto_sub", "jq")
	var m mqttManifest
	dir := recordManifest(t, "record-mqtt.sh", 3*time.Minute, &m)
	if len(m.Scenarios) < 6 {
		t.Fatalf("manifest.json has %d scenarios", len(m.Scenarios))
	}
	for _, s := range m.Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			pcap := filepath.Join(dir, s.Pcap)
			calls := dissectFile(t, pcap, append(slices.Clone(m.Secrets), s.Secrets...))
			var got, want []string
			gotCounts := map[string]int{}
			gotPublishes := map[string]int{}
			for _, c := range calls {
				if c.Proto != "mqtt" {
					t.Errorf("a %s call", c.Proto)
					continue
				}
				if c.Error != "" {
					t.Errorf("%s %q: error %q", c.Method, c.Path, c.Error)
				}
				gotCounts[c.Method]++
				status := c.Status
				if c.OneWay {
					status = "" // the clients print no reason for what needs no answer
				}
				line := c.Method + " " + c.Path + " " + status
				if c.Method == "PUBLISH" {
					gotPublishes[c.Path]++
					line += " " + extraString(c.Extra, "direction") + " qos=" + extraNumber(c.Extra, "qos") +
						" retain=" + strconv.FormatBool(c.Extra.Get("retain") == true)
				}
				got = append(got, line)
			}
			for _, conn := range s.Connections {
				for _, c := range conn.Calls {
					line := c.Method + " " + c.Path + " " + c.Status
					if c.Method == "PUBLISH" {
						line += " " + c.Direction + " qos=" + strconv.Itoa(*c.QoS) + " retain=" + strconv.FormatBool(c.Retain != nil && *c.Retain)
					}
					want = append(want, line)
				}
			}
			if len(want) == 0 {
				t.Fatal("the manifest lists no calls")
			}
			sameCounts(t, "calls", got, want)

			// tshark's reading: the packet types of every MQTT PDU, and
			// the topics of the PUBLISH packets (it resolves topic aliases
			// as we do).
			port := strconv.Itoa(s.Server.Port)
			out, err := exec.Command("tshark", "-r", pcap, "-d", "tcp.port=="+port+",mqtt", "-Y", "mqtt",
				"-T", "fields", "-e", "mqtt.msgtype", "-E", "occurrence=a", "-E", "aggregator=|").Output()
			if err != nil {
				t.Fatalf("tshark: %v", err)
			}
			tsharkTypes := map[string]int{}
			for _, line := range strings.Fields(string(out)) {
				for _, typ := range strings.Split(line, "|") {
					tsharkTypes[typ]++
				}
			}
			for _, c := range []struct{ name, typ string }{{"CONNECT", "1"}, {"SUBSCRIBE", "8"}, {"PUBLISH", "3"}} {
				// A PUBLISH call is one PUBLISH packet; CONNECT and
				// SUBSCRIBE one of theirs.
				if gotCounts[c.name] != tsharkTypes[c.typ] {
					t.Errorf("%d %s calls; tshark reads %d %s packets", gotCounts[c.name], c.name, tsharkTypes[c.typ], c.name)
				}
			}
			out, err = exec.Command("tshark", "-r", pcap, "-d", "tcp.port=="+port+",mqtt", "-Y", "mqtt.msgtype == 3",
				"-T", "fields", "-e", "mqtt.topic", "-E", "occurrence=a", "-E", "aggregator=|").Output()
			if err != nil {
				t.Fatalf("tshark: %v", err)
			}
			tsharkPublishes := map[string]int{}
			// A segment may carry several PUBLISH packets.
			for _, line := range strings.Fields(string(out)) {
				for _, topic := range strings.Split(line, "|") {
					tsharkPublishes[topic]++
				}
			}
			var g, w, tw []string
			for topic, n := range gotPublishes {
				g = append(g, topic+" ×"+strconv.Itoa(n))
			}
			for topic, n := range s.Publishes {
				w = append(w, topic+" ×"+strconv.Itoa(n))
			}
			for topic, n := range tsharkPublishes {
				tw = append(tw, topic+" ×"+strconv.Itoa(n))
			}
			sameCounts(t, "PUBLISH packets per topic (the clients)", g, w)
			sameCounts(t, "PUBLISH packets per topic (tshark)", g, tw)
			t.Logf("%d calls; tshark: %d CONNECT, %d SUBSCRIBE, %d PUBLISH packets", len(calls), tsharkTypes["1"], tsharkTypes["8"], tsharkTypes["3"])
		})
	}
}

// extraNumber is a number in a call's extra as read back from JSON.
func extraNumber(x proto.Extra, key string) string {
	if v := x.Get(key); v != nil {
		return fmt.Sprint(v)
	}
	return ""
}
