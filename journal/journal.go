package journal

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// EntryInfo describes one entry. It is a plain value, safe to copy and
// share.
type EntryInfo struct {
	Index     uint64    // entries are numbered densely, from Options.FirstIndex (default 1)
	Term      uint64    // 0 standalone
	Kind      EntryKind // what the payload holds; KindGroups for Write's entries
	FirstSeq  uint64    // global position of the entry's first record; records are numbered densely across entries from 0
	Records   int
	Groups    int
	Timestamp int64 // write time, unix ns (used for retention by age)
}

// Entry is one entry as read back. Not safe for concurrent use: it is
// owned by the Read callback or the Iterator that produced it.
type Entry struct {
	EntryInfo
	// Payload is the concatenated groups (KindGroups) or the kind's opaque
	// bytes (KindConfChange). It aliases a mapping or a reused
	// buffer: valid only inside the Read callback, or until the Iterator's
	// next Next or Close. Copy what must outlive that.
	Payload []byte
}

// Stats are counters for metrics. Journal.Stats returns a snapshot: a plain
// value, safe to copy and share.
type Stats struct {
	Segments        int
	Bytes           int64 // bytes of all retained segments
	FirstIndex      uint64
	LastIndex       uint64
	Entries         uint64 // retained entries
	NextSeq         uint64
	Writes          uint64 // entries written since Open
	BytesWritten    uint64 // frame bytes written since Open
	Syncs           uint64 // data fsyncs since Open
	SyncTime        time.Duration
	DirSyncs        uint64
	Rolls           uint64
	RemovedSegments uint64
	// RollsPrepared counts rolls that took a spare the preparer had made
	// ready (no create, fallocate or fsync on the write path);
	// RollsRecycled counts rolls whose new segment is a retired segment's
	// file (decision 0007).
	RollsPrepared, RollsRecycled uint64
	// How Open read the sealed segments: OpenIndexed from their index
	// files (frames not read), OpenScanned frame by frame (no valid index,
	// or Options.ScanSealed); OpenIndexesWritten is how many index files
	// Open wrote for scanned segments that had none (or a version-1 one,
	// without term runs).
	OpenIndexed, OpenScanned, OpenIndexesWritten int
}

// RepairReport says what Open dropped and why. The zero value means Open
// found the journal clean. Journal.RepairReport returns a copy: a plain
// value, safe to share.
type RepairReport struct {
	// Truncated is true if Open cut the tail of the last segment.
	Truncated bool
	Segment   string // file name of the repaired segment
	Offset    int64  // where the dropped bytes began: the end of the last valid entry
	Bytes     int64  // bytes dropped
	// Entries is how many complete, checksum-valid entries were among the
	// dropped bytes. They were written but never acknowledged as durable
	// (see the repair rules in doc.go).
	Entries int
	Reason  string // what was wrong with the first dropped byte
	// RemovedFiles are leftovers Open deleted: unfinished files (*.tmp),
	// removed segments that were still mapped (*.dead), and index files
	// (*.idx) of segments that are gone or active again.
	RemovedFiles []string
}

