package index

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index/callstore"
)

// The files of a partition directory.
const (
	callsFile = "calls"
	bleveDir  = "bleve"
	aggsFile  = "aggs"
)

// indexedKey is the Bleve internal key holding the call store offset up to
// which every record is indexed (uvarint). It is set in its own batch
// after the batches of an Add, so it never runs ahead of what Bleve holds,
// and Bleve persists it with the segments it describes.
var indexedKey = []byte("wirescope.indexed")

// bleveConfig is the Scorch configuration of every partition.
//
//   - unsafe_batch: a batch returns once it is searchable, without waiting
//     for the persister to write and sync it. The call store is the log:
//     after a crash, Open re-indexes the records past indexedKey.
//   - bolt_timeout: fail rather than wait forever on a locked root.bolt.
//   - scorchMergePlanOptions: up to 20 segments per tier before a merge
//     (Bleve's default is 10). A partition of an hour at a million calls a
//     day holds five or six batches of DefaultBatchSize and is never
//     merged; merging rebuilds every term dictionary and was a fifth of
//     the indexing time. Searches look up each term in each segment, which
//     costs microseconds.
//   - The persister keeps Bleve's default of no nap: it writes each batch's
//     segment as it comes instead of merging waiting segments in memory
//     first (another rebuild of their dictionaries), and Close, which waits
//     for the persister, returns at once.
func bleveConfig() map[string]any {
	return map[string]any{
		"unsafe_batch": true,
		"bolt_timeout": "5s",
		"scorchMergePlanOptions": map[string]any{
			"MaxSegmentsPerTier":   20,
			"SegmentsPerMergeTask": 10,
			"FloorSegmentSize":     DefaultBatchSize,
		},
	}
}

// partition is one time bucket: a call store, a Bleve index and the
// aggregates of its calls.
type partition struct {
	ix      *Index
	start   time.Time
	startNS int64
	span    time.Duration
	dir     string

	store *callstore.Store
	bl    bleve.Index
	aggs  *aggregates

	// wmu serializes writers to the call store and the aggregates, and
	// guards closed and turn.
	wmu sync.Mutex
	// turn is closed when the Bleve part of the last Add to have stored
	// its calls is done. Adds index their calls in the order they stored
	// them, each waiting for the turn of the one before: so the next Add
	// stores its calls while this one indexes (two Adds at once keep both
	// parts busy), and indexedKey only moves over calls indexed. nil
	// before the first Add.
	turn chan struct{}
	// failed is set when a Bleve batch failed: the records after
	// indexedKey are then not all indexed, so indexedKey stays where it
	// is and the next Open re-indexes from there. It and indexedTo are
	// the Add's whose turn it is (recover's before, close's after).
	failed error
	// indexedTo is the store offset indexedKey holds.
	indexedTo int64
	closed    bool

	// scanned caches the calls summaries read (scancache.go).
	scanned scanCache
}

func (p *partition) name() string { return p.start.Format(time.RFC3339) }

// openPartition opens (or creates) the partition starting at start and
// brings its Bleve index and aggregates level with its call store.
func (ix *Index) openPartition(start time.Time, create bool) (*partition, error) {
	p := &partition{ix: ix, start: start, startNS: start.UnixNano(), span: ix.opts.PartitionSpan,
		dir: filepath.Join(ix.dir, strconv.FormatInt(start.Unix(), 10))}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create partition %s: %w", p.name(), err)
	}
	var err error
	var rec callstore.Recovery
	p.store, rec, err = callstore.Open(filepath.Join(p.dir, callsFile))
	if err != nil {
		return nil, fmt.Errorf("partition %s: %w", p.name(), err)
	}
	if rec.Dropped > 0 {
		ix.log.Warn("call store had a damaged tail; dropped it", "partition", p.name(),
			"bytes", rec.Dropped, "reason", rec.Reason, "kept", rec.Records)
	}
	if err := p.recover(create); err != nil {
		p.close()
		return nil, fmt.Errorf("partition %s: %w", p.name(), err)
	}
	return p, nil
}

