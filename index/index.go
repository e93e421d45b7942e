package index

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index/callstore"
	"github.com/wirescope/wirescope/internal/redact"
)

// Errors.
var (
	// ErrClosed: the index was closed.
	ErrClosed = errors.New("index closed")
	// ErrNotFound: no such call or partition.
	ErrNotFound = errors.New("not found")
	// ErrBadQuery: the query string does not parse, names an unknown field,
	// or the cursor is not one Search returned. Its message is meant for
	// whoever wrote the query.
	ErrBadQuery = errors.New("bad query")
)

// Options configure an Index. Zero fields take defaults.
type Options struct {
	// PartitionSpan: calls whose TS is in [start, start+span) share a
	// partition, start being a multiple of the span since the Unix epoch.
	// A whole number of minutes; default 1h. An existing index keeps the
	// span it was created with.
	PartitionSpan time.Duration
	// Workers is how many Bleve batches are indexed at once, across
	// partitions and within one; default runtime.GOMAXPROCS(0).
	Workers int
	// BatchSize is the number of documents per Bleve batch; default
	// DefaultBatchSize.
	BatchSize int
}

// DefaultBatchSize is the default Options.BatchSize. Bleve turns every
// batch into a segment it later merges; on two cores 5,000 to 10,000
// documents per batch index fastest (bench_test.go, BenchmarkAdd), and
// smaller batches leave more merging behind.
const DefaultBatchSize = 8192

// DefaultOptions returns the default options.
func DefaultOptions() *Options {
	return &Options{PartitionSpan: time.Hour, Workers: runtime.GOMAXPROCS(0), BatchSize: DefaultBatchSize}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.PartitionSpan > 0 {
		d.PartitionSpan = o.PartitionSpan
	}
	if o.Workers > 0 {
		d.Workers = o.Workers
	}
	if o.BatchSize > 0 {
		d.BatchSize = o.BatchSize
	}
	return *d
}

// Index stores calls and answers searches and summaries over them.
type Index struct {
	dir  string
	log  *slog.Logger
	opts Options
	lock *dirLock

	// ops is held for reading by every operation and for writing by
	// Close and DropPartition, which wait for operations in flight.
	ops sync.RWMutex
	// mu guards parts and closed.
	mu     sync.RWMutex
	parts  map[int64]*partition // by start, Unix nanoseconds
	closed bool

	// sem bounds the Bleve batches indexed at once.
	sem chan struct{}
	// version is what Version returns.
	version atomic.Uint64
}

// meta is the index's own file, index.json.
type meta struct {
	Version       int    `json:"version"`
	PartitionSpan string `json:"partition_span"`
}

const (
	metaFile    = "index.json"
	metaVersion = 1
	lockFile    = "LOCK"
)

// Open opens the index in dir, creating it when missing. A nil logger
// discards; opts nil means DefaultOptions. Partitions a crash left
// inconsistent are repaired before Open returns (see FORMAT.md).
func Open(dir string, logger *slog.Logger, opts *Options) (*Index, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	o = o.withDefaults()
	// Calls hold headers and bodies: the index is its owner's alone (0700
	// directories, 0600 files), also where an older version made it 0755.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create index dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create index dir: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, err
	}
	ix := &Index{dir: dir, log: logger, lock: lock, parts: map[int64]*partition{}, sem: make(chan struct{}, o.Workers)}
	if o.PartitionSpan, err = ix.loadMeta(o.PartitionSpan); err != nil {
		lock.release()
		return nil, err
	}
	ix.opts = o
	ix.changed()
	if err := ix.openPartitions(); err != nil {
		for _, p := range ix.parts {
			p.close()
		}
		lock.release()
		return nil, err
	}
	return ix, nil
}

// loadMeta reads index.json, or writes it for a new index, and returns
// the partition span to use.
func (ix *Index) loadMeta(span time.Duration) (time.Duration, error) {
	path := filepath.Join(ix.dir, metaFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if span%time.Minute != 0 {
			return 0, fmt.Errorf("partition span %v: not a whole number of minutes", span)
		}
		b, _ := json.Marshal(meta{Version: metaVersion, PartitionSpan: span.String()})
		return span, writeFileAtomic(path, b)
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", metaFile, err)
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, fmt.Errorf("read %s: %w", metaFile, err)
	}
	if m.Version != metaVersion {
		return 0, fmt.Errorf("%s: version %d, this build reads %d", metaFile, m.Version, metaVersion)
	}
	stored, err := time.ParseDuration(m.PartitionSpan)
	if err != nil || stored <= 0 || stored%time.Minute != 0 {
		return 0, fmt.Errorf("%s: bad partition span %q", metaFile, m.PartitionSpan)
	}
	if stored != span {
		ix.log.Info("index keeps the partition span it was created with", "dir", ix.dir, "span", stored, "requested", span)
	}
	return stored, nil
}

