//go:build linux

// Package live captures packets from network interfaces with AF_PACKET
// TPACKET_V3 rings (gopacket's afpacket, pure Go): one ring per interface,
// an optional kernel BPF filter, a snap length, and the kernel's drop
// counters. Interfaces are named or matched by glob ("veth*"); "any" means
// every interface. Interfaces that appear later (a new pod's veth) are
// picked up by Rescan.
//
// A packet seen on two interfaces (a pod's veth and the bridge; both
// directions of loopback) is delivered once: capture.Dedup drops the second
// sighting within its window. With a single ring on an interface other
// than loopback no packet can be seen twice, and the hashing is skipped;
// it starts when a second ring opens (a packet already seen on the first
// at that moment may then be stored twice, within the dedup window).
package live

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/wirescope/wirescope/capture"
)

// yieldEvery is how often, in packet time, a capture goroutine passes
// through the Go scheduler (runtime.Gosched). A goroutine that runs on
// without it, between blocking polls of its ring, is seen by the
// runtime's monitor (sysmon) as running one time slice for over 10 ms:
// sysmon then takes its P back in the next poll, and a P taken back sets
// sysmon to wake every 20 µs for a while. At 1 Gbit/s that was 100 to 150
// times a second and a third of the agent's CPU; yielding every 1, 2, 5
// or 8 ms brought it to 1 or 2 a second, at the same cost within noise.
const yieldEvery = 2 * time.Millisecond

// Options configure a capture.
type Options struct {
	// Interfaces are names or globs; "any" is every interface.
	Interfaces []string
	// SnapLen cuts packets to this many bytes; 0 keeps them whole.
	SnapLen int
	// Filter is a BPF expression (tcpdump syntax), run in the kernel;
	// "" takes everything. It is compiled by tcpdump (-ddd).
	Filter string
	// RingBytes is each interface's ring size; default 8 MiB.
	RingBytes int
	// DedupWindow is how long a packet is remembered to drop its second
	// sighting; default capture.DefaultDedupWindow.
	DedupWindow time.Duration
}

// IfaceStats counts one interface's capture.
type IfaceStats struct {
	Name string
	// Packets the kernel handed to the ring and Drops it could not (ring
	// full), from TPACKET_V3's statistics.
	Packets, Drops uint64
}

// Source captures from interfaces.
type Source struct {
	opts Options

	mu      sync.Mutex
	handles map[string]*handle
	deliver sync.Mutex // held while a packet is deduplicated and delivered
	dedup   *capture.Dedup
	rings   atomic.Int32                    // rings open
	filter  map[string][]bpf.RawInstruction // compiled per interface
}

type handle struct {
	name     string
	index    int  // the interface index
	loopback bool // AF_PACKET shows its packets twice (sent, received)
	tp       *afpacket.TPacket
	stats    IfaceStats
	done     chan struct{}
}

