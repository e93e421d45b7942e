package source_test

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/capture/flowindex"
	"github.com/wirescope/wirescope/capture/segstore"
	"github.com/wirescope/wirescope/capture/source"
)

// writeCapture writes conns HTTP connections starting at start to a pcap
// file in dir and returns its path.
func writeCapture(t *testing.T, dir, name string, conns int, start time.Time) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := capturetest.NewPCAPWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	capturetest.Load{Conns: conns, Requests: 2, Start: start}.Emit(w.Emit)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return path
}

func packets(t *testing.T, s source.Source) int {
	t.Helper()
	src, err := s.Packets(context.Background(), time.Time{}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	n := 0
	var p capture.Packet
	for {
		err := src.Next(&p)
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
}

// refreshing is a part that can fail its refresh, as an agent that stops
// answering does: a real Files source underneath.
type refreshing struct {
	*source.Files
	fail error
}

func (r *refreshing) Refresh(context.Context) (bool, error) { return false, r.fail }

// TestFanout: parts join and leave as discovery lists them; a part whose
// refresh fails is left out of every answer and named by Missing, and
// comes back when it answers; the fan-out fails only when no part
// answers.
func TestFanout(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	paths := map[string]string{
		"node-a": writeCapture(t, dir, "a.pcap", 3, t0),
		"node-b": writeCapture(t, dir, "b.pcap", 5, t0.Add(time.Minute)),
	}
	parts := map[string]*refreshing{}
	listed := []string{"node-a"}
	fan := source.NewFanout(source.FanoutOptions{
		Discover: func(context.Context) ([]string, error) { return slices.Clone(listed), nil },
		New: func(key string) (source.Source, error) {
			f, err := source.OpenFiles([]string{paths[key]}, 0)
			if err != nil {
				return nil, err
			}
			parts[key] = &refreshing{Files: f}
			return parts[key], nil
		},
	})
	ctx := context.Background()
	changed, err := fan.Refresh(ctx)
	if err != nil || !changed || len(fan.Parts()) != 1 {
		t.Fatalf("first refresh: changed %v, %v, %d parts", changed, err, len(fan.Parts()))
	}
	one := packets(t, fan)
	listed = append(listed, "node-b")
	if changed, err := fan.Refresh(ctx); err != nil || !changed || len(fan.Parts()) != 2 {
		t.Fatalf("node-b joining: changed %v, %v, %d parts", changed, err, len(fan.Parts()))
	}
	both := packets(t, fan)
	if one == 0 || both <= one {
		t.Errorf("packets: %d with node-a, %d with both", one, both)
	}
	if first, last := fan.Bounds(); !first.Equal(t0) || !last.After(t0.Add(time.Minute)) {
		t.Errorf("bounds %v – %v", first, last)
	}
	if changed, _ := fan.Refresh(ctx); changed {
		t.Error("a refresh with nothing new reported a change")
	}

	parts["node-b"].fail = errors.New("connection refused")
	if changed, err := fan.Refresh(ctx); err != nil || !changed {
		t.Fatalf("node-b failing: changed %v, %v", changed, err)
	}
	if n := packets(t, fan); n != one {
		t.Errorf("with node-b unreachable, %d packets, want node-a's %d", n, one)
	}
	m := fan.Missing()
	if len(m) != 1 || !strings.Contains(m[0], "unreachable since") || !strings.Contains(m[0], "connection refused") {
		t.Errorf("missing %q", m)
	}
	st := fan.Status(ctx)
	var states []string
	for _, p := range st.Parts {
		states = append(states, p.State)
	}
	slices.Sort(states)
	if !slices.Equal(states, []string{"unreachable", "up"}) {
		t.Errorf("states %v", states)
	}

	parts["node-a"].fail = errors.New("timeout")
	if _, err := fan.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "no capture source answered") {
		t.Errorf("no part answering: %v", err)
	}
	parts["node-a"].fail, parts["node-b"].fail = nil, nil
	if _, err := fan.Refresh(ctx); err != nil || len(fan.Missing()) != 0 || packets(t, fan) != both {
		t.Errorf("all back: %v, missing %v", err, fan.Missing())
	}

	listed = []string{"node-b"}
	if changed, err := fan.Refresh(ctx); err != nil || !changed || len(fan.Parts()) != 1 || fan.Parts()[0] != source.Source(parts["node-b"]) {
		t.Errorf("node-a leaving: changed %v, %v, %d parts", changed, err, len(fan.Parts()))
	}
}

// TestFlowSet: pieces of one flow, in either orientation, sum into one
// summary oriented as the first piece.
func TestFlowSet(t *testing.T) {
	a, b := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	s := source.NewFlowSet()
	s.Add(&segstore.Flow{Proto: layers.IPProtocolTCP, Src: a, Dst: b, First: t0.Add(time.Second), Last: t0.Add(2 * time.Second),
		Packets: [2]uint64{3, 2}, Bytes: [2]uint64{300, 200}, Payload: [2]uint64{30, 0}, Flags: [2]uint8{1, 2}})
	s.Add(&segstore.Flow{Proto: layers.IPProtocolTCP, Src: b, Dst: a, First: t0, Last: t0.Add(5 * time.Second),
		Packets: [2]uint64{7, 1}, Bytes: [2]uint64{700, 100}, Payload: [2]uint64{70, 10}, Flags: [2]uint8{4, 8}})
	s.Add(&segstore.Flow{Proto: layers.IPProtocolUDP, Src: a, Dst: b, First: t0, Last: t0,
		Packets: [2]uint64{1, 0}, Bytes: [2]uint64{60, 0}, PayloadUnknown: true})
	got := s.Summaries()
	if len(got) != 2 {
		t.Fatalf("%d summaries, want 2", len(got))
	}
	tcp := got[slices.IndexFunc(got, func(x flowindex.Summary) bool { return x.Proto == layers.IPProtocolTCP })]
	if tcp.Src != a || tcp.Packets != [2]uint64{4, 9} || tcp.Bytes != [2]uint64{400, 900} || tcp.Payload != [2]uint64{40, 70} ||
		tcp.PayloadUnknown || tcp.Flags != [2]uint8{1 | 8, 2 | 4} ||
		!tcp.First.Equal(t0) || !tcp.Last.Equal(t0.Add(5*time.Second)) {
		t.Errorf("tcp %+v", tcp)
	}
	if udp := got[slices.IndexFunc(got, func(x flowindex.Summary) bool { return x.Proto == layers.IPProtocolUDP })]; !udp.PayloadUnknown {
		t.Errorf("udp %+v: its payload was not counted", udp)
	}
}