// openPartitions opens every partition directory, in parallel.
func (ix *Index) openPartitions() error {
	entries, err := os.ReadDir(ix.dir)
	if err != nil {
		return fmt.Errorf("read index dir: %w", err)
	}
	var starts []int64
	for _, e := range entries {
		name := e.Name()
		switch {
		case !e.IsDir():
		case strings.HasSuffix(name, deletingSuffix):
			// A drop interrupted by a crash: finish it.
			if err := os.RemoveAll(filepath.Join(ix.dir, name)); err != nil {
				return fmt.Errorf("remove dropped partition %s: %w", name, err)
			}
		default:
			sec, err := strconv.ParseInt(name, 10, 64)
			if err != nil {
				ix.log.Warn("ignoring unexpected directory in index", "dir", ix.dir, "name", name)
				continue
			}
			starts = append(starts, sec*int64(time.Second))
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	work := make(chan int64)
	for range min(ix.opts.Workers, max(len(starts), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := range work {
				p, err := ix.openPartition(time.Unix(0, start).UTC(), false)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					ix.parts[start] = p
				}
				mu.Unlock()
			}
		}()
	}
	for _, s := range starts {
		work <- s
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

// Close flushes and closes every partition. Operations in flight finish
// first; later ones return ErrClosed.
func (ix *Index) Close() error {
	ix.ops.Lock()
	defer ix.ops.Unlock()
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return ErrClosed
	}
	ix.closed = true
	parts := ix.parts
	ix.parts = nil
	ix.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, 0, len(parts))
	var mu sync.Mutex
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.close(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	ix.lock.release()
	return errors.Join(errs...)
}

// begin starts an operation: it returns ErrClosed after Close, else the
// caller must call ix.ops.RUnlock when done.
func (ix *Index) begin() error {
	ix.ops.RLock()
	ix.mu.RLock()
	closed := ix.closed
	ix.mu.RUnlock()
	if closed {
		ix.ops.RUnlock()
		return ErrClosed
	}
	return nil
}

// partitionStart returns the start of the partition holding time t.
func (ix *Index) partitionStart(ns int64) int64 {
	span := int64(ix.opts.PartitionSpan)
	s := ns - ns%span
	if ns < 0 && ns%span != 0 {
		s -= span
	}
	return s
}

// partitionsIn returns the partitions overlapping [from, to) (zero times
// unbounded), newest first.
func (ix *Index) partitionsIn(from, to time.Time) []*partition {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []*partition
	for start, p := range ix.parts {
		end := start + int64(ix.opts.PartitionSpan)
		if !from.IsZero() && end <= from.UnixNano() || !to.IsZero() && start >= to.UnixNano() {
			continue
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *partition) int { return cmp.Compare(b.startNS, a.startNS) })
	return out
}

// partitionAt returns the partition starting at start, creating it when
// create is set.
func (ix *Index) partitionAt(start int64, create bool) (*partition, error) {
	ix.mu.RLock()
	p := ix.parts[start]
	ix.mu.RUnlock()
	if p != nil || !create {
		return p, nil
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if p := ix.parts[start]; p != nil {
		return p, nil
	}
	p, err := ix.openPartition(time.Unix(0, start).UTC(), true)
	if err != nil {
		return nil, err
	}
	ix.parts[start] = p
	return p, nil
}

// Add stores and indexes calls (any order, spanning any partitions). When
// it returns they are visible to Get, Search and Summarize. It is safe for
// concurrent use with reads and other Adds. A call whose ID is already
// stored is skipped, so adding the same calls twice stores them once.
// Calls must have an ID and a time.
//
// Calls are stored and indexed with their secrets masked (internal/redact):
// what Get returns and what Search matches is the redacted call, so a
// secret can neither be read nor found by searching for it or its
// prefixes. The calls passed are not modified; a call with something to
// mask is copied.
//
// The calls of each partition are appended to its call store and counted
// in its aggregates, then indexed in Bleve batches of Options.BatchSize,
// up to Options.Workers batches at once across all partitions.
func (ix *Index) Add(ctx context.Context, calls []*proto.Call) error {
	if err := ix.begin(); err != nil {
		return err
	}
	defer ix.ops.RUnlock()
	for i, c := range calls {
		if c == nil || c.ID == "" {
			return fmt.Errorf("add call %d: no id", i)
		}
		if c.TS.IsZero() {
			return fmt.Errorf("add call %s: no time", c.ID)
		}
	}
	// A new version before anything changes and another once all is in:
	// an answer computed while calls were added is not kept (Version).
	ix.changed()
	defer ix.changed()
	groups := map[int64][]*proto.Call{}
	seen := make(map[string]struct{}, len(calls))
	for _, c := range calls {
		if _, dup := seen[c.ID]; dup {
			continue
		}
		seen[c.ID] = struct{}{}
		// Redact once, before the call store and Bleve see the call.
		c = redact.Call(c)
		start := ix.partitionStart(c.TS.UnixNano())
		groups[start] = append(groups[start], c)
	}
	errs := make(chan error, len(groups))
	var wg sync.WaitGroup
	for start, group := range groups {
		p, err := ix.partitionAt(start, true)
		if err != nil {
			errs <- err
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.add(ctx, group); err != nil {
				errs <- fmt.Errorf("partition %s: %w", p.name(), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// AddSize is how many calls an Add should carry to index fastest: one
// Bleve batch of Options.BatchSize for each of Options.Workers. A smaller
// Add leaves workers idle and makes smaller segments, which Bleve later
// merges (rebuilding their term dictionaries), so a caller with many calls
// to add (a dissection) hands them over in Adds of this size.
func (ix *Index) AddSize() int { return ix.opts.BatchSize * ix.opts.Workers }

// storedIn reports whether a call with id is in p or any other partition.
func (ix *Index) storedIn(p *partition, id string) bool {
	h := callstore.Hash(id)
	if p.store.HasHash(h, id) {
		return true
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for _, q := range ix.parts {
		if q != p && q.store.HasHash(h, id) {
			return true
		}
	}
	return false
}

// Get returns the call with id, or ErrNotFound.
func (ix *Index) Get(id string) (*proto.Call, error) {
	if err := ix.begin(); err != nil {
		return nil, err
	}
	defer ix.ops.RUnlock()
	for _, p := range ix.partitionsIn(time.Time{}, time.Time{}) {
		c, err := p.store.Get(id)
		if errors.Is(err, callstore.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", id, err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("call %s: %w", id, ErrNotFound)
}

// PartitionInfo describes one partition.
type PartitionInfo struct {
	// Start and End bound the calls it holds: [Start, End).
	Start, End time.Time
	Calls      uint64
	// DiskBytes is the size of its files: the call store, the Bleve
	// index and the aggregates.
	DiskBytes int64
}

// Partitions lists the partitions, oldest first.
func (ix *Index) Partitions() []PartitionInfo {
	if err := ix.begin(); err != nil {
		return nil
	}
	defer ix.ops.RUnlock()
	parts := ix.partitionsIn(time.Time{}, time.Time{})
	out := make([]PartitionInfo, 0, len(parts))
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		out = append(out, PartitionInfo{Start: p.start, End: p.start.Add(p.span), Calls: uint64(p.store.Len()),
			DiskBytes: dirSize(p.dir)})
	}
	return out
}

// DropPartition deletes the partition starting at start, for retention.
// It waits for operations in flight; ErrNotFound when there is none.
func (ix *Index) DropPartition(start time.Time) error {
	ix.ops.Lock()
	defer ix.ops.Unlock()
	ix.changed()
	defer ix.changed()
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return ErrClosed
	}
	p := ix.parts[start.UnixNano()]
	if p != nil {
		delete(ix.parts, start.UnixNano())
	}
	ix.mu.Unlock()
	if p == nil {
		return fmt.Errorf("partition %s: %w", start.UTC().Format(time.RFC3339), ErrNotFound)
	}
	if err := p.close(); err != nil {
		ix.log.Warn("closing dropped partition", "partition", p.name(), "err", err)
	}
	// Rename first, so that a crash mid-removal leaves a directory Open
	// finishes removing rather than a damaged partition.
	gone := p.dir + deletingSuffix
	if err := os.Rename(p.dir, gone); err != nil {
		return fmt.Errorf("drop partition %s: %w", p.name(), err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("drop partition %s: %w", p.name(), err)
	}
	return nil
}

const deletingSuffix = ".deleting"

// Stats counts what the index holds.
type Stats struct {
	Calls      uint64
	ByProto    map[string]uint64
	Partitions int
}

// Stats returns counts over all partitions.
func (ix *Index) Stats() Stats {
	st := Stats{ByProto: map[string]uint64{}}
	if err := ix.begin(); err != nil {
		return st
	}
	defer ix.ops.RUnlock()
	for _, p := range ix.partitionsIn(time.Time{}, time.Time{}) {
		st.Partitions++
		st.Calls += uint64(p.store.Len())
		p.aggs.byProto(st.ByProto)
	}
	return st
}

// dirSize returns the total size of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// writeFileAtomic writes a file through a temporary one, synced and
// renamed over it.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}
