package index

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index/callstore"
	"github.com/wirescope/wirescope/index/indextest"
)

// checkHolds checks that ix holds exactly calls: Get, Stats, every page
// of a search, and summaries agree with them.
func checkHolds(t *testing.T, ix *Index, calls []*proto.Call) {
	t.Helper()
	if st := ix.Stats(); st.Calls != uint64(len(calls)) {
		t.Errorf("stats: %d calls, want %d", st.Calls, len(calls))
	}
	got, total := searchAll(t, ix, Query{Limit: 1000})
	if total != uint64(len(calls)) || !slices.Equal(ids(got), ids(newestFirst(calls))) {
		t.Errorf("search: %d calls (total %d), want %d", len(got), total, len(calls))
	}
	for _, text := range []string{"status:>=400", "proto:dns", "path:/api*"} {
		res, err := ix.Search(context.Background(), Query{Text: text, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		var want uint64
		for _, c := range calls {
			n, ok := statusNum(c)
			switch {
			case text == "status:>=400" && ok && n >= 400,
				text == "proto:dns" && c.Proto == "dns",
				text == "path:/api*" && c.Proto == "http" && strings.HasPrefix(strings.ToLower(TemplatePath(c.Path)), "/api"):
				want++
			}
		}
		if res.Total != want {
			t.Errorf("search %q: total %d, want %d", text, res.Total, want)
		}
	}
	for _, by := range []GroupBy{ByService, ByStatus} {
		q := SummaryQuery{GroupBy: by, Limit: 100}
		sum, err := ix.Summarize(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		compareSummary(t, "summary by "+string(by), sum, bruteSummary(calls, q), 0.02)
	}
	for _, c := range calls[:min(len(calls), 20)] {
		if _, err := ix.Get(c.ID); err != nil {
			t.Errorf("get %s: %v", c.ID, err)
		}
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, testLogger(t), &Options{BatchSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	calls := genCalls(2000, 31, 4*time.Hour)
	mustAdd(t, ix, calls)
	parts := ix.Partitions()
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second close: %v, want ErrClosed", err)
	}
	if _, err := ix.Search(context.Background(), Query{}); !errors.Is(err, ErrClosed) {
		t.Errorf("search after close: %v, want ErrClosed", err)
	}
	if err := ix.Add(context.Background(), calls[:1]); !errors.Is(err, ErrClosed) {
		t.Errorf("add after close: %v, want ErrClosed", err)
	}
	if _, err := ix.Get(calls[0].ID); !errors.Is(err, ErrClosed) {
		t.Errorf("get after close: %v, want ErrClosed", err)
	}

	// A clean close leaves nothing to repair. A different span is
	// ignored: the index keeps its own, and says so.
	var logs logRecorder
	ix, err = Open(dir, slog.New(&logs), &Options{PartitionSpan: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if msgs := logs.messages(); len(msgs) != 1 || !strings.Contains(msgs[0], "partition span") {
		t.Errorf("reopening a cleanly closed index logged %q", msgs)
	}
	if !slices.EqualFunc(ix.Partitions(), parts, func(a, b PartitionInfo) bool {
		return a.Start.Equal(b.Start) && a.End.Equal(b.End) && a.Calls == b.Calls
	}) {
		t.Errorf("partitions after reopen:\n%+v\nwant\n%+v", ix.Partitions(), parts)
	}
	if len(parts) != 4 || parts[0].Calls == 0 || parts[0].DiskBytes == 0 {
		t.Errorf("partitions: %+v", parts)
	}
	checkHolds(t, ix, calls)
	// Adding after a reopen goes on where it was.
	more := genCalls(500, 32, 5*time.Hour)
	mustAdd(t, ix, more)
	checkHolds(t, ix, append(slices.Clone(calls), more...))

	if _, err := Open(dir, nil, nil); err == nil {
		t.Error("a second Open of an open index succeeded")
	}
}

// partitionDirs returns the partition directories of an index.
func partitionDirs(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); e.IsDir() && err == nil {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTruncatedStore cuts the call store at every offset of its last
// record: reopening keeps every whole record, and Bleve and the aggregates
// agree with the store.
func TestTruncatedStore(t *testing.T) {
	orig := t.TempDir()
	ix, err := Open(orig, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := genCalls(60, 41, 20*time.Minute)
	// The last record a small DNS call, to keep the test short.
	last := slices.IndexFunc(calls, func(c *proto.Call) bool { return c.Proto == "dns" })
	small := calls[last]
	calls = append(slices.Delete(calls, last, last+1), small)
	mustAdd(t, ix, calls)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	part := partitionDirs(t, orig)[0]
	store := filepath.Join(part, callsFile)
	var lastOff int64
	s, _, err := callstore.Open(store)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Scan(0, func(e callstore.Entry, _ *proto.Call) error { lastOff = e.Offset; return nil }); err != nil {
		t.Fatal(err)
	}
	end := s.Size()
	s.Close()
	kept := calls[:len(calls)-1]
	t.Logf("last record: %d bytes at %d", end-lastOff, lastOff)
	for off := lastOff; off <= end; off++ {
		work := filepath.Join(t.TempDir(), "ix")
		copyDir(t, orig, work)
		if err := os.Truncate(filepath.Join(work, filepath.Base(part), callsFile), off); err != nil {
			t.Fatal(err)
		}
		ix, err := Open(work, nil, nil)
		if err != nil {
			t.Fatalf("truncated at %d: %v", off, err)
		}
		want := kept
		if off == end {
			want = calls
		}
		st := ix.Stats()
		res, err := ix.Search(context.Background(), Query{Limit: 1})
		sum, serr := ix.Summarize(context.Background(), SummaryQuery{})
		_, gerr := ix.Get(calls[len(calls)-1].ID)
		if err != nil || serr != nil || st.Calls != uint64(len(want)) || res.Total != uint64(len(want)) ||
			sum.Calls != uint64(len(want)) || (gerr == nil) != (off == end) {
			t.Errorf("truncated at %d of %d: stats %d, search %d, summary %d calls, get last: %v (errors %v, %v); want %d",
				off, end, st.Calls, res.Total, sum.Calls, gerr, err, serr, len(want))
		}
		if off == lastOff || off == end-1 {
			checkHolds(t, ix, want)
		}
		ix.Close()
	}
}

// TestDamagedParts damages or removes the Bleve index, the aggregates
// and the end of the store, and checks Open repairs the partition.
func TestDamagedParts(t *testing.T) {
	orig := t.TempDir()
	ix, err := Open(orig, nil, &Options{BatchSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	calls := genCalls(1500, 51, 2*time.Hour)
	mustAdd(t, ix, calls)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	damages := map[string]func(t *testing.T, part string){
		"bleve removed": func(t *testing.T, part string) { os.RemoveAll(filepath.Join(part, bleveDir)) },
		"root.bolt garbage": func(t *testing.T, part string) {
			p := filepath.Join(part, bleveDir, "store", "root.bolt")
			if err := os.WriteFile(p, []byte(strings.Repeat("garbage!", 1024)), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		"segment truncated": func(t *testing.T, part string) {
			zaps, _ := filepath.Glob(filepath.Join(part, bleveDir, "store", "*.zap"))
			if len(zaps) == 0 {
				t.Fatal("no segment files")
			}
			fi, _ := os.Stat(zaps[0])
			os.Truncate(zaps[0], fi.Size()/2)
		},
		"segment removed": func(t *testing.T, part string) {
			zaps, _ := filepath.Glob(filepath.Join(part, bleveDir, "store", "*.zap"))
			if len(zaps) == 0 {
				t.Fatal("no segment files")
			}
			os.Remove(zaps[0])
		},
		"index_meta.json removed": func(t *testing.T, part string) {
			os.Remove(filepath.Join(part, bleveDir, "index_meta.json"))
		},
		"aggregates corrupt": func(t *testing.T, part string) {
			p := filepath.Join(part, aggsFile)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x40
			os.WriteFile(p, b, 0o644)
		},
		"aggregates removed": func(t *testing.T, part string) { os.Remove(filepath.Join(part, aggsFile)) },
		"store tail garbage": func(t *testing.T, part string) {
			f, _ := os.OpenFile(filepath.Join(part, callsFile), os.O_WRONLY|os.O_APPEND, 0)
			f.Write([]byte{0x10, 0, 0, 0, 1, 2, 3, 4, 'x', 'y'})
			f.Close()
		},
		"store record flipped": func(t *testing.T, part string) {
			// A checksum failure in the last record drops it (and the
			// test expects one call fewer in this partition).
			p := filepath.Join(part, callsFile)
			b, _ := os.ReadFile(p)
			b[len(b)-3] ^= 0xff
			os.WriteFile(p, b, 0o644)
		},
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			work := filepath.Join(t.TempDir(), "ix")
			copyDir(t, orig, work)
			part := partitionDirs(t, work)[0]
			damage(t, part)
			ix, err := Open(work, testLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ix.Close()
			want := calls
			if name == "store record flipped" {
				// The partition's last record is the last call of its
				// first hour in Add order.
				start := day0
				var lastOfFirst int
				for i, c := range calls {
					if c.TS.Before(start.Add(time.Hour)) {
						lastOfFirst = i
					}
				}
				want = slices.Delete(slices.Clone(calls), lastOfFirst, lastOfFirst+1)
			}
			checkHolds(t, ix, want)
		})
	}
}

// TestStoreAheadOfBleve appends records to a partition's store behind the
// index's back, as a crash after the store write and before Bleve
// persisted leaves it: Open indexes and counts them.
func TestStoreAheadOfBleve(t *testing.T) {
	dir := t.TempDir()
	ix, err := Open(dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := genCalls(900, 61, 50*time.Minute)
	mustAdd(t, ix, calls[:600])
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	s, _, err := callstore.Open(filepath.Join(partitionDirs(t, dir)[0], callsFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(calls[600:]); err != nil {
		t.Fatal(err)
	}
	s.Close()
	ix, err = Open(dir, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	checkHolds(t, ix, calls)
}

// TestKillDuringAdd kills (SIGKILL) a process adding calls, several times,
// and checks every reopen: the calls of every Add that returned are there,
// and search, summaries and the store agree.
func TestKillDuringAdd(t *testing.T) {
	if dir := os.Getenv("WIRESCOPE_INDEX_KILL_DIR"); dir != "" {
		killHelper(dir)
		return
	}
	if testing.Short() {
		t.Skip("slow: runs and kills child processes")
	}
	dir := t.TempDir()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringAdd$", "-test.v")
		cmd.Env = append(os.Environ(), "WIRESCOPE_INDEX_KILL_DIR="+dir, fmt.Sprintf("WIRESCOPE_INDEX_KILL_ROUND=%d", round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for a few Adds to return, then kill mid-way through one.
		sc := bufio.NewScanner(out)
		returned := 0
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "added "); ok {
				returned, _ = strconv.Atoi(n)
				if returned >= 3*killBatch {
					break
				}
			}
		}
		time.Sleep(time.Duration(50+round*70) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		go io.Copy(io.Discard, out)
		cmd.Wait()
		if returned < 3*killBatch {
			t.Fatalf("round %d: the child added only %d calls", round, returned)
		}

		ix, err := Open(dir, testLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		n := ix.Stats().Calls
		all, total := searchAll(t, ix, Query{Limit: 5000})
		sum, err := ix.Summarize(context.Background(), SummaryQuery{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d calls stored after the kill (%d in Adds that returned)", round, n, returned)
		if total != n || uint64(len(all)) != n || sum.Calls != n {
			t.Errorf("round %d: store %d calls, search %d (%d listed), summary %d", round, n, total, len(all), sum.Calls)
		}
		// Every call of a returned Add is there.
		for i := range returned / killBatch {
			for _, c := range killCalls(round, i) {
				if _, err := ix.Get(c.ID); err != nil {
					t.Fatalf("round %d: call %s of a returned Add: %v", round, c.ID, err)
				}
			}
		}
		if err := ix.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

const killBatch = 3000

// killCalls returns batch i of kill round r: distinct calls over three
// hours.
func killCalls(round, i int) []*proto.Call {
	return indextest.Generate(killBatch, indextest.Options{Seed: uint64(1000*round + i + 1), Start: day0, Span: 3 * time.Hour, Bodies: true})
}

// killHelper adds batches until killed, printing how many calls the Adds
// that returned hold.
func killHelper(dir string) {
	round, _ := strconv.Atoi(os.Getenv("WIRESCOPE_INDEX_KILL_ROUND"))
	ix, err := Open(dir, nil, &Options{BatchSize: 1000})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		if err := ix.Add(context.Background(), killCalls(round, i)); err != nil {
			fmt.Println("add:", err)
			os.Exit(1)
		}
		fmt.Printf("added %d\n", (i+1)*killBatch)
	}
}
