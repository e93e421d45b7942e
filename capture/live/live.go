//go:build linux

// Package live captures packets from network interfaces with AF_PACKET
// TPACKET_V3 rings (gopacket's afpacket, pure Go): one ring per interface,
// an optional kernel BPF filter, a snap length, and the kernel's drop
// counters. Interfaces are named or matched by glob ("veth*"); "any" means
// every interface. Interfaces that appear later (a new pod's veth) are
// picked up by Rescan.
//
// AF_PACKET shows a loopback packet twice, as sent (PACKET_OUTGOING) and
// as received. A ring on loopback asks the kernel to leave the sent copy
// out, as libpcap does: with PACKET_IGNORE_OUTGOING (Linux 4.20), else
// with a test of the packet type before the filter (SKF_AD_PKTTYPE, a
// classic BPF extension); a kernel refusing both leaves it to user space,
// capture.Dedup, and Options.Logger says which. A packet seen on two
// interfaces (a pod's veth and the bridge) is delivered once: capture.Dedup
// drops the second sighting within its window. It hashes only the packets
// of rings that can see a packet twice: those of two or more interfaces
// other than loopback (no packet of loopback shows on another interface),
// and loopback's when the kernel left it both copies. With a single such
// ring the hashing is skipped; it starts when a second opens (a packet
// already seen on the first at that moment may then be stored twice,
// within the dedup window).
//
// A filter is compiled in Go by capture/bpffilter for each interface's
// link type (Ethernet and loopback; raw IP for tun and WireGuard), no
// tcpdump needed. An interface of another link type, or one the filter
// cannot apply to (ether host on raw IP), fails Open when it was named;
// matched by a glob or "any" it is left out, not captured unfiltered, and
// listed by Skipped.
package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/bpffilter"
)

// yieldEvery is how often, in packet time, a capture goroutine passes
// through the Go scheduler (runtime.Gosched). A goroutine that runs on
// without it, between blocking polls of its ring, is seen by the
// runtime's monitor (sysmon) as running one time slice for over 10 ms:
// sysmon then takes its P back in the next poll, and a P taken back sets
// sysmon to wake every 20 µs for a while. At 1 Gbit/s that was 100 to 150
// times a second and a third of the agent's CPU; yielding every 1, 2, 5
// or 8 ms brought it to 1 or 2 a second, at the same cost within noise.
// On loopback under wrk (45,000 small packets a second) a Gosched every
// 2 ms was a tenth of the agent's CPU (perf); every 8 ms, still under
// sysmon's 10 ms, the agent's CPU against tcpdump's went from 0.52 to
// 0.43 (lo) and 0.61 to 0.51 (any), medians of 3 runs.
const yieldEvery = 8 * time.Millisecond

// pollEvery is the longest a capture goroutine waits for its ring before
// it looks at its context again.
const pollEvery = 100 * time.Millisecond

// idleAfter is how long after its last packet a ring is waited for in the
// network poller rather than by a blocking poll(2) (see handle.ready).
const idleAfter = 200 * time.Millisecond

// ringBlock is the size of a ring's blocks, and ringBlockTimeout how long
// the kernel fills one before handing it over not full (see Source.add).
const (
	ringBlock        = 256 << 10
	ringBlockTimeout = 10 * time.Millisecond
)

// Options configure a capture.
type Options struct {
	// Interfaces are names or globs; "any" is every interface.
	Interfaces []string
	// SnapLen cuts packets to this many bytes; 0 keeps them whole.
	SnapLen int
	// Filter is a BPF expression (tcpdump syntax, the part
	// capture/bpffilter covers), run in the kernel; "" takes everything.
	Filter string
	// RingBytes is each interface's ring size; default 8 MiB.
	RingBytes int
	// DedupWindow is how long a packet is remembered to drop its second
	// sighting; default capture.DefaultDedupWindow.
	DedupWindow time.Duration
	// Logger says how loopback's sent copies are left out, and when the
	// kernel refused a way; nil: slog.Default().
	Logger *slog.Logger

	// loopback is the first way tried to leave loopback's sent copies out
	// (tests force the fallbacks with it).
	loopback Outgoing
}

