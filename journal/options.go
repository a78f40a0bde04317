package journal

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// SyncPolicy says when written entries are fsynced. It is a plain value,
// safe to copy and share.
type SyncPolicy uint8

const (
	// SyncAlways (the zero value and the default): Sync performs one
	// fdatasync (plus any pending directory fsync) and returns after it.
	SyncAlways SyncPolicy = iota
	// SyncInterval: a background goroutine fsyncs every SyncInterval; Sync
	// returns nil at once. An acknowledged entry is "written, not yet
	// fsynced": a power loss may drop up to one interval of entries (a
	// kill -9 of the process does not, the page cache keeps them).
	SyncInterval
	// SyncNone never fsyncs file data. For tests only: a power loss may lose
	// anything written since Open, including whole sealed segments.
	SyncNone
)

// String returns "always", "interval" or "none".
func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNone:
		return "none"
	default:
		return fmt.Sprintf("SyncPolicy(%d)", uint8(p))
	}
}

// ParseSyncPolicy parses the spelling returned by String.
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch s {
	case "always", "":
		return SyncAlways, nil
	case "interval":
		return SyncInterval, nil
	case "none":
		return SyncNone, nil
	default:
		return 0, fmt.Errorf("journal: unknown sync policy %q (want always, interval or none)", s)
	}
}

// Format limits (see doc.go). MaxEntrySize and SegmentSize must stay within
// them so that every byte offset in a segment fits in a uint32.
const (
	// maxEntrySizeLimit bounds Options.MaxEntrySize (the payload of one entry).
	maxEntrySizeLimit = 1 << 30
	// maxSegmentSizeLimit bounds Options.SegmentSize.
	maxSegmentSizeLimit = 2 << 30
	// minSegmentSize keeps tests from rolling on every byte.
	minSegmentSize = segmentHeaderSize + frameHeaderSize
)

// Options configures Open. The zero value of every field means "default";
// DefaultOptions returns them filled in. Open copies the struct and never
// modifies the caller's value. An Options value is not safe for concurrent
// mutation; the journal keeps its own copy.
type Options struct {
	// FS is the file system; nil means vfs.Default. Sealed segments are read
	// through mmap only on vfs.Default; any other FS reads them into memory.
	FS vfs.FS
	// SyncPolicy says when entries are fsynced (default SyncAlways).
	SyncPolicy SyncPolicy
	// SyncInterval is the period of the background fsync under
	// SyncInterval (default 10ms).
	SyncInterval time.Duration
	// SegmentSize: a write whose frame would take a non-empty active
	// segment past this size first rolls to a new segment (default 64 MiB,
	// at most 2 GiB). Only a segment holding a single entry larger than
	// SegmentSize exceeds it.
	SegmentSize int64
	// MaxEntrySize bounds the payload (the concatenated groups) of one entry
	// (default 64 MiB, at most 1 GiB).
	MaxEntrySize int64
	// RetentionBytes: EnforceRetention drops the oldest sealed segments while
	// the journal is larger than this. 0 keeps everything.
	RetentionBytes int64
	// RetentionAge: EnforceRetention drops sealed segments whose newest
	// entry's write timestamp is older than now-RetentionAge. 0 keeps
	// everything.
	RetentionAge time.Duration
	// DisablePreallocation turns off segment sizing. By default (on
	// vfs.Default, Linux) a new segment is created at SegmentSize with
	// fallocate (mode 0) and trimmed to its frames when sealed or closed,
	// so that appends never change the file size and each fdatasync
	// commits no inode change (docs/decisions/0007); beyond SegmentSize
	// (one oversized entry), and on other file systems, blocks are
	// reserved ahead of the write position in 4 MiB steps with
	// FALLOC_FL_KEEP_SIZE. A failed sizing is logged and the segment grows
	// as it is written; a failed KEEP_SIZE reservation fails the journal
	// like a failed write.
	DisablePreallocation bool
	// RecycleSegments is how many retired segment files (dropped by
	// retention or TruncateFront, and held by no reader) are kept, renamed
	// <name>.seg.spare, to be reused as the next segments instead of
	// being deleted: appends into a reused file overwrite written blocks,
	// which makes each fdatasync cheaper (decision 0007). Default 1; -1
	// keeps none. Spare files take disk space beyond Stats.Bytes: up to
	// RecycleSegments+1 segments' worth (one more may be made ready ahead
	// of the next roll).
	RecycleSegments int
	// ScanSealed makes Open read and CRC-check every entry of every sealed
	// segment, as it does for the last segment, instead of taking a sealed
	// segment's offsets from its index file (%020d.idx). The default trusts
	// a valid index (checked against the segment's header, size and last
	// frame), which keeps Open's time and memory independent of the log's
	// size; damage inside a sealed segment is then reported by the read
	// that meets it (every read checks the CRC) rather than by Open.
	// `badbatch verify` sets it.
	ScanSealed bool
	// MaxResidentBytes bounds how much of the sealed segments' mappings
	// stays resident in the process (RssFile) after reads: once more than
	// this many bytes of segments have been read recently, the journal
	// advises the kernel (madvise MADV_DONTNEED) to drop the least recently
	// read segment's pages from the mapping. They stay in the page cache, so
	// a later read faults them back without I/O. Default 256 MiB (at least
	// two segments are always kept); -1 never drops.
	MaxResidentBytes int64
	// FirstIndex and FirstSeq are where a new journal starts: the index of
	// its first entry (0 means the default, 1) and that entry's first seq
	// (default 0). They are used only when the directory holds no segment
	// yet (Open then creates the first segment with them, and the segment
	// header keeps them across a reopen); for an existing journal they are
	// ignored and its segments say where it is. Cluster mode sets them to
	// install a raft snapshot into a fresh directory, so that the journal
	// continues from the snapshot's index (docs/decisions/0010 says how,
	// and why the term of the entry before FirstIndex is the caller's to
	// keep). FirstIndex is at most 2^63-1.
	FirstIndex uint64
	FirstSeq   uint64
	// Logger receives repairs, slow fsyncs and retention removals; nil
	// discards.
	Logger *slog.Logger
	// OnSync, if set, is called after every successful data fsync with its
	// duration (for a latency histogram). It runs on the syncing goroutine
	// and must not call back into the journal.
	OnSync func(d time.Duration)
}

