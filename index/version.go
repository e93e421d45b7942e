package index

import "sync/atomic"

// versions numbers the states of every index in the process, so that no
// two states, of one index or of two, share a version.
var versions atomic.Uint64

// Version identifies what the index holds: it changes when calls are
// added (as an Add begins and again when it ends) and when a partition is
// dropped, and two indexes never share one. Answers computed from the
// index can be cached under it: read it before and after the computation,
// and keep the answer only when both are the same.
func (ix *Index) Version() uint64 { return ix.version.Load() }

// changed gives the index a new version.
func (ix *Index) changed() { ix.version.Store(versions.Add(1)) }