// Outgoing is how a ring on loopback leaves out the sent copy of each
// packet (AF_PACKET shows it as sent and as received).
type Outgoing int

const (
	// IgnoreOutgoing is the socket option PACKET_IGNORE_OUTGOING (Linux
	// 4.20): the kernel does not hand the ring the sent copies.
	IgnoreOutgoing Outgoing = iota
	// FilterOutgoing is a test of the packet type (SKF_AD_PKTTYPE !=
	// PACKET_OUTGOING) before the filter, run by the kernel.
	FilterOutgoing
	// DedupOutgoing is capture.Dedup in user space: both copies reach
	// the ring and the second is dropped by its hash.
	DedupOutgoing
	// NotLoopback: the interface is not loopback; nothing to leave out.
	NotLoopback
)

func (o Outgoing) String() string {
	switch o {
	case IgnoreOutgoing:
		return "PACKET_IGNORE_OUTGOING"
	case FilterOutgoing:
		return "BPF packet type test"
	case DedupOutgoing:
		return "user-space dedup"
	}
	return "-"
}

// IfaceStats counts one interface's capture.
type IfaceStats struct {
	Name string
	// Packets the kernel handed to the ring and Drops it could not (ring
	// full), from TPACKET_V3's statistics.
	Packets, Drops uint64
	// Outgoing is how the ring leaves loopback's sent copies out
	// (NotLoopback on other interfaces).
	Outgoing Outgoing
}

// Skip is an interface matched by a glob or "any" and left out.
type Skip struct {
	Name string
	// Reason says why: the filter cannot apply to its link type.
	Reason string
}

// Source captures from interfaces.
type Source struct {
	opts Options

	mu      sync.Mutex
	handles map[string]*handle
	deliver sync.Mutex // held while a packet is deduplicated and delivered
	dedup   *capture.Dedup
	shared  atomic.Int32 // rings open on interfaces other than loopback
	filter  *bpffilter.Filter
	skipped map[string]string // interface → why it is left out
}

type handle struct {
	name     string
	index    int  // the interface index
	loopback bool // AF_PACKET shows its packets twice (sent, received)
	outgoing Outgoing
	link     layers.LinkType
	tp       *afpacket.TPacket
	// fd is the ring's socket, and ready a duplicate of it in the
	// runtime's network poller (non-blocking; one file description, so
	// gopacket's poll(2) sees the same). A ring with packets in the last
	// idleAfter is waited for with a blocking poll(2), as gopacket would;
	// an idle one in the poller, its goroutine parked: a goroutine
	// blocked in poll(2) for over 10 ms has its P taken back by the
	// scheduler's monitor (sysmon), which then wakes every 20 µs for a
	// while, each time. An idle ring (a pod's quiet veth, or one ring of
	// any) cost so 1.5% of a core; parked, a third of that. Parking a busy
	// ring's goroutine between blocks cost more than it saved (the thread's
	// futex sleep and wake-up each time). ready is nil when gopacket's
	// TPacket has no socket field we know: its own blocking poll then.
	fd      int
	ready   *os.File
	readyRC syscall.RawConn
	last    time.Time // the last packet's timestamp
	// unfiltered is when the filter was attached; packets stamped before
	// it reached the ring unfiltered and are dropped, counted in
	// prefilter and not in the interface's packets. Zero once a later
	// packet is read (the ring is in arrival order) or with no filter.
	unfiltered time.Time
	prefilter  atomic.Uint64
	stats      IfaceStats
	done       chan struct{}
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
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Source{opts: o, handles: map[string]*handle{}, dedup: capture.NewDedup(o.DedupWindow), skipped: map[string]string{}}
	if o.Filter != "" {
		f, err := bpffilter.Parse(o.Filter)
		if err != nil {
			return nil, err
		}
		s.filter = f
	}
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
	if len(s.handles) == 0 {
		var why []string
		for _, sk := range s.Skipped() {
			why = append(why, sk.Name+": "+sk.Reason)
		}
		return nil, fmt.Errorf("no interface can be captured with filter %q (%s)", o.Filter, strings.Join(why, "; "))
	}
	return s, nil
}

