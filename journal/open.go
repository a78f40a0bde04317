package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// lockName is the lock file that keeps a second process (or a second Open
// in this process) out of the directory.
const lockName = "LOCK"

// Open opens the journal in dir, creating the directory and the first
// segment if needed. It scans every segment, checking every entry's CRC and
// the continuity of indexes and sequence numbers; rebuilds the in-memory
// offset index; repairs a torn tail of the last segment (see RepairReport);
// and fails with an error wrapping ErrCorrupt, naming the file and byte
// offset, on interior corruption. Everything it recovers is fsynced before
// it returns. Open never modifies opts.
func Open(dir string, opts *Options) (*Journal, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	j := &Journal{
		dir:     dir,
		opts:    o,
		fs:      o.FS,
		log:     o.Logger,
		useMmap: o.FS == vfs.Default,
	}
	j.sizeSegments = j.useMmap && !o.DisablePreallocation
	if j.useMmap && o.MaxResidentBytes >= 0 {
		j.resident = newResidentSet(o.MaxResidentBytes, o.SegmentSize)
	}
	if err := j.openDir(); err != nil {
		return nil, err
	}
	if err := j.recover(); err != nil {
		j.releaseAll()
		return nil, err
	}
	if o.SyncPolicy == SyncInterval || j.sizeSegments {
		j.stop = make(chan struct{})
	}
	if o.SyncPolicy == SyncInterval {
		j.wg.Add(1)
		go j.runSyncer()
	}
	if j.sizeSegments {
		// Where a new segment costs a fallocate and fsyncs, the next one is
		// made ready in the background (spare.go). Elsewhere (other file
		// systems, tests) rolls stay synchronous and deterministic.
		j.prepKick = make(chan struct{}, 1)
		j.wg.Add(1)
		go j.runPreparer()
	}
	return j, nil
}

