package capture

import (
	"io"
	"sync"
)

const (
	prefetchBatches = 4       // batches in flight
	prefetchPackets = 1024    // packets per batch at most
	prefetchArena   = 1 << 20 // bytes of packet data per batch
)

// Prefetch reads src ahead on a goroutine of its own, so that reading and
// parsing the capture overlaps with whatever the caller does with the
// packets. Packets are copied into a few recycled batches (4 MiB in all), so
// the returned Source keeps the contract that Data is valid until the next
// call to Next. Warnings are available once Next has returned io.EOF. Close
// stops the goroutine and closes src.
func Prefetch(src Source) Source {
	p := &prefetch{
		src:  src,
		full: make(chan *batch, prefetchBatches),
		free: make(chan *batch, prefetchBatches),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for range prefetchBatches {
		p.free <- &batch{pkts: make([]Packet, 0, prefetchPackets), arena: make([]byte, 0, prefetchArena)}
	}
	go p.run()
	return p
}

type batch struct {
	pkts  []Packet
	arena []byte
	err   error // what ended the source after these packets, if anything
}

type prefetch struct {
	src  Source
	full chan *batch
	free chan *batch
	stop chan struct{}
	done chan struct{}

	cur  *batch
	next int
	err  error

	warnings  []Warning // set when run returns
	closeOnce sync.Once
}

// run fills batches until the source ends or Close is called.
func (p *prefetch) run() {
	defer close(p.done)
	defer func() { p.warnings = p.src.Warnings() }()
	b, ok := p.get()
	var pkt Packet // one for the whole run: it escapes through Next
	for ok {
		if err := p.src.Next(&pkt); err != nil {
			b.err = err
			p.put(b)
			return
		}
		n := len(pkt.Data)
		if len(b.pkts) == cap(b.pkts) || (len(b.arena)+n > cap(b.arena) && len(b.pkts) > 0) {
			// This packet starts the next batch.
			if !p.put(b) {
				return
			}
			if b, ok = p.get(); !ok {
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
		b.pkts = append(b.pkts, pkt)
	}
}

// get takes an empty batch, unless Close was called.
func (p *prefetch) get() (*batch, bool) {
	select {
	case b := <-p.free:
		b.pkts, b.arena, b.err = b.pkts[:0], b.arena[:0], nil
		return b, true
	case <-p.stop:
		return nil, false
	}
}

// put hands a filled batch to Next, unless Close was called.
func (p *prefetch) put(b *batch) bool {
	select {
	case p.full <- b:
		return true
	case <-p.stop:
		return false
	}
}

// Next implements Source.
func (p *prefetch) Next(pkt *Packet) error {
	for {
		if p.err != nil {
			return p.err
		}
		if p.cur != nil && p.next < len(p.cur.pkts) {
			*pkt = p.cur.pkts[p.next]
			p.next++
			return nil
		}
		if p.cur != nil {
			if p.cur.err != nil {
				p.err = p.cur.err
				continue
			}
			p.free <- p.cur
			p.cur = nil
		}
		b, ok := <-p.full
		if !ok {
			p.err = io.EOF
			continue
		}
		p.cur, p.next = b, 0
	}
}

// Warnings implements Source; it reports what the source found once Next
// has returned io.EOF (or an error), and nothing before.
func (p *prefetch) Warnings() []Warning {
	if p.err == nil {
		return nil
	}
	<-p.done
	return p.warnings
}

// Name implements Source.
func (p *prefetch) Name() string { return p.src.Name() }

// Close implements Source.
func (p *prefetch) Close() error {
	p.closeOnce.Do(func() { close(p.stop) })
	<-p.done
	return p.src.Close()
}
