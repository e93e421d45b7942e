package segstore_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/segstore"
)

// TestModes: what the store writes (segments, indexes, the lock, snapshots)
// is readable by its owner alone: files 0600 in directories 0700, whatever
// the umask.
func TestModes(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "store")
	c := &clock{t0}
	s := open(t, dir, segstore.Options{SegmentBytes: 32 << 10, MaxBytes: 1 << 20, Now: c.now})
	pkts := traffic(25, t0)
	write(t, s, pkts, "eth0")
	if _, err := s.Snapshot("incident", pkts[0].Timestamp, pkts[len(pkts)-1].Timestamp.Add(time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	write(t, s, traffic(5, pkts[len(pkts)-1].Timestamp.Add(time.Second)), "eth0")
	var files, dirs int
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
			dirs++
		} else {
			files++
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The store, segments, snapshots and the snapshot; the lock, segments
	// and their indexes, the snapshot's links and snapshot.json.
	if dirs != 4 || files < 6 {
		t.Errorf("%d directories and %d files checked, want 4 and at least 6", dirs, files)
	}
}

// TestModesTightened: the segments and snapshots directories of a store an
// older version created world-readable are made 0700 when it is opened; the
// store's directory, which the user may have made, is left as it is.
func TestModesTightened(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"segments", "snapshots"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	open(t, dir, segstore.Options{})
	for d, want := range map[string]fs.FileMode{"": 0o755, "segments": 0o700, "snapshots": 0o700} {
		fi, err := os.Stat(filepath.Join(dir, d))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%q: mode %v, want %v", d, fi.Mode().Perm(), want)
		}
	}
}

// TestRebuildOversizedRecord: a segment without its index that holds a
// record over the reader's limit on packet size (a writer with a larger
// snap length) is indexed without the record, and its file is left whole:
// the end of the last record read is where the reader says it is, not the
// sum of the packets it returned.
func TestRebuildOversizedRecord(t *testing.T) {
	dir := t.TempDir()
	pkts := traffic(1, t0)[:3]
	big := pkts[1]
	big.Data = make([]byte, capture.DefaultMaxPacket+1000)
	copy(big.Data, pkts[1].Data)
	big.Length = len(big.Data)
	var buf bytes.Buffer
	w := pcapgo.NewWriterNanos(&buf)
	if err := w.WriteFileHeader(1<<20, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, p := range []capture.Packet{pkts[0], big, pkts[2]} {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: p.Timestamp, CaptureLength: len(p.Data), Length: len(p.Data)}, p.Data); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "segments", "000000000001-lt1.pcap")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, segstore.Options{})
	segs := s.Segments()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != int64(buf.Len()) {
		t.Errorf("the segment was cut from %d to %d bytes", buf.Len(), fi.Size())
	}
	if len(segs) != 1 || segs[0].Packets != 2 || segs[0].Size != int64(buf.Len()) {
		t.Errorf("segments %+v, want one of 2 packets and %d bytes", segs, buf.Len())
	}
}

// TestUnreadableSegment: a segment recovery cannot read (not a capture) is
// left as it is, and its sequence number is not given to a new segment:
// the store goes on writing after it.
func TestUnreadableSegment(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "segments", "000000000001-lt1.pcap")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	junk := []byte("this is not a capture file at all")
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, segstore.Options{})
	write(t, s, traffic(1, t0), "eth0")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, junk) {
		t.Errorf("the unreadable segment was changed: %q %v", b, err)
	}
}