// openDir creates the directory (and any missing ancestors, fsyncing the
// parent of each one it creates), takes the lock and opens the directory
// for fsyncs.
func (j *Journal) openDir() error {
	fs := j.fs
	var missing []string
	for d := j.dir; ; {
		if _, err := fs.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		parent := fs.PathDir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if err := fs.MkdirAll(j.dir, 0o755); err != nil {
		return fmt.Errorf("journal: create %s: %w", j.dir, err)
	}
	for _, d := range missing { // deepest first; each new entry made durable
		if err := syncPath(fs, fs.PathDir(d)); err != nil {
			return fmt.Errorf("journal: fsync parent of %s: %w", d, err)
		}
	}
	lock, err := fs.Lock(fs.PathJoin(j.dir, lockName))
	if err != nil {
		return fmt.Errorf("journal: lock %s: %w", j.dir, err)
	}
	d, err := fs.OpenDir(j.dir)
	if err != nil {
		_ = lock.Close()
		return fmt.Errorf("journal: open directory %s: %w", j.dir, err)
	}
	j.lock, j.dirFile = lock, d
	return nil
}

func syncPath(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}

// releaseAll undoes a failed Open.
func (j *Journal) releaseAll() {
	for _, s := range j.mu.segments {
		if s.h != nil {
			dropSegment(s)
		}
	}
	j.mu.segments = nil
	if j.w.file != nil {
		_ = j.w.file.Close()
	}
	_ = j.dirFile.Close()
	_ = j.lock.Close()
}

// recover lists, scans and repairs the segments and opens the active one.
func (j *Journal) recover() error {
	fs := j.fs
	names, err := fs.List(j.dir)
	if err != nil {
		return fmt.Errorf("journal: list %s: %w", j.dir, err)
	}
	slices.Sort(names)
	var indexes, indexFiles []uint64
	var spares []string
	for _, name := range names {
		if isSpareName(name) {
			spares = append(spares, name)
			continue
		}
		if strings.HasSuffix(name, tmpSuffix) || strings.HasSuffix(name, deadSuffix) {
			if err := fs.Remove(fs.PathJoin(j.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("journal: remove leftover %s: %w", name, err)
			}
			j.repair.RemovedFiles = append(j.repair.RemovedFiles, name)
			j.w.dirSyncPending = true
			continue
		}
		if idx, ok := parseSegmentName(name); ok {
			indexes = append(indexes, idx) // sorted: names are zero-padded
		} else if idx, ok := parseSegIndexName(name); ok {
			indexFiles = append(indexFiles, idx)
		}
	}
	// An index file is only kept beside a sealed segment: one whose segment
	// is gone, or that belongs to the last (active) segment, is removed.
	for _, idx := range indexFiles {
		if i, found := slices.BinarySearch(indexes, idx); found && i < len(indexes)-1 {
			continue
		}
		name := segIndexPath(segmentName(idx))
		if err := fs.Remove(fs.PathJoin(j.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("journal: remove leftover %s: %w", name, err)
		}
		j.repair.RemovedFiles = append(j.repair.RemovedFiles, name)
		j.w.dirSyncPending = true
	}

	if err := j.adoptSpares(spares); err != nil {
		return err
	}

	if len(indexes) == 0 {
		// A new journal starts where the options say (a raft snapshot
		// installed into a fresh directory); an existing one where its
		// segments say.
		seg, f, err := j.createSegment(j.opts.FirstIndex, j.opts.FirstSeq)
		if err != nil {
			return fmt.Errorf("journal: create first segment: %w", err)
		}
		j.mu.segments = []*segment{seg}
		j.mu.lastIndex, j.mu.nextSeq = seg.lastIndex(), seg.nextSeq
		j.w.file, j.w.seg = f, seg
		j.w.prealloc = allocatedTo(f)
		if err := j.dirFile.Sync(); err != nil {
			return fmt.Errorf("journal: fsync directory %s: %w", j.dir, err)
		}
		j.w.dirSyncPending = false
		return nil
	}

	for i, idx := range indexes {
		last := i == len(indexes)-1
		if err := j.scanSegment(idx, last); err != nil {
			return err
		}
	}
	active := j.mu.segments[len(j.mu.segments)-1]
	f, err := fs.OpenReadWrite(active.path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("journal: open %s: %w", active.name, err)
	}
	j.w.file, j.w.seg = f, active
	if j.sizeSegments {
		if _, err := sizeFile(f, j.opts.SegmentSize); err != nil {
			// Not fatal: the segment grows as it is written, as on file
			// systems without fallocate. A full disk fails the first write.
			j.log.Warn("journal: cannot size the active segment", "segment", active.name, "err", err)
		}
	}
	j.w.prealloc = allocatedTo(f)
	// Make what was recovered durable before new frames vouch for it (their
	// synced field): after a kill -9 the tail may sit in the page cache only.
	// A full fsync: it also commits the size sizeFile set.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("journal: fsync %s: %w", active.name, err)
	}
	if err := j.dirFile.Sync(); err != nil {
		return fmt.Errorf("journal: fsync directory %s: %w", j.dir, err)
	}
	j.w.dirSyncPending = false
	j.w.synced = j.mu.lastIndex
	return nil
}

// scanSegment validates one segment and appends it to mu.segments. A sealed
// segment (not the last) must be entirely valid. The last one may end in a
// torn tail, which is cut off (see doc.go for the rules).
func (j *Journal) scanSegment(nameIndex uint64, last bool) error {
	fs := j.fs
	name := segmentName(nameIndex)
	path := fs.PathJoin(j.dir, name)
	st, err := fs.Stat(path)
	if err != nil {
		return fmt.Errorf("journal: stat %s: %w", name, err)
	}
	size := st.Size()
	if size < segmentHeaderSize {
		return corruptf(name, 0, "segment file of %d bytes is shorter than its header", size)
	}
	var indexProblem string
	if !last {
		var ok bool
		if ok, indexProblem, err = j.openIndexedSegment(name, path, nameIndex, size); ok || err != nil {
			return err
		}
	}
	data, mapped, err := loadFile(fs, path, size, j.useMmap)
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			unload(data, mapped)
		}
	}()

	h, err := j.checkSegmentHeader(name, nameIndex, data)
	if err != nil {
		return err
	}

	s := j.newSegment(h)
	off := segmentHeaderSize
	expect, seq := h.firstIndex, h.firstSeq
	var problemAt frameProblem
	for off < len(data) {
		fh, n, p := decodeFrame(data[off:], h.version, s.seed)
		if p == frameOK && fh.index != expect {
			p = frameBadIndex
		}
		if p == frameOK && fh.firstSeq != seq {
			p = frameBadSeq
		}
		if p != frameOK {
			problemAt = p
			break
		}
		s.offsets = append(s.offsets, uint32(off))
		s.terms = appendTermRun(s.terms, fh.index, fh.term)
		off += n
		expect++
		seq += uint64(fh.records)
		s.lastTS = fh.timestamp
		s.lastCRC = fh.crc
	}
	s.size = int64(off)
	s.nextSeq = seq

	// Free space: zeros from off to the end of the last segment are the
	// rest of a segment created at full size (sizeFile), or a tail the file
	// system extended without its data. No frame there vouches for
	// anything, and the writer continues at off, overwriting zeros. (In a
	// sealed segment, which was trimmed to its frames before the next one
	// was created, zeros are damage like any other bytes.) In a recycled
	// segment (version 3), the earlier life's bytes are free space too:
	// whatever they hold, no frame among them verifies with this life's
	// salt, so none can ever be taken for an entry of this life. A torn
	// frame of this life is then left in place rather than rewritten: it
	// cannot verify either, and the writer overwrites it (a complete frame
	// of this life after it is not free space: it is cut by the rewrite
	// below, as in any segment).
	free := last && off < len(data) && (zeroTail(data[off:]) ||
		s.recycled && countFrames(data, s.version, s.seed, off) == 0)
	if off < len(data) && !free {
		if !last {
			return corruptf(name, int64(off), "%v in a sealed segment", problemAt)
		}
		if at, claim, ok := findDurableClaim(data, h.version, s.seed, off+1, expect); ok {
			return corruptf(name, int64(off), "%v, but the entry at offset %d (index %d) was written after index %d was fsynced",
				problemAt, at, claim, expect)
		}
		if err := j.truncateTail(s, data, off, problemAt); err != nil {
			return err
		}
	}
	if !last {
		j.opened.scanned++
		j.writeMissingIndex(s, indexProblem)
	}
	if !last && mapped {
		// The scan touched every page; readers fault back what they need.
		adviseDontNeed(data)
		s.h = newMappedHandle(name, data, mapped)
		keep = true
	} else if s.h, err = newFileHandle(fs, path, name); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	s.sealed = !last
	j.appendRecovered(s)
	return nil
}

