package journal

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Spare files: taking segment rolls off the write path (decision 0007).
//
// A spare is a file kept to become a future segment. There are two kinds:
//
//   - a retired segment kept for recycling, renamed <name>.seg.spare by
//     dropFrontLocked (retention, TruncateFront) once no reader holds it.
//     Its blocks are already written, so appends into its next life are
//     overwrites, and an fdatasync after them commits no metadata. Its
//     bytes are an earlier life's frames: the next life gets a new salt
//     (format version 3), so none of them verifies as one of its frames.
//     TruncateBack never recycles: it removes.
//   - a new file (next.spare), created when no retired one is available.
//
// The preparer goroutine (vfs.Default with preallocation on: where sizing
// costs a fallocate and fsyncs) makes one spare ready ahead of need: the
// file sized to SegmentSize, fsynced, and its directory entry fsynced. A
// roll then only writes the new header at offset 0, fdatasyncs it and
// renames the file to the segment's name (segmentFromSpareLocked). Without
// a ready spare the writer uses a retired one itself, and without either it
// creates the segment as before (createSegment).
//
// Crash safety: a spare's contents mean nothing; Open keeps up to
// RecycleSegments+1 *.spare files and deletes the rest. A segment made from
// a spare has a durable header before its name exists (fdatasync, then
// rename), like a created one; if the rename is lost, the file is a spare
// again.

// freshSpareName is the name of a new file made ready as a spare.
const freshSpareName = "next" + spareSuffix

// spareFile is a spare made ready to become the next segment.
type spareFile struct {
	path     string
	file     vfs.File // open read-write
	recycled bool     // holds an earlier life's bytes
	prevSalt uint32   // the earlier life's salt, if its header said (never reused)
}

// isSpareName reports whether a directory entry is a spare.
func isSpareName(name string) bool { return strings.HasSuffix(name, spareSuffix) }

// IsSpareFile reports whether name, a file name in a journal directory,
// is a spare (a retired segment kept for recycling, or a file made ready
// as the next segment): bytes that mean nothing, which a copy of the
// directory may leave out.
func IsSpareFile(name string) bool { return isSpareName(name) }