// Journal is the segmented, checksummed write-ahead journal. It is safe for
// concurrent use: one writer goroutine at a time (Write, WriteTerm,
// WriteEntry, Append, Sync, TruncateFront, TruncateBack, EnforceRetention
// serialize on the writer lock w) and any number of readers (Read, Term,
// Info, iterators, the getters), which take only mu's read lock, never w,
// and so never wait for a write or an fsync: the writer holds mu.Lock only
// to publish a frame it has already written.
type Journal struct {
	dir     string
	opts    Options
	fs      vfs.FS
	log     *slog.Logger
	useMmap bool
	// sizeSegments: segment files are created at SegmentSize (sizeFile)
	// and trimmed to their frames when sealed or closed (vfs.Default,
	// preallocation on).
	sizeSegments bool
	// resident bounds the mapped pages readers leave behind; nil without
	// mmap or with MaxResidentBytes -1.
	resident *residentSet
	// opened says how Open read the sealed segments (Stats); written by
	// Open only.
	opened  struct{ indexed, scanned, indexesWritten int }
	lock    io.Closer
	dirFile vfs.File
	repair  RepairReport

	// w is the writer's state. Lock order: w before mu.
	w struct {
		sync.Mutex
		file           vfs.File // the active segment, opened read-write
		seg            *segment // the active segment (also last in mu.segments)
		buf            []byte   // reused frame buffer
		prealloc       int64    // the active segment is allocated up to here (its size, or KEEP_SIZE reservations beyond)
		synced         uint64   // highest index known durable
		dirSyncPending bool     // a segment was created or renamed since the last directory fsync
		kicked         bool     // the preparer was asked for the segment after the active one
		// deferRemovalSync: retireLocked leaves its directory fsync pending
		// (retention after a roll; dropFrontLocked syncs before the next).
		deferRemovalSync bool
		closed           bool
	}

	// mu guards the segment list and the published end of the journal.
	mu struct {
		sync.RWMutex
		segments  []*segment // ascending firstIndex; the last is active
		lastIndex uint64
		nextSeq   uint64
		closed    bool
		graveyard []*segment // removed but still referenced; file renamed to *.dead
	}

	failed      atomic.Pointer[failure] // the sticky error
	truncations atomic.Uint64           // TruncateBack calls that dropped entries
	closed      atomic.Bool

	stats struct {
		writes, bytesWritten, syncs, syncNanos, dirSyncs, rolls, removed atomic.Uint64
		rollsPrepared, rollsRecycled                                     atomic.Uint64
	}

	// spares are the files kept to become future segments (spare.go).
	// Lock order: w before spares; the preparer takes spares only.
	spares struct {
		sync.Mutex
		free      []string   // names of retired segments kept for recycling, not yet prepared
		ready     *spareFile // made ready by the preparer, or nil
		preparing bool       // the preparer is working on a file taken from free (or a new one)
		closed    bool
	}
	// prepKick wakes the preparer; nil without one.
	prepKick chan struct{}

	// The interval syncer and the preparer, owned by the journal and
	// joined by Close.
	stop chan struct{}
	wg   sync.WaitGroup
}

// allocatedTo returns how far the active segment file f already extends
// (its size), so that Write reserves blocks only beyond it.
func allocatedTo(f vfs.File) int64 {
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	return st.Size()
}

// preallocateStep is how far ahead of the write position the active
// segment is preallocated.
const preallocateStep = 4 << 20

// slowSync is the fsync duration above which a warning is logged.
const slowSync = time.Second

// Write appends one entry with term 0 made of the given groups (each the
// output of AppendGroup) and returns its info. The entry is written but not
// synced: call Sync (or use Append) before acknowledging it. It does not
// retain groups. Errors: ErrClosed, ErrEntryTooLarge, ErrCorrupt for a
// malformed group (nothing is written in these cases), or the sticky
// ErrFailed.
func (j *Journal) Write(groups [][]byte) (EntryInfo, error) {
	return j.WriteTerm(0, groups)
}

// WriteTerm is Write with a raft term.
func (j *Journal) WriteTerm(term uint64, groups [][]byte) (EntryInfo, error) {
	j.w.Lock()
	defer j.w.Unlock()
	if err := j.writableLocked(); err != nil {
		return EntryInfo{}, err
	}
	var payload int64
	var records uint64
	for i, g := range groups {
		n, err := groupRecords(g)
		if err != nil {
			return EntryInfo{}, fmt.Errorf("journal: write: group %d: %w", i, err)
		}
		payload += int64(len(g))
		records += n
	}
	return j.appendLocked(term, KindGroups, groups, payload, records, uint64(len(groups)))
}