// appendRecovered adds a segment Open has checked to the end of the
// journal. Open runs before any reader or writer, so mu is not taken.
func (j *Journal) appendRecovered(s *segment) {
	j.mu.segments = append(j.mu.segments, s)
	j.mu.lastIndex = s.lastIndex()
	j.mu.nextSeq = s.nextSeq
}

// checkSegmentHeader decodes the segment header at the start of b and
// checks it against the file name and the previous segment.
func (j *Journal) checkSegmentHeader(name string, nameIndex uint64, b []byte) (segmentHeader, error) {
	h, problem := decodeSegmentHeader(b)
	if problem != "" {
		return h, corruptf(name, 0, "%s", problem)
	}
	if h.firstIndex != nameIndex {
		return h, corruptf(name, segOffFirstIndex, "header says first index %d, file name says %d", h.firstIndex, nameIndex)
	}
	if n := len(j.mu.segments); n > 0 {
		prev := j.mu.segments[n-1]
		if h.firstIndex != prev.lastIndex()+1 || h.firstSeq != prev.nextSeq {
			return h, corruptf(name, 0, "segment starts at index %d seq %d, but %s ends before index %d seq %d",
				h.firstIndex, h.firstSeq, prev.name, prev.lastIndex()+1, prev.nextSeq)
		}
	}
	if h.firstIndex == 0 {
		return h, corruptf(name, segOffFirstIndex, "first index 0")
	}
	return h, nil
}

// openIndexedSegment opens a sealed segment from its index file (see
// segindex.go) without reading its frames. It returns ok=false and the
// reason when the segment must be scanned instead (no index, or one that
// does not match the segment, or Options.ScanSealed), and an error only for
// what a scan would also reject (a bad segment header) or for I/O failures.
func (j *Journal) openIndexedSegment(name, path string, nameIndex uint64, size int64) (ok bool, why string, err error) {
	if j.opts.ScanSealed {
		return false, "", nil
	}
	var hdr [segmentHeaderSize]byte
	if err := readFileAt(j.fs, path, 0, hdr[:]); err != nil {
		return false, "", fmt.Errorf("journal: read %s: %w", name, err)
	}
	h, err := j.checkSegmentHeader(name, nameIndex, hdr[:])
	if err != nil {
		return false, "", err
	}
	x, why := loadSegIndex(j.fs, path, size, h)
	if why != "" {
		j.log.Info("journal: scanning sealed segment", "segment", name, "index", why)
		return false, why, nil
	}
	s := j.newSegment(h)
	s.offsets, s.size, s.nextSeq, s.lastTS, s.lastCRC = x.offsets, x.size, x.nextSeq, x.lastTS, x.lastCRC
	// A version-1 index has no term runs: the first Term in this segment
	// fills them from its frame headers (terms.go).
	s.terms, s.termsKnown = x.terms, x.version >= segIndexVersion2
	if j.useMmap {
		// Mapped, not read: no page is touched until a reader needs it.
		data, mapped, err := loadFile(j.fs, path, size, true)
		if err != nil {
			return false, "", err
		}
		s.h = newMappedHandle(name, data, mapped)
	} else if s.h, err = newFileHandle(j.fs, path, name); err != nil {
		return false, "", fmt.Errorf("journal: %w", err)
	}
	s.sealed = true
	j.appendRecovered(s)
	j.opened.indexed++
	return true, "", nil
}

