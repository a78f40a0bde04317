package journal

// The term index. Raft asks for the term of an entry far more often than
// for its payload (to match a leader's prevLogTerm, to find a conflict,
// to decide a commit), so each segment keeps its entries' terms in memory
// as runs: terms[k] says that the entries from terms[k].first up to the
// next run's first (or the segment's last entry) all have terms[k].term.
// A segment holds one run per term change inside it (one per election in
// raft, one per segment in a standalone journal, whose terms are 0), so the
// index costs 16 bytes per run, not per entry.
//
// Who maintains it:
//   - the writer appends to the active segment's runs as it publishes a
//     frame (under mu.Lock);
//   - TruncateBack's rewrite keeps the runs up to the new last entry;
//     removed segments take theirs with them (TruncateFront, retention,
//     TruncateBack);
//   - Open builds the runs while it scans a segment, and takes them from a
//     version-2 index file (segindex.go) for a sealed segment it does not
//     scan. A version-1 index file has none: that segment's runs are filled
//     the first time Term needs them, by reading its frames' 64-byte
//     headers (fillTerms), and TruncateBack fills them before it makes such
//     a segment active again.
//
// Lock rules: runs are read under mu.RLock (Term), written under mu.Lock
// (the writer; fillTerms). A sealed segment's runs, once known, never
// change. Term on a segment whose runs are known (always the active
// segment) takes mu.RLock only: no I/O, no allocation, no wait for the
// writer beyond its publish.

import (
	"fmt"
)

// termRun is one run of the term index: the entries from first on (to the
// next run) have term.
type termRun struct {
	first uint64 // index of the run's first entry
	term  uint64
}

// appendTermRun records that entry index, the new last entry after the
// runs' entries, has term, and returns the runs. Consecutive runs always
// have different terms. It allocates only when a term change outgrows the
// slice.
func appendTermRun(runs []termRun, index, term uint64) []termRun {
	if n := len(runs); n == 0 || runs[n-1].term != term {
		runs = append(runs, termRun{first: index, term: term})
	}
	return runs
}

// termAt returns the term of entry index. REQUIRES: index is one of the
// runs' entries (at or after runs[0].first, at or before the segment's
// last entry).
func termAt(runs []termRun, index uint64) uint64 {
	// The last run whose first is <= index.
	lo, hi := 0, len(runs)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if runs[mid].first <= index {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return runs[lo-1].term
}

// termPrefix returns a copy of the runs of the entries up to last.
func termPrefix(runs []termRun, last uint64) []termRun {
	k := 0
	for k < len(runs) && runs[k].first <= last {
		k++
	}
	return append([]termRun(nil), runs[:k]...)
}

// Term returns the term of entry i without reading its payload: from the
// term index kept in memory per segment. It returns ErrTruncated below
// FirstIndex, ErrOutOfRange above LastIndex (as Read does) and ErrClosed
// after Close. On the active segment, and on every segment written or
// scanned by this process, it does no I/O and does not allocate. A sealed
// segment that Open took from a version-1 index file has its runs filled
// by the first Term that lands in it, which reads every frame header of
// that segment once (ErrCorrupt with the file and offset if one is
// damaged). Safe for concurrent use; it never waits for an fsync.
func (j *Journal) Term(i uint64) (uint64, error) {
	j.mu.RLock()
	term, known, err := j.termLocked(i)
	j.mu.RUnlock()
	if err != nil || known {
		return term, err
	}
	return j.fillTerms(i)
}

// termLocked looks entry i up in its segment's runs; known is false if
// they have not been filled yet. REQUIRES: mu held (read or write).
func (j *Journal) termLocked(i uint64) (term uint64, known bool, err error) {
	if err := j.checkIndexLocked(i); err != nil {
		return 0, false, err
	}
	s := j.findSegmentLocked(i)
	if !s.termsKnown {
		return 0, false, nil
	}
	return termAt(s.terms, i), true, nil
}

// checkIndexLocked returns the error for an entry outside the journal, or
// nil. REQUIRES: mu held (read or write).
func (j *Journal) checkIndexLocked(i uint64) error {
	if j.mu.closed {
		return ErrClosed
	}
	if first := j.firstIndexLocked(); i < first {
		return fmt.Errorf("%w: index %d, first index is %d", ErrTruncated, i, first)
	}
	if i > j.mu.lastIndex {
		return fmt.Errorf("%w: index %d, last index is %d", ErrOutOfRange, i, j.mu.lastIndex)
	}
	return nil
}

// fillTerms fills the runs of the sealed segment holding entry i from its
// frame headers, publishes them, and returns entry i's term. Concurrent
// fills of one segment compute the same runs; the first to publish wins.
// REQUIRES: nothing held.
func (j *Journal) fillTerms(i uint64) (uint64, error) {
	v, err := j.locate(i) // pins the segment: its bytes stay readable
	if err != nil {
		return 0, err
	}
	defer v.unpin()
	runs, err := readTermRuns(v.seg, v.h)
	if err != nil {
		return 0, err
	}
	j.resident.touch(v.h)
	j.mu.Lock()
	if !v.seg.termsKnown {
		v.seg.terms, v.seg.termsKnown = runs, true
	}
	j.mu.Unlock()
	return termAt(runs, i), nil
}

// readTermRuns builds a segment's runs from its frame headers (64 bytes
// each; payloads are neither read nor checksummed). Each header must pass
// decodeFrameHeader and carry the index its position says. REQUIRES: s is
// sealed (its offsets no longer change) or w held; a reference on h.
func readTermRuns(s *segment, h *handle) ([]termRun, error) {
	var runs []termRun
	var buf []byte
	for k, off := range s.offsets {
		index := s.firstIndex + uint64(k)
		b, err := h.read(int64(off), int64(off)+frameHeaderSize, &buf)
		if err != nil {
			return nil, err
		}
		fh, p := decodeFrameHeader(b, s.version)
		if p == frameOK && fh.index != index {
			p = frameBadIndex
		}
		if p != frameOK {
			return nil, corruptf(s.name, int64(off), "reading the header of entry %d: %v", index, p)
		}
		runs = appendTermRun(runs, index, fh.term)
	}
	return runs, nil
}

// ensureKeptTermsLocked fills the term runs of the segment that
// TruncateBack(index) rewrites into the active segment, if it keeps an
// entry (it holds both index and index+1) and they are not known yet.
// REQUIRES: w held (the segment stays in the list, and its handle open,
// while it reads); FirstIndex-1 <= index < LastIndex.
func (j *Journal) ensureKeptTermsLocked(index uint64) error {
	j.mu.RLock()
	if index < j.firstIndexLocked() {
		j.mu.RUnlock()
		return nil
	}
	s := j.findSegmentLocked(index)
	skip := s.termsKnown || s.lastIndex() == index
	j.mu.RUnlock()
	if skip {
		return nil
	}
	runs, err := readTermRuns(s, s.h)
	if err != nil {
		return err
	}
	j.mu.Lock()
	if !s.termsKnown {
		s.terms, s.termsKnown = runs, true
	}
	j.mu.Unlock()
	return nil
}
