package capture

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestBatcher reads the same capture directly and through a Batcher: the
// packets, their order, their data and the warnings must be identical,
// across batch boundaries (more packets than a batch holds, and packets
// larger than a batch's arena), with batches held and released out of
// order as concurrent readers would.
func TestBatcher(t *testing.T) {
	var buf bytes.Buffer
	w := pcapgo.NewWriterNanos(&buf)
	w.WriteFileHeader(4<<20, layers.LinkTypeRaw)
	t0 := time.Unix(1e9, 0)
	for i := range 5000 {
		size := 60 + i%1500
		if i%1000 == 999 {
			size = batchArena + 100 // does not fit any arena
		}
		data := bytes.Repeat([]byte{byte(i)}, size)
		copy(data, fmt.Sprint(i))
		w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i)), CaptureLength: size, Length: size}, data)
	}
	raw := buf.Bytes()
	cut := raw[:len(raw)-7] // and damage at the end

	// Packets up to 1 MiB: larger than the default limit, as they must be
	// larger than an arena.
	direct, err := NewReader("d", bytes.NewReader(cut), MaxPacket(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	want, wantWarn := readAll(t, direct)
	src, _ := NewReader("p", bytes.NewReader(cut), MaxPacket(1<<20))
	r := NewBatcher(src, nil)
	if w := r.Warnings(); w != nil {
		t.Errorf("warnings before the end: %v", w)
	}
	var got []Packet
	var held []*Batch
	for {
		b, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b.Share(2)
		for _, p := range b.Packets {
			if !bytes.Equal(p.Data, want[len(got)].Data) {
				t.Fatalf("packet %d differs", len(got))
			}
			got = append(got, p)
		}
		b.Release()
		held = append(held, b)
		if len(held) == 3 { // release the oldest late, as a slow shard would
			held[0].Release()
			held = held[1:]
		}
	}
	for _, b := range held {
		b.Release()
	}
	if len(got) != len(want) || len(got) != 4999 {
		t.Fatalf("%d packets through the Batcher, %d directly", len(got), len(want))
	}
	gw := r.Warnings()
	if len(gw) != 1 || len(wantWarn) != 1 || gw[0].Offset != wantWarn[0].Offset {
		t.Errorf("warnings %v, want %v", gw, wantWarn)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
}

// TestBatcherClose closes a Batcher early, with batches still held: the
// goroutine stops.
func TestBatcherClose(t *testing.T) {
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	w.WriteFileHeader(65535, layers.LinkTypeRaw)
	data := make([]byte, 1000)
	for range 20000 {
		w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(data), Length: len(data)}, data)
	}
	src, _ := NewReader("p", &buf)
	r := NewBatcher(src, nil)
	for range 3 {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error)
	go func() { done <- r.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
}
