// Package source is the one interface the workspace reads captured packets
// through, whatever holds them: capture files (Files), a segment store
// written in this process (Store), an agent on another node (a client of
// the agent API, agentapi.Client), and a fan-out over many of those
// (Fanout).
//
// A Source answers from what it knew when it was last refreshed: Bounds,
// Count and LinkTypes are cheap and local; Flows and Packets read (from
// disk, or from an agent over HTTP) only the time range and flows asked
// for, so that a question about five minutes of one service never copies
// everything a node holds. A source whose data grows implements Refresher.
package source

import (
	"context"
	"errors"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/flowindex"
)

// Source is captured packets with their flow index.
type Source interface {
	// Name says what the source is: files, a store's directory, a node.
	Name() string
	// Bounds returns the times of the first and last packets held.
	Bounds() (first, last time.Time)
	// Flows summarises the flows active in [from, to) (zero times are
	// unbounded).
	Flows(ctx context.Context, from, to time.Time) ([]flowindex.Summary, error)
	// Packets returns the packets captured in [from, to) in time order,
	// only those sel keeps (nil keeps all). The caller closes it.
	Packets(ctx context.Context, from, to time.Time, sel *flowindex.Selector) (capture.Source, error)
	// Count bounds how many packets Packets(from, to, nil) reads, without
	// reading them.
	Count(from, to time.Time) uint64
	// LinkTypes lists the link types of the packets in [from, to).
	LinkTypes(from, to time.Time) []layers.LinkType
	// Status describes the source's parts.
	Status(ctx context.Context) Status
	// Fingerprint identifies the data held: dissections of another
	// fingerprint are not reused. It has no paths in it that would differ
	// between machines holding the same data.
	Fingerprint() string
}

// Refresher is a source whose data grows: Refresh looks again (lists the
// segments, asks the agents) and reports whether anything changed.
type Refresher interface {
	Refresh(ctx context.Context) (changed bool, err error)
}

// Multi is a source made of parts captured on different nodes: a call
// seen on two of them is dissected from each and counted once.
type Multi interface {
	// Parts returns the parts that answered when last refreshed.
	Parts() []Source
}

// Status is what a source says of itself.
type Status struct {
	Parts []Part
	// Decode counts the packets that could not be decoded (files only:
	// agents do not decode).
	Decode capture.DecodeStats
}

// Part is one file, store or node of a source.
type Part struct {
	Name string
	// Kind is "pcap", "store" or "agent".
	Kind string
	// Node is the node an agent captures on.
	Node        string
	First, Last time.Time
	Packets     uint64
	Bytes       uint64
	// Drops counts packets the capture lost (kernel ring drops, disk full).
	Drops uint64
	// State is "up", or "unreachable" for an agent that did not answer its
	// last refresh (Error says why; its data is then left out).
	State string
	// LastContact is when an agent last answered.
	LastContact time.Time
	// Since is when an unreachable agent stopped answering.
	Since    time.Time
	Error    string
	Warnings []string
	// TLS is what a node agent's TLS probes cover (agents only; nil
	// otherwise).
	TLS *TLSCoverage
}

// TLSCoverage is what a node agent's TLS probes read: which processes'
// TLS libraries, which they cannot and why, and what they dropped.
type TLSCoverage struct {
	// State is "on", or "off: why" (the probes did not load, or were
	// turned off).
	State string
	// Processes are the processes using a TLS library.
	Processes []TLSProcess
	// Dropped counts chunks of plaintext lost (ring full, over the rate,
	// unreadable, refused by the store); LostBytes their bytes.
	Dropped, LostBytes uint64
}

// TLSProcess is a process using a TLS library.
type TLSProcess struct {
	PID    int
	Comm   string
	Exited bool
	// Library is the library and version ("OpenSSL 3.0.19"); Probed
	// whether its plaintext is read, Reason why not.
	Library string
	Probed  bool
	Reason  string
}

// Up reports whether the part answered.
func (p *Part) Up() bool { return p.State == "" || p.State == StateUp }

// Part states.
const (
	StateUp          = "up"
	StateUnreachable = "unreachable"
)

// SnapshotInfo is one part's snapshot: a time range frozen against
// retention.
type SnapshotInfo struct {
	Name string
	// Part is the node (or store) holding it.
	Part              string
	From, To, Created time.Time
	Segments          int
}

// Snapshotter is a source that can freeze a time range against retention
// and read it back later as a source of its own.
type Snapshotter interface {
	// CreateSnapshot freezes [from, to) under name on every part holding
	// packets in it.
	CreateSnapshot(ctx context.Context, name string, from, to time.Time) ([]SnapshotInfo, error)
	Snapshots(ctx context.Context) ([]SnapshotInfo, error)
	// DeleteSnapshot deletes name wherever it is.
	DeleteSnapshot(ctx context.Context, name string) error
	// OpenSnapshot returns a source reading the snapshot name.
	OpenSnapshot(ctx context.Context, name string) (Source, error)
}

// ErrNoSnapshot is returned for a snapshot no part holds.
var ErrNoSnapshot = errors.New("no such snapshot")
