package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"os"
	"sync"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index/sketch"
)

// aggregates count a partition's calls at ingest, by minute and by every
// dimension a summary filters or groups on, so that Summarize merges
// counts instead of visiting calls.
//
// Strings are interned per partition: a key is a few numbers. Entries live
// in a slice; a map finds the entry of a key while its minute is current.
// When the map grows past maxLive it is emptied (the entries stay): a
// later call of an old minute then starts a second entry for its key,
// which costs memory but not correctness, as entries only ever add up.
type aggregates struct {
	mu      sync.RWMutex
	strs    []string
	strIDs  map[string]uint32
	idents  []ident
	identID map[ident]uint32
	entries []aggEntry
	live    map[aggKey]int32
	protos  map[uint32]uint64
}

// ident is an endpoint's Kubernetes identity as interned strings. addr
// is set only for an endpoint without one (no pod, workload or service),
// so that summaries can still tell such peers apart: the IP of a client,
// ip:port of a server.
type ident struct{ namespace, workload, service, pod, node, addr uint32 }

// aggKey says what an entry counts. errText is set only for failed calls
// without a status (no response): their error is what summaries report.
type aggKey struct {
	minute   int32 // Unix minute
	proto    uint32
	method   uint32
	route    uint32
	status   uint32
	errText  uint32
	src, dst uint32 // idents
	outcome  proto.Outcome
}

type aggEntry struct {
	key                 aggKey
	calls               uint64
	reqBytes, respBytes uint64
	first, last         int64 // Unix nanoseconds
	// lat counts the latencies of calls with one.
	lat sketch.Sparse
}

const maxLive = 1 << 16

func newAggregates() *aggregates {
	a := &aggregates{strIDs: map[string]uint32{"": 0}, strs: []string{""}, identID: map[ident]uint32{},
		live: map[aggKey]int32{}, protos: map[uint32]uint64{}}
	a.identID[ident{}] = 0
	a.idents = []ident{{}}
	return a
}

func (a *aggregates) intern(s string) uint32 {
	if id, ok := a.strIDs[s]; ok {
		return id
	}
	id := uint32(len(a.strs))
	a.strs = append(a.strs, s)
	a.strIDs[s] = id
	return id
}

func (a *aggregates) ident(e *proto.Endpoint, server bool) uint32 {
	k := ident{a.intern(e.Namespace), a.intern(e.Workload), a.intern(e.Service), a.intern(e.Pod), a.intern(e.Node), 0}
	if e.Pod == "" && e.Workload == "" && e.Service == "" && e.IP.IsValid() {
		if server {
			k.addr = a.intern(netip.AddrPortFrom(e.IP, e.Port).String())
		} else {
			k.addr = a.intern(e.IP.String())
		}
	}
	if id, ok := a.identID[k]; ok {
		return id
	}
	id := uint32(len(a.idents))
	a.idents = append(a.idents, k)
	a.identID[k] = id
	return id
}

// addAll counts calls.
func (a *aggregates) addAll(calls []*proto.Call) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range calls {
		a.addLocked(c)
	}
}

// add counts one call.
func (a *aggregates) add(c *proto.Call) {
	a.mu.Lock()
	a.addLocked(c)
	a.mu.Unlock()
}

func (a *aggregates) addLocked(c *proto.Call) {
	ns := c.TS.UnixNano()
	o := c.Outcome()
	k := aggKey{minute: int32(unixMinute(ns)), proto: a.intern(c.Proto), method: a.intern(c.Method),
		route: a.intern(Route(c)), status: a.intern(c.Status), src: a.ident(&c.Src, false), dst: a.ident(&c.Dst, true), outcome: o}
	if c.Status == "" && o.Failed() {
		k.errText = a.intern(c.Error)
	}
	i, ok := a.live[k]
	if !ok {
		if len(a.live) >= maxLive {
			clear(a.live)
		}
		i = int32(len(a.entries))
		a.entries = append(a.entries, aggEntry{key: k, first: ns, last: ns})
		a.live[k] = i
	}
	e := &a.entries[i]
	e.calls++
	e.reqBytes += uint64(max(c.Request.BodySize, 0))
	e.respBytes += uint64(max(c.Response.BodySize, 0))
	e.first = min(e.first, ns)
	e.last = max(e.last, ns)
	if c.LatencyNS > 0 {
		e.lat.Add(float64(c.LatencyNS))
	}
	a.protos[k.proto]++
}

// byProto adds the partition's call counts by protocol to m.
func (a *aggregates) byProto(m map[string]uint64) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for id, n := range a.protos {
		m[a.strs[id]] += n
	}
}

// The aggregates file: see FORMAT.md.
const aggsMagic = "WSAGGS\x02\x00"

