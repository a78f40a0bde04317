package journal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// This file holds every operation that changes the directory: creating a
// segment, rolling, rewriting a segment's prefix (repair, TruncateBack) and
// removing segments. Each is crash-safe on its own:
//
//   - a segment is created as <name>.tmp, its header written and fdatasynced,
//     then renamed to <name>; the directory fsync follows before anything
//     written into the segment is acknowledged (Sync, or at once where the
//     operation itself is the acknowledgement). A segment file under its
//     final name therefore always starts with a durable, valid header.
//   - a segment is shortened by writing the kept prefix to <name>.tmp,
//     fdatasync, rename over <name>, directory fsync. Never in place.
//   - a sealed segment's index file is written in place and not synced
//     (a hint Open checks in full), before the next segment is created; it is
//     removed with its segment, and before TruncateBack rewrites it. Open
//     checks an index against its segment before using it, so a crash at
//     any point costs at most a scan.
//   - a segment is removed (or, while a reader holds it, renamed to
//     <name>.dead) and the directory fsynced before the next removal, so
//     that a crash leaves a contiguous run of segments.

// newSegment returns the in-memory segment for a file with the given header.
func (j *Journal) newSegment(h segmentHeader) *segment {
	name := segmentName(h.firstIndex)
	s := &segment{
		path:       j.fs.PathJoin(j.dir, name),
		name:       name,
		firstIndex: h.firstIndex,
		firstSeq:   h.firstSeq,
		version:    h.version,
		salt:       h.salt,
		seed:       crcSeed(h.version, h.salt),
		recycled:   h.recycled,
		size:       segmentHeaderSize,
		nextSeq:    h.firstSeq,
		termsKnown: true, // no entries, no runs; openIndexedSegment may say otherwise
	}
	s.refs.Store(1) // the journal's reference
	return s
}