// Default option values.
const (
	DefaultSyncInterval = 10 * time.Millisecond
	DefaultSegmentSize  = 64 << 20
	DefaultMaxEntrySize = 64 << 20
	// DefaultMaxResidentBytes is Options.MaxResidentBytes's default.
	DefaultMaxResidentBytes = 256 << 20
	// DefaultRecycleSegments is Options.RecycleSegments's default.
	DefaultRecycleSegments = 1
)

// DefaultOptions returns a new Options with every default filled in.
func DefaultOptions() *Options {
	return &Options{
		FS:               vfs.Default,
		SyncPolicy:       SyncAlways,
		SyncInterval:     DefaultSyncInterval,
		SegmentSize:      DefaultSegmentSize,
		MaxEntrySize:     DefaultMaxEntrySize,
		MaxResidentBytes: DefaultMaxResidentBytes,
		RecycleSegments:  DefaultRecycleSegments,
		FirstIndex:       1,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// withDefaults returns a copy of o (nil means all defaults) with zero fields
// filled in, and validates it.
func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	d := DefaultOptions()
	if c.FS == nil {
		c.FS = d.FS
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = d.SyncInterval
	}
	if c.SegmentSize == 0 {
		c.SegmentSize = d.SegmentSize
	}
	if c.MaxEntrySize == 0 {
		c.MaxEntrySize = d.MaxEntrySize
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.MaxResidentBytes == 0 {
		c.MaxResidentBytes = d.MaxResidentBytes
	}
	if c.FirstIndex == 0 {
		c.FirstIndex = d.FirstIndex
	}
	if c.RecycleSegments == 0 {
		c.RecycleSegments = d.RecycleSegments
	}
	switch {
	case c.SyncPolicy > SyncNone:
		return c, fmt.Errorf("journal: invalid options: unknown sync policy %d", c.SyncPolicy)
	case c.SyncInterval < 0:
		return c, fmt.Errorf("journal: invalid options: SyncInterval %v < 0", c.SyncInterval)
	case c.SegmentSize < minSegmentSize || c.SegmentSize > maxSegmentSizeLimit:
		return c, fmt.Errorf("journal: invalid options: SegmentSize %d not in [%d, %d]", c.SegmentSize, minSegmentSize, maxSegmentSizeLimit)
	case c.MaxEntrySize < 0 || c.MaxEntrySize > maxEntrySizeLimit:
		return c, fmt.Errorf("journal: invalid options: MaxEntrySize %d not in [1, %d]", c.MaxEntrySize, maxEntrySizeLimit)
	case c.RetentionBytes < 0:
		return c, fmt.Errorf("journal: invalid options: RetentionBytes %d < 0", c.RetentionBytes)
	case c.MaxResidentBytes < -1:
		return c, fmt.Errorf("journal: invalid options: MaxResidentBytes %d < -1", c.MaxResidentBytes)
	case c.RecycleSegments < -1:
		return c, fmt.Errorf("journal: invalid options: RecycleSegments %d < -1", c.RecycleSegments)
	case c.RetentionAge < 0:
		return c, fmt.Errorf("journal: invalid options: RetentionAge %v < 0", c.RetentionAge)
	case c.FirstIndex > math.MaxUint64/2:
		return c, fmt.Errorf("journal: invalid options: FirstIndex %d > %d", c.FirstIndex, uint64(math.MaxUint64/2))
	}
	return c, nil
}
