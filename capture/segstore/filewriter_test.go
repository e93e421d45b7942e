package segstore

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestFileWriter writes the same records, in pieces of every size and
// with flushes between, with O_DIRECT (where the file system takes it)
// and without: after each flush the file is exactly the bytes written,
// and durable is the end of the last whole record.
func TestFileWriter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var recs [][]byte
	for range 3000 {
		r := make([]byte, 1+rng.IntN(9000))
		for i := range r {
			r[i] = byte(rng.Uint32())
		}
		recs = append(recs, r)
	}
	head := []byte("HEADER-24-BYTES-LONG....")
	for _, direct := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), "seg.pcap")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(head)
		w := newFileWriter(f, path, head)
		if !direct && w.direct != nil {
			w.direct.Close()
			w.direct = nil
		}
		if direct && w.direct == nil {
			t.Log("O_DIRECT refused here: both runs go through the page cache")
		}
		want := bytes.NewBuffer(slices.Clone(head))
		ends := map[int64]bool{int64(len(head)): true} // record boundaries
		for i, r := range recs {
			// Half the records in two writes, as pcapgo writes a header
			// and then the data.
			cut := rng.IntN(len(r) + 1)
			if _, err := w.Write(r[:cut]); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(r[cut:]); err != nil {
				t.Fatal(err)
			}
			w.Mark()
			want.Write(r)
			ends[int64(want.Len())] = true
			if i%97 == 0 || i%500 == 1 {
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				got, _ := os.ReadFile(path)
				if !bytes.Equal(got, want.Bytes()) {
					t.Fatalf("direct %v: after record %d and a flush the file differs (%d bytes, want %d)", direct, i, len(got), want.Len())
				}
				if d := w.durable.Load(); d != int64(want.Len()) {
					t.Fatalf("durable %d after a flush, want %d", d, want.Len())
				}
			} else if d := w.durable.Load(); !ends[d] {
				t.Fatalf("durable %d is not the end of a record", d)
			} else if i%20 != 5 {
				continue
			} else if got, _ := os.ReadFile(path); int64(len(got)) < d || !bytes.Equal(got[:d], want.Bytes()[:d]) {
				t.Fatalf("the file (%d bytes) does not hold the records up to durable %d", len(got), d)
			}
		}
		if direct && w.direct != nil && !w.directOK {
			t.Error("O_DIRECT was opened but never written with")
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		got, _ := os.ReadFile(path)
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("direct %v: the file differs from what was written (%d bytes, want %d)", direct, len(got), want.Len())
		}
	}
}
