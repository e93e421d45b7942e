package segstore_test

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/capture/segstore"
)

// traffic returns the packets of n HTTP connections (copies, to keep).
func traffic(n int, start time.Time) []capture.Packet {
	var out []capture.Packet
	capturetest.Load{Conns: n, Requests: 4, Start: start}.Emit(func(p capture.Packet) {
		p.Data = slices.Clone(p.Data)
		out = append(out, p)
	})
	return out
}

var t0 = time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)

// clock is a settable clock for ages.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func open(t *testing.T, dir string, o segstore.Options) *segstore.Store {
	t.Helper()
	s, err := segstore.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func write(t *testing.T, s *segstore.Store, pkts []capture.Packet, iface string) {
	t.Helper()
	for i := range pkts {
		if err := s.Write(&pkts[i], iface); err != nil {
			t.Fatalf("write packet %d: %v", i, err)
		}
	}
}

// readAll reads every packet of the store's segments, oldest first, and
// fails on any damage.
func readAll(t *testing.T, segs []segstore.Segment) []capture.Packet {
	t.Helper()
	var out []capture.Packet
	for _, g := range segs {
		f, err := capture.OpenFile(g.Path)
		if err != nil {
			t.Fatal(err)
		}
		var p capture.Packet
		n := 0
		for {
			if err := f.Next(&p); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			p.Data = slices.Clone(p.Data)
			out = append(out, p)
			n++
		}
		if w := f.Warnings(); len(w) > 0 {
			t.Errorf("%s: %v", g.Path, w)
		}
		if uint64(n) != g.Packets {
			t.Errorf("%s: %d packets, the store says %d", g.Path, n, g.Packets)
		}
		f.Close()
	}
	return out
}

func samePackets(t *testing.T, got, want []capture.Packet) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d packets, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Timestamp.Equal(want[i].Timestamp) || string(got[i].Data) != string(want[i].Data) || got[i].Length != want[i].Length ||
			got[i].LinkType != want[i].LinkType {
			t.Fatalf("packet %d differs: %v %d bytes, want %v %d bytes", i, got[i].Timestamp, len(got[i].Data), want[i].Timestamp, len(want[i].Data))
		}
	}
}

// TestRotateAndRead: segments rotate by size; every packet written is in
// them, in order, whole; each segment's flow index agrees with its
// packets, and tshark reads every segment.
func TestRotateAndRead(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t0}
	s := open(t, dir, segstore.Options{SegmentBytes: 64 << 10, Now: c.now})
	pkts := traffic(300, t0)
	write(t, s, pkts, "veth1")
	s.Rotate()
	segs := s.Segments()
	if len(segs) < 5 {
		t.Fatalf("%d segments for %d packets of 64 KiB segments", len(segs), len(pkts))
	}
	for _, g := range segs {
		if g.Size > 64<<10 || !g.Closed {
			t.Errorf("segment %d: %d bytes, closed %v", g.Seq, g.Size, g.Closed)
		}
	}
	samePackets(t, readAll(t, segs), pkts)
	checkFlows(t, allFlows(t, s), pkts, "veth1")

	st := s.Stats()
	if st.Packets != uint64(len(pkts)) || st.Segments != len(segs) || !st.Oldest.Equal(pkts[0].Timestamp) ||
		!st.Newest.Equal(pkts[len(pkts)-1].Timestamp) || st.Dropped != 0 || st.Full {
		t.Errorf("stats %+v", st)
	}
	if tshark, err := exec.LookPath("tshark"); err == nil {
		for _, g := range segs {
			out, err := exec.Command(tshark, "-r", g.Path, "-T", "fields", "-e", "frame.number").Output()
			if err != nil {
				t.Fatalf("tshark -r %s: %v", g.Path, err)
			}
			if n := strings.Count(string(out), "\n"); uint64(n) != g.Packets {
				t.Errorf("tshark reads %d packets from %s, the store wrote %d", n, g.Path, g.Packets)
			}
		}
	} else {
		t.Log("tshark not installed: segments checked with wirescope's reader only")
	}

	// Reopened, the store has the same segments and flows, from the
	// indexes.
	s.Close()
	s2 := open(t, dir, segstore.Options{SegmentBytes: 64 << 10, Now: c.now})
	if got := s2.Segments(); !reflect.DeepEqual(got, segs) {
		t.Errorf("reopened: %+v\nwant %+v", got, segs)
	}
	checkFlows(t, allFlows(t, s2), pkts, "veth1")
}