// appendLocked writes one entry made of the concatenated parts (payload
// bytes in all) at LastIndex()+1 and publishes it. The caller has checked
// the parts and counted their records and groups. Errors: ErrEntryTooLarge
// (nothing written), or the sticky ErrFailed. REQUIRES: w held, journal
// writable, kind known.
func (j *Journal) appendLocked(term uint64, kind EntryKind, parts [][]byte, payload int64, records, groups uint64) (EntryInfo, error) {
	if payload > j.opts.MaxEntrySize {
		return EntryInfo{}, fmt.Errorf("%w: payload of %d bytes exceeds MaxEntrySize %d", ErrEntryTooLarge, payload, j.opts.MaxEntrySize)
	}
	if records > math.MaxUint32 || groups > math.MaxUint32 {
		return EntryInfo{}, fmt.Errorf("%w: %d records in %d groups", ErrEntryTooLarge, records, groups)
	}
	frameSize := frameHeaderSize + payload
	seg := j.w.seg
	roll := seg.entries() > 0 && seg.size+frameSize > j.opts.SegmentSize
	if !kindAllowed(seg.version, kind) {
		// A version-1 segment holds KindGroups frames only (an older
		// binary reads it): the entry goes to a new version-2 segment.
		if seg.entries() == 0 {
			if err := j.replaceEmptyActiveLocked(); err != nil {
				return EntryInfo{}, err
			}
			seg = j.w.seg
		} else {
			roll = true
		}
	}
	if roll {
		if err := j.rollLocked(); err != nil {
			return EntryInfo{}, err
		}
		seg = j.w.seg
	}

	index := j.mu.lastIndex + 1 // only the writer changes lastIndex and nextSeq
	h := frameHeader{
		kind:      kind,
		index:     index,
		term:      term,
		firstSeq:  j.mu.nextSeq,
		timestamp: time.Now().UnixNano(),
		synced:    j.w.synced,
		records:   uint32(records),
		groups:    uint32(groups),
		length:    uint32(payload),
	}
	if j.opts.SyncPolicy == SyncNone {
		h.synced = index - 1 // written counts as durable; see doc.go
	}
	buf := slices.Grow(j.w.buf[:0], int(frameSize))[:frameHeaderSize]
	putFrameHeader(buf, seg.version, &h)
	for _, p := range parts {
		buf = append(buf, p...)
	}
	crc := frameCRC(seg.seed, buf[:frameHeaderSize], buf[frameHeaderSize:])
	binary.LittleEndian.PutUint32(buf[frameOffCRC:], crc)
	j.w.buf = buf

	off := seg.size
	if !j.opts.DisablePreallocation && off+frameSize > j.w.prealloc {
		n := max(min(preallocateStep, j.opts.SegmentSize-off), frameSize)
		if err := j.w.file.Preallocate(off, n); err != nil {
			return EntryInfo{}, j.failLocked("preallocate", seg.name, off, err)
		}
		j.w.prealloc = off + n
	}
	if _, err := j.w.file.WriteAt(buf, off); err != nil {
		return EntryInfo{}, j.failLocked("write", seg.name, off, err)
	}
	if !j.w.kicked && off+frameSize > j.opts.SegmentSize/2 {
		// Half full: have the next segment ready before the roll.
		j.w.kicked = true
		j.kickPreparer()
	}

	j.mu.Lock()
	seg.offsets = append(seg.offsets, uint32(off))
	seg.terms = appendTermRun(seg.terms, index, term)
	seg.size += frameSize
	seg.nextSeq += records
	seg.lastTS = h.timestamp
	seg.lastCRC = crc
	j.mu.lastIndex = index
	j.mu.nextSeq += records
	j.mu.Unlock()

	j.stats.writes.Add(1)
	j.stats.bytesWritten.Add(uint64(frameSize))
	return h.info(), nil
}

// validGroupHeader is the allocation-free form of groupRecords' check.
func validGroupHeader(g []byte) bool {
	return len(g) >= groupFixedSize+2 && int64(binary.LittleEndian.Uint32(g[groupOffSize:])) == int64(len(g))
}

// groupRecords checks the fixed part of an encoded group and returns its
// record count. The full decode is the reader's.
func groupRecords(g []byte) (uint64, error) {
	if len(g) < groupFixedSize+2 {
		return 0, fmt.Errorf("%w: group of %d bytes is shorter than a group header", ErrCorrupt, len(g))
	}
	if size := binary.LittleEndian.Uint32(g[groupOffSize:]); int64(size) != int64(len(g)) {
		return 0, fmt.Errorf("%w: group header says %d bytes, have %d", ErrCorrupt, size, len(g))
	}
	return uint64(binary.LittleEndian.Uint32(g[groupOffRecords:])), nil
}