// writeFileDurably writes the chunks produced by fill to path+".tmp",
// fdatasyncs it and renames it to path. The caller syncs the directory.
func writeFileDurably(fs vfs.FS, path string, fill func(w io.Writer) error) error {
	tmp := path + tmpSuffix
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if err := fill(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.SyncData(); err != nil {
		_ = f.Close()
		return fmt.Errorf("fdatasync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := fs.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// createSegment creates a new segment file whose first entry will have
// index firstIndex and seq firstSeq, and opens it for writing. The
// directory fsync is left pending.
func (j *Journal) createSegment(firstIndex, firstSeq uint64) (*segment, vfs.File, error) {
	h := segmentHeader{version: currentSegmentVersion, firstIndex: firstIndex, firstSeq: firstSeq, salt: newSalt(0)}
	s := j.newSegment(h)
	var hdr [segmentHeaderSize]byte
	putSegmentHeader(hdr[:], h)
	err := writeFileDurably(j.fs, s.path, func(w io.Writer) error {
		if _, err := w.Write(hdr[:]); err != nil {
			return err
		}
		if f, ok := w.(vfs.File); ok && j.sizeSegments {
			// Full size now, so that no append changes the file size
			// (decision 0007). The fsync makes the size durable with the
			// header; a file system that cannot is left to grow.
			sized, err := sizeFile(f, j.opts.SegmentSize)
			if err != nil {
				j.log.Warn("journal: cannot size a new segment; it grows as it is written", "segment", s.name, "err", err)
			}
			if sized {
				return f.Sync()
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	f, err := j.fs.OpenReadWrite(s.path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", s.name, err)
	}
	if s.h, err = newFileHandle(j.fs, s.path, s.name); err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return s, f, nil
}

// sealHandle returns the handle readers of s use once it is sealed: on
// vfs.Default, a mapping of its bytes (made now, while the writer lock
// guarantees the path names this file); elsewhere, or if mmap fails, its
// current file handle. REQUIRES: w held.
func (j *Journal) sealHandle(s *segment) *handle {
	if !j.useMmap {
		return nil
	}
	data, mapped, err := loadFile(j.fs, s.path, s.size, true)
	if err != nil {
		j.log.Warn("journal: cannot map sealed segment; reading it with pread", "segment", s.name, "err", err)
		return nil
	}
	return newMappedHandle(s.name, data, mapped)
}

// dropSegment releases the journal's references to a segment removed from
// mu.segments and returns how many reader references remain.
func dropSegment(s *segment) int32 {
	s.h.release()
	return s.release()
}

// rollLocked seals the active segment and starts a new one. The sealed
// segment is fdatasynced first under every policy, so that a sealed
// segment is always complete on disk (Open checks sealed segments
// strictly). Retention runs after the roll. REQUIRES: w held.
func (j *Journal) rollLocked() error {
	old := j.w.seg
	if err := j.syncDirIfPendingLocked(); err != nil {
		return err
	}
	trimmed := false
	if j.sizeSegments || old.recycled {
		// A sealed segment ends at its last frame, as if it had grown: Open
		// and the index file check sealed segments strictly. (A recycled
		// file holds its earlier life's bytes beyond the frames.)
		var err error
		if trimmed, err = j.trimSealedLocked(old); err != nil {
			return err
		}
	}
	if trimmed || j.mu.lastIndex > j.w.synced || j.opts.SyncPolicy == SyncNone {
		start := time.Now()
		sync := j.w.file.SyncData
		if trimmed {
			sync = j.w.file.Sync // the new size must be durable before the next segment exists
		}
		if err := sync(); err != nil {
			return j.failLocked("fsync", old.name, -1, err)
		}
		j.w.synced = j.mu.lastIndex
		j.stats.syncs.Add(1)
		j.stats.syncNanos.Add(uint64(time.Since(start)))
	}
	// The index file goes first: once the next segment exists, Open treats
	// old as sealed and trusts a valid index instead of scanning it. (The
	// index is checked against the segment, so a crash in between costs at
	// most a scan.) The directory fsync for both files is left pending.
	if err := writeSegIndex(j.fs, old); err != nil {
		return j.failLocked("write index", segIndexPath(old.name), -1, err)
	}
	var seg *segment
	var f vfs.File
	sp, err := j.takeSpareLocked()
	if err != nil {
		return err
	}
	if sp != nil {
		seg, f, err = j.segmentFromSpareLocked(sp, j.mu.lastIndex+1, j.mu.nextSeq)
		j.spareRenamed()
	} else {
		seg, f, err = j.createSegment(j.mu.lastIndex+1, j.mu.nextSeq)
	}
	if err != nil {
		return j.failLocked("create segment", segmentName(j.mu.lastIndex+1), -1, err)
	}
	j.w.dirSyncPending = true
	j.w.kicked = false
	if err := j.w.file.Close(); err != nil {
		_ = f.Close()
		return j.failLocked("close", old.name, -1, err)
	}
	j.w.file, j.w.seg = f, seg
	j.w.prealloc = allocatedTo(f)
	mapped := j.sealHandle(old)
	j.mu.Lock()
	prevHandle := old.h
	if mapped != nil {
		old.h = mapped
	}
	old.sealed = true
	j.mu.segments = append(j.mu.segments, seg)
	j.mu.Unlock()
	if mapped != nil {
		prevHandle.release()
	}
	j.stats.rolls.Add(1)
	if j.opts.RetentionBytes > 0 || j.opts.RetentionAge > 0 {
		// The last removal's directory fsync is left to the next Sync,
		// with the new segment's: it is off the write path, and a crash
		// that loses it leaves the removed segment in place, still
		// contiguous (each earlier removal was durable before the next).
		j.w.deferRemovalSync = true
		_, err := j.enforceRetentionLocked(time.Now())
		j.w.deferRemovalSync = false
		if err != nil {
			return err
		}
	}
	return nil
}

// trimSealedLocked cuts the active segment old, about to be sealed, to its
// last frame, and reports whether the file still needs a full fsync (its
// size changed in place). Where the file system cannot truncate a file in
// place (no file descriptor: tests' in-memory file systems), a recycled
// segment is rewritten to its prefix instead (tmp, fdatasync, rename,
// directory fsync: durable before the next segment exists); the readers'
// handle keeps the old file, whose bytes up to old.size are the same.
// REQUIRES: w held.
func (j *Journal) trimSealedLocked(old *segment) (bool, error) {
	if j.w.file.Fd() != vfs.InvalidFd {
		if err := trimFile(j.w.file, old.size); err != nil {
			return false, j.failLocked("trim", old.name, old.size, err)
		}
		return true, nil
	}
	if !old.recycled {
		return false, nil
	}
	err := writeFileDurably(j.fs, old.path, func(w io.Writer) error {
		return copyPrefix(j.fs, old.path, old.size, w)
	})
	if err != nil {
		return false, j.failLocked("trim", old.name, old.size, err)
	}
	return false, j.syncDirLocked()
}

// replaceEmptyActiveLocked replaces the empty active segment, a version-1
// one that an entry of a new kind may not go into, by a new segment of the
// current version with the same first index and first seq: created as
// <name>.tmp, synced and renamed over the old file like any new segment.
// Either file is a valid empty segment, so a crash at any point loses
// nothing; the directory fsync is left pending, as after a roll, and done
// before the entry written next is acknowledged. REQUIRES: w held; the
// active segment has no entries.
func (j *Journal) replaceEmptyActiveLocked() error {
	old := j.w.seg
	if err := j.syncDirIfPendingLocked(); err != nil {
		return err
	}
	seg, f, err := j.createSegment(old.firstIndex, old.firstSeq)
	if err != nil {
		return j.failLocked("create segment", old.name, -1, err)
	}
	j.w.dirSyncPending = true
	if err := j.w.file.Close(); err != nil {
		_ = f.Close()
		dropSegment(seg)
		return j.failLocked("close", old.name, -1, err)
	}
	j.w.file, j.w.seg = f, seg
	j.w.prealloc = allocatedTo(f)
	j.mu.Lock()
	j.mu.segments[len(j.mu.segments)-1] = seg
	j.mu.Unlock()
	dropSegment(old) // its path now names the new file; a reader keeps the old one
	return nil
}

// retireLocked deletes the file of a segment already removed from
// mu.segments and drops the journal's reference. With recycle, and when no
// reader holds it, the file may be kept as a spare instead (recycleLocked;
// never for TruncateBack, whose segments hold indexes that are reissued).
// If a reader still holds the segment, the file is renamed to *.dead
// instead and deleted once the last reader is gone (sweepGraveyardLocked;
// Open deletes leftovers). The directory is fsynced before returning.
// REQUIRES: w held.
func (j *Journal) retireLocked(s *segment, recycle bool) error {
	if dropSegment(s) == 0 {
		kept := false
		if recycle {
			var err error
			if kept, err = j.recycleLocked(s); err != nil {
				return err
			}
		}
		if !kept {
			if err := j.fs.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return j.failLocked("remove", s.name, -1, err)
			}
		}
	} else {
		if err := j.fs.Rename(s.path, s.path+deadSuffix); err != nil {
			return j.failLocked("rename", s.name, -1, err)
		}
		j.mu.Lock()
		j.mu.graveyard = append(j.mu.graveyard, s)
		j.mu.Unlock()
	}
	if err := removeSegIndex(j.fs, s); err != nil {
		return j.failLocked("remove", segIndexPath(s.name), -1, err)
	}
	j.stats.removed.Add(1)
	j.log.Info("journal: removed segment", "segment", s.name)
	if j.w.deferRemovalSync {
		j.w.dirSyncPending = true
		return nil
	}
	return j.syncDirLocked()
}

// sweepGraveyardLocked deletes the *.dead files no reader holds any more.
// Failures are logged, not sticky: a leftover is deleted by the next Open.
// REQUIRES: w held.
func (j *Journal) sweepGraveyardLocked() {
	j.mu.Lock()
	var keep []*segment
	var gone []*segment
	for _, s := range j.mu.graveyard {
		if s.refs.Load() == 0 {
			gone = append(gone, s)
		} else {
			keep = append(keep, s)
		}
	}
	j.mu.graveyard = keep
	j.mu.Unlock()
	for _, s := range gone {
		if err := j.fs.Remove(s.path + deadSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			j.log.Warn("journal: cannot remove retired segment", "segment", s.name+deadSuffix, "err", err)
		}
	}
}

// copyPrefix writes the first n bytes of src (read through fs) to w.
func copyPrefix(fs vfs.FS, src string, n int64, w io.Writer) error {
	f, err := fs.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < n; {
		chunk := buf[:min(int64(len(buf)), n-off)]
		if k, err := f.ReadAt(chunk, off); k != len(chunk) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		off += int64(len(chunk))
	}
	return nil
}
