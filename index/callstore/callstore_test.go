package callstore

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index/indextest"
)

func gen(n int, seed uint64) []*proto.Call {
	return indextest.Generate(n, indextest.Options{Seed: seed, Span: time.Hour, Bodies: true})
}

func same(t *testing.T, got, want *proto.Call) {
	t.Helper()
	if g, w := got.AppendJSON(nil), want.AppendJSON(nil); !slices.Equal(g, w) {
		t.Errorf("call %s:\n got %s\nwant %s", want.ID, g, w)
	}
}

func TestAppendGetReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "calls")
	s, rec, err := Open(path)
	if err != nil || rec.Records != 0 || rec.Dropped != 0 {
		t.Fatalf("open new: %+v, %v", rec, err)
	}
	calls := gen(3000, 1)
	// A call whose JSON does not compress, to store one uncompressed.
	calls[7].Response.Body = "\x00\x01\x02 binary?"
	calls[7].Response.SetBody([]byte{0x8f, 0x13, 0xa2, 0x00, 0x77}, 100)
	end1, err := s.Append(calls[:1000])
	if err != nil {
		t.Fatal(err)
	}
	end2, err := s.Append(calls[1000:])
	if err != nil || end2 <= end1 || end2 != s.Size() {
		t.Fatalf("append: ends %d %d, size %d, %v", end1, end2, s.Size(), err)
	}
	check := func(s *Store) {
		t.Helper()
		if s.Len() != len(calls) {
			t.Errorf("len %d, want %d", s.Len(), len(calls))
		}
		for _, c := range calls {
			got, err := s.Get(c.ID)
			if err != nil {
				t.Fatalf("get %s: %v", c.ID, err)
			}
			same(t, got, c)
			e, err := s.Entry(c.ID)
			if err != nil || e.ID != c.ID || !e.TS.Equal(c.TS) || e.LatencyNS != c.LatencyNS {
				t.Fatalf("entry %s: %+v, %v", c.ID, e, err)
			}
		}
		if _, err := s.Get("nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("get unknown: %v", err)
		}
		if s.Has("nope") || !s.Has(calls[5].ID) {
			t.Error("Has is wrong")
		}
		var scanned []string
		if err := s.Scan(end1, func(e Entry, c *proto.Call) error {
			scanned = append(scanned, c.ID)
			if e.ID != c.ID {
				t.Errorf("entry %s for call %s", e.ID, c.ID)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if want := ids(calls[1000:]); !slices.Equal(scanned, want) {
			t.Errorf("scan from the second append: %d calls, want %d", len(scanned), len(want))
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(calls[0].ID); !errors.Is(err, ErrClosed) {
		t.Errorf("get after close: %v", err)
	}
	s, rec, err = Open(path)
	if err != nil || rec.Records != len(calls) || rec.Dropped != 0 {
		t.Fatalf("reopen: %+v, %v", rec, err)
	}
	defer s.Close()
	if s.Size() != end2 {
		t.Errorf("size after reopen %d, want %d", s.Size(), end2)
	}
	check(s)
	fi, _ := os.Stat(path)
	var raw int
	for _, c := range calls {
		raw += len(c.AppendJSON(nil))
	}
	t.Logf("%d calls: %d bytes of JSON, %d stored (%.2fx)", len(calls), raw, fi.Size(), float64(raw)/float64(fi.Size()))
}

func ids(calls []*proto.Call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.ID
	}
	return out
}

// TestTornTail cuts the file at every offset of its last two records and
// flips each byte of the last one: Open keeps exactly the whole records
// before the damage and cuts the rest off the file.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "calls")
	s, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	calls := gen(20, 2)
	var ends []int64
	for _, c := range calls {
		end, err := s.Append([]*proto.Call{c})
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, end)
	}
	s.Close()
	orig, _ := os.ReadFile(path)
	wantAt := func(size int64) int {
		n := 0
		for _, e := range ends {
			if e <= size {
				n++
			}
		}
		return n
	}
	open := func(b []byte) (*Store, Recovery) {
		t.Helper()
		p := filepath.Join(dir, "work")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		s, rec, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		return s, rec
	}
	for size := ends[len(ends)-3]; size <= int64(len(orig)); size++ {
		s, rec := open(orig[:size])
		n := wantAt(size)
		if s.Len() != n || rec.Records != n || rec.Dropped != size-ends[n-1] {
			t.Errorf("cut at %d: %d records (recovery %+v), want %d dropping %d", size, s.Len(), rec, n, size-ends[n-1])
		}
		if s.Size() != ends[n-1] {
			t.Errorf("cut at %d: size %d, want %d", size, s.Size(), ends[n-1])
		}
		// The store goes on appending after the cut.
		if _, err := s.Append(calls[n:]); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s, rec = open(mustRead(t, filepath.Join(dir, "work")))
		if s.Len() != len(calls) || rec.Dropped != 0 {
			t.Errorf("cut at %d, appended, reopened: %d records, %+v", size, s.Len(), rec)
		}
		s.Close()
	}
	for i := ends[len(ends)-2]; i < int64(len(orig)); i++ {
		b := slices.Clone(orig)
		b[i] ^= 0x20
		s, rec := open(b)
		if s.Len() != len(calls)-1 || rec.Dropped != int64(len(orig))-ends[len(ends)-2] || rec.Reason == "" {
			t.Errorf("byte %d flipped: %d records, %+v", i, s.Len(), rec)
		}
		s.Close()
	}
	// A file that is not a store is refused, not truncated.
	p := filepath.Join(dir, "other")
	os.WriteFile(p, []byte("PK\x03\x04 some zip file"), 0o644)
	if _, _, err := Open(p); err == nil {
		t.Error("opened a file that is not a store")
	}
	if b, _ := os.ReadFile(p); string(b) != "PK\x03\x04 some zip file" {
		t.Error("a foreign file was changed")
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConcurrentReaders(t *testing.T) {
	s, _, err := Open(filepath.Join(t.TempDir(), "calls"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	calls := gen(4000, 3)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				c := calls[i%len(calls)]
				if s.Has(c.ID) {
					got, err := s.Get(c.ID)
					if err != nil {
						t.Error(err)
						return
					}
					if got.ID != c.ID {
						t.Errorf("got %s for %s", got.ID, c.ID)
					}
				}
			}
		}()
	}
	for i := 0; i < len(calls); i += 100 {
		if _, err := s.Append(calls[i : i+100]); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if s.Len() != len(calls) {
		t.Errorf("len %d", s.Len())
	}
}

func BenchmarkAppend(b *testing.B) {
	s, _, err := Open(filepath.Join(b.TempDir(), "calls"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	calls := gen(10_000, 4)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Fresh IDs each round so the map grows as it would.
		batch := make([]*proto.Call, len(calls))
		for j, c := range calls {
			cp := *c
			cp.ID = c.ID + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
			batch[j] = &cp
		}
		if _, err := s.Append(batch); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N*len(calls))/b.Elapsed().Seconds(), "calls/s")
}

func BenchmarkGet(b *testing.B) {
	s, _, err := Open(filepath.Join(b.TempDir(), "calls"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	calls := gen(10_000, 5)
	if _, err := s.Append(calls); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Get(calls[i%len(calls)].ID); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
