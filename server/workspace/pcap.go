package workspace

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/flowindex"
	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/tools"
)

// ErrNoPCAP is returned for a PCAP ID the workspace does not hold.
var ErrNoPCAP = errors.New("no such PCAP file (it may have been removed to bound disk use)")

// snapLen is the snap length written in PCAP headers: packets are copied
// as captured, so no larger than any capture's.
const snapLen = 262144

// idLen is how many hex digits of a file's SHA-256 make its ID.
const idLen = 16

// WritePCAP implements tools.Backend. The packets of [from, to) that belong
// to flows matching f are written in time order, as captured, to
// <dir>/pcaps/<sha256>.pcap (pcapng when the window mixes link types). IP
// fragments are kept with a matching flow when their addresses are its
// hosts'. A file with the same content is written once.
func (w *Workspace) WritePCAP(ctx context.Context, from, to time.Time, f tools.Filter, maxPackets int) (tools.PCAPFile, error) {
	var sel *flowindex.Selector
	if !f.IsZero() {
		flows, err := w.Flows(ctx, from, to, f)
		if err != nil {
			return tools.PCAPFile{}, err
		}
		sel = flowindex.NewSelector()
		for _, fl := range flows {
			p, _ := dissect.TransportProto(fl.Transport)
			sel.Add(netip.AddrPortFrom(fl.Src.IP, fl.Src.Port), netip.AddrPortFrom(fl.Dst.IP, fl.Dst.Port), p)
		}
		if sel.Len() == 0 {
			return tools.PCAPFile{}, nil
		}
	}

	tmp, err := os.CreateTemp(filepath.Join(w.dir, "pcaps"), "export-*.tmp")
	if err != nil {
		return tools.PCAPFile{}, err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	file, err := w.export(ctx, tmp, from, to, sel, maxPackets)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil || file.Packets == 0 {
		return tools.PCAPFile{}, err
	}
	file.ID = file.SHA256[:idLen]
	file.Path = filepath.Join(w.dir, "pcaps", file.SHA256+"."+file.Format)
	if err := os.Rename(tmp.Name(), file.Path); err != nil {
		return tools.PCAPFile{}, err
	}
	w.mu.Lock()
	w.pcaps = slices.DeleteFunc(w.pcaps, func(p tools.PCAPFile) bool { return p.ID == file.ID })
	w.pcaps = append(w.pcaps, file)
	w.prunePCAPs()
	w.mu.Unlock()
	return file, nil
}

// export writes the packets of [from, to) that sel keeps (all when nil)
// to out.
func (w *Workspace) export(ctx context.Context, out io.Writer, from, to time.Time, sel *flowindex.Selector, maxPackets int) (tools.PCAPFile, error) {
	var file tools.PCAPFile
	links := w.src.LinkTypes(from, to)
	if len(links) == 0 {
		return file, nil
	}
	src, err := w.src.Packets(ctx, from, to, sel)
	if err != nil {
		return file, err
	}
	defer src.Close()

	sum := sha256.New()
	var size counter
	pw, err := capture.NewWriter(io.MultiWriter(out, sum, &size), links, snapLen)
	if err != nil {
		return file, err
	}
	file.Format = pw.Format
	var p capture.Packet
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return file, ctx.Err()
		}
		if err := src.Next(&p); err != nil {
			if err == io.EOF {
				break
			}
			return file, err
		}
		if !slices.Contains(links, p.LinkType) {
			continue // a link type the source did not list (a node's new interface)
		}
		if file.Packets == uint64(maxPackets) {
			file.Truncated = true
			break
		}
		if err := pw.Write(&p); err != nil {
			return file, err
		}
		if file.Packets == 0 {
			file.First = p.Timestamp
		}
		file.Last = p.Timestamp
		file.Packets++
	}
	if err := pw.Flush(); err != nil {
		return file, err
	}
	file.Size = int64(size)
	file.SHA256 = hex.EncodeToString(sum.Sum(nil))
	return file, nil
}

// counter counts the bytes written to it.
type counter int64

func (c *counter) Write(b []byte) (int, error) {
	*c += counter(len(b))
	return len(b), nil
}