// writeMissingIndex writes the index file of a sealed segment Open had to
// scan, unless a valid one of the current version exists (Options.ScanSealed
// scans regardless). A valid version-1 index is rewritten as version 2:
// the scan has the term runs it lacks. A failure is logged, not returned:
// the index only saves the next Open a scan.
func (j *Journal) writeMissingIndex(s *segment, why string) {
	if why == "" {
		h := segmentHeader{version: s.version, firstIndex: s.firstIndex, firstSeq: s.firstSeq, salt: s.salt, recycled: s.recycled}
		if x, problem := loadSegIndex(j.fs, s.path, s.size, h); problem == "" && x.version == segIndexVersion2 {
			return
		}
	}
	if err := writeSegIndex(j.fs, s); err != nil {
		j.log.Warn("journal: cannot write segment index; the next Open scans the segment again",
			"segment", s.name, "err", err)
		_ = j.fs.Remove(segIndexPath(s.path))
		return
	}
	j.w.dirSyncPending = true
	j.opened.indexesWritten++
}

// zeroTail reports whether b is all zeros, a page at a time.
func zeroTail(b []byte) bool {
	var zeros [4096]byte
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// findDurableClaim looks for a frame at or after from that proves the entry
// with index expect was durable: a checksum-valid frame (of the segment's
// version and life: seed) with index >= expect whose synced field is >=
// expect. It returns the frame's offset and index.
func findDurableClaim(data []byte, version uint8, seed uint32, from int, expect uint64) (int, uint64, bool) {
	var magic [4]byte
	binary.LittleEndian.PutUint32(magic[:], frameMagic)
	for from < len(data) {
		i := bytes.Index(data[from:], magic[:])
		if i < 0 {
			return 0, 0, false
		}
		at := from + i
		if h, _, p := decodeFrame(data[at:], version, seed); p == frameOK && h.index >= expect && h.synced >= expect {
			return at, h.index, true
		}
		from = at + 1
	}
	return 0, 0, false
}

// countFrames counts the checksum-valid frames (of the segment's version
// and life: seed) at or after from.
func countFrames(data []byte, version uint8, seed uint32, from int) int {
	var magic [4]byte
	binary.LittleEndian.PutUint32(magic[:], frameMagic)
	count := 0
	for from < len(data) {
		i := bytes.Index(data[from:], magic[:])
		if i < 0 {
			break
		}
		at := from + i
		if _, n, p := decodeFrame(data[at:], version, seed); p == frameOK {
			count++
			from = at + n
			continue
		}
		from = at + 1
	}
	return count
}

// truncateTail cuts the last segment back to its valid prefix data[:off]
// by rewriting it (never in place), and records the repair.
func (j *Journal) truncateTail(s *segment, data []byte, off int, why frameProblem) error {
	dropped := countFrames(data, s.version, s.seed, off)
	if why == frameShortHeader || why == frameBadMagic {
		if allZero(data[off:]) {
			why = frameZeroed
		}
	}
	err := writeFileDurably(j.fs, s.path, func(w io.Writer) error {
		_, err := w.Write(slices.Clone(data[:off])) // vfs may scribble on written buffers
		return err
	})
	if err != nil {
		return fmt.Errorf("journal: repair %s: %w", s.name, err)
	}
	if err := j.dirFile.Sync(); err != nil {
		return fmt.Errorf("journal: fsync directory %s: %w", j.dir, err)
	}
	j.repair.Truncated = true
	j.repair.Segment = s.name
	j.repair.Offset = int64(off)
	j.repair.Bytes = int64(len(data) - off)
	j.repair.Entries = dropped
	j.repair.Reason = why.String()
	j.log.Warn("journal: repaired torn tail", "segment", s.name, "offset", off,
		"bytes", len(data)-off, "entries", dropped, "reason", why.String())
	return nil
}
