package workspace_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/index"
	"github.com/wirescope/wirescope/internal/corpus"
	"github.com/wirescope/wirescope/internal/demo"
	"github.com/wirescope/wirescope/server/workspace"
	"github.com/wirescope/wirescope/tools"
)

func open(t *testing.T, opts workspace.Options) *workspace.Workspace {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	ws, err := workspace.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func demoPath(t *testing.T) string {
	t.Helper()
	p, err := demo.WriteTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// calls lists every indexed call as "id status method path".
func calls(t *testing.T, ws *workspace.Workspace) []string {
	t.Helper()
	var out []string
	q := index.Query{Limit: 1000}
	for {
		res, err := ws.Index().Search(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range res.Calls {
			out = append(out, c.ID+" "+c.Status+" "+c.Method+" "+c.Path+" "+c.Src.IP.String())
		}
		if res.Next == "" {
			break
		}
		q.Cursor = res.Next
	}
	slices.Sort(out)
	return out
}

// TestWindowedDissection: dissecting a capture window by window, in any
// order and overlapping, indexes exactly the calls one dissection of the
// whole finds, with the same IDs, and never dissects a part twice.
func TestWindowedDissection(t *testing.T) {
	path := demoPath(t)
	ctx := context.Background()
	whole := open(t, workspace.Options{Paths: []string{path}})
	if _, err := whole.Dissect(ctx, time.Time{}, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	want := calls(t, whole)
	if len(want) != 288 {
		t.Fatalf("whole capture: %d calls", len(want))
	}

	ws := open(t, workspace.Options{Paths: []string{path}})
	first, last := ws.Bounds()
	at := func(s int) time.Time { return first.Add(time.Duration(s) * time.Second) }
	var inside uint64
	for _, step := range []struct {
		from, to           time.Time
		dissected, skipped int // windows
	}{
		{at(10), at(20), 1, 0},
		{at(40), at(50), 1, 0},
		{at(15), at(45), 1, 2},           // only 20–40 is new
		{at(12), at(18), 0, 1},           // all done before
		{time.Time{}, time.Time{}, 2, 1}, // before 10 and after 50; 10–50 is one window now
	} {
		gaps, packets := ws.Undissected(step.from, step.to)
		res, err := ws.Dissect(ctx, step.from, step.to, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Dissected) != step.dissected || len(res.Skipped) != step.skipped {
			t.Errorf("%v–%v: dissected %v, skipped %v", step.from, step.to, res.Dissected, res.Skipped)
		}
		if !slices.Equal(gaps, res.Dissected) {
			t.Errorf("%v–%v: Undissected said %v, Dissect did %v", step.from, step.to, gaps, res.Dissected)
		}
		inside += res.Packets
		if res.Packets > packets {
			t.Errorf("%v–%v: read %d packets, Undissected bounded them by %d", step.from, step.to, res.Packets, packets)
		}
	}
	if gaps, _ := ws.Undissected(time.Time{}, time.Time{}); len(gaps) != 0 {
		t.Errorf("still undissected: %v", gaps)
	}
	st, _ := ws.Status(ctx)
	if len(st.Dissected) != 1 || !st.Dissected[0].From.Equal(first) || !st.Dissected[0].To.After(last) {
		t.Errorf("dissected windows %v, capture %v–%v", st.Dissected, first, last)
	}
	if inside != st.Packets {
		t.Errorf("the windows dissected hold %d packets; the capture %d", inside, st.Packets)
	}
	if st.Calls["http"] != 288 {
		t.Errorf("status counts %v calls", st.Calls)
	}
	got := calls(t, ws)
	if !slices.Equal(got, want) {
		t.Errorf("windowed: %d calls, whole: %d; first difference %v", len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] + " ≠ " + b[i]
		}
	}
	return "in length"
}

// TestFlows: flows are listed largest first with a protocol guessed from
// their first bytes until they are dissected, encrypted ones marked, and
// TCP states derived from the flags each side sent.
func TestFlows(t *testing.T) {
	dir, ok := corpus.Dir()
	if !ok {
		t.Fatal("the shared corpus (../shared/corpus) is missing")
	}
	synth := filepath.Join(t.TempDir(), "states.pcap")
	f, err := capturetest.CreatePCAP(synth)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	emit := func(p capture.Packet) { f.Emit(p) }
	closed := capturetest.NewConn("10.0.0.2:40001", "10.0.0.9:5432", t0, emit)
	closed.Handshake()
	closed.Send(true, []byte("\x00\x00\x00\x08\x04\xd2\x16\x2f"))
	closed.Close()
	reset := capturetest.NewConn("10.0.0.2:40002", "10.0.0.9:5432", t0.Add(time.Second), emit)
	reset.Handshake()
	reset.Reset(false)
	refused := capturetest.NewConn("10.0.0.2:40003", "10.0.0.9:9999", t0.Add(2*time.Second), emit)
	refused.SYN()
	refused.Reset(false)
	unanswered := capturetest.NewConn("10.0.0.2:40004", "10.0.0.9:9999", t0.Add(3*time.Second), emit)
	unanswered.SYN()
	live := capturetest.NewConn("10.0.0.2:40005", "10.0.0.9:6379", t0.Add(4*time.Second), emit)
	live.Handshake()
	live.Send(true, []byte("PING\r\n"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	ws := open(t, workspace.Options{Paths: []string{synth, filepath.Join(dir, "tls", "zeek_tls1.2.pcap"), demoPath(t)}})
	ctx := context.Background()
	flows, err := ws.Flows(ctx, time.Time{}, time.Time{}, tools.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(flows); i++ {
		a, b := flows[i-1].Bytes[0]+flows[i-1].Bytes[1], flows[i].Bytes[0]+flows[i].Bytes[1]
		if a < b {
			t.Fatalf("flow %d (%d bytes) listed before a larger one (%d)", i-1, a, b)
		}
	}
	state := map[uint16]string{}
	var tls, http int
	for _, fl := range flows {
		switch {
		case fl.Protocol == "tls":
			tls++
			if !fl.Encrypted || !fl.Guessed {
				t.Errorf("TLS flow %+v: want encrypted and guessed", fl)
			}
		case fl.Protocol == "http":
			http++
			if !fl.Guessed {
				t.Errorf("HTTP flow not dissected yet but not marked guessed: %+v", fl)
			}
		}
		if fl.Src.IP.String() == "10.0.0.2" {
			state[fl.Src.Port] = fl.State
		}
	}
	if tls == 0 || http != 78 {
		t.Errorf("%d TLS flows, %d HTTP flows (want 78)", tls, http)
	}
	if state[40001] != "closed" || state[40002] != "reset" || state[40003] != "refused" || state[40004] != "unanswered" || state[40005] != "open" {
		t.Errorf("states %v", state)
	}
	// Dissected flows keep their protocol, no longer guessed.
	if _, err := ws.Dissect(ctx, time.Time{}, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	flows, _ = ws.Flows(ctx, time.Time{}, time.Time{}, tools.Filter{Protocol: "http"})
	if len(flows) != 78 || flows[0].Guessed {
		t.Errorf("after dissection: %d HTTP flows, guessed %v", len(flows), len(flows) > 0 && flows[0].Guessed)
	}
	// Filters: an endpoint field matches either side.
	flows, _ = ws.Flows(ctx, time.Time{}, time.Time{}, tools.Filter{Port: 5432})
	if len(flows) != 2 {
		t.Errorf("port 5432: %d flows", len(flows))
	}
}

// TestExportMixedLinkTypes: a window mixing link types is exported as
// pcapng, which tshark reads whole.
func TestExportMixedLinkTypes(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Fatal("tshark is not installed: make test installs it")
	}
	dir, ok := corpus.Dir()
	if !ok {
		t.Fatal("the shared corpus (../shared/corpus) is missing")
	}
	loop := filepath.Join(dir, "tls", "arkime_tls-alpn-h2.pcap") // BSD loopback
	ws := open(t, workspace.Options{Paths: []string{demoPath(t), loop}})
	file, err := ws.WritePCAP(context.Background(), time.Time{}, time.Time{}, tools.Filter{}, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := ws.Status(context.Background())
	packets := st.Packets
	if file.Format != "pcapng" || file.Packets != packets || file.Truncated {
		t.Fatalf("exported %+v; %d packets held", file, packets)
	}
	out, err := exec.Command(tshark, "-n", "-r", file.Path, "-T", "fields", "-e", "frame.interface_id").Output()
	if err != nil {
		t.Fatal(err)
	}
	ifaces := strings.Fields(string(out))
	if uint64(len(ifaces)) != packets || !slices.Contains(ifaces, "0") || !slices.Contains(ifaces, "1") {
		t.Errorf("tshark reads %d packets on interfaces %v", len(ifaces), slices.Compact(slices.Sorted(slices.Values(ifaces))))
	}
}

// TestPCAPRetention: past the bounds the oldest exports go; a workspace
// reopened on the same directory still serves the rest.
func TestPCAPRetention(t *testing.T) {
	dir := t.TempDir()
	path := demoPath(t)
	ws, err := workspace.Open(workspace.Options{Paths: []string{path}, Dir: dir, KeepPCAPs: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ids []string
	for _, ip := range []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"} {
		f, err := ws.WritePCAP(ctx, time.Time{}, time.Time{}, tools.Filter{IP: mustAddr(ip)}, 1000)
		if err != nil || f.Packets == 0 {
			t.Fatalf("%s: %+v, %v", ip, f, err)
		}
		ids = append(ids, f.ID)
	}
	if _, _, err := ws.ReadPCAP(ids[0], 1<<30); !errors.Is(err, workspace.ErrNoPCAP) {
		t.Errorf("the oldest export is still served (%v)", err)
	}
	if _, data, err := ws.ReadPCAP(ids[2], 100); err != nil || data != nil {
		t.Errorf("over the size limit: %d bytes, %v", len(data), err)
	}
	ws.Close()
	ws = open(t, workspace.Options{Paths: []string{path}, Dir: dir, KeepPCAPs: 2})
	for _, id := range ids[1:] {
		if f, data, err := ws.ReadPCAP(id, 1<<30); err != nil || int64(len(data)) != f.Size || len(data) == 0 {
			t.Errorf("after reopening, %s: %d bytes, %v", id, len(data), err)
		}
	}
	if _, _, err := ws.ReadPCAP("../../etc/passwd", 1<<30); !errors.Is(err, workspace.ErrNoPCAP) {
		t.Errorf("a path as id: %v", err)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestReopen: a workspace reopened on the same captures and data
// directory keeps what was dissected; on other captures it starts afresh.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := demoPath(t)
	ctx := context.Background()
	ws, err := workspace.Open(workspace.Options{Paths: []string{path}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := ws.Bounds()
	half := first.Add(30 * time.Second)
	res, err := ws.Dissect(ctx, time.Time{}, half, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := calls(t, ws)
	if err := ws.Close(); err != nil {
		t.Fatal(err)
	}

	ws = open(t, workspace.Options{Paths: []string{path}, Dir: dir})
	if gaps, _ := ws.Undissected(time.Time{}, half); len(gaps) != 0 {
		t.Errorf("reopened: %v still undissected", gaps)
	}
	if got := calls(t, ws); !slices.Equal(got, before) {
		t.Errorf("reopened: %d calls, %d before", len(got), len(before))
	}
	st, _ := ws.Status(ctx)
	if st.Calls["http"] != res.Calls["http"] {
		t.Errorf("reopened: status counts %v, dissection found %v", st.Calls, res.Calls)
	}
	flows, _ := ws.Flows(ctx, time.Time{}, first.Add(10*time.Second), tools.Filter{Protocol: "http"})
	if len(flows) == 0 || flows[0].Guessed {
		t.Errorf("reopened: flows dissected before are guessed again (%d flows)", len(flows))
	}
	res, err = ws.Dissect(ctx, time.Time{}, time.Time{}, nil)
	if err != nil || len(res.Skipped) != 1 || len(res.Dissected) != 1 {
		t.Fatalf("dissecting the rest: %+v, %v", res, err)
	}
	if n := len(calls(t, ws)); n != 288 {
		t.Errorf("after the rest: %d calls", n)
	}

	// Other captures in the same directory: nothing carries over.
	other := filepath.Join(t.TempDir(), "other.pcap")
	if _, err := capturetest.WriteLoad(other, capturetest.Load{Conns: 2, Requests: 2}); err != nil {
		t.Fatal(err)
	}
	ws.Close()
	ws = open(t, workspace.Options{Paths: []string{other}, Dir: dir})
	if n := ws.Index().Stats().Calls; n != 0 {
		t.Errorf("other captures: the index holds %d calls of the earlier ones", n)
	}
	if gaps, _ := ws.Undissected(time.Time{}, time.Time{}); len(gaps) != 1 {
		t.Errorf("other captures: undissected %v", gaps)
	}
}

// TestDataDirModes: what the data directory holds — calls with their
// headers and bodies, exported packets, the state — is readable by the
// server's user alone, also when an older version left it 0755.
func TestDataDirModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := demoPath(t)
	ctx := context.Background()
	for round := range 2 {
		ws := open(t, workspace.Options{Paths: []string{path}, Dir: dir})
		if _, err := ws.Dissect(ctx, time.Time{}, time.Time{}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := ws.WritePCAP(ctx, time.Time{}, time.Time{}, tools.Filter{}, 10); err != nil {
			t.Fatal(err)
		}
		if err := ws.Close(); err != nil {
			t.Fatal(err)
		}
		// A path is exposed when others may read it and enter every
		// directory on the way to it below dir.
		var loose []string
		open := map[string]bool{dir: true} // directories others may enter, below dir
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			fi, err := d.Info()
			if err != nil {
				t.Fatal(err)
			}
			if p == dir || !open[filepath.Dir(p)] {
				return nil
			}
			perm := fi.Mode().Perm()
			if perm&0o044 != 0 {
				loose = append(loose, fmt.Sprintf("%s %v", strings.TrimPrefix(p, dir), perm))
			}
			if d.IsDir() && perm&0o011 != 0 {
				open[p] = true
			}
			return nil
		})
		if len(loose) > 0 {
			t.Errorf("round %d: readable by others: %s", round, strings.Join(loose, ", "))
		}
		// As an older version left them: the next Open tightens them.
		for _, sub := range []string{"", "pcaps", "index"} {
			os.Chmod(filepath.Join(dir, sub), 0o755)
		}
		if round == 0 {
			os.Chmod(dir, 0o700) // the data directory itself may be the user's to set
		}
	}
}
