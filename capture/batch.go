package capture

import (
	"sync"
	"sync/atomic"
)

const (
	batchCount   = 8         // batches in flight
	batchPackets = 512       // packets per batch at most
	batchArena   = 512 << 10 // bytes of packet data per batch
)

// Batch is a run of consecutive packets from a source, copied so that they
// stay valid, and can be shared between goroutines, until the batch is
// released.
type Batch struct {
	Packets []Packet
	// Tags holds the Classifier's answer for each packet, when the Batcher
	// has a Classifier.
	Tags  []uint8
	arena []byte
	err   error // what ended the source after these packets, if anything
	refs  atomic.Int32
	owner *Batcher
}

// Share sets how many holders must call Release before the batch is reused.
// A batch from Next has one holder.
func (b *Batch) Share(n int) { b.refs.Store(int32(n)) }

// Release gives the batch back once every holder has released it.
func (b *Batch) Release() {
	if b.refs.Add(-1) == 0 {
		b.owner.free <- b
	}
}

// Classifier tags a packet while the Batcher's goroutine has just copied
// it (its bytes are then in that core's cache). A Parallel dissection uses
// it to decide, once, which of its workers owns each packet.
type Classifier func(p *Packet) uint8

// Batcher reads a source ahead on a goroutine of its own, into a few
// recycled batches (4 MiB of packet data in all), so that reading and
// parsing the capture overlaps with dissection.
type Batcher struct {
	src      Source
	classify Classifier
	full     chan *Batch
	free     chan *Batch
	stop     chan struct{}
	done     chan struct{}

	err       error     // the error Next returned, once it has
	warnings  []Warning // set when the goroutine ends
	closeOnce sync.Once
}

// NewBatcher starts reading src, tagging packets with classify if it is not
// nil. Close stops it and closes src.
func NewBatcher(src Source, classify Classifier) *Batcher {
	r := &Batcher{
		src:      src,
		classify: classify,
		full:     make(chan *Batch, batchCount),
		free:     make(chan *Batch, batchCount),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	for range batchCount {
		r.free <- &Batch{Packets: make([]Packet, 0, batchPackets), Tags: make([]uint8, 0, batchPackets),
			arena: make([]byte, 0, batchArena), owner: r}
	}
	go r.run()
	return r
}

// run fills batches until the source ends or Close is called.
func (r *Batcher) run() {
	defer close(r.done)
	defer func() { r.warnings = r.src.Warnings() }()
	b, ok := r.get()
	var pkt Packet // one for the whole run: it escapes through Next
	for ok {
		if err := r.src.Next(&pkt); err != nil {
			b.err = err
			r.put(b)
			return
		}
		n := len(pkt.Data)
		if len(b.Packets) == cap(b.Packets) || (len(b.arena)+n > cap(b.arena) && len(b.Packets) > 0) {
			// This packet starts the next batch.
			if !r.put(b) {
				return
			}
			if b, ok = r.get(); !ok {
				return
			}
		}
		if len(b.arena)+n <= cap(b.arena) {
			off := len(b.arena)
			b.arena = append(b.arena, pkt.Data...)
			pkt.Data = b.arena[off : off+n : off+n]
		} else {
			pkt.Data = append([]byte(nil), pkt.Data...) // larger than an arena
		}
		b.Packets = append(b.Packets, pkt)
		if r.classify != nil {
			b.Tags = append(b.Tags, r.classify(&b.Packets[len(b.Packets)-1]))
		}
	}
}

// get takes an empty batch, unless Close was called.
func (r *Batcher) get() (*Batch, bool) {
	select {
	case b := <-r.free:
		b.Packets, b.Tags, b.arena, b.err = b.Packets[:0], b.Tags[:0], b.arena[:0], nil
		b.refs.Store(1)
		return b, true
	case <-r.stop:
		return nil, false
	}
}

// put hands a filled batch to Next, unless Close was called.
func (r *Batcher) put(b *Batch) bool {
	select {
	case r.full <- b:
		return true
	case <-r.stop:
		return false
	}
}

// Next returns the next batch, which the caller must release. After the
// last batch it returns the error that ended the source: io.EOF at its
// end. The last batch may hold packets and be followed by that error.
func (r *Batcher) Next() (*Batch, error) {
	if r.err != nil {
		return nil, r.err
	}
	b := <-r.full
	if b.err != nil {
		r.err = b.err
	}
	if len(b.Packets) == 0 && r.err != nil {
		b.Release()
		return nil, r.err
	}
	return b, nil
}

// Warnings reports what the source found, once Next has returned an error;
// nothing before.
func (r *Batcher) Warnings() []Warning {
	if r.err == nil {
		return nil
	}
	<-r.done
	return r.warnings
}

// Close stops reading and closes the source.
func (r *Batcher) Close() error {
	r.closeOnce.Do(func() { close(r.stop) })
	<-r.done
	return r.src.Close()
}
