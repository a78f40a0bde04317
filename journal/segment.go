package journal

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/edsrzf/mmap-go"
)

// segment is one segment file and its in-memory index of entry offsets.
//
// Lifetime: the journal holds one reference while the segment is in its
// list; every reader (Read, Iterator) holds another while it uses the
// segment's bytes. A removed segment's file is deleted only when the count
// is zero (see Journal.retireLocked), so no reader ever sees its file
// vanish. A segment's file is never truncated or rewritten in place:
// truncation writes a new file and renames it over the old name, so an
// existing mapping keeps reading the old inode and can never fault.
type segment struct {
	path string // full path
	name string // base name, for errors

	firstIndex uint64 // index of the first entry (from the header)
	firstSeq   uint64 // first seq of the first entry (from the header)
	version    uint8  // the header's version: which kinds its frames may hold
	salt       uint32 // version 3: the life's salt (header); 0 before
	seed       uint32 // crcSeed(version, salt): where every frame's CRC starts
	recycled   bool   // version 3: the file held an earlier life (segFlagRecycled)

	// Guarded by Journal.mu: written by the writer under mu.Lock, read by
	// readers under mu.RLock. Once sealed is observed true under the lock,
	// offsets and size never change again, so readers may use them without
	// the lock.
	offsets []uint32 // offsets[i] = byte offset of entry firstIndex+i
	size    int64    // bytes of valid data: header + complete frames
	nextSeq uint64   // first seq of the entry after the last one
	lastTS  int64    // write timestamp of the newest entry, 0 if none
	lastCRC uint32   // CRC field of the newest entry's frame (for the index file)
	sealed  bool
	// terms is the segment's term index (terms.go): one run per stretch of
	// entries with the same term, so that Term(i) reads no frame. Like
	// offsets it is written by the writer under mu.Lock and never changes
	// once sealed, with one exception: a sealed segment taken at Open from
	// a version-1 index file has termsKnown false until the first Term that
	// needs it fills terms, once, under mu.Lock (fillTerms). Always read
	// under mu.RLock; the active segment's terms are always known.
	terms      []termRun
	termsKnown bool
	h          *handle // how to read the bytes; replaced when sealed

	refs atomic.Int32
}

// entries returns the number of entries. REQUIRES: Journal.mu held, or
// sealed observed.
func (s *segment) entries() int { return len(s.offsets) }

// lastIndex returns the index of the last entry, firstIndex-1 when empty.
// REQUIRES: Journal.mu held, or sealed observed.
func (s *segment) lastIndex() uint64 { return s.firstIndex + uint64(len(s.offsets)) - 1 }

// entryBounds returns the byte range of entry idx. REQUIRES: Journal.mu
// held, or sealed observed; idx within the segment.
func (s *segment) entryBounds(idx uint64) (start, end int64) {
	i := idx - s.firstIndex
	start = int64(s.offsets[i])
	if i+1 < uint64(len(s.offsets)) {
		return start, int64(s.offsets[i+1])
	}
	return start, s.size
}

func (s *segment) acquire()       { s.refs.Add(1) }
func (s *segment) release() int32 { return s.refs.Add(-1) }

// handle is a reference-counted way to read a segment's bytes: a read-only
// mapping of a sealed segment (on vfs.Default) or a read-only file handle
// for ReadAt (the active segment, and every segment on other file
// systems). The segment holds one reference while the handle is current;
// each reader holds one while it reads. At zero the mapping is unmapped or
// the file closed: never while a reader uses it.
type handle struct {
	refs   atomic.Int32
	name   string
	data   []byte   // the mapping, or nil
	mapped bool     // data came from mmap (else it is a heap copy)
	file   vfs.File // for ReadAt, if data is nil
}

func newMappedHandle(name string, data []byte, mapped bool) *handle {
	h := &handle{name: name, data: data, mapped: mapped}
	h.refs.Store(1)
	return h
}

func newFileHandle(fs vfs.FS, path, name string) (*handle, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s for reading: %w", name, err)
	}
	h := &handle{name: name, file: f}
	h.refs.Store(1)
	return h, nil
}

func (h *handle) acquire() { h.refs.Add(1) }

// tryAcquire takes a reference unless the handle is already released.
func (h *handle) tryAcquire() bool {
	for {
		n := h.refs.Load()
		if n <= 0 {
			return false
		}
		if h.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (h *handle) release() {
	if h.refs.Add(-1) != 0 {
		return
	}
	if h.mapped {
		m := mmap.MMap(h.data)
		_ = m.Unmap() // nothing left to report it to: no reader holds it
	}
	h.data = nil
	if h.file != nil {
		_ = h.file.Close()
		h.file = nil
	}
}

// read returns bytes [start, end): a slice of the mapping, or a ReadAt
// into *buf (grown as needed). REQUIRES: a reference held.
func (h *handle) read(start, end int64, buf *[]byte) ([]byte, error) {
	if h.data != nil {
		if end > int64(len(h.data)) {
			return nil, fmt.Errorf("%w: %s at offset %d: entry ends at %d, mapping at %d",
				ErrCorrupt, h.name, start, end, len(h.data))
		}
		return h.data[start:end:end], nil
	}
	n := int(end - start)
	b := slices.Grow((*buf)[:0], n)[:n]
	*buf = b
	k, err := h.file.ReadAt(b, start)
	if k == n {
		return b, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("journal: read %s at offset %d: %w", h.name, start, err)
}

// loadFile returns the first size bytes of the file: an mmap when useMmap
// (vfs.Default), else a heap copy read through fs. size must be > 0:
// mapping an empty file fails.
func loadFile(fs vfs.FS, path string, size int64, useMmap bool) ([]byte, bool, error) {
	if size <= 0 {
		return nil, false, fmt.Errorf("journal: load %s: empty file", path)
	}
	if useMmap {
		f, err := os.Open(path)
		if err != nil {
			return nil, false, fmt.Errorf("journal: open %s: %w", path, err)
		}
		m, err := mmap.MapRegion(f, int(size), mmap.RDONLY, 0, 0)
		closeErr := f.Close() // the mapping outlives the descriptor
		if err != nil {
			return nil, false, fmt.Errorf("journal: mmap %s: %w", path, err)
		}
		if closeErr != nil {
			_ = m.Unmap()
			return nil, false, fmt.Errorf("journal: close %s: %w", path, closeErr)
		}
		return m, true, nil
	}
	f, err := fs.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("journal: open %s: %w", path, err)
	}
	defer f.Close()
	buf := make([]byte, size)
	n, err := f.ReadAt(buf, 0)
	if n != len(buf) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, false, fmt.Errorf("journal: read %s: %w", path, err)
	}
	return buf, false, nil
}

// unload releases bytes returned by loadFile.
func unload(data []byte, mapped bool) {
	if mapped {
		m := mmap.MMap(data)
		_ = m.Unmap()
	}
}