// adoptSpares takes the spare files Open found: up to the limit in the
// pool (recycled ones first: they have written blocks), the rest deleted.
// Open runs before the preparer, so the lock is not needed; it is taken
// for the race detector's sake.
func (j *Journal) adoptSpares(names []string) error {
	slices.SortFunc(names, func(a, b string) int {
		// Retired segments (<name>.seg.spare) before next.spare.
		if (a == freshSpareName) != (b == freshSpareName) {
			if a == freshSpareName {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	keep := j.spareLimit()
	j.spares.Lock()
	defer j.spares.Unlock()
	for _, name := range names {
		if len(j.spares.free) < keep {
			j.spares.free = append(j.spares.free, name)
			continue
		}
		if err := j.fs.Remove(j.fs.PathJoin(j.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("journal: remove spare %s: %w", name, err)
		}
		j.w.dirSyncPending = true
	}
	return nil
}

// spareLimit is how many spare files the journal keeps: the retired
// segments it may recycle, plus the one the preparer may have made.
func (j *Journal) spareLimit() int {
	if j.opts.RecycleSegments < 0 {
		return 0
	}
	return j.opts.RecycleSegments + 1
}

// recycleLocked keeps the file of a retired segment s, which no reader
// holds, as a spare: it renames it to <name>.spare. It returns false, nil
// when the pool is full (the caller removes the file). The caller syncs
// the directory. REQUIRES: w held.
func (j *Journal) recycleLocked(s *segment) (bool, error) {
	if j.opts.RecycleSegments < 0 {
		return false, nil
	}
	j.spares.Lock()
	n := len(j.spares.free)
	if j.spares.ready != nil || j.spares.preparing {
		n++
	}
	j.spares.Unlock()
	if n >= j.spareLimit() {
		return false, nil
	}
	name := s.name + spareSuffix
	if err := j.fs.Rename(s.path, j.fs.PathJoin(j.dir, name)); err != nil {
		return false, j.failLocked("rename", s.name, -1, err)
	}
	j.spares.Lock()
	j.spares.free = append(j.spares.free, name)
	j.spares.Unlock()
	j.kickPreparer()
	return true, nil
}

// kickPreparer asks the preparer for a ready spare; a no-op without one.
func (j *Journal) kickPreparer() {
	if j.prepKick == nil {
		return
	}
	select {
	case j.prepKick <- struct{}{}:
	default:
	}
}

// runPreparer is the preparer goroutine: on each kick it makes one spare
// ready unless one is. It stops when j.stop is closed; Close joins it.
func (j *Journal) runPreparer() {
	defer j.wg.Done()
	for {
		select {
		case <-j.stop:
			return
		case <-j.prepKick:
			j.prepareSpare()
		}
	}
}

// prepareSpare makes one spare ready: a retired segment from the pool if
// there is one, else a new file. A failure is logged, not sticky: the
// writer then creates its next segment itself, and any real trouble with
// the disk fails that.
func (j *Journal) prepareSpare() {
	j.spares.Lock()
	if j.spares.ready != nil || j.spares.preparing || j.spares.closed {
		j.spares.Unlock()
		return
	}
	name, recycled := freshSpareName, false
	if len(j.spares.free) > 0 {
		name, recycled = j.spares.free[0], true
		j.spares.free = j.spares.free[1:]
	}
	j.spares.preparing = true
	j.spares.Unlock()

	sp, err := j.makeSpare(name, recycled)

	j.spares.Lock()
	defer j.spares.Unlock()
	j.spares.preparing = false
	if err != nil {
		j.log.Warn("journal: cannot prepare the next segment; the writer creates it", "file", name, "err", err)
		_ = j.fs.Remove(j.fs.PathJoin(j.dir, name)) // Open deletes it otherwise
		return
	}
	if j.spares.closed {
		_ = sp.file.Close()
		return
	}
	j.spares.ready = sp
}

// makeSpare opens (recycled) or creates the spare file name and makes it
// ready: sized to SegmentSize where the journal sizes segments, fsynced
// and, for a new file, its directory entry fsynced (a recycled file's was
// synced when it was renamed). A new file gets its first block written,
// so that the header written at the roll lands in a written block and its
// fdatasync commits no extent conversion.
func (j *Journal) makeSpare(name string, recycled bool) (*spareFile, error) {
	path := j.fs.PathJoin(j.dir, name)
	sp := &spareFile{path: path, recycled: recycled}
	var f vfs.File
	var err error
	if recycled {
		if f, err = j.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified); err != nil {
			return nil, fmt.Errorf("open %s: %w", name, err)
		}
		var hdr [segmentHeaderSize]byte
		if n, _ := f.ReadAt(hdr[:], 0); n == len(hdr) {
			if h, problem := decodeSegmentHeader(hdr[:]); problem == "" {
				sp.prevSalt = h.salt
			}
		}
	} else {
		if f, err = j.fs.Create(path, vfs.WriteCategoryUnspecified); err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
		if j.sizeSegments {
			if _, err := f.WriteAt(make([]byte, min(4096, j.opts.SegmentSize)), 0); err != nil {
				_ = f.Close()
				return nil, fmt.Errorf("write %s: %w", name, err)
			}
		}
	}
	if j.sizeSegments {
		if _, err := sizeFile(f, j.opts.SegmentSize); err != nil {
			j.log.Warn("journal: cannot size a spare segment; it grows as it is written", "file", name, "err", err)
		}
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("fsync %s: %w", name, err)
	}
	if !recycled {
		if err := j.dirFile.Sync(); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("fsync directory %s: %w", j.dir, err)
		}
		j.stats.dirSyncs.Add(1)
	}
	sp.file = f
	return sp, nil
}

// takeSpareLocked returns a spare for the next segment: the ready one, or,
// when the preparer is idle (or absent), a retired one prepared here; nil
// when there is none (the caller creates a segment). A returned spare keeps
// the preparer out until the caller has renamed it and calls
// spareRenamed: its path may be next.spare, which the preparer would
// otherwise create anew (truncating the taken file) or remove. REQUIRES: w
// held.
func (j *Journal) takeSpareLocked() (*spareFile, error) {
	j.spares.Lock()
	if sp := j.spares.ready; sp != nil {
		j.spares.ready = nil
		j.spares.preparing = true
		j.spares.Unlock()
		j.stats.rollsPrepared.Add(1)
		return sp, nil
	}
	if j.spares.preparing || len(j.spares.free) == 0 {
		j.spares.Unlock()
		return nil, nil
	}
	name := j.spares.free[0]
	j.spares.free = j.spares.free[1:]
	// The preparer must not start meanwhile: it would create next.spare,
	// which may be the very file taken here (adopted by Open).
	j.spares.preparing = true
	j.spares.Unlock()
	sp, err := j.makeSpare(name, true)
	if err != nil {
		j.spareRenamed()
		return nil, j.failLocked("prepare", name, -1, err)
	}
	return sp, nil
}

// spareRenamed lets the preparer run again after a spare returned by
// takeSpareLocked has been renamed to its segment's name (or given up).
func (j *Journal) spareRenamed() {
	j.spares.Lock()
	j.spares.preparing = false
	j.spares.Unlock()
}

// segmentFromSpareLocked turns a ready spare into the segment whose first
// entry will have index firstIndex and seq firstSeq: it writes the header
// (a new salt: never the earlier life's), fdatasyncs it and renames the
// file to the segment's name. The directory fsync is left pending, as
// after createSegment. REQUIRES: w held.
func (j *Journal) segmentFromSpareLocked(sp *spareFile, firstIndex, firstSeq uint64) (*segment, vfs.File, error) {
	h := segmentHeader{
		version:    currentSegmentVersion,
		firstIndex: firstIndex,
		firstSeq:   firstSeq,
		salt:       newSalt(sp.prevSalt),
		recycled:   sp.recycled,
	}
	s := j.newSegment(h)
	fail := func(err error) (*segment, vfs.File, error) {
		_ = sp.file.Close()
		return nil, nil, err
	}
	var hdr [segmentHeaderSize]byte
	putSegmentHeader(hdr[:], h)
	if _, err := sp.file.WriteAt(hdr[:], 0); err != nil {
		return fail(fmt.Errorf("write %s: %w", sp.path, err))
	}
	if err := sp.file.SyncData(); err != nil {
		return fail(fmt.Errorf("fdatasync %s: %w", sp.path, err))
	}
	if err := j.fs.Rename(sp.path, s.path); err != nil {
		return fail(fmt.Errorf("rename %s: %w", sp.path, err))
	}
	var err error
	if s.h, err = newFileHandle(j.fs, s.path, s.name); err != nil {
		return fail(err)
	}
	if sp.recycled {
		j.stats.rollsRecycled.Add(1)
	}
	return s, sp.file, nil
}

// closeSpares closes the ready spare's file (the file stays, a spare for
// the next Open). REQUIRES: the preparer stopped.
func (j *Journal) closeSpares() {
	j.spares.Lock()
	defer j.spares.Unlock()
	j.spares.closed = true
	if sp := j.spares.ready; sp != nil {
		_ = sp.file.Close()
		j.spares.ready = nil
	}
}
