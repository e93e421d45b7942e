package segstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture/flowindex"
)

// indexMagic starts a flow index file (FORMAT.md).
const indexMagic = "WSFLOWS\x03"

// indexMagicV2 starts an index written before flows counted their
// payload: read as it is (its processes are kept), payload unknown.
const indexMagicV2 = "WSFLOWS\x02"

// Bounds on what an index file may claim, so that a damaged one is
// refused rather than believed.
const (
	maxIndexFlows   = 1 << 24
	maxIndexStrings = 1 << 20
	maxStringLen    = 1 << 10
)

// writeIndex writes a segment's flow index: to a temporary file, synced,
// then renamed over path, and the directory synced.
func writeIndex(path string, g *segment) error { return writeIndexAs(path, g, indexMagic) }

// writeIndexAs writes the index in the version magic starts (indexMagic,
// or indexMagicV2 for tests of reading one).
func writeIndexAs(path string, g *segment, magic string) error {
	// One table holds every string (interface names, process names,
	// cgroup paths, …); flows refer to it by number, 0 being "".
	var strs []string
	strID := map[string]uint64{}
	id := func(s string) uint64 {
		if n, ok := strID[s]; ok {
			return n
		}
		strID[s] = uint64(len(strs))
		strs = append(strs, s)
		return strID[s]
	}
	id("")
	for _, fl := range g.order {
		id(fl.Interface)
		for _, p := range fl.Procs {
			id(p.Comm)
			id(p.Cgroup)
			id(p.ContainerID)
			id(p.PodUID)
		}
	}
	b := []byte(magic)
	b = binary.AppendUvarint(b, g.Seq)
	b = binary.AppendUvarint(b, uint64(g.LinkType))
	b = binary.AppendVarint(b, g.First.UnixNano())
	b = binary.AppendVarint(b, g.Last.UnixNano())
	b = binary.AppendUvarint(b, g.Packets)
	b = binary.AppendUvarint(b, g.Other)
	b = binary.AppendUvarint(b, uint64(len(strs)))
	for _, s := range strs {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(g.order)))
	base := g.First.UnixNano()
	for _, fl := range g.order {
		b = append(b, byte(fl.Proto))
		b = appendAddrPort(b, fl.Src)
		b = appendAddrPort(b, fl.Dst)
		b = binary.AppendVarint(b, fl.First.UnixNano()-base)
		b = binary.AppendVarint(b, fl.Last.UnixNano()-fl.First.UnixNano())
		for i := range 2 {
			b = binary.AppendUvarint(b, fl.Packets[i])
			b = binary.AppendUvarint(b, fl.Bytes[i])
			if magic != indexMagicV2 {
				b = binary.AppendUvarint(b, fl.Payload[i])
			}
		}
		b = append(b, fl.Flags[0], fl.Flags[1])
		b = binary.AppendUvarint(b, strID[fl.Interface])
		for _, p := range fl.Procs {
			b = binary.AppendUvarint(b, uint64(p.PID))
			b = binary.AppendUvarint(b, p.CgroupID)
			for _, s := range []string{p.Comm, p.Cgroup, p.ContainerID, p.PodUID} {
				b = binary.AppendUvarint(b, strID[s])
			}
		}
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))

	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendAddrPort(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr()
	switch {
	case a.Is4():
		b = append(b, 4)
		v := a.As4()
		b = append(b, v[:]...)
	case a.IsValid():
		b = append(b, 16)
		v := a.As16()
		b = append(b, v[:]...)
	default:
		b = append(b, 0)
	}
	return binary.BigEndian.AppendUint16(b, ap.Port())
}

// errIndex is a damaged index.
var errIndex = errors.New("damaged flow index")

// indexReader reads an index's fields, failing once on the first problem.
type indexReader struct {
	b   []byte
	err error
}

func (r *indexReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errIndex, what)
	}
}