// checkFlows compares the index's flows, summed over segments, with the
// packets: per connection, packets and bytes each way, first and last.
func checkFlows(t *testing.T, flows []segstore.Flow, pkts []capture.Packet, iface string) {
	t.Helper()
	type sums struct {
		packets, bytes [2]uint64
		first, last    time.Time
	}
	want := map[[2]netip.AddrPort]*sums{}
	d := capture.NewDecoder()
	var dec capture.Decoded
	for _, p := range pkts {
		if err := d.Decode(p.LinkType, p.Data, p.Length, p.Timestamp, &dec); err != nil {
			t.Fatal(err)
		}
		src, dst := netip.AddrPortFrom(dec.Src, dec.SrcPort), netip.AddrPortFrom(dec.Dst, dec.DstPort)
		dir := 0
		k := [2]netip.AddrPort{src, dst}
		if dec.SrcPort == 80 {
			k, dir = [2]netip.AddrPort{dst, src}, 1
		}
		w := want[k]
		if w == nil {
			w = &sums{first: p.Timestamp}
			want[k] = w
		}
		w.packets[dir]++
		w.bytes[dir] += uint64(p.Length)
		w.last = p.Timestamp
	}
	got := map[[2]netip.AddrPort]*sums{}
	for _, fl := range flows {
		if fl.Interface != iface || fl.Proto != layers.IPProtocolTCP {
			t.Errorf("flow %v: interface %q proto %v", fl.Src, fl.Interface, fl.Proto)
		}
		k := [2]netip.AddrPort{fl.Src, fl.Dst}
		g := got[k]
		if g == nil {
			g = &sums{first: fl.First}
			got[k] = g
		}
		for i := range 2 {
			g.packets[i] += fl.Packets[i]
			g.bytes[i] += fl.Bytes[i]
		}
		if fl.First.Before(g.first) {
			g.first = fl.First
		}
		if fl.Last.After(g.last) {
			g.last = fl.Last
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d flows in the index, %d connections in the packets", len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		if g == nil || g.packets != w.packets || g.bytes != w.bytes || !g.first.Equal(w.first) || !g.last.Equal(w.last) {
			t.Errorf("flow %v: index %+v, packets %+v", k, g, w)
		}
	}
}

// TestRetention: past MaxBytes the oldest segments go; past MaxAge too.
func TestRetention(t *testing.T) {
	c := &clock{t0}
	s := open(t, t.TempDir(), segstore.Options{SegmentBytes: 32 << 10, MaxBytes: 160 << 10, MaxAge: 10 * time.Minute, Now: c.now})
	pkts := traffic(600, t0)
	write(t, s, pkts, "eth0")
	s.Rotate()
	segs := s.Segments()
	var total int64
	for _, g := range segs {
		total += g.Size
	}
	if total > 160<<10 || total < 160<<10-2*(32<<10) {
		t.Errorf("%d bytes kept, want at most 160 KiB and not much less", total)
	}
	// What is kept is the newest: the last packet written is in the
	// last segment, and the first kept segment is not the first written.
	kept := readAll(t, segs)
	if !kept[len(kept)-1].Timestamp.Equal(pkts[len(pkts)-1].Timestamp) || segs[0].Seq == 1 {
		t.Errorf("kept segments %d… end at %v", segs[0].Seq, kept[len(kept)-1].Timestamp)
	}
	entries, _ := os.ReadDir(filepath.Dir(segs[0].Path))
	if len(entries) != 2*len(segs) {
		t.Errorf("%d files in segments/, want a pcap and an index for each of %d segments", len(entries), len(segs))
	}
	// Age: eleven minutes later, a new packet closes nothing old by
	// itself, but rotation applies retention and everything before goes.
	c.t = pkts[len(pkts)-1].Timestamp.Add(11 * time.Minute)
	late := traffic(1, c.t)
	write(t, s, late, "eth0")
	s.Rotate()
	if segs := s.Segments(); len(segs) != 1 || !segs[0].First.Equal(late[0].Timestamp) {
		t.Errorf("after MaxAge: %+v", segs)
	}
}