// named tells whether an interface was named as it is, not matched.
func (s *Source) named(name string) bool {
	return slices.Contains(s.opts.Interfaces, name)
}

// Skipped lists the interfaces matched by a glob or "any" that are left
// out because the filter cannot apply to them, with why.
func (s *Source) Skipped() []Skip {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Skip
	for n, why := range s.skipped {
		out = append(out, Skip{Name: n, Reason: why})
	}
	slices.SortFunc(out, func(a, b Skip) int { return strings.Compare(a.Name, b.Name) })
	return out
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

// errSkip marks an interface the filter cannot apply to.
var errSkip = errors.New("filter cannot apply")

func (s *Source) add(name string) error {
	if _, ok := s.skipped[name]; ok {
		return nil
	}
	lt, link, ltErr := linkType(name)
	var prog []bpf.RawInstruction
	if s.filter != nil {
		var err error
		if ltErr == nil {
			prog, err = s.filter.Compile(lt)
		} else {
			err = fmt.Errorf("%w: %w", errSkip, ltErr)
		}
		if err != nil {
			if errors.Is(err, bpffilter.ErrLinkType) || errors.Is(err, errSkip) {
				if !s.named(name) {
					s.skipped[name] = err.Error()
					return nil
				}
				return fmt.Errorf("capture on %s: %w", name, err)
			}
			return err
		}
	}
	h := &handle{name: name, stats: IfaceStats{Name: name}, done: make(chan struct{}), link: link, outgoing: NotLoopback}
	if i, err := net.InterfaceByName(name); err == nil {
		h.index, h.loopback = i.Index, i.Flags&net.FlagLoopback != 0
	}
	// The kernel hands a block over when it is full or ringBlockTimeout
	// after its first packet, whichever comes first: below a block's worth
	// of traffic per timeout the ring holds blocks × timeout. 8 blocks of
	// 1 MiB held 80 ms of loopback under wrk (40,000 small packets a
	// second, a block retired a tenth full), and a capture goroutine
	// kept off its core that long on a loaded machine lost packets where
	// tcpdump (libpcap: 16 blocks of 512 KiB, 1 s) lost none; 32 of
	// 256 KiB hold 320 ms. A block holds a whole 64 KiB packet
	// (loopback's MTU, veth's GSO).
	block := ringBlock
	poller := socketFieldKnown()
	pollTimeout := pollEvery
	if poller {
		pollTimeout = 0 // waited for in wait
	}
	tp, err := afpacket.NewTPacket(afpacket.OptInterface(name), afpacket.OptFrameSize(1<<16), afpacket.OptBlockSize(block),
		afpacket.OptNumBlocks(max(s.opts.RingBytes/block, 2)), afpacket.OptPollTimeout(pollTimeout),
		afpacket.OptBlockTimeout(ringBlockTimeout), afpacket.TPacketVersion3)
	if err != nil {
		return fmt.Errorf("capture on %s: %w", name, err)
	}
	h.tp = tp
	if poller {
		if err := h.pollWith(socketFD(tp)); err != nil {
			tp.Close()
			return fmt.Errorf("capture on %s: %w", name, err)
		}
	}
	if h.loopback {
		h.outgoing = s.leaveOutgoing(h, prog)
	}
	if prog != nil && h.outgoing != FilterOutgoing {
		if err := tp.SetBPF(prog); err != nil {
			h.close()
			return fmt.Errorf("filter on %s: %w", name, err)
		}
	}
	if prog != nil || h.outgoing != NotLoopback && h.outgoing != DedupOutgoing {
		// The ring took packets from its opening until the filter was
		// attached (or the sent copies left out): those are dropped by
		// their time (see handle.unfiltered).
		h.unfiltered = time.Now()
	}
	h.stats.Outgoing = h.outgoing
	s.handles[name] = h
	s.shareCount()
	return nil
}

// shareCount counts the rings whose packets another ring may show too.
func (s *Source) shareCount() {
	n := 0
	for _, h := range s.handles {
		if !h.loopback {
			n++
		}
	}
	s.shared.Store(int32(n))
}

// leaveOutgoing asks the kernel to leave the sent copies out of a
// loopback ring, from s.opts.loopback on: PACKET_IGNORE_OUTGOING, else a
// packet type test before the filter prog (attached here then; nil: no
// filter), else nothing (user-space dedup). It logs what the kernel
// refused and what was done instead.
func (s *Source) leaveOutgoing(h *handle, prog []bpf.RawInstruction) Outgoing {
	log := s.opts.Logger.With("interface", h.name)
	var refused []string
	if s.opts.loopback <= IgnoreOutgoing {
		fd := socketFD(h.tp)
		err := errors.New("the ring's socket is not known (gopacket's afpacket.TPacket changed)")
		if fd >= 0 {
			err = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
		}
		if err == nil {
			log.Info("loopback: the kernel leaves the sent copy of each packet out (PACKET_IGNORE_OUTGOING)")
			return IgnoreOutgoing
		}
		refused = append(refused, "PACKET_IGNORE_OUTGOING: "+err.Error())
	}
	if s.opts.loopback <= FilterOutgoing {
		err := h.tp.SetBPF(withoutOutgoing(prog))
		if err == nil {
			log.Info("loopback: the kernel refused PACKET_IGNORE_OUTGOING; the filter leaves the sent copies out (packet type test)",
				"refused", strings.Join(refused, "; "))
			return FilterOutgoing
		}
		refused = append(refused, "packet type filter: "+err.Error())
	}
	log.Warn("loopback: the kernel keeps both copies of each packet (sent and received); the second is dropped in user space, by its hash",
		"refused", strings.Join(refused, "; "))
	return DedupOutgoing
}

// pollWith sets up h.fd and h.ready on a duplicate of the ring's socket.
func (h *handle) pollWith(fd int) error {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("duplicating the ring's socket: %w", err)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return fmt.Errorf("duplicating the ring's socket: %w", err)
	}
	f := os.NewFile(uintptr(dup), "packet:"+h.name)
	rc, err := f.SyscallConn()
	if err == nil {
		// Deadlines work only on files the poller took.
		err = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("the ring's socket in the network poller: %w", err)
	}
	h.fd, h.ready, h.readyRC = fd, f, rc
	return nil
}