// Append is Write followed by Sync.
func (j *Journal) Append(groups [][]byte) (EntryInfo, error) {
	info, err := j.Write(groups)
	if err != nil {
		return info, err
	}
	return info, j.Sync()
}

// Sync makes every written entry durable. Under SyncAlways it performs any
// pending directory fsync and one fdatasync of the active segment, and
// returns after them (a no-op if nothing was written since the last sync).
// Under SyncInterval and SyncNone it returns at once: nil, or the sticky
// error if the journal has failed. A failed fsync is never retried: the
// journal is failed (ErrFailed) and must be closed and reopened.
func (j *Journal) Sync() error {
	if j.opts.SyncPolicy != SyncAlways {
		if f := j.failed.Load(); f != nil {
			return f
		}
		if j.closed.Load() {
			return ErrClosed
		}
		return nil
	}
	j.w.Lock()
	defer j.w.Unlock()
	if err := j.writableLocked(); err != nil {
		return err
	}
	return j.syncLocked()
}

// syncLocked performs the pending directory fsync and then the data fsync,
// one after the other on the writer's goroutine. (Running the directory's
// concurrently, on another goroutine, was tried for rolls; it made the
// order of file system operations nondeterministic, which the crash tests'
// operation-indexed fault injection cannot model: go test -race found
// their hooks racing. The saving was within the roll's noise.) REQUIRES: w
// held, journal writable.
func (j *Journal) syncLocked() error {
	last := j.mu.lastIndex
	if err := j.syncDirIfPendingLocked(); err != nil {
		return err
	}
	if last <= j.w.synced {
		return nil
	}
	start := time.Now()
	if err := j.w.file.SyncData(); err != nil {
		return j.failLocked("fdatasync", j.w.seg.name, -1, err)
	}
	d := time.Since(start)
	j.w.synced = last
	j.stats.syncs.Add(1)
	j.stats.syncNanos.Add(uint64(d))
	if d > slowSync {
		j.log.Warn("journal: slow fsync", "segment", j.w.seg.name, "duration", d)
	}
	if j.opts.OnSync != nil {
		j.opts.OnSync(d)
	}
	return nil
}

// syncDirIfPendingLocked fsyncs the directory if a segment was created or
// renamed since the last directory fsync. REQUIRES: w held.
func (j *Journal) syncDirIfPendingLocked() error {
	if !j.w.dirSyncPending {
		return nil
	}
	return j.syncDirLocked()
}

// syncDirLocked fsyncs the directory. REQUIRES: w held.
func (j *Journal) syncDirLocked() error {
	if err := j.dirFile.Sync(); err != nil {
		return j.failLocked("fsync directory", j.dir, -1, err)
	}
	j.w.dirSyncPending = false
	j.stats.dirSyncs.Add(1)
	return nil
}

// writableLocked returns the error that forbids a mutation, if any.
// REQUIRES: w held.
func (j *Journal) writableLocked() error {
	if j.w.closed {
		return ErrClosed
	}
	if f := j.failed.Load(); f != nil {
		return f
	}
	return nil
}

// failLocked records the sticky error (the first one wins) and returns it.
// off < 0 means "no offset". REQUIRES: w held.
func (j *Journal) failLocked(op, file string, off int64, cause error) error {
	f := &failure{op: op, file: file, off: off, cause: cause}
	if j.failed.CompareAndSwap(nil, f) {
		j.log.Error("journal: failed; close and reopen", "op", op, "file", file, "offset", off, "err", cause)
		return f
	}
	return j.failed.Load()
}

// Err returns the sticky error (wrapping ErrFailed and its cause), or nil.
func (j *Journal) Err() error {
	if f := j.failed.Load(); f != nil {
		return f
	}
	return nil
}

// FirstIndex returns the index of the first retained entry, LastIndex()+1
// when the journal holds no entry.
func (j *Journal) FirstIndex() uint64 {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return j.firstIndexLocked()
}

// firstIndexLocked: sealed segments are never empty, so the first segment's
// first index is the first entry, or lastIndex+1 if it is the only,
// empty, segment. REQUIRES: mu held (read or write).
func (j *Journal) firstIndexLocked() uint64 {
	if len(j.mu.segments) == 0 {
		return j.mu.lastIndex + 1
	}
	return j.mu.segments[0].firstIndex
}