func (r *indexReader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *indexReader) varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *indexReader) bytes(n int, what string) []byte {
	if n < 0 || len(r.b) < n {
		r.fail(what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *indexReader) string(what string) string {
	n := r.uvarint(what)
	if n > maxStringLen {
		r.fail(what + " too long")
		return ""
	}
	return string(r.bytes(int(n), what))
}

func (r *indexReader) addrPort(what string) netip.AddrPort {
	l := r.bytes(1, what)
	if l == nil {
		return netip.AddrPort{}
	}
	var a netip.Addr
	switch l[0] {
	case 4:
		if v := r.bytes(4, what); v != nil {
			a = netip.AddrFrom4([4]byte(v))
		}
	case 16:
		if v := r.bytes(16, what); v != nil {
			a = netip.AddrFrom16([16]byte(v))
		}
	case 0:
	default:
		r.fail(what)
	}
	p := r.bytes(2, what)
	if p == nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a, binary.BigEndian.Uint16(p))
}

// readIndex reads a flow index written by writeIndex, checking its
// checksum and bounds.
func readIndex(path string) (*segment, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < len(indexMagic)+4 {
		return nil, fmt.Errorf("%w: not a flow index", errIndex)
	}
	v2 := string(b[:len(indexMagicV2)]) == indexMagicV2
	if string(b[:len(indexMagic)]) != indexMagic && !v2 {
		return nil, fmt.Errorf("%w: not a flow index", errIndex)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, fmt.Errorf("%w: checksum", errIndex)
	}
	r := &indexReader{b: body[len(indexMagic):]}
	g := newSegment(r.uvarint("seq"), layers.LinkType(r.uvarint("link type")))
	g.First = time.Unix(0, r.varint("first")).UTC()
	g.Last = time.Unix(0, r.varint("last")).UTC()
	g.Packets = r.uvarint("packets")
	g.Other = r.uvarint("other")
	nstr := r.uvarint("strings")
	if nstr > maxIndexStrings || nstr == 0 {
		r.fail("strings")
	}
	var strs []string
	for i := uint64(0); i < nstr && r.err == nil; i++ {
		strs = append(strs, r.string("string"))
	}
	str := func(what string) string {
		if n := r.uvarint(what); n < uint64(len(strs)) {
			return strs[n]
		}
		r.fail(what)
		return ""
	}
	n := r.uvarint("flows")
	if n > maxIndexFlows {
		r.fail("flows")
	}
	base := g.First.UnixNano()
	for i := uint64(0); i < n && r.err == nil; i++ {
		fl := &Flow{}
		if p := r.bytes(1, "proto"); p != nil {
			fl.Proto = layers.IPProtocol(p[0])
		}
		fl.Src = r.addrPort("src")
		fl.Dst = r.addrPort("dst")
		first := base + r.varint("first")
		fl.First, fl.Last = time.Unix(0, first).UTC(), time.Unix(0, first+r.varint("last")).UTC()
		for d := range 2 {
			fl.Packets[d] = r.uvarint("packets")
			fl.Bytes[d] = r.uvarint("bytes")
			if !v2 {
				fl.Payload[d] = r.uvarint("payload")
			}
		}
		fl.PayloadUnknown = v2
		if f := r.bytes(2, "flags"); f != nil {
			fl.Flags = [2]uint8{f[0], f[1]}
		}
		fl.Interface = str("interface")
		for i := range fl.Procs {
			p := &fl.Procs[i]
			if pid := r.uvarint("pid"); pid <= 1<<32-1 {
				p.PID = uint32(pid)
			} else {
				r.fail("pid")
			}
			p.CgroupID = r.uvarint("cgroup id")
			p.Comm, p.Cgroup, p.ContainerID, p.PodUID = str("comm"), str("cgroup"), str("container"), str("pod")
		}
		g.flows[flowindex.NewKey(fl.Src, fl.Dst, fl.Proto)] = fl
		g.order = append(g.order, fl)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	return g, nil
}
