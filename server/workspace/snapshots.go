package workspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture/flowindex"
	"github.com/wirescope/wirescope/capture/segstore"
	"github.com/wirescope/wirescope/capture/source"
	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/tools"
)

// maxSnapshotFlows bounds the flows a filtered snapshot records.
const maxSnapshotFlows = 100_000

// snapMeta is what the hub keeps of a snapshot beside the agents' frozen
// segments: the filter it was made with and the flows that matched.
type snapMeta struct {
	Name    string       `json:"name"`
	From    time.Time    `json:"from"`
	To      time.Time    `json:"to"`
	Created time.Time    `json:"created"`
	Filter  tools.Filter `json:"filter"`
	Flows   []label      `json:"flows,omitempty"`
}

func (g *Growing) snapshotter() (source.Snapshotter, error) {
	sn, ok := g.src.(source.Snapshotter)
	if !ok {
		return nil, tools.ErrNoSnapshots
	}
	return sn, nil
}

func (g *Growing) snapDir(name string) string { return filepath.Join(g.opts.Dir, "snapshots", name) }

// CreateSnapshot implements tools.Snapshots. With a filter, the flows of
// the window matching it now (with the identities known now) are what the
// snapshot reads later.
func (g *Growing) CreateSnapshot(ctx context.Context, name string, from, to time.Time, f tools.Filter) (tools.Snapshot, error) {
	sn, err := g.snapshotter()
	if err != nil {
		return tools.Snapshot{}, err
	}
	if !segstore.ValidSnapshotName(name) {
		return tools.Snapshot{}, fmt.Errorf("snapshot name %q: use letters, digits, '.', '_' and '-' (at most 100, not starting with a sign)", name)
	}
	if _, err := os.Stat(g.snapDir(name)); err == nil {
		return tools.Snapshot{}, fmt.Errorf("snapshot %q exists: delete_snapshot it first, or choose another name", name)
	}
	meta := snapMeta{Name: name, From: from, To: to, Created: time.Now().UTC(), Filter: f}
	if !f.IsZero() {
		ws, err := g.cur()
		if err != nil {
			return tools.Snapshot{}, err
		}
		flows, err := ws.Flows(ctx, from, to, f)
		if err != nil {
			return tools.Snapshot{}, err
		}
		if len(flows) == 0 {
			return tools.Snapshot{}, errors.New("no flows in that window match the filters: nothing to snapshot")
		}
		if len(flows) > maxSnapshotFlows {
			return tools.Snapshot{}, fmt.Errorf("%d flows match: narrow the filters or the window (at most %d)", len(flows), maxSnapshotFlows)
		}
		for _, fl := range flows {
			p, _ := dissect.TransportProto(fl.Transport)
			meta.Flows = append(meta.Flows, label{A: netip.AddrPortFrom(fl.Src.IP, fl.Src.Port), B: netip.AddrPortFrom(fl.Dst.IP, fl.Dst.Port), Proto: uint8(p)})
		}
	}
	infos, err := sn.CreateSnapshot(ctx, name, from, to)
	if len(infos) == 0 && err != nil {
		return tools.Snapshot{}, err
	}
	// Some nodes froze it: keep what they did, and say what failed.
	if werr := writeMeta(g.snapDir(name), meta); werr != nil {
		return tools.Snapshot{}, errors.Join(err, werr)
	}
	return snapshotOf(meta, infos), err
}

func writeMeta(dir string, m snapMeta) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "snapshot.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "snapshot.json"))
}

func (g *Growing) readMeta(name string) (snapMeta, bool) {
	var m snapMeta
	b, err := os.ReadFile(filepath.Join(g.snapDir(name), "snapshot.json"))
	if err != nil || json.Unmarshal(b, &m) != nil || m.Name != name {
		return m, false
	}
	return m, true
}

func snapshotOf(m snapMeta, infos []source.SnapshotInfo) tools.Snapshot {
	s := tools.Snapshot{Name: m.Name, From: m.From, To: m.To, Created: m.Created, Filter: m.Filter, Flows: len(m.Flows)}
	for _, in := range infos {
		s.Parts = append(s.Parts, tools.SnapshotPart{Part: in.Part, Segments: in.Segments})
		if s.Created.IsZero() || (!in.Created.IsZero() && in.Created.Before(s.Created)) {
			s.Created = in.Created
		}
		if s.From.IsZero() && s.To.IsZero() {
			s.From, s.To = in.From, in.To
		}
	}
	return s
}

// ListSnapshots implements tools.Snapshots: the nodes' snapshots by name,
// with the filters the hub recorded.
func (g *Growing) ListSnapshots(ctx context.Context) ([]tools.Snapshot, error) {
	sn, err := g.snapshotter()
	if err != nil {
		return nil, err
	}
	infos, err := sn.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string][]source.SnapshotInfo{}
	var names []string
	for _, in := range infos {
		if _, ok := byName[in.Name]; !ok {
			names = append(names, in.Name)
		}
		byName[in.Name] = append(byName[in.Name], in)
	}
	slices.Sort(names)
	var out []tools.Snapshot
	for _, n := range names {
		m, _ := g.readMeta(n)
		m.Name = n
		out = append(out, snapshotOf(m, byName[n]))
	}
	return out, nil
}

// DeleteSnapshot implements tools.Snapshots: on every node, with the
// hub's index of it.
func (g *Growing) DeleteSnapshot(ctx context.Context, name string) error {
	sn, err := g.snapshotter()
	if err != nil {
		return err
	}
	if !segstore.ValidSnapshotName(name) {
		return fmt.Errorf("snapshot name %q is not valid", name)
	}
	if err := sn.DeleteSnapshot(ctx, name); err != nil {
		return err
	}
	g.snapMu.Lock()
	if ws := g.snaps[name]; ws != nil {
		ws.Close()
		delete(g.snaps, name)
	}
	g.snapMu.Unlock()
	return os.RemoveAll(g.snapDir(name))
}

// OpenSnapshot implements tools.Snapshots: a workspace over the snapshot,
// its index under the data directory's snapshots/NAME, kept open (and on
// disk) until the snapshot is deleted.
func (g *Growing) OpenSnapshot(ctx context.Context, name string) (tools.Backend, error) {
	sn, err := g.snapshotter()
	if err != nil {
		return nil, err
	}
	if !segstore.ValidSnapshotName(name) {
		return nil, fmt.Errorf("snapshot name %q is not valid", name)
	}
	g.snapMu.Lock()
	defer g.snapMu.Unlock()
	if ws := g.snaps[name]; ws != nil {
		return ws, nil
	}
	src, err := sn.OpenSnapshot(ctx, name)
	if err != nil {
		return nil, err
	}
	if m, ok := g.readMeta(name); ok && len(m.Flows) > 0 {
		keys := make([]flowindex.Key, len(m.Flows))
		for i, l := range m.Flows {
			keys[i] = flowindex.NewKey(l.A, l.B, layers.IPProtocol(l.Proto))
		}
		src = source.Only(src, keys)
	}
	o := g.opts
	o.Source = src
	o.Dir = filepath.Join(g.snapDir(name), "ws")
	ws, err := Open(o)
	if err != nil {
		return nil, err
	}
	if g.snaps == nil {
		g.snaps = map[string]*Workspace{}
	}
	g.snaps[name] = ws
	return ws, nil
}

// closeSnapshots closes the snapshots' workspaces.
func (g *Growing) closeSnapshots() {
	g.snapMu.Lock()
	defer g.snapMu.Unlock()
	for name, ws := range g.snaps {
		ws.Close()
		delete(g.snaps, name)
	}
}