// wait waits up to pollEvery for the ring's next block (see handle.ready).
func (h *handle) wait() {
	if h.ready == nil {
		runtime.Gosched() // gopacket's poll(2) waited
		return
	}
	if time.Since(h.last) < idleAfter {
		p := [1]unix.PollFd{{Fd: int32(h.fd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(p[:], int(pollEvery/time.Millisecond)); n == 0 {
			runtime.Gosched()
		}
		return
	}
	h.ready.SetReadDeadline(time.Now().Add(pollEvery))
	h.readyRC.Read(ringReady) // a deadline's error: the caller looks again
}

// ringReady tells whether the ring's socket is readable (a block is the
// user's) or in error, without waiting. The poller's readiness was reset
// before the call; an edge after it wakes the wait.
func ringReady(fd uintptr) bool {
	p := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(p[:], 0)
	return n > 0 || err != nil && !errors.Is(err, unix.EINTR)
}

// close closes the ring and its poller file.
func (h *handle) close() {
	h.tp.Close()
	if h.ready != nil {
		h.ready.Close()
	}
}

// socketFieldKnown tells whether gopacket's TPacket keeps its socket in a
// field socketFD can read.
func socketFieldKnown() bool {
	f, ok := reflect.TypeFor[afpacket.TPacket]().FieldByName("fd")
	return ok && f.Type.Kind() == reflect.Int
}

// socketFD is the ring's socket, which gopacket's TPacket keeps in its
// unexported field fd; -1 when it has none of that name and type.
func socketFD(tp *afpacket.TPacket) int {
	v := reflect.ValueOf(tp).Elem().FieldByName("fd")
	if !v.IsValid() || v.Kind() != reflect.Int {
		return -1
	}
	return int(v.Int())
}

// withoutOutgoing prefixes a filter (nil: one taking whole packets) with
// a test dropping the packets sent (skb->pkt_type PACKET_OUTGOING), as
// libpcap does on loopback. The program's jumps are relative and stay
// right; it loads A before it reads it, as a compiled filter does.
func withoutOutgoing(prog []bpf.RawInstruction) []bpf.RawInstruction {
	pre, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OUTGOING, SkipTrue: 0, SkipFalse: 1},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		panic(err) // constant instructions
	}
	if prog == nil {
		all, _ := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 1 << 18}})
		prog = all
	}
	return append(pre, prog...)
}