// recover opens the Bleve index and the aggregates and replays the call
// store records they lack.
func (p *partition) recover(create bool) error {
	log := p.ix.log.With("partition", p.name())
	end := p.store.Size()
	from := int64(callstore.HeaderSize)

	// Bleve.
	bl, err := openBleve(filepath.Join(p.dir, bleveDir))
	switch {
	case err != nil && !create:
		log.Warn("bleve index unusable; rebuilding it from the call store", "err", err)
		fallthrough
	case err != nil:
		if bl, err = newBleve(filepath.Join(p.dir, bleveDir)); err != nil {
			return err
		}
	}
	p.bl = bl
	indexed := from
	if v, err := bl.GetInternal(indexedKey); err == nil && len(v) > 0 {
		if off, n := binary.Uvarint(v); n > 0 {
			indexed = int64(off)
		}
	}
	if indexed > end {
		log.Warn("bleve index holds calls the call store lost; rebuilding it", "indexed", indexed, "stored", end)
		if err := p.resetBleve(); err != nil {
			return err
		}
		indexed = from
	}
	p.indexedTo = indexed
	// Aggregates.
	aggs, aggTo, err := loadAggregates(filepath.Join(p.dir, aggsFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		aggs, aggTo = newAggregates(), from
	case err != nil:
		log.Warn("aggregates unreadable; recomputing them from the call store", "err", err)
		aggs, aggTo = newAggregates(), from
	case aggTo > end:
		log.Warn("aggregates count calls the call store lost; recomputing them", "counted", aggTo, "stored", end)
		aggs, aggTo = newAggregates(), from
	}
	p.aggs = aggs
	if err := p.replay(indexed, aggTo, end); err != nil {
		return err
	}
	// A last check: Bleve holds one document per stored call. A count
	// that differs means damage the offsets cannot show (a segment lost
	// with its root intact).
	if n, err := p.bl.DocCount(); err != nil || n != uint64(p.store.Len()) {
		log.Warn("bleve index disagrees with the call store; rebuilding it", "docs", n, "calls", p.store.Len(), "err", err)
		if err := p.resetBleve(); err != nil {
			return err
		}
		if err := p.replay(from, end, end); err != nil {
			return err
		}
	}
	if indexed < end || aggTo < end {
		log.Info("partition recovered", "reindexed_bytes", end-indexed, "recounted_bytes", end-aggTo)
	}
	return nil
}

// replay indexes the store's records from indexed and counts those from
// counted in the aggregates, up to end.
func (p *partition) replay(indexed, counted, end int64) error {
	from := min(indexed, counted)
	if from >= end {
		return nil
	}
	var batch []*proto.Call
	var err error
	flush := func() {
		if len(batch) > 0 && err == nil {
			err = p.indexBatch(batch)
		}
		batch = batch[:0]
	}
	scanErr := p.store.Scan(from, func(e callstore.Entry, c *proto.Call) error {
		if e.Offset >= counted {
			p.aggs.add(c)
		}
		if e.Offset >= indexed {
			batch = append(batch, c)
			if len(batch) >= p.ix.opts.BatchSize {
				flush()
			}
		}
		return err
	})
	flush()
	if err := errors.Join(scanErr, err); err != nil {
		return fmt.Errorf("replay call store: %w", err)
	}
	return p.commit(end)
}

func openBleve(path string) (bleve.Index, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	bl, err := bleve.OpenUsing(path, bleveConfig())
	if err != nil {
		return nil, fmt.Errorf("open bleve index: %w", err)
	}
	return bl, nil
}

func newBleve(path string) (bleve.Index, error) {
	if err := os.RemoveAll(path); err != nil {
		return nil, fmt.Errorf("remove bleve index: %w", err)
	}
	bl, err := bleve.NewUsing(path, newMapping(), "scorch", "scorch", bleveConfig())
	if err != nil {
		return nil, fmt.Errorf("create bleve index: %w", err)
	}
	return bl, nil
}

// resetBleve replaces the Bleve index by an empty one.
func (p *partition) resetBleve() error {
	if err := p.bl.Close(); err != nil {
		p.ix.log.Warn("closing damaged bleve index", "partition", p.name(), "err", err)
	}
	bl, err := newBleve(filepath.Join(p.dir, bleveDir))
	if err != nil {
		return err
	}
	p.bl = bl
	p.indexedTo = 0
	return nil
}

// indexBatch indexes calls in one Bleve batch.
func (p *partition) indexBatch(calls []*proto.Call) error {
	b := p.bl.NewBatch()
	db := docBuilder{left: len(calls)}
	for _, c := range calls {
		if err := b.IndexAdvanced(db.build(c)); err != nil {
			return fmt.Errorf("index call %s: %w", c.ID, err)
		}
	}
	if err := p.bl.Batch(b); err != nil {
		return fmt.Errorf("index batch: %w", err)
	}
	return nil
}

// commit records that the store is indexed up to end.
func (p *partition) commit(end int64) error {
	if p.failed != nil || end == p.indexedTo {
		return nil
	}
	b := p.bl.NewBatch()
	b.SetInternal(indexedKey, binary.AppendUvarint(nil, uint64(end)))
	if err := p.bl.Batch(b); err != nil {
		return fmt.Errorf("commit index offset: %w", err)
	}
	p.indexedTo = end
	return nil
}

// add stores, counts and indexes calls, skipping those already stored.
// ctx is checked before anything is written: once calls are in the store
// they are indexed whatever happens to ctx, so that the store and Bleve
// agree.
func (p *partition) add(ctx context.Context, calls []*proto.Call) error {
	fresh, end, prev, mine, err := p.store1(ctx, calls)
	if err != nil || mine == nil {
		return err
	}
	defer close(mine)
	if prev != nil {
		<-prev
	}
	return p.index1(fresh, end)
}

// store1 is an Add's first part, under wmu: it appends the calls not
// stored yet to the call store and counts them, and takes the Add's turn
// to index them: wait for prev (nil: nothing to wait for), then close
// mine. mine is nil when there was nothing to add.
func (p *partition) store1(ctx context.Context, calls []*proto.Call) (fresh []*proto.Call, end int64, prev, mine chan struct{}, err error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.closed {
		return nil, 0, nil, nil, ErrClosed
	}
	fresh = make([]*proto.Call, 0, len(calls))
	for _, c := range calls {
		if !p.ix.storedIn(p, c.ID) {
			fresh = append(fresh, c)
		}
	}
	if len(fresh) == 0 {
		return nil, 0, nil, nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, nil, nil, err
	}
	if end, err = p.store.Append(fresh); err != nil {
		return nil, 0, nil, nil, err
	}
	p.aggs.addAll(fresh)
	prev, mine = p.turn, make(chan struct{})
	p.turn = mine
	return fresh, end, prev, mine, nil
}

// index1 is an Add's second part, in its turn: it indexes the calls it
// stored, which end at store offset end, and records that the store is
// indexed up to there.
func (p *partition) index1(fresh []*proto.Call, end int64) error {
	// Index in batches of equal size, at most Options.BatchSize, up to
	// Options.Workers at once across the index. A large Add is split in at
	// least Workers batches (of half a BatchSize or more) so that it
	// indexes in parallel even into one partition.
	n, bs, workers := len(fresh), p.ix.opts.BatchSize, p.ix.opts.Workers
	nb := (n + bs - 1) / bs
	if nb < workers && n >= workers*(bs/2) {
		nb = workers
	}
	size := (n + nb - 1) / nb
	errs := make(chan error, nb)
	var wg sync.WaitGroup
	for i := 0; i < len(fresh); i += size {
		chunk := fresh[i:min(i+size, len(fresh))]
		p.ix.sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-p.ix.sem; wg.Done() }()
			if err := p.indexBatch(chunk); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	// Every batch's error is returned; the first also marks the
	// partition failed, logged once.
	var failed []error
	for err := range errs {
		failed = append(failed, err)
	}
	if err := errors.Join(failed...); err != nil {
		if p.failed == nil {
			p.failed = failed[0]
			p.ix.log.Error("indexing failed; the partition's search misses calls until the index is reopened",
				"partition", p.name(), "err", err)
		}
		return err
	}
	return p.commit(end)
}

// close flushes the Bleve index to disk, saves the aggregates and closes
// the files.
func (p *partition) close() error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if p.turn != nil {
		// Wait for Adds still indexing (Index.Close and DropPartition
		// wait for operations in flight, so there should be none).
		<-p.turn
	}
	p.scanned.drop()
	var errs []error
	if p.bl != nil {
		if err := p.flushBleve(); err != nil {
			errs = append(errs, err)
		}
		if err := p.bl.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close bleve index: %w", err))
		}
	}
	if p.store != nil {
		if err := p.store.Sync(); err != nil {
			errs = append(errs, err)
		} else if p.aggs != nil {
			if err := p.aggs.save(filepath.Join(p.dir, aggsFile), p.store.Size()); err != nil {
				errs = append(errs, err)
			}
		}
		if err := p.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close partition %s: %w", p.name(), err)
	}
	return nil
}

// flushBleve waits until Bleve has persisted everything indexed, so that
// the next Open has nothing to re-index.
func (p *partition) flushBleve() error {
	done := make(chan error, 1)
	b := p.bl.NewBatch()
	v := p.indexedTo
	if p.failed != nil || v == 0 {
		// Record nothing new, but still wait for what is in memory.
		v = -1
	}
	if v >= 0 {
		b.SetInternal(indexedKey, binary.AppendUvarint(nil, uint64(v)))
	} else {
		b.SetInternal([]byte("wirescope.flush"), nil)
	}
	b.SetPersistedCallback(func(err error) { done <- err })
	if err := p.bl.Batch(b); err != nil {
		return fmt.Errorf("flush bleve index: %w", err)
	}
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("flush bleve index: %w", err)
		}
	case <-time.After(2 * time.Minute):
		return errors.New("flush bleve index: timed out after 2m")
	}
	return nil
}