// LastIndex returns the index of the last written entry (written, not
// necessarily synced), 0 if nothing was ever written.
func (j *Journal) LastIndex() uint64 {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return j.mu.lastIndex
}

// NextSeq returns the FirstSeq the next entry will get.
func (j *Journal) NextSeq() uint64 {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return j.mu.nextSeq
}

// RepairReport returns what Open repaired.
func (j *Journal) RepairReport() RepairReport {
	r := j.repair
	r.RemovedFiles = slices.Clone(r.RemovedFiles)
	return r
}

// Stats returns a snapshot of the counters.
func (j *Journal) Stats() Stats {
	j.mu.RLock()
	s := Stats{
		Segments:   len(j.mu.segments),
		FirstIndex: j.firstIndexLocked(),
		LastIndex:  j.mu.lastIndex,
		NextSeq:    j.mu.nextSeq,
	}
	for _, seg := range j.mu.segments {
		s.Bytes += seg.size
	}
	j.mu.RUnlock()
	s.Entries = s.LastIndex + 1 - s.FirstIndex
	s.Writes = j.stats.writes.Load()
	s.BytesWritten = j.stats.bytesWritten.Load()
	s.Syncs = j.stats.syncs.Load()
	s.SyncTime = time.Duration(j.stats.syncNanos.Load())
	s.DirSyncs = j.stats.dirSyncs.Load()
	s.Rolls = j.stats.rolls.Load()
	s.RemovedSegments = j.stats.removed.Load()
	s.RollsPrepared = j.stats.rollsPrepared.Load()
	s.RollsRecycled = j.stats.rollsRecycled.Load()
	s.OpenIndexed, s.OpenScanned, s.OpenIndexesWritten = j.opened.indexed, j.opened.scanned, j.opened.indexesWritten
	return s
}

// findSegmentLocked returns the segment holding index. REQUIRES: mu held,
// FirstIndex <= index <= LastIndex.
func (j *Journal) findSegmentLocked(index uint64) *segment {
	segs := j.mu.segments
	i := sort.Search(len(segs), func(i int) bool { return segs[i].firstIndex > index })
	return segs[i-1]
}

// Close stops the interval syncer, syncs what was written (unless the
// journal has failed), and closes the files. Readers' references stay
// valid until they are released. Close returns the error of its own final
// sync or close, if any; Err still reports an earlier failure.
func (j *Journal) Close() error {
	if !j.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	if j.stop != nil {
		close(j.stop)
		j.wg.Wait()
	}
	j.closeSpares()
	j.w.Lock()
	defer j.w.Unlock()
	var err error
	if j.failed.Load() == nil {
		err = j.syncLocked()
		if err == nil && j.sizeSegments && j.w.file != nil {
			// Leave the active segment without its zero tail, so the next
			// Open does not read it. Not synced: if the cut is lost, Open
			// reads the zeros as free space.
			if terr := trimFile(j.w.file, j.w.seg.size); terr != nil {
				j.log.Warn("journal: cannot trim the active segment", "segment", j.w.seg.name, "err", terr)
			}
		}
	}
	j.w.closed = true
	if j.w.file != nil {
		if cerr := j.w.file.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("journal: close %s: %w", j.w.seg.name, cerr)
		}
		j.w.file = nil
	}

	j.mu.Lock()
	j.mu.closed = true
	segs := j.mu.segments
	j.mu.segments = nil
	j.mu.Unlock()
	for _, s := range segs {
		dropSegment(s)
	}
	j.sweepGraveyardLocked()
	if cerr := j.dirFile.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("journal: close directory %s: %w", j.dir, cerr)
	}
	if cerr := j.lock.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("journal: unlock %s: %w", j.dir, cerr)
	}
	return err
}

// runSyncer is the SyncInterval goroutine: every interval, it syncs what
// was written. It stops when j.stop is closed; Close joins it.
func (j *Journal) runSyncer() {
	defer j.wg.Done()
	t := time.NewTicker(j.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
			j.w.Lock()
			if j.writableLocked() == nil {
				_ = j.syncLocked() // a failure is sticky; writers see it
			}
			j.w.Unlock()
		}
	}
}
