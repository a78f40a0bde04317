package journal

import (
	"slices"
	"sync"
	"sync/atomic"
)

// residentSet bounds how many sealed segments' mappings keep their pages in
// the process (Options.MaxResidentBytes). Every page a reader touches in a
// read-only file mapping counts in the process's RSS (RssFile) for as long
// as the mapping exists, so without a bound a replay of the whole log
// would leave the whole log resident. The set remembers the segments read
// most recently; when one more is read, the least recent one's mapping is
// advised MADV_DONTNEED: its pages leave the process's page tables (they
// stay in the page cache, and a later read faults them back without I/O).
// Dropping pages from a shared read-only file mapping never changes what a
// reader sees, so it is safe while other readers use the mapping.
//
// touch costs one atomic load when the segment is the one read last, which
// is the common case (iterators and page reads move through one segment at
// a time).
type residentSet struct {
	max  int
	last atomic.Pointer[handle]
	mu   sync.Mutex
	lru  []*handle // least recently read first; at most max entries
}

func newResidentSet(maxBytes, segmentSize int64) *residentSet {
	return &residentSet{max: int(max(2, (maxBytes+segmentSize-1)/segmentSize))}
}

// touch records a read through h. REQUIRES: the caller holds a reference
// to h.
func (r *residentSet) touch(h *handle) {
	if r == nil || !h.mapped || r.last.Load() == h {
		return
	}
	r.mu.Lock()
	r.last.Store(h)
	if i := slices.Index(r.lru, h); i >= 0 {
		r.lru = slices.Delete(r.lru, i, i+1)
	}
	r.lru = append(r.lru, h)
	var evict *handle
	if len(r.lru) > r.max {
		evict = r.lru[0]
		r.lru = slices.Delete(r.lru, 0, 1)
	}
	r.mu.Unlock()
	// A handle already released (segment removed or retired) has no
	// mapping left to advise; tryAcquire refuses it.
	if evict != nil && evict.tryAcquire() {
		adviseDontNeed(evict.data)
		evict.release()
	}
}