// ReadPCAP implements tools.Backend. Only a file this workspace wrote is
// served: opened without following a symlink, a regular file owned by the
// server's user, in <dir>/pcaps under its SHA-256, of the size recorded,
// and read back only when its bytes hash to that SHA-256. Anything else is
// refused as ErrNoPCAP. With limit 0 (or any limit below the size) the
// file is checked but not read.
func (w *Workspace) ReadPCAP(id string, limit int64) (tools.PCAPFile, []byte, error) {
	w.mu.RLock()
	i := slices.IndexFunc(w.pcaps, func(p tools.PCAPFile) bool { return p.ID == id })
	var file tools.PCAPFile
	if i >= 0 {
		file = w.pcaps[i]
	}
	w.mu.RUnlock()
	if i < 0 {
		return file, nil, fmt.Errorf("%w: %q", ErrNoPCAP, id)
	}
	f, err := w.openPCAP(file)
	if err != nil {
		return file, nil, fmt.Errorf("%w: %q: %v", ErrNoPCAP, id, err)
	}
	defer f.Close()
	if file.Size > limit {
		return file, nil, nil
	}
	data := make([]byte, file.Size)
	if _, err := io.ReadFull(f, data); err != nil {
		return file, nil, fmt.Errorf("read %s: %w", filepath.Base(file.Path), err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != file.SHA256 {
		return file, nil, fmt.Errorf("%w: %q: the file no longer holds the bytes get_pcap wrote (its sha256 differs)", ErrNoPCAP, id)
	}
	return file, data, nil
}

// openPCAP opens an exported file after checking it is one the workspace
// wrote: see ReadPCAP.
func (w *Workspace) openPCAP(file tools.PCAPFile) (*os.File, error) {
	dir := filepath.Join(w.dir, "pcaps")
	if filepath.Dir(file.Path) != dir || filepath.Base(file.Path) != file.SHA256+"."+file.Format {
		return nil, errors.New("not a file of the export directory")
	}
	f, err := os.OpenFile(file.Path, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		// A symlink fails with ELOOP. The path stays on the server.
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case !fi.Mode().IsRegular():
		err = errors.New("not a regular file")
	case !ownedByUs(fi):
		err = errors.New("not owned by the server's user")
	case fi.Size() != file.Size:
		err = fmt.Errorf("%d bytes where %d were written", fi.Size(), file.Size)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// loadPCAPs lists the files an earlier run exported, oldest first, so that
// their URIs keep working and they count towards the bounds.
func (w *Workspace) loadPCAPs() {
	entries, _ := os.ReadDir(filepath.Join(w.dir, "pcaps"))
	type found struct {
		file tools.PCAPFile
		mod  time.Time
	}
	var all []found
	for _, e := range entries {
		name, format, _ := strings.Cut(e.Name(), ".")
		if format != "pcap" && format != "pcapng" {
			continue
		}
		if _, err := hex.DecodeString(name); err != nil || len(name) != 2*sha256.Size {
			continue
		}
		// Only regular files the server's user owns: a symlink planted
		// here would otherwise be served.
		info, err := e.Info()
		if err != nil || !e.Type().IsRegular() || !ownedByUs(info) {
			continue
		}
		all = append(all, found{tools.PCAPFile{ID: name[:idLen], Path: filepath.Join(w.dir, "pcaps", e.Name()),
			Size: info.Size(), SHA256: name, Format: format}, info.ModTime()})
	}
	slices.SortFunc(all, func(a, b found) int { return a.mod.Compare(b.mod) })
	for _, f := range all {
		w.pcaps = append(w.pcaps, f.file)
	}
	w.prunePCAPs()
}

// prunePCAPs removes the oldest exported files past the bounds; the newest
// stays whatever its size. Callers hold mu (or own w).
func (w *Workspace) prunePCAPs() {
	var total int64
	for _, p := range w.pcaps {
		total += p.Size
	}
	for len(w.pcaps) > 1 && (len(w.pcaps) > w.opts.KeepPCAPs || total > w.opts.KeepPCAPBytes) {
		os.Remove(w.pcaps[0].Path)
		total -= w.pcaps[0].Size
		w.pcaps = w.pcaps[1:]
	}
}
