package journal

import (
	"errors"
	"sync"
)

// view is a pinned entry: the segment reference is held until release.
type view struct {
	seg        *segment
	h          *handle
	index      uint64
	start, end int64
	sealed     bool
	last       uint64 // the segment's last index when located
	gen        uint64 // Journal.truncations when located
}

// locate finds index and pins its segment. REQUIRES: nothing held.
func (j *Journal) locate(index uint64) (view, error) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if err := j.checkIndexLocked(index); err != nil {
		return view{}, err
	}
	s := j.findSegmentLocked(index)
	start, end := s.entryBounds(index)
	s.acquire()
	s.h.acquire()
	return view{
		seg: s, h: s.h, index: index, start: start, end: end,
		sealed: s.sealed, last: s.lastIndex(), gen: j.truncations.Load(),
	}, nil
}

// frame returns the bytes of the pinned entry.
func (v *view) frame(buf *[]byte) ([]byte, error) { return v.h.read(v.start, v.end, buf) }

// unpin releases the segment and handle references.
func (v *view) unpin() {
	if v.seg != nil {
		v.h.release()
		v.seg.release()
		v.seg, v.h = nil, nil
	}
}

// decodeEntry validates a frame read back and fills e. The CRC is checked
// on every read: bytes that changed since Open are reported, never
// returned.
func decodeEntry(b []byte, v *view, e *Entry) error {
	h, n, p := decodeFrame(b, v.seg.version, v.seg.seed)
	if p == frameOK && n != len(b) {
		p = frameBadLength
	}
	if p == frameOK && h.index != v.index {
		p = frameBadIndex
	}
	if p != frameOK {
		return corruptf(v.seg.name, v.start, "reading entry %d: %v", v.index, p)
	}
	e.EntryInfo = h.info()
	e.Payload = b[frameHeaderSize:n:n]
	return nil
}

// readState is the pooled per-Read state: the entry handed to the callback
// and the buffer for active-segment reads.
type readState struct {
	e   Entry
	buf []byte
}

var readPool = sync.Pool{New: func() any { return new(readState) }}

// maxPooledBuf keeps huge entries' buffers out of the pool.
const maxPooledBuf = 1 << 20

// Read calls fn with entry index. It returns ErrTruncated below
// FirstIndex, ErrOutOfRange above LastIndex, ErrCorrupt (file and offset)
// if the bytes fail their checksum, ErrClosed after Close, or fn's error.
// The segment stays pinned (never unmapped or deleted) while fn runs;
// e.Payload is valid only until fn returns. Safe for concurrent use.
func (j *Journal) Read(index uint64, fn func(e *Entry) error) error {
	v, err := j.locate(index)
	if err != nil {
		return err
	}
	defer v.unpin()
	st := readPool.Get().(*readState)
	defer func() {
		st.e = Entry{}
		if cap(st.buf) > maxPooledBuf {
			st.buf = nil
		}
		readPool.Put(st)
	}()
	b, err := v.frame(&st.buf)
	if err != nil {
		return err
	}
	j.resident.touch(v.h)
	if err := decodeEntry(b, &v, &st.e); err != nil {
		return err
	}
	return fn(&st.e)
}

// Iterator reads entries in index order from a starting index, in the
// shape of bufio.Scanner:
//
//	it := j.NewIterator(from)
//	defer it.Close()
//	for it.Next() {
//		e := it.Entry()
//	}
//	if err := it.Err(); err != nil { ... }
//
// Next returns false at the end of the journal with Err() == nil; a later
// Next continues with entries written since (tailing). It returns false
// with Err() set on ErrTruncated (the next entry was removed by
// retention), ErrCorrupt or ErrClosed; that error is final. The iterator
// pins one segment at a time; Close releases it. Not safe for concurrent
// use; any number of iterators may run concurrently with each other and
// with the writer.
type Iterator struct {
	j     *Journal
	next  uint64
	view  view // pinned segment of the last entry, seg nil if none
	entry Entry
	buf   []byte
	err   error
	done  bool
}

// NewIterator returns an iterator whose first entry is from (FirstIndex if
// from is 0).
func (j *Journal) NewIterator(from uint64) *Iterator {
	if from == 0 {
		from = j.FirstIndex()
	}
	return &Iterator{j: j, next: from}
}

// Next advances to the next entry.
func (it *Iterator) Next() bool {
	if it.err != nil || it.done {
		return false
	}
	v := &it.view
	if v.seg != nil && v.sealed && it.next <= v.last && v.gen == it.j.truncations.Load() {
		// Fast path: the next entry is in the pinned sealed segment, whose
		// offsets no longer change, and no TruncateBack has run since.
		v.index = it.next
		v.start, v.end = v.seg.entryBounds(it.next)
	} else {
		nv, err := it.j.locate(it.next)
		v.unpin()
		if err != nil {
			if isOutOfRange(err) {
				return false // caught up; a later Next may find more
			}
			it.err = err
			return false
		}
		*v = nv
	}
	it.j.resident.touch(v.h)
	b, err := v.frame(&it.buf)
	if err == nil {
		err = decodeEntry(b, v, &it.entry)
	}
	if err != nil {
		it.err = err
		return false
	}
	it.next++
	return true
}

func isOutOfRange(err error) bool {
	return err != nil && errors.Is(err, ErrOutOfRange)
}

// Entry returns the current entry. Valid until the next Next or Close.
func (it *Iterator) Entry() *Entry { return &it.entry }

// Err returns the error that stopped the iterator, or nil.
func (it *Iterator) Err() error { return it.err }

// Close releases the pinned segment. It is idempotent and returns nil.
func (it *Iterator) Close() error {
	it.view.unpin()
	it.done = true
	it.entry = Entry{}
	return nil
}
