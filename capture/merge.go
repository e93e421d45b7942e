package capture

import (
	"errors"
	"io"
)

// Merge interleaves several sources by timestamp, as captures of one period
// taken on several interfaces or nodes. Packets with equal timestamps keep
// the order of the sources. Packet.Source is set to the index of the source
// a packet came from. Closing the merged source closes every input.
func Merge(srcs ...Source) Source {
	if len(srcs) == 1 {
		return srcs[0]
	}
	return &merged{srcs: srcs, heads: make([]Packet, len(srcs)), live: make([]bool, len(srcs)), last: -1}
}

type merged struct {
	srcs  []Source
	heads []Packet
	live  []bool
	last  int // source whose head was handed out and must be advanced
	init  bool
	err   error
}

func (m *merged) Name() string { return "merged" }

func (m *merged) Warnings() []Warning {
	var w []Warning
	for _, s := range m.srcs {
		w = append(w, s.Warnings()...)
	}
	return w
}

func (m *merged) advance(i int) error {
	err := m.srcs[i].Next(&m.heads[i])
	if err == io.EOF {
		m.live[i] = false
		return nil
	}
	if err != nil {
		m.live[i] = false
		return err
	}
	m.heads[i].Source = i
	m.live[i] = true
	return nil
}

func (m *merged) Next(p *Packet) error {
	if m.err != nil {
		return m.err
	}
	if !m.init {
		m.init = true
		for i := range m.srcs {
			if err := m.advance(i); err != nil {
				m.err = err
				return err
			}
		}
	} else if m.last >= 0 {
		if err := m.advance(m.last); err != nil {
			m.err = err
			return err
		}
	}
	best := -1
	for i, ok := range m.live {
		if ok && (best < 0 || m.heads[i].Timestamp.Before(m.heads[best].Timestamp)) {
			best = i
		}
	}
	m.last = best
	if best < 0 {
		return io.EOF
	}
	*p = m.heads[best]
	return nil
}

func (m *merged) Close() error {
	var errs []error
	for _, s := range m.srcs {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