// TestAgeRotation: a segment open for SegmentAge is closed at the next
// packet.
func TestAgeRotation(t *testing.T) {
	c := &clock{t0}
	s := open(t, t.TempDir(), segstore.Options{SegmentAge: time.Minute, Now: c.now})
	pkts := traffic(10, t0)
	write(t, s, pkts[:5], "lo")
	// A minute later, by the clock and in packet time.
	c.t = c.t.Add(61 * time.Second)
	for i := range pkts[5:] {
		pkts[5+i].Timestamp = pkts[5+i].Timestamp.Add(61 * time.Second)
	}
	write(t, s, pkts[5:], "lo")
	s.Flush() // the first segment closes beside Write
	segs := s.Segments()
	if len(segs) != 2 || segs[0].Packets != 5 || !segs[0].Closed || segs[1].Closed {
		t.Errorf("segments %+v", segs)
	}
}

// TestLinkTypes: packets of another link type go to a segment of their
// own, since a PCAP file has one.
func TestLinkTypes(t *testing.T) {
	s := open(t, t.TempDir(), segstore.Options{})
	pkts := traffic(2, t0)
	raw := slices.Clone(pkts)
	for i := range raw {
		raw[i].Data, raw[i].LinkType = raw[i].Data[14:], layers.LinkTypeRaw // strip Ethernet
		raw[i].Length -= 14
	}
	write(t, s, pkts, "eth0")
	write(t, s, raw, "tun0")
	s.Rotate()
	segs := s.Segments()
	if len(segs) != 2 || segs[0].LinkType != layers.LinkTypeEthernet || segs[1].LinkType != layers.LinkTypeRaw {
		t.Fatalf("segments %+v", segs)
	}
	samePackets(t, readAll(t, segs[1:]), raw)
}

// TestIndexRebuilt: a missing or damaged index is rebuilt from its
// segment, the same as it was.
func TestIndexRebuilt(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, segstore.Options{SegmentBytes: 64 << 10})
	pkts := traffic(100, t0)
	write(t, s, pkts, "")
	s.Close()
	s = open(t, dir, segstore.Options{SegmentBytes: 64 << 10})
	want := allFlows(t, s)
	segs := s.Segments()
	s.Close()
	idx := strings.TrimSuffix(segs[0].Path, ".pcap") + ".flows"
	if err := os.Remove(idx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(strings.TrimSuffix(segs[1].Path, ".pcap") + ".flows")
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(strings.TrimSuffix(segs[1].Path, ".pcap")+".flows", b, 0o644); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, segstore.Options{SegmentBytes: 64 << 10})
	if got := allFlows(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("rebuilt flows differ: %d flows, want %d", len(got), len(want))
	}
	if _, err := os.Stat(idx); err != nil {
		t.Errorf("the rebuilt index was not written: %v", err)
	}
	if got := s.Segments(); !reflect.DeepEqual(got, segs) {
		t.Errorf("segments %+v\nwant %+v", got, segs)
	}
}

// TestSnapshot: a snapshot keeps its segments when retention deletes them
// from the store, and deleting it removes only it.
func TestSnapshot(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t0}
	s := open(t, dir, segstore.Options{SegmentBytes: 32 << 10, MaxBytes: 96 << 10, Now: c.now})
	first := traffic(25, t0) // fits in MaxBytes
	write(t, s, first, "eth0")
	from, to := first[0].Timestamp, first[len(first)-1].Timestamp.Add(time.Nanosecond)
	snap, err := s.Snapshot("incident-42", from, to)
	if err != nil {
		t.Fatal(err)
	}
	var frozen []segstore.Segment
	for _, g := range s.Segments() {
		if g.First.Before(to) {
			frozen = append(frozen, g)
		}
	}
	if len(snap.Segments) != len(frozen) || len(frozen) == 0 {
		t.Fatalf("snapshot of %d segments, %d hold the range", len(snap.Segments), len(frozen))
	}
	// Much more traffic: retention deletes the frozen segments from the
	// store.
	write(t, s, traffic(400, to.Add(time.Second)), "eth0")
	s.Rotate()
	for _, g := range s.Segments() {
		if g.First.Before(to) {
			t.Fatalf("segment %d of the frozen range is still in the store: retention did not run", g.Seq)
		}
	}
	var inSnap []segstore.Segment
	for i, name := range snap.Segments {
		g := frozen[i]
		g.Path = filepath.Join(snap.Dir, name)
		inSnap = append(inSnap, g)
	}
	samePackets(t, readAll(t, inSnap), first)
	if st := s.Stats(); st.SnapshotBytes == 0 {
		t.Error("the snapshot's bytes are not reported once the store deleted its segments")
	}
	list, err := s.Snapshots()
	if err != nil || len(list) != 1 || list[0].Name != "incident-42" || !list[0].From.Equal(from) {
		t.Errorf("snapshots %+v %v", list, err)
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden"} {
		if _, err := s.Snapshot(bad, time.Time{}, time.Time{}); err == nil {
			t.Errorf("snapshot name %q accepted", bad)
		}
	}
	if _, err := s.Snapshot("incident-42", time.Time{}, time.Time{}); err == nil {
		t.Error("a second snapshot of the same name was accepted")
	}
	if err := s.DeleteSnapshot("incident-42"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.Snapshots(); len(list) != 0 {
		t.Errorf("after delete: %+v", list)
	}
	if _, err := os.Stat(snap.Dir); !os.IsNotExist(err) {
		t.Errorf("snapshot directory still there: %v", err)
	}
}

