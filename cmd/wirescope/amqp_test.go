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

// amqpManifest is what scripts/record-amqp.sh says its clients did.
type amqpManifest struct {
	Port      int      `json:"port"`
	Secrets   []string `json:"secrets"`
	Scenarios []struct {
		Name        string         `json:"name"`
		Pcap        string         `json:"pcap"`
		Connections int            `json:"connections"`
		Methods     map[string]int `json:"methods"`
		Publishes   int            `json:"publishes"`
		Deliveries  int            `json:"deliveries"`
		CloseCodes  []int          `json:"close_codes"`
		ClientError int            `json:"client_error"`
	} `json:"scenarios"`
}

// amqpMethodNames name the class.method numbers tshark prints.
var amqpMethodNames = map[string]string{
	"10.10": "connection.start", "10.11": "connection.start-ok", "10.20": "connection.secure", "10.21": "connection.secure-ok",
	"10.30": "connection.tune", "10.31": "connection.tune-ok", "10.40": "connection.open", "10.41": "connection.open-ok",
	"10.50": "connection.close", "10.51": "connection.close-ok", "20.10": "channel.open", "20.11": "channel.open-ok",
	"20.40": "channel.close", "20.41": "channel.close-ok", "40.10": "exchange.declare", "40.11": "exchange.declare-ok",
	"50.10": "queue.declare", "50.11": "queue.declare-ok", "50.20": "queue.bind", "50.21": "queue.bind-ok",
	"50.40": "queue.delete", "50.41": "queue.delete-ok", "60.10": "basic.qos", "60.11": "basic.qos-ok",
	"60.20": "basic.consume", "60.21": "basic.consume-ok", "60.30": "basic.cancel", "60.31": "basic.cancel-ok",
	"60.40": "basic.publish", "60.60": "basic.deliver", "60.70": "basic.get", "60.71": "basic.get-ok",
	"60.72": "basic.get-empty", "60.80": "basic.ack", "60.120": "basic.nack", "85.10": "confirm.select",
	"85.11": "confirm.select-ok", "90.10": "tx.select", "90.11": "tx.select-ok", "90.20": "tx.commit", "90.21": "tx.commit-ok",
}

// TestAMQPRecorded records AMQP 0-9-1 from a real RabbitMQ and real
// clients — amqp091-go (publisher confirms, a consumer with acks and a
// nack, basic.get and a transaction, a queue declared twice with
// different arguments, a publish to a missing exchange, a wrong password)
// and amqp-tools (rabbitmq-c) — and checks the dissection against what the
// clients did and against tshark's reading of the same capture: every
// method frame tshark decodes accounted for by a call (the method that
// starts it, its reply, the close that answered it and the close-ok), the
// methods the clients sent, the publishes and deliveries, the close codes
// the broker sent as statuses, no password shown.
func TestAMQPRecorded(t *testing.T) {
	needRecording(t, "go", "jq", "amqp-publish")
	var m amqpManifest
	dir := recordManifest(t, "record-amqp.sh", 5*time.Minute, &m)
	if len(m.Scenarios) < 7 {
		t.Fatalf("manifest.json has %d scenarios", len(m.Scenarios))
	}
	for _, s := range m.Scenarios {
		t.Run(s.Name, func(t *testing.T) {
			pcap := filepath.Join(dir, s.Pcap)
			calls := dissectFile(t, pcap, m.Secrets)
			var sent, wantSent, frames, codes, wantCodes []string
			publishes, deliveries, starts, logins := 0, 0, 0, 0
			for _, c := range calls {
				if c.Proto != "amqp" {
					t.Errorf("a %s call", c.Proto)
					continue
				}
				refused := false
				if c.Error != "" {
					// A login RabbitMQ refuses by closing the socket: the
					// client reported 403 (client_error).
					refused = s.ClientError == 403 && c.Method == "connection.start" && strings.Contains(c.Error, "refuses the login")
					if !refused {
						t.Errorf("%s %q: error %q", c.Method, c.Path, c.Error)
					}
					logins++
				}
				reply, _ := c.Extra.Get("reply").(string)
				dir, _ := c.Extra.Get("direction").(string)
				frames = append(frames, c.Method)
				switch {
				case reply != "":
					frames = append(frames, reply)
				case !c.OneWay:
					frames = append(frames, c.Method+"-ok")
				}
				if c.Extra.Get("close_ok") == true {
					frames = append(frames, reply+"-ok")
				}
				if dir == "" && !strings.HasPrefix(c.Method, "connection.start") && c.Method != "connection.tune" {
					sent = append(sent, c.Method)
				}
				switch {
				case c.Method == "connection.start":
					starts++
				case c.Method == "basic.publish":
					publishes++
				case c.Method == "basic.deliver", c.Method == "basic.get" && reply == "":
					deliveries++
				}
				if c.Status != "OK" && !c.OneWay && !refused {
					codes = append(codes, fmt.Sprint(c.Extra.Get("reply_code")))
				}
			}
			for name, n := range s.Methods {
				for range n {
					wantSent = append(wantSent, name)
				}
			}
			for _, code := range s.CloseCodes {
				wantCodes = append(wantCodes, strconv.Itoa(code))
			}
			if s.ClientError == 403 && logins == 0 {
				t.Error("the client's login was refused (403); no call says so")
			}
			sameCounts(t, "methods the clients sent", sent, wantSent)
			sameCounts(t, "close codes the broker sent", codes, wantCodes)
			sameCounts(t, "method frames, against tshark", frames, tsharkAMQPMethods(t, pcap, m.Port))
			if publishes != s.Publishes || deliveries != s.Deliveries || starts != s.Connections {
				t.Errorf("%d publishes, %d deliveries, %d connections; the clients did %d, %d, %d", publishes, deliveries, starts,
					s.Publishes, s.Deliveries, s.Connections)
			}
		})
	}
}

// tsharkAMQPMethods returns the class.method of every method frame
// tshark reads in a capture, the port decoded as AMQP.
func tsharkAMQPMethods(t *testing.T, pcap string, port int) []string {
	t.Helper()
	out, err := exec.Command("tshark", "-r", pcap, "-d", "tcp.port=="+strconv.Itoa(port)+",amqp", "-Y", "amqp.method.class",
		"-T", "fields", "-e", "amqp.method.class", "-e", "amqp.method.method", "-E", "occurrence=a", "-E", "aggregator=;").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 2 {
			continue
		}
		classes, ids := strings.Split(f[0], ";"), strings.Split(f[1], ";")
		for k := range classes {
			name, ok := amqpMethodNames[classes[k]+"."+ids[k]]
			if !ok {
				t.Fatalf("tshark's class %s method %s is not in the test's table", classes[k], ids[k])
			}
			names = append(names, name)
		}
	}
	return names
}