// Open resolves the interfaces and opens a ring on each. It needs
// CAP_NET_RAW.
func Open(o Options) (*Source, error) {
	if len(o.Interfaces) == 0 {
		return nil, errors.New("no interface to capture on")
	}
	if o.RingBytes <= 0 {
		o.RingBytes = 8 << 20
	}
	s := &Source{opts: o, handles: map[string]*handle{}, dedup: capture.NewDedup(o.DedupWindow), filter: map[string][]bpf.RawInstruction{}}
	names, err := s.match()
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no interface matches %s", strings.Join(o.Interfaces, ", "))
	}
	for _, n := range names {
		if err := s.add(n); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// match lists the interfaces the options name, sorted.
func (s *Source) match() ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, i := range ifs {
		for _, pat := range s.opts.Interfaces {
			ok := pat == "any" || pat == i.Name
			if !ok {
				ok, _ = filepath.Match(pat, i.Name)
			}
			if ok && i.Flags&net.FlagUp != 0 {
				out = append(out, i.Name)
				break
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

func (s *Source) add(name string) error {
	block := 1 << 20
	tp, err := afpacket.NewTPacket(afpacket.OptInterface(name), afpacket.OptFrameSize(1<<16), afpacket.OptBlockSize(block),
		afpacket.OptNumBlocks(max(s.opts.RingBytes/block, 2)), afpacket.OptPollTimeout(100*time.Millisecond),
		afpacket.OptBlockTimeout(10*time.Millisecond), afpacket.TPacketVersion3)
	if err != nil {
		return fmt.Errorf("capture on %s: %w", name, err)
	}
	if s.opts.Filter != "" {
		prog, err := compileFilter(name, s.opts.Filter)
		if err != nil {
			tp.Close()
			return err
		}
		if err := tp.SetBPF(prog); err != nil {
			tp.Close()
			return fmt.Errorf("filter on %s: %w", name, err)
		}
	}
	h := &handle{name: name, tp: tp, stats: IfaceStats{Name: name}, done: make(chan struct{})}
	if i, err := net.InterfaceByName(name); err == nil {
		h.index, h.loopback = i.Index, i.Flags&net.FlagLoopback != 0
	}
	s.handles[name] = h
	s.rings.Store(int32(len(s.handles)))
	return nil
}

// compileFilter compiles a tcpdump expression for an interface's link type
// with tcpdump -ddd.
func compileFilter(iface, expr string) ([]bpf.RawInstruction, error) {
	out, err := exec.Command("tcpdump", "-i", iface, "-ddd", expr).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("filter %q: %s", expr, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("filter %q: tcpdump compiles filters and is not usable: %w", expr, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	var prog []bpf.RawInstruction
	first := true
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if first {
			first = false
			continue // the instruction count
		}
		if len(f) != 4 {
			return nil, fmt.Errorf("filter %q: unexpected tcpdump output %q", expr, sc.Text())
		}
		var v [4]uint64
		for i := range f {
			if v[i], err = strconv.ParseUint(f[i], 10, 32); err != nil {
				return nil, fmt.Errorf("filter %q: unexpected tcpdump output %q", expr, sc.Text())
			}
		}
		prog = append(prog, bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])})
	}
	if len(prog) == 0 {
		return nil, fmt.Errorf("filter %q: tcpdump gave no program", expr)
	}
	return prog, nil
}

// Rescan opens rings on interfaces that appeared since Open (or the last
// Rescan) and match the options; it returns their names.
func (s *Source) Rescan() ([]string, error) {
	names, err := s.match()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var added []string
	for _, n := range names {
		if _, ok := s.handles[n]; ok {
			continue
		}
		if err := s.add(n); err != nil {
			return added, err
		}
		added = append(added, n)
	}
	return added, nil
}

// Run delivers every packet, deduplicated, to fn until ctx is done; fn is
// called from one goroutine at a time, and p.Data is valid only during the
// call. Interfaces added by Rescan while Run runs are read too.
func (s *Source) Run(ctx context.Context, fn func(p *capture.Packet, iface string) error) error {
	var wg sync.WaitGroup
	started := map[*handle]bool{}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var firstErr error
	var errOnce sync.Once
	start := func(h *handle) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(h.done)
			snap := s.opts.SnapLen
			var p capture.Packet
			var yielded time.Time
			for ctx.Err() == nil {
				data, ci, err := h.tp.ZeroCopyReadPacketData()
				if errors.Is(err, afpacket.ErrTimeout) {
					runtime.Gosched()
					continue
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					if _, gone := net.InterfaceByName(h.name); gone != nil {
						// The interface went away (a pod was deleted):
						// capture goes on elsewhere.
						s.remove(h.name)
						return
					}
					errOnce.Do(func() { firstErr = fmt.Errorf("capture on %s: %w", h.name, err) })
					cancel()
					return
				}
				if ci.Timestamp.Sub(yielded) >= yieldEvery {
					yielded = ci.Timestamp
					runtime.Gosched()
				}
				if snap > 0 && len(data) > snap {
					data = data[:snap]
				}
				p = capture.Packet{Timestamp: ci.Timestamp, Data: data, Length: max(ci.Length, len(data)), LinkType: layers.LinkTypeEthernet}
				s.deliver.Lock()
				dup := (h.loopback || s.rings.Load() > 1) && s.dedup.Duplicate(&p, h.index, h.loopback)
				if !dup {
					err = fn(&p, h.name)
				}
				s.deliver.Unlock()
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					cancel()
					return
				}
			}
		}()
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		for _, h := range s.handles {
			if !started[h] {
				started[h] = true
				start(h)
			}
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			wg.Wait()
			return firstErr
		case <-tick.C:
		}
	}
}

// Stats returns each interface's counters (kernel packets and drops).
func (s *Source) Stats() []IfaceStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []IfaceStats
	for _, h := range s.handles {
		if _, v3, err := h.tp.SocketStats(); err == nil {
			h.stats.Packets, h.stats.Drops = uint64(v3.Packets()), uint64(v3.Drops())
		}
		out = append(out, h.stats)
	}
	slices.SortFunc(out, func(a, b IfaceStats) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Duplicates counts the packets dropped as second sightings.
func (s *Source) Duplicates() uint64 {
	s.deliver.Lock()
	defer s.deliver.Unlock()
	return s.dedup.Duplicates
}

// remove closes the ring of an interface that went away.
func (s *Source) remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.handles[name]; h != nil {
		h.tp.Close()
		delete(s.handles, name)
		s.rings.Store(int32(len(s.handles)))
	}
}

// Interfaces lists the interfaces captured on.
func (s *Source) Interfaces() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.handles {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Close closes the rings; call it after Run returned.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.handles {
		h.tp.Close()
	}
	s.handles = map[string]*handle{}
	return nil
}