// TestLock: a store is opened by one process at a time.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, segstore.Options{})
	if _, err := segstore.Open(dir, segstore.Options{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second open: %v", err)
	}
}

// TestCrash kills a process writing a store (kill -9) mid-write, three
// times: every closed segment (one with its index) and its index are
// intact; the others (open, or closing: their last bytes and index being
// written) are readable up to their last whole packet; and the store
// opens again with their indexes rebuilt and the partial record a
// segment may end with cut off.
func TestCrash(t *testing.T) {
	if os.Getenv("SEGSTORE_CRASH_DIR") != "" {
		crashWriter(os.Getenv("SEGSTORE_CRASH_DIR"))
		return
	}
	for round := range 3 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$")
		cmd.Env = append(os.Environ(), "SEGSTORE_CRASH_DIR="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until a few segments exist, then kill.
		deadline := time.Now().Add(30 * time.Second)
		for {
			entries, _ := filepath.Glob(filepath.Join(dir, "segments", "*.flows"))
			if len(entries) >= 3+round || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(round*7) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		all, _ := filepath.Glob(filepath.Join(dir, "segments", "*.pcap"))
		var pcaps []string // a segment killed before its first packet holds a header alone, and Open deletes it
		closed := map[string]bool{}
		for _, p := range all {
			if fi, err := os.Stat(p); err == nil && fi.Size() > 24 {
				pcaps = append(pcaps, p)
			}
			if _, err := os.Stat(strings.TrimSuffix(p, ".pcap") + ".flows"); err == nil {
				closed[p] = true
			}
		}
		if len(pcaps) < 3 || len(closed) < 3 {
			t.Fatalf("round %d: %d segments, %d closed", round, len(pcaps), len(closed))
		}
		// Closed segments read whole, before the store repairs anything.
		for p := range closed {
			f, err := capture.OpenFile(p)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			var pkt capture.Packet
			for f.Next(&pkt) == nil {
			}
			if w := f.Warnings(); len(w) > 0 {
				t.Errorf("round %d: closed segment %s damaged: %v", round, filepath.Base(p), w)
			}
			f.Close()
		}
		s, err := segstore.Open(dir, segstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		segs := s.Segments()
		if len(segs) != len(pcaps) {
			t.Errorf("round %d: %d segments open, %d files", round, len(segs), len(pcaps))
		}
		unclosed := 0
		for _, g := range segs {
			f, err := capture.OpenFile(g.Path)
			if err != nil {
				t.Fatalf("round %d: segment %d: %v", round, g.Seq, err)
			}
			var p capture.Packet
			n := uint64(0)
			for f.Next(&p) == nil {
				n++
			}
			if w := f.Warnings(); len(w) > 0 {
				t.Errorf("round %d: segment %d damaged after recovery: %v", round, g.Seq, w)
			}
			if fi, err := os.Stat(g.Path); err != nil || fi.Size() != g.Size {
				t.Errorf("round %d: segment %d: the store says %d bytes, the file has %v", round, g.Seq, g.Size, fi.Size())
			}
			if n != g.Packets {
				t.Errorf("round %d: segment %d holds %d whole packets, its index says %d", round, g.Seq, n, g.Packets)
			}
			if !closed[g.Path] {
				unclosed++
			}
			f.Close()
		}
		t.Logf("round %d: %d segments after kill -9, %d of them not closed; the last holds %d packets", round, len(segs), unclosed,
			segs[len(segs)-1].Packets)
		s.Close()
	}
}

// crashWriter writes packets into a store until it is killed.
func crashWriter(dir string) {
	s, err := segstore.Open(dir, segstore.Options{SegmentBytes: 48 << 10, FlushEvery: time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	pkts := traffic(2000, t0)
	for i := 0; ; i++ {
		p := pkts[i%len(pkts)]
		p.Timestamp = p.Timestamp.Add(time.Duration(i/len(pkts)) * time.Hour)
		if err := s.Write(&p, "eth0"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if i%64 == 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// TestDiskFull writes into a store on a 2 MiB tmpfs until the disk is
// full: Write reports ErrFull and counts drops, every segment is whole
// and readable, and writing resumes once space is freed.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	c := &clock{t0}
	s, err := segstore.Open(dir, segstore.Options{SegmentBytes: 256 << 10, FlushEvery: time.Nanosecond, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pkts := traffic(2000, t0)
	written, full := 0, 0
	for i := range pkts {
		err := s.Write(&pkts[i], "eth0")
		switch {
		case err == nil && full == 0:
			written++
		case err == segstore.ErrFull:
			full++
		case err != nil:
			t.Fatalf("packet %d: %v", i, err)
		}
		// As the agent does every second: a write error met beside Write
		// shows here, and Write refuses packets from then on.
		if i%50 == 49 {
			if err := s.Flush(); err != nil && err != segstore.ErrFull {
				t.Fatalf("flush: %v", err)
			}
		}
	}
	// Writing goes on beside Write: a failure shows at a later Write, or
	// here, and Flush returns once every segment is closed or written.
	if err := s.Flush(); err != nil && err != segstore.ErrFull {
		t.Fatalf("flush: %v", err)
	}
	st := s.Stats()
	if full == 0 || !st.Full || st.Dropped < uint64(full) || !strings.Contains(st.LastError, "no space") {
		t.Fatalf("the disk did not fill, or it was not reported: %d written, %d refused, stats %+v", written, full, st)
	}
	segs := s.Segments()
	got := readAll(t, segs) // fails on any damaged segment
	if len(got) == 0 || len(got) > written {
		t.Errorf("%d packets on disk, %d accepted before the disk filled", len(got), written)
	}
	// Segments are written beside Write, so a later segment may hold
	// packets while an earlier one lost its last buffer to the full disk:
	// what is on disk is the packets written, in order, whole, with some
	// missing.
	subsequence(t, got, pkts)
	// What Stats says is stored is what is on disk; every other packet is
	// counted as dropped: refused, or accepted but lost with the buffer.
	if st.Packets != uint64(len(got)) || st.Packets+st.Dropped != uint64(len(pkts)) {
		t.Errorf("stats: %d stored, %d dropped; on disk %d of %d", st.Packets, st.Dropped, len(got), len(pkts))
	}
	t.Logf("%d packets accepted, %d on disk in %d segments, %d refused, %d dropped in all", written, len(got), len(segs), full, st.Dropped)

	// Free space (delete the oldest segment) and wait out the retry: the
	// store writes again.
	for _, g := range segs[:len(segs)-1] {
		os.Remove(g.Path)
	}
	c.t = c.t.Add(10 * time.Second)
	p := traffic(1, t0.Add(time.Hour))
	if err := s.Write(&p[0], "eth0"); err != nil {
		t.Fatalf("after space was freed: %v", err)
	}
	if s.Stats().Full {
		t.Error("still full after a successful write")
	}
}

// subsequence checks that got is want with some packets left out.
func subsequence(t *testing.T, got, want []capture.Packet) {
	t.Helper()
	j := 0
	for i, g := range got {
		for j < len(want) && !(g.Timestamp.Equal(want[j].Timestamp) && string(g.Data) == string(want[j].Data) && g.Length == want[j].Length) {
			j++
		}
		if j == len(want) {
			t.Fatalf("packet %d on disk (%v, %d bytes) is not one written, or is out of order", i, g.Timestamp, len(g.Data))
		}
		j++
	}
}

func allFlows(t *testing.T, s *segstore.Store) []segstore.Flow {
	t.Helper()
	flows, err := s.Flows(time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return flows
}

// TestAttribution: the processes an Attributor names are kept per side
// in the index (whether asked by Attribute while the segment is open or
// at its close) and read back after a restart.
func TestAttribution(t *testing.T) {
	dir := t.TempDir()
	asked := map[[2]netip.AddrPort]int{}
	var mu sync.Mutex
	attr := func(proto layers.IPProtocol, local, remote netip.AddrPort) (segstore.Proc, bool) {
		mu.Lock()
		defer mu.Unlock()
		asked[[2]netip.AddrPort{local, remote}]++
		if proto != layers.IPProtocolTCP {
			return segstore.Proc{}, false
		}
		// The capturetest load's servers listen on port 80.
		if local.Port() == 80 {
			return segstore.Proc{PID: 7, Comm: "nginx", CgroupID: 99, Cgroup: "/kubepods.slice/x.scope", PodUID: "1b6e0c0e-0000-4000-8000-000000000001", ContainerID: "abc"}, true
		}
		return segstore.Proc{PID: 1000 + uint32(local.Port()%7), Comm: "curl", CgroupID: 5}, true
	}
	s := open(t, dir, segstore.Options{SegmentBytes: 64 << 10, Attribute: attr})
	pkts := traffic(40, t0)
	write(t, s, pkts[:len(pkts)/2], "veth1")
	s.Attribute() // the first half is asked now, the rest at close
	write(t, s, pkts[len(pkts)/2:], "veth1")
	s.Close()
	s = open(t, dir, segstore.Options{SegmentBytes: 64 << 10})
	flows := allFlows(t, s)
	if len(flows) < 40 {
		t.Fatalf("%d flows", len(flows))
	}
	for _, fl := range flows {
		if fl.Dst.Port() != 80 {
			t.Fatalf("flow %v → %v: the client is not the opener", fl.Src, fl.Dst)
		}
		if c, srv := fl.Procs[0], fl.Procs[1]; c.Comm != "curl" || c.PID != 1000+uint32(fl.Src.Port()%7) || srv.Comm != "nginx" ||
			srv.PodUID != "1b6e0c0e-0000-4000-8000-000000000001" || srv.Cgroup != "/kubepods.slice/x.scope" || srv.ContainerID != "abc" || srv.CgroupID != 99 {
			t.Errorf("flow %v → %v: processes %+v", fl.Src, fl.Dst, fl.Procs)
		}
	}
	// The payload each way is counted and kept (the load's requests and
	// responses); an index written before it was (WSFLOWS 0x02) is read
	// as it is, its processes kept, its payload unknown.
	payload := map[[2]netip.AddrPort][2]uint64{} // a connection's, over the segments it spans
	for _, fl := range flows {
		if fl.PayloadUnknown || fl.Payload[0] > fl.Bytes[0] || fl.Payload[1] > fl.Bytes[1] {
			t.Fatalf("flow %v → %v: payload %v of %v bytes (unknown %v)", fl.Src, fl.Dst, fl.Payload, fl.Bytes, fl.PayloadUnknown)
		}
		k := [2]netip.AddrPort{fl.Src, fl.Dst}
		payload[k] = [2]uint64{payload[k][0] + fl.Payload[0], payload[k][1] + fl.Payload[1]}
	}
	for k, p := range payload {
		if p[0] == 0 || p[1] == 0 {
			t.Errorf("connection %v → %v: payload %v: the requests and responses not counted", k[0], k[1], p)
		}
	}
	segs := s.Segments()
	s.Close()
	for _, g := range segs {
		if err := segstore.WriteIndexV2(g.Path); err != nil {
			t.Fatal(err)
		}
	}
	s = open(t, dir, segstore.Options{SegmentBytes: 64 << 10})
	old := allFlows(t, s)
	if len(old) != len(flows) {
		t.Fatalf("%d flows from version 2 indexes, %d before", len(old), len(flows))
	}
	for i, fl := range old {
		want := flows[i]
		want.Payload, want.PayloadUnknown = [2]uint64{}, true
		if !reflect.DeepEqual(fl, want) {
			t.Fatalf("flow %d from a version 2 index: %+v, want %+v", i, fl, want)
		}
	}
	// Each side of each flow was asked about once per segment it is in,
	// not once per packet.
	mu.Lock()
	defer mu.Unlock()
	for ap, n := range asked {
		if n > len(s.Segments()) {
			t.Errorf("%v → %v asked about %d times", ap[0], ap[1], n)
		}
	}
}

// TestClosingSegment: a segment closed by rotation is finished beside
// Write. Until its index is written it is listed as not closed, its
// packets read whole up to its durable size, its flows come from memory,
// and Write goes on into the next segment; Flush waits for it.
func TestClosingSegment(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	stuck := make(chan struct{})
	attr := func(layers.IPProtocol, netip.AddrPort, netip.AddrPort) (segstore.Proc, bool) {
		once.Do(func() { close(stuck) })
		<-release // the first segment's close waits here
		return segstore.Proc{Comm: "x"}, true
	}
	s := open(t, t.TempDir(), segstore.Options{SegmentBytes: 64 << 10, Attribute: attr})
	pkts := traffic(60, t0)
	// Write until the first rotation, then a little more.
	i := 0
	for ; len(s.Segments()) < 2; i++ {
		if err := s.Write(&pkts[i], "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	<-stuck
	more := i + 50
	write(t, s, pkts[i:more], "eth0")
	segs := s.Segments()
	if len(segs) != 2 || segs[0].Closed || segs[1].Closed {
		t.Fatalf("while the first closes: %+v", segs)
	}
	if fi, err := os.Stat(segs[0].Path); err != nil || fi.Size() != segs[0].Size {
		t.Errorf("closing segment: listed with %d bytes, the file has %v (%v)", segs[0].Size, fi.Size(), err)
	}
	if _, err := os.Stat(strings.TrimSuffix(segs[0].Path, ".pcap") + ".flows"); err == nil {
		t.Error("the closing segment has its index already")
	}
	got := readAll(t, segs[:1])
	samePackets(t, got, pkts[:segs[0].Packets])
	var inFirst uint64
	s.EachFlow(time.Time{}, time.Time{}, func(g segstore.Segment, fl *segstore.Flow) bool {
		if g.Seq == segs[0].Seq {
			inFirst += fl.Packets[0] + fl.Packets[1]
		}
		return true
	})
	if inFirst != segs[0].Packets {
		t.Errorf("the closing segment's flows count %d packets, it holds %d", inFirst, segs[0].Packets)
	}

	close(release)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	segs = s.Segments()
	if !segs[0].Closed {
		t.Fatalf("after Flush: %+v", segs[0])
	}
	samePackets(t, readAll(t, segs), pkts[:more])
	s.EachFlow(time.Time{}, time.Time{}, func(g segstore.Segment, fl *segstore.Flow) bool {
		if g.Seq == segs[0].Seq && (fl.Procs[0].Comm != "x" || fl.Procs[1].Comm != "x") {
			t.Errorf("closed segment: flow %v → %v: processes %+v", fl.Src, fl.Dst, fl.Procs)
		}
		return true
	})
}

// TestPartialRecordCut: reopening a store cuts a record a crash left
// half-written off a segment without an index, and leaves alone bytes
// that are not the start of one record.
func TestPartialRecordCut(t *testing.T) {
	for _, tc := range []struct {
		name string
		tail []byte
		cut  bool
	}{
		{"half a header", []byte{1, 2, 3, 4, 5, 6, 7}, true},
		// A header saying 100 bytes, with 10 of them.
		{"half a packet", append([]byte{0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 100, 0, 0, 0}, make([]byte, 10)...), true},
		// A header saying 1 MB (over any snap length), with 40 bytes: not
		// what a crash leaves.
		{"damage", append([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 16, 0}, make([]byte, 40)...), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, segstore.Options{})
			pkts := traffic(3, t0)
			write(t, s, pkts, "eth0")
			s.Close()
			seg := s.Segments()[0]
			os.Remove(strings.TrimSuffix(seg.Path, ".pcap") + ".flows")
			f, err := os.OpenFile(seg.Path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tc.tail)
			f.Close()
			s2 := open(t, dir, segstore.Options{})
			fi, _ := os.Stat(seg.Path)
			want := seg.Size
			if !tc.cut {
				want += int64(len(tc.tail))
			}
			if fi.Size() != want {
				t.Errorf("after reopening: %d bytes, want %d", fi.Size(), want)
			}
			if g := s2.Segments()[0]; g.Packets != uint64(len(pkts)) {
				t.Errorf("rebuilt index: %d packets, want %d", g.Packets, len(pkts))
			}
		})
	}
}
