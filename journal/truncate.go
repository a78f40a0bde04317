package journal

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TruncateFront drops every whole segment whose entries all lie below
// index (retention or raft log compaction). The active segment is never
// dropped, so FirstIndex may stay below index. Each removal is durable
// (directory fsync) before the next. Readers of a dropped segment keep
// their bytes until they release them; reads that start afterwards return
// ErrTruncated. index above LastIndex()+1 returns ErrOutOfRange.
func (j *Journal) TruncateFront(index uint64) error {
	j.w.Lock()
	defer j.w.Unlock()
	if err := j.writableLocked(); err != nil {
		return err
	}
	if index > j.mu.lastIndex+1 {
		return fmt.Errorf("%w: truncate front to %d, last index is %d", ErrOutOfRange, index, j.mu.lastIndex)
	}
	_, err := j.dropFrontLocked(func(s *segment) bool { return s.lastIndex() < index })
	return err
}

// EnforceRetention drops the oldest sealed segments while the journal is
// larger than Options.RetentionBytes, and those whose newest entry was
// written before now-Options.RetentionAge (the entries' own timestamps,
// not file times). The active segment is never dropped. It also runs
// automatically after each segment roll. It returns how many segments it
// removed.
func (j *Journal) EnforceRetention(now time.Time) (removedSegments int, err error) {
	j.w.Lock()
	defer j.w.Unlock()
	if err := j.writableLocked(); err != nil {
		return 0, err
	}
	return j.enforceRetentionLocked(now)
}

// enforceRetentionLocked: REQUIRES: w held.
func (j *Journal) enforceRetentionLocked(now time.Time) (int, error) {
	if j.opts.RetentionBytes == 0 && j.opts.RetentionAge == 0 {
		return 0, nil
	}
	j.mu.RLock()
	var total int64
	for _, s := range j.mu.segments {
		total += s.size
	}
	j.mu.RUnlock()
	cutoff := now.Add(-j.opts.RetentionAge).UnixNano()
	return j.dropFrontLocked(func(s *segment) bool {
		tooBig := j.opts.RetentionBytes > 0 && total > j.opts.RetentionBytes
		tooOld := j.opts.RetentionAge > 0 && s.lastTS < cutoff
		if tooBig || tooOld {
			total -= s.size
			return true
		}
		return false
	})
}

// dropFrontLocked removes sealed segments from the front while drop says
// so. REQUIRES: w held.
func (j *Journal) dropFrontLocked(drop func(s *segment) bool) (int, error) {
	j.sweepGraveyardLocked()
	// The newest segment's name must be durable before older ones go, or a
	// crash could leave no segment to carry NextSeq.
	if err := j.syncDirIfPendingLocked(); err != nil {
		return 0, err
	}
	removed := 0
	for {
		if err := j.syncDirIfPendingLocked(); err != nil { // the previous removal, if deferred
			return removed, err
		}
		j.mu.Lock()
		if len(j.mu.segments) < 2 || !j.mu.segments[0].sealed || !drop(j.mu.segments[0]) {
			j.mu.Unlock()
			return removed, nil
		}
		s := j.mu.segments[0]
		j.mu.segments[0] = nil
		j.mu.segments = j.mu.segments[1:]
		j.mu.Unlock()
		if err := j.retireLocked(s, true); err != nil {
			return removed, err
		}
		removed++
	}
}

// TruncateBack drops every entry with an index above index (raft suffix
// truncation); the next Write gets index+1 and the NextSeq the dropped
// entry index+1 had. Later segments are removed newest first, each removal
// made durable before the next; the segment holding index+1 is rewritten
// to its kept prefix (a new file renamed over the old one, so readers'
// mappings stay valid) and becomes the active segment. index >= LastIndex
// is a no-op; index < FirstIndex-1 returns ErrTruncated. Any I/O failure
// makes the journal failed (ErrFailed).
func (j *Journal) TruncateBack(index uint64) error {
	j.w.Lock()
	defer j.w.Unlock()
	if err := j.writableLocked(); err != nil {
		return err
	}
	if index >= j.mu.lastIndex {
		return nil
	}
	j.mu.RLock()
	first := j.firstIndexLocked()
	j.mu.RUnlock()
	if index+1 < first {
		return fmt.Errorf("%w: truncate back to %d, first index is %d", ErrTruncated, index, first)
	}
	// The segment that keeps entry index becomes the active one, whose term
	// runs must be known (terms.go): fill them now, before anything
	// changes, so that a damaged header fails this call and not the journal.
	if err := j.ensureKeptTermsLocked(index); err != nil {
		return err
	}
	if err := j.syncDirIfPendingLocked(); err != nil {
		return err
	}
	j.truncations.Add(1)
	// 1. Remove whole segments above index, newest first.
	for {
		j.mu.Lock()
		last := j.mu.segments[len(j.mu.segments)-1]
		if last.firstIndex <= index+1 {
			j.mu.Unlock()
			break
		}
		j.mu.segments = j.mu.segments[:len(j.mu.segments)-1]
		prev := j.mu.segments[len(j.mu.segments)-1]
		j.mu.lastIndex = prev.lastIndex()
		j.mu.nextSeq = prev.nextSeq
		j.mu.Unlock()
		if last == j.w.seg {
			if err := j.w.file.Close(); err != nil {
				return j.failLocked("close", last.name, -1, err)
			}
			j.w.file, j.w.seg = nil, nil
		}
		if err := j.retireLocked(last, false); err != nil {
			return err
		}
	}
	// 2. Rewrite the segment that holds index+1 to its prefix.
	j.mu.RLock()
	s := j.mu.segments[len(j.mu.segments)-1]
	j.mu.RUnlock()
	// The loop stops at the segment holding index+1 (contiguity: the one
	// after it starts above index+1), so s.lastIndex() > index here.
	if err := j.rewritePrefixLocked(s, index); err != nil {
		return err
	}
	j.w.synced = min(j.w.synced, index)
	return nil
}

