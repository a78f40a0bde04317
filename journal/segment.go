package journal

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/edsrzf/mmap-go"
)

// segment is one segment file and its in-memory index of entry offsets.
//
// Lifetime: the journal holds one reference while the segment is in its
// list; every reader (Read, Iterator) holds another while it uses the
// segment's bytes. When the count drops to zero the read resources are
// released (unmapped, closed). A removed segment's file is deleted only at
// zero (see Journal.retireLocked), so no reader ever sees a mapping vanish.
// A segment's file is never truncated or rewritten in place: truncation
// writes a new file and renames it over the old name, so an existing
// mapping keeps reading the old inode and can never fault (SIGBUS).
type segment struct {
	fs      vfs.FS
	path    string // full path
	name    string // base name, for errors
	useMmap bool

	firstIndex uint64 // index of the first entry (from the header)
	firstSeq   uint64 // first seq of the first entry (from the header)

	// Guarded by Journal.mu: written by the writer under mu.Lock, read by
	// readers under mu.RLock. Once sealed is true (observed under the lock),
	// offsets and size never change again, so readers may use them without
	// the lock.
	offsets []uint32 // offsets[i] = byte offset of entry firstIndex+i
	size    int64    // bytes of valid data: header + complete frames
	nextSeq uint64   // first seq of the entry after the last one
	lastTS  int64    // write timestamp of the newest entry, 0 if none
	sealed  bool

	refs atomic.Int32

	// open guards the lazily opened read resources.
	open struct {
		sync.Mutex
		data   []byte   // sealed: the whole file, mmapped or read into memory
		mapped bool     // data is an mmap
		file   vfs.File // active: a read-only handle for ReadAt
		freed  bool
	}
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

func (s *segment) acquire() { s.refs.Add(1) }

// release drops a reference and frees the read resources at zero. It
// returns the remaining count.
func (s *segment) release() int32 {
	n := s.refs.Add(-1)
	if n == 0 {
		s.free()
	}
	return n
}

func (s *segment) free() {
	s.open.Lock()
	defer s.open.Unlock()
	if s.open.freed {
		return
	}
	s.open.freed = true
	if s.open.mapped {
		m := mmap.MMap(s.open.data)
		_ = m.Unmap() // the kernel frees the pages; nothing to report to a reader
	}
	s.open.data = nil
	if s.open.file != nil {
		_ = s.open.file.Close()
		s.open.file = nil
	}
}

// adoptData installs bytes already loaded by Open's scan as the sealed
// segment's read mapping.
func (s *segment) adoptData(data []byte, mapped bool) {
	s.open.Lock()
	s.open.data, s.open.mapped = data, mapped
	s.open.Unlock()
}

// sealedData returns the sealed segment's bytes, mapping them on first use.
// REQUIRES: a reference held and sealed observed.
func (s *segment) sealedData() ([]byte, error) {
	s.open.Lock()
	defer s.open.Unlock()
	if s.open.data != nil {
		return s.open.data, nil
	}
	data, mapped, err := loadFile(s.fs, s.path, s.size, s.useMmap)
	if err != nil {
		return nil, err
	}
	s.open.data, s.open.mapped = data, mapped
	return data, nil
}

// readAt reads p from the active segment at off through a read-only handle
// opened on first use. REQUIRES: a reference held.
func (s *segment) readAt(p []byte, off int64) error {
	s.open.Lock()
	f := s.open.file
	if f == nil {
		var err error
		f, err = s.fs.Open(s.path)
		if err != nil {
			s.open.Unlock()
			return fmt.Errorf("journal: open %s for reading: %w", s.name, err)
		}
		s.open.file = f
	}
	s.open.Unlock()
	n, err := f.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("journal: read %s at offset %d: %w", s.name, off, err)
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