// linkType finds an interface's link type from its hardware type
// (SIOCGIFHWADDR), as the filter compiler and the packets' decoder need
// it: Ethernet and loopback frames start with an Ethernet header;
// interfaces without a link header (tun, WireGuard: ARPHRD_NONE, and
// ARPHRD_RAWIP) give the IP packet. The packets of any other type are
// labelled Ethernet, as before, and the error says which type it is.
func linkType(name string) (bpffilter.LinkType, layers.LinkType, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, layers.LinkTypeEthernet, fmt.Errorf("link type of %s: %w", name, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, layers.LinkTypeEthernet, fmt.Errorf("link type of %s: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return 0, layers.LinkTypeEthernet, fmt.Errorf("link type of %s: %w", name, err)
	}
	switch hw := ifr.Uint16(); hw {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
		return bpffilter.Ethernet, layers.LinkTypeEthernet, nil
	case unix.ARPHRD_NONE, unix.ARPHRD_RAWIP:
		return bpffilter.Raw, layers.LinkTypeRaw, nil
	default:
		return 0, layers.LinkTypeEthernet, fmt.Errorf("%s has hardware type %d (ARPHRD_*), a link type filters are not compiled for", name, hw)
	}
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
		if s.handles[n] != nil {
			added = append(added, n)
		}
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
					h.wait()
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
				if !h.unfiltered.IsZero() {
					if !ci.Timestamp.After(h.unfiltered) {
						h.prefilter.Add(1)
						continue
					}
					h.unfiltered = time.Time{}
				}
				h.last = ci.Timestamp
				if ci.Timestamp.Sub(yielded) >= yieldEvery {
					yielded = ci.Timestamp
					runtime.Gosched()
				}
				if snap > 0 && len(data) > snap {
					data = data[:snap]
				}
				p = capture.Packet{Timestamp: ci.Timestamp, Data: data, Length: max(ci.Length, len(data)), LinkType: h.link}
				s.deliver.Lock()
				var dup bool
				if h.loopback && h.outgoing == DedupOutgoing || !h.loopback && s.shared.Load() > 1 {
					dup = s.dedup.Duplicate(&p, h.index, h.loopback)
				}
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
			h.stats.Packets, h.stats.Drops = uint64(v3.Packets())-h.prefilter.Load(), uint64(v3.Drops())
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
		h.close()
		delete(s.handles, name)
		s.shareCount()
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
		h.close()
	}
	s.handles = map[string]*handle{}
	return nil
}
