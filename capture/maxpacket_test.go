package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// zeros yields n zero bytes without holding them.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// hostilePcap streams a classic pcap that declares a snap length of 2^31 and
// holds a small packet, a record of huge zero bytes, then another small
// packet. It returns the stream and the offset of the huge record.
func hostilePcap(t testing.TB, huge int64) (io.Reader, int64) {
	fs := frames(t, 2)
	le := binary.LittleEndian
	head := pcapOf(t, layers.LinkTypeRaw, false, fs[0])
	le.PutUint32(head[16:20], 1<<31) // snap length
	off := int64(len(head))
	rec := le.AppendUint32(nil, 1)
	rec = le.AppendUint32(rec, 0)
	rec = le.AppendUint32(rec, uint32(huge))
	rec = le.AppendUint32(rec, uint32(huge))
	tail := pcapOf(t, layers.LinkTypeRaw, false, fs[1])[24:]
	return io.MultiReader(bytes.NewReader(head), bytes.NewReader(rec), &zeros{huge}, bytes.NewReader(tail)), off
}

// gzipStream compresses r on the fly.
func gzipStream(r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		_, err := io.Copy(zw, r)
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

// readHostile reads src to its end and returns the packets' payload sizes,
// the warnings and how many bytes were allocated meanwhile.
func readHostile(t *testing.T, src *File) ([]int, []Warning, uint64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var sizes []int
	var p Packet
	for {
		err := src.Next(&p)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		sizes = append(sizes, len(p.Data))
	}
	runtime.ReadMemStats(&after)
	return sizes, src.Warnings(), after.TotalAlloc - before.TotalAlloc
}

// TestReadHugePacketGzip reads a gzip'd pcap that declares a snap length of
// 2^31 and holds a 64 MiB record between two small packets: the record is
// skipped and reported with its offset and size, never allocated, and the
// packet after it is read.
func TestReadHugePacketGzip(t *testing.T) {
	const huge = 64 << 20
	r, off := hostilePcap(t, huge)
	src, err := NewReader("hostile.pcap.gz", gzipStream(r))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sizes, warns, alloc := readHostile(t, src)
	// The read buffer (1 MiB) and gzip's state are all the reader needs; the
	// compressing goroutine allocates too. A copy of the record would be 64 MiB.
	if alloc > 16<<20 {
		t.Errorf("reading allocated %d bytes, want under 16 MiB", alloc)
	}
	checkHugeSkipped(t, src, sizes, warns, off, huge)
}

// TestReadHugePacketNoAlloc reads a record of 1 GiB the same way (not
// compressed, so that the test is quick): it is skipped by discarding, with
// allocations far below its size.
func TestReadHugePacketNoAlloc(t *testing.T) {
	const huge = 1 << 30
	r, off := hostilePcap(t, huge)
	src, err := NewReader("hostile.pcap", r)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sizes, warns, alloc := readHostile(t, src)
	if alloc > 4<<20 {
		t.Errorf("reading allocated %d bytes, want under 4 MiB", alloc)
	}
	checkHugeSkipped(t, src, sizes, warns, off, huge)
}

func checkHugeSkipped(t *testing.T, src *File, sizes []int, warns []Warning, off int64, huge int) {
	t.Helper()
	fs := frames(t, 2)
	if len(sizes) != 2 || sizes[0] != len(fs[0]) || sizes[1] != len(fs[1]) {
		t.Errorf("packets of %v bytes, want the two small ones (%d and %d bytes)", sizes, len(fs[0]), len(fs[1]))
	}
	want := fmt.Sprintf("packet of %d bytes at offset %d exceeds the 262144-byte limit; skipped", huge, off)
	if len(warns) != 1 || warns[0].Offset != off || !strings.Contains(warns[0].String(), want) {
		t.Fatalf("warnings %v, want one saying %q", warns, want)
	}
	if src.Skipped() != 1 || !warns[0].Skipped || src.Packets() != 2 {
		t.Errorf("%d skipped (warning marked skipped: %v), %d packets; want 1 and 2", src.Skipped(), warns[0].Skipped, src.Packets())
	}
}

// TestReadManySkipped skips 20 packets over the limit: each of the first 16
// has a warning, one more counts the rest, and every packet between them is
// read.
func TestReadManySkipped(t *testing.T) {
	fs := frames(t, 21)
	var frs [][]byte
	for i, f := range fs {
		frs = append(frs, f)
		if i < 20 {
			frs = append(frs, make([]byte, 300<<10))
		}
	}
	src, err := NewReader("many.pcap", bytes.NewReader(pcapOf(t, layers.LinkTypeRaw, false, frs...)))
	if err != nil {
		t.Fatal(err)
	}
	got, warns := readAll(t, src)
	if len(got) != 21 || src.Skipped() != 20 || len(warns) != 17 {
		t.Fatalf("%d packets, %d skipped, %d warnings; want 21, 20 and 17", len(got), src.Skipped(), len(warns))
	}
	for i, p := range got {
		if !bytes.Equal(p.Data, fs[i]) {
			t.Errorf("packet %d differs", i)
		}
	}
	last := warns[16]
	if !last.Skipped || !strings.Contains(last.String(), "4 more packets over the 262144-byte limit skipped") {
		t.Errorf("last warning %q does not count the rest", last)
	}
	// A higher limit reads them all.
	src, _ = NewReader("many.pcap", bytes.NewReader(pcapOf(t, layers.LinkTypeRaw, false, frs...)), MaxPacket(300<<10))
	if got, warns := readAll(t, src); len(got) != 41 || len(warns) != 0 {
		t.Errorf("MaxPacket(300 KiB): %d packets, warnings %v; want 41 and none", len(got), warns)
	}
}

// ngBlock frames a pcapng block (little-endian) around body.
func ngBlock(typ uint32, body []byte) []byte {
	le := binary.LittleEndian
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	b := le.AppendUint32(nil, typ)
	b = le.AppendUint32(b, uint32(12+len(body)))
	b = append(b, body...)
	return le.AppendUint32(b, uint32(12+len(body)))
}

// hostilePcapng streams a pcapng section with a packet, an interface
// statistics block, an Enhanced Packet Block of huge zero bytes, then another
// packet. It returns the stream and the offset of the huge block.
func hostilePcapng(t *testing.T, huge int64) (io.Reader, int64) {
	fs := frames(t, 2)
	le := binary.LittleEndian
	head := ngSection(t, []layers.LinkType{layers.LinkTypeRaw}, []uint8{6}, fs[:1], time.Unix(1, 0))
	isb := le.AppendUint32(nil, 0)
	isb = le.AppendUint64(isb, 0)
	head = append(head, ngBlock(5, append(isb, 0, 0, 0, 0))...)
	off := int64(len(head))
	epb := le.AppendUint32(nil, 6)
	epb = le.AppendUint32(epb, uint32(32+huge))
	epb = le.AppendUint32(epb, 0) // interface
	epb = le.AppendUint64(epb, 0) // timestamp
	epb = le.AppendUint32(epb, uint32(huge))
	epb = le.AppendUint32(epb, uint32(huge))
	tail := le.AppendUint32(nil, uint32(32+huge))
	body := le.AppendUint32(nil, 0)
	body = le.AppendUint64(body, 0)
	body = le.AppendUint32(body, uint32(len(fs[1])))
	body = le.AppendUint32(body, uint32(len(fs[1])))
	tail = append(tail, ngBlock(6, append(body, fs[1]...))...)
	return io.MultiReader(bytes.NewReader(head), bytes.NewReader(epb), &zeros{huge}, bytes.NewReader(tail)), off
}

// TestReadHugeBlockPcapng reads a pcapng file with an Enhanced Packet Block
// of 1 GiB between two small packets (an interface statistics block before
// it): the block is skipped and reported, never allocated.
func TestReadHugeBlockPcapng(t *testing.T) {
	const huge = 1 << 30
	r, off := hostilePcapng(t, huge)
	src, err := NewReader("hostile.pcapng", r)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sizes, warns, alloc := readHostile(t, src)
	if alloc > 4<<20 {
		t.Errorf("reading allocated %d bytes, want under 4 MiB", alloc)
	}
	checkHugeSkipped(t, src, sizes, warns, off, huge)

	// A limit above the read buffer reads a block larger than it.
	r, _ = hostilePcapng(t, 3<<19)
	src, err = NewReader("large.pcapng", r, MaxPacket(2<<20))
	if err != nil {
		t.Fatal(err)
	}
	got, warns := readAll(t, src)
	if len(got) != 3 || len(got[1].Data) != 3<<19 || len(warns) != 0 {
		t.Errorf("MaxPacket(2 MiB): %d packets, warnings %v; want 3, the second of 1.5 MiB", len(got), warns)
	}
}

// TestReadNonsenseBlockLength reads pcapng blocks whose length cannot be:
// reading stops there with an error that says so, not "unexpected EOF".
func TestReadNonsenseBlockLength(t *testing.T) {
	fs := frames(t, 1)
	le := binary.LittleEndian
	good := ngSection(t, []layers.LinkType{layers.LinkTypeRaw}, []uint8{6}, fs, time.Unix(1, 0))
	for name, tc := range map[string]struct {
		blen uint32
		want string
	}{
		"shorter than a block":           {7, "block length 7"},
		"not a multiple of 4":            {1001, "block length 1001"},
		"shorter than its packet header": {16, "block length 16"},
	} {
		bad := le.AppendUint32(nil, 6)
		bad = le.AppendUint32(bad, tc.blen)
		bad = append(bad, make([]byte, 64)...)
		src, err := NewReader("nonsense.pcapng", bytes.NewReader(append(append([]byte(nil), good...), bad...)))
		if err != nil {
			t.Fatal(err)
		}
		got, warns := readAll(t, src)
		if len(got) != 1 || len(warns) != 1 || warns[0].Offset != int64(len(good)) ||
			!strings.Contains(warns[0].Err.Error(), tc.want) || errors.Is(warns[0].Err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: %d packets, warnings %v; want 1 packet and a warning at %d saying %q", name, len(got), warns, len(good), tc.want)
		}
	}
}