// save writes the aggregates, which count the call store up to offset
// counted, to path (through a temporary file renamed over it).
func (a *aggregates) save(path string, counted int64) error {
	a.mu.RLock()
	b := make([]byte, 0, 64+len(a.entries)*48)
	b = append(b, aggsMagic...)
	b = binary.AppendUvarint(b, uint64(counted))
	b = binary.AppendUvarint(b, uint64(len(a.strs)-1))
	for _, s := range a.strs[1:] {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(a.idents)-1))
	for _, id := range a.idents[1:] {
		for _, v := range [6]uint32{id.namespace, id.workload, id.service, id.pod, id.node, id.addr} {
			b = binary.AppendUvarint(b, uint64(v))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(a.entries)))
	for i := range a.entries {
		e := &a.entries[i]
		k := &e.key
		b = binary.AppendVarint(b, int64(k.minute))
		for _, v := range [7]uint32{k.proto, k.method, k.route, k.status, k.errText, k.src, k.dst} {
			b = binary.AppendUvarint(b, uint64(v))
		}
		b = append(b, byte(k.outcome))
		b = binary.AppendUvarint(b, e.calls)
		b = binary.AppendUvarint(b, e.reqBytes)
		b = binary.AppendUvarint(b, e.respBytes)
		b = binary.AppendVarint(b, e.first)
		b = binary.AppendUvarint(b, uint64(e.last-e.first))
		b = e.lat.AppendBinary(b)
	}
	a.mu.RUnlock()
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return writeFileAtomic(path, b)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errAggsCorrupt = errors.New("aggregates file corrupt")

// aggReader decodes the aggregates file, remembering the first error.
type aggReader struct {
	b   []byte
	err error
}

func (r *aggReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errAggsCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *aggReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errAggsCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

// id reads a uvarint that must be below limit.
func (r *aggReader) id(limit int) uint32 {
	v := r.uvarint()
	if v >= uint64(limit) {
		r.err = errAggsCorrupt
		return 0
	}
	return uint32(v)
}

// loadAggregates reads the aggregates file at path and returns them with
// the call store offset they count up to.
func loadAggregates(path string) (*aggregates, int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	if len(b) < len(aggsMagic)+4 || string(b[:len(aggsMagic)]) != aggsMagic {
		return nil, 0, fmt.Errorf("%w: bad header", errAggsCorrupt)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, 0, fmt.Errorf("%w: checksum mismatch", errAggsCorrupt)
	}
	r := &aggReader{b: body[len(aggsMagic):]}
	a := newAggregates()
	counted := int64(r.uvarint())
	ns := r.uvarint()
	if ns > uint64(len(r.b)) {
		return nil, 0, errAggsCorrupt
	}
	for range ns {
		n := r.uvarint()
		if r.err != nil || n > uint64(len(r.b)) {
			return nil, 0, errAggsCorrupt
		}
		s := string(r.b[:n])
		r.b = r.b[n:]
		a.strIDs[s] = uint32(len(a.strs))
		a.strs = append(a.strs, s)
	}
	ni := r.uvarint()
	if ni > uint64(len(r.b)) {
		return nil, 0, errAggsCorrupt
	}
	for range ni {
		var v [6]uint32
		for j := range v {
			v[j] = r.id(len(a.strs))
		}
		k := ident{v[0], v[1], v[2], v[3], v[4], v[5]}
		a.identID[k] = uint32(len(a.idents))
		a.idents = append(a.idents, k)
	}
	ne := r.uvarint()
	if ne > uint64(len(r.b)) {
		return nil, 0, errAggsCorrupt
	}
	a.entries = make([]aggEntry, 0, ne)
	for range ne {
		var e aggEntry
		k := &e.key
		k.minute = int32(r.varint())
		k.proto, k.method, k.route = r.id(len(a.strs)), r.id(len(a.strs)), r.id(len(a.strs))
		k.status, k.errText = r.id(len(a.strs)), r.id(len(a.strs))
		k.src, k.dst = r.id(len(a.idents)), r.id(len(a.idents))
		if r.err != nil || len(r.b) < 1 || r.b[0] >= proto.NumOutcomes {
			return nil, 0, errAggsCorrupt
		}
		k.outcome = proto.Outcome(r.b[0])
		r.b = r.b[1:]
		e.calls, e.reqBytes, e.respBytes = r.uvarint(), r.uvarint(), r.uvarint()
		e.first = r.varint()
		e.last = e.first + int64(r.uvarint())
		if r.err != nil {
			return nil, 0, r.err
		}
		if e.lat, r.b, err = sketch.DecodeSparse(r.b); err != nil {
			return nil, 0, fmt.Errorf("%w: %v", errAggsCorrupt, err)
		}
		a.entries = append(a.entries, e)
		a.protos[k.proto] += e.calls
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, 0, errAggsCorrupt
	}
	return a, counted, nil
}