// rewritePrefixLocked replaces the last segment s by a copy of its entries
// up to index and makes it the active segment. REQUIRES: w held; s is the
// last segment; s.firstIndex <= index+1 <= s.lastIndex(); s's term runs
// known if it keeps an entry (ensureKeptTermsLocked).
func (j *Journal) rewritePrefixLocked(s *segment, index uint64) error {
	cutAt, _ := s.entryBounds(index + 1)
	// The dropped entry's header tells the seq to continue with.
	var hdr [frameHeaderSize]byte
	if err := readFileAt(j.fs, s.path, cutAt, hdr[:]); err != nil {
		return j.failLocked("read", s.name, cutAt, err)
	}
	if binary.LittleEndian.Uint64(hdr[frameOffIndex:]) != index+1 {
		return j.failLocked("read", s.name, cutAt, fmt.Errorf("%w: expected entry %d", ErrCorrupt, index+1))
	}
	nextSeq := binary.LittleEndian.Uint64(hdr[frameOffFirstSeq:])
	var lastTS int64
	var lastCRC uint32
	if index >= s.firstIndex {
		prevAt, _ := s.entryBounds(index)
		if err := readFileAt(j.fs, s.path, prevAt, hdr[:]); err != nil {
			return j.failLocked("read", s.name, prevAt, err)
		}
		lastTS = int64(binary.LittleEndian.Uint64(hdr[frameOffTimestamp:]))
		lastCRC = binary.LittleEndian.Uint32(hdr[frameOffCRC:])
	}
	j.mu.RLock()
	terms := termPrefix(s.terms, index) // known if it keeps an entry: ensureKeptTermsLocked
	j.mu.RUnlock()
	if j.w.seg == s {
		if err := j.w.file.Close(); err != nil {
			return j.failLocked("close", s.name, -1, err)
		}
		j.w.file, j.w.seg = nil, nil
	}
	// The segment becomes the active one: an index file left from when it
	// was sealed no longer describes it.
	if err := removeSegIndex(j.fs, s); err != nil {
		return j.failLocked("remove", segIndexPath(s.name), -1, err)
	}
	err := writeFileDurably(j.fs, s.path, func(w io.Writer) error {
		return copyPrefix(j.fs, s.path, cutAt, w)
	})
	if err != nil {
		return j.failLocked("rewrite", s.name, cutAt, err)
	}
	if err := j.syncDirLocked(); err != nil {
		return err
	}
	ns := j.newSegment(segmentHeader{version: s.version, firstIndex: s.firstIndex, firstSeq: s.firstSeq, salt: s.salt, recycled: s.recycled})
	keep := int(index + 1 - s.firstIndex)
	ns.offsets = append(make([]uint32, 0, keep), s.offsets[:keep]...)
	ns.terms = terms
	ns.size = cutAt
	ns.nextSeq = nextSeq
	ns.lastTS = lastTS
	ns.lastCRC = lastCRC
	f, err := j.fs.OpenReadWrite(ns.path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return j.failLocked("open", ns.name, -1, err)
	}
	if ns.h, err = newFileHandle(j.fs, ns.path, ns.name); err != nil {
		_ = f.Close()
		return j.failLocked("open", ns.name, -1, err)
	}
	j.mu.Lock()
	j.mu.segments[len(j.mu.segments)-1] = ns
	j.mu.lastIndex = index
	j.mu.nextSeq = nextSeq
	j.mu.Unlock()
	if j.sizeSegments {
		if _, err := sizeFile(f, j.opts.SegmentSize); err != nil {
			j.log.Warn("journal: cannot size the active segment; it grows as it is written", "segment", ns.name, "err", err)
		}
	}
	j.w.file, j.w.seg = f, ns
	j.w.prealloc = allocatedTo(f)
	dropSegment(s) // its path now names the new file; readers keep the old one
	return nil
}
