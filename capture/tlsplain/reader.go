package tlsplain

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wirescope/wirescope/bpf"
	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/segstore"
)

// Interface is the interface name plaintext records are stored under.
const Interface = "tls-uprobe"

// Writer stores packets: the segment store.
type Writer interface {
	Write(p *capture.Packet, iface string) error
}

// Options bound the reader.
type Options struct {
	// Probes bound the eBPF side: ring size, bytes per second.
	Probes bpf.TLSOptions
	// Rescan is how often every process is looked at again (default 10 s).
	Rescan time.Duration
	// MaxConnections bounds the connections numbered at once (default
	// 65,536); the quietest half is forgotten past it.
	MaxConnections int
	// MaxProcesses bounds the processes remembered, exited ones included
	// (default 16,384).
	MaxProcesses int
	// Held, when set, reports whether the store holds packets of the TCP
	// connection between two addresses: only those connections' plaintext
	// is stored (the agent: segstore.Store.HoldsTCP), so that plaintext of
	// connections the capture does not see (other interfaces, the filter)
	// is left out and counted as NotCaptured.
	Held func(a, b netip.AddrPort) bool
	// Log gets what goes wrong; nil logs nothing.
	Log *slog.Logger
}

func (o *Options) defaults() {
	if o.Rescan <= 0 {
		o.Rescan = 10 * time.Second
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 65536
	}
	if o.MaxProcesses <= 0 {
		o.MaxProcesses = 16384
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Reader reads TLS plaintext into the store; see Start.
type Reader struct {
	o           Options
	w           Writer
	log         *slog.Logger
	probes      *bpf.TLSProbes
	syscallHook string
	done        chan struct{}
	closeOnce   sync.Once
	wg          sync.WaitGroup

	mu          sync.Mutex
	seq         *sequencer
	procs       map[int]*Process
	failed      map[fileKey]string // files the probes refused, and why
	records     uint64
	writeErrors uint64
	notCaptured uint64
	// execsSkipped counts exec events not inspected at once (the queue
	// full): the rescan finds those processes, if they live that long.
	execsSkipped uint64
}

type fileKey struct{ dev, ino uint64 }

func newReader(w Writer, o Options) *Reader {
	return &Reader{
		o: o, w: w, log: o.Log, done: make(chan struct{}),
		seq: newSequencer(o.MaxConnections), procs: map[int]*Process{}, failed: map[fileKey]string{},
	}
}

// Process is what the reader knows of a process that uses a TLS library.
type Process struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// Libraries are its TLS libraries, each probed or why not.
	Libraries []Library `json:"libraries"`
	// Chunks counts the chunks of plaintext read from it.
	Chunks uint64 `json:"chunks"`
	// First is when the reader first saw it; Exited when it saw it gone.
	First  time.Time `json:"first"`
	Exited time.Time `json:"exited,omitzero"`
}

// Library is a TLS library a process uses.
type Library struct {
	// Name is the library and version: "OpenSSL 3.0.19".
	Name string `json:"name"`
	// Kind is the implementation: "OpenSSL", "Go crypto/tls", "Java"…
	Kind string `json:"kind"`
	// Path is the file, as the agent opens it.
	Path string `json:"path,omitempty"`
	// Probed is set when its plaintext is read; Reason says why not.
	Probed bool   `json:"probed"`
	Reason string `json:"reason,omitempty"`
}

// Coverage is what the reader covers: the TLS libraries of the node's
// processes, probed or why not, and what was dropped.
type Coverage struct {
	// SyscallHook says how the probes learn sockets.
	SyscallHook string `json:"syscall_hook"`
	// Processes lists the processes using a TLS library (and those asked
	// about), by PID.
	Processes []Process `json:"processes"`
	// Probed lists the library files probed.
	Probed []bpf.Attached `json:"probed"`
	// Counters are the probes' counts; Records the plaintext records
	// stored, WriteErrors those the store refused, Duplicates the chunks
	// left out because the connection's other end was read too.
	Counters    bpf.TLSCounters `json:"counters"`
	Records     uint64          `json:"records"`
	WriteErrors uint64          `json:"write_errors"`
	Duplicates  uint64          `json:"duplicates"`
	// NotCaptured counts chunks left out because the capture holds no
	// packet of their connection (Options.Held).
	NotCaptured uint64 `json:"not_captured"`
	// ExecsSkipped counts processes whose exec came while maxExecQueue
	// others waited to be inspected: only the rescan looks at them.
	ExecsSkipped uint64 `json:"execs_skipped,omitempty"`
	// Error is set when the counters could not be read.
	Error string `json:"error,omitempty"`
}

// Coverage reports what the reader covers.
func (r *Reader) Coverage() Coverage {
	cs, err := r.counters()
	r.mu.Lock()
	defer r.mu.Unlock()
	c := Coverage{
		SyscallHook: r.hook(), Counters: cs, Records: r.records, WriteErrors: r.writeErrors,
		Duplicates: r.seq.Duplicates, NotCaptured: r.notCaptured, Probed: r.probes.Attached(), ExecsSkipped: r.execsSkipped,
	}
	if err != nil {
		c.Error = err.Error()
	}
	for _, p := range r.procs {
		q := *p
		q.Libraries = slices.Clone(p.Libraries)
		c.Processes = append(c.Processes, q)
	}
	slices.SortFunc(c.Processes, func(a, b Process) int { return a.PID - b.PID })
	slices.SortFunc(c.Probed, func(a, b bpf.Attached) int {
		if a.Path < b.Path {
			return -1
		}
		if a.Path > b.Path {
			return 1
		}
		return 0
	})
	return c
}

// seenPID counts a chunk of pid's (r.mu held); a process whose chunk comes
// before its inspection is remembered with the chunk's library.
func (r *Reader) seenPID(pid int, comm string, lib bpf.Library) {
	pr := r.procs[pid]
	if pr == nil {
		if len(r.procs) >= r.o.MaxProcesses {
			r.forgetExited()
		}
		if c := readComm(pid); c != "" {
			comm = c // the process's, not the thread's
		}
		pr = &Process{PID: pid, Comm: comm, First: time.Now(), Libraries: []Library{{Name: lib.Name, Probed: true}}}
		r.procs[pid] = pr
	}
	pr.Chunks++
}

// forgetExited drops the processes that exited longest ago, or if none
// did, the oldest half (r.mu held).
func (r *Reader) forgetExited() {
	var exited []*Process
	for _, p := range r.procs {
		if !p.Exited.IsZero() {
			exited = append(exited, p)
		}
	}
	if len(exited) == 0 {
		for _, p := range r.procs {
			exited = append(exited, p)
		}
		slices.SortFunc(exited, func(a, b *Process) int { return a.First.Compare(b.First) })
	} else {
		slices.SortFunc(exited, func(a, b *Process) int { return a.Exited.Compare(b.Exited) })
	}
	for _, p := range exited[:max(1, len(exited)/2)] {
		delete(r.procs, p.PID)
	}
}

// readComm is pid's comm, "" when it cannot be read.
func readComm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Opaque says why the TLS plaintext of a TCP connection between procs
// (the opener's first) cannot be read on this node: the process on a side
// uses a TLS library the reader does not probe, and the other side's is
// not probed either. "" when a side is read, or nothing is known.
func (r *Reader) Opaque(procs [2]segstore.Proc) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var why []string
	for i, p := range procs {
		pr := r.procs[int(p.PID)]
		if p.PID == 0 || pr == nil || (p.Comm != "" && pr.Comm != "" && p.Comm != pr.Comm) {
			continue
		}
		var reasons []string
		for _, l := range pr.Libraries {
			if l.Probed {
				return "" // this side is read
			}
			reason := l.Reason
			if l.Name != "" && !strings.Contains(reason, l.Name) {
				reason = l.Name + ": " + reason
			}
			reasons = append(reasons, reason)
		}
		side := [2]string{"client", "server"}[i]
		why = append(why, fmt.Sprintf("%s %s %d: %s", side, pr.Comm, pr.PID, strings.Join(reasons, ", ")))
	}
	return strings.Join(why, "; ")
}
