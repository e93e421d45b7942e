// Package demo embeds a capture anyone can investigate without capturing
// anything: a small shop API served by real nginx, some of whose endpoints
// fail in known ways (scripts/record-shop-errors.sh records it and checks
// it with tshark). wirescope hub --demo and make run serve it, and tests
// check what the tools say about it against Expected.
package demo

import (
	_ "embed"
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// Name is the capture's file name.
const Name = "shop-errors.pcap"

//go:embed shop-errors.pcap
var pcap []byte

//go:embed shop-errors.expected.json
var expected []byte

// PCAP returns the capture's bytes.
func PCAP() []byte { return pcap }

// WriteTo writes the capture into dir and returns its path.
func WriteTo(dir string) (string, error) {
	path := filepath.Join(dir, Name)
	return path, os.WriteFile(path, pcap, 0o644)
}

// Expected is what the recording script planned and checked with tshark.
type Expected struct {
	FirstPacket time.Time `json:"first_packet"`
	LastPacket  time.Time `json:"last_packet"`
	Packets     int       `json:"packets"`
	ServerIP    string    `json:"server_ip"`
	ServerPort  int       `json:"server_port"`
	ClientIPs   []string  `json:"client_ips"`
	Connections int       `json:"connections"`
	Total       int       `json:"total"`
	// Statuses counts responses by HTTP status.
	Statuses map[string]int `json:"statuses"`
	// Endpoints are listed with the most errors first.
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint is one route's requests.
type Endpoint struct {
	Method string `json:"method"`
	// Route is the path without its query, numeric segments as {id}.
	Route    string         `json:"route"`
	Requests int            `json:"requests"`
	Errors   int            `json:"errors"`
	Statuses map[string]int `json:"statuses"`
}

// Want returns the expected counts.
func Want() (Expected, error) {
	var e Expected
	err := json.Unmarshal(expected, &e)
	return e, err
}
