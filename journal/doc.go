// Package journal is BadBatch's durable write-ahead journal: a directory of
// segment files holding checksummed entries, one entry per ring batch,
// written with one write call and made durable with one fdatasync (group
// commit). It knows bytes, batches and files; it does not know streams,
// offsets or HTTP.
//
// # Pieces
//
//   - Journal: Write/WriteTerm (one entry, not yet synced), Sync, Append
//     (both), Read, NewIterator, TruncateFront, TruncateBack,
//     EnforceRetention, Stats, Close. Open creates, scans and repairs.
//   - Raft's log (cluster mode; docs/decisions/0010): WriteEntry (one entry
//     at an exact index, with a term and an EntryKind: KindGroups or
//     KindConfChange), Term (from an in-memory term index, no I/O), Info
//     (an entry's header, not its payload), and Options.FirstIndex /
//     FirstSeq (where a new journal starts, to install a snapshot).
//   - AppendGroup, GroupSize, GroupReader: the encoding of one producer's
//     atomic append ("group") and an allocation-free decoder of a payload of
//     concatenated groups.
//   - Handler[T]: the journaling processor of the disruptor pipeline.
//
// # Invariants
//
//   - Entries are numbered densely from Options.FirstIndex (default 1);
//     records are numbered densely from Options.FirstSeq (default 0)
//     across entries (an entry's FirstSeq is the previous entry's FirstSeq
//     plus its record count; KindConfChange entries have no records).
//   - The journal stores the terms of its own entries only. The term of
//     FirstIndex-1 (raft's snapshot term) is the caller's to keep: cluster
//     mode keeps raft's first index strictly above FirstIndex and stores
//     the snapshot's index and term in its own state file (decision 0010).
//   - Segments are contiguous: each segment's first index and first seq
//     continue the previous segment's last entry. Open checks this.
//   - A segment file under its final name always starts with a durable,
//     valid header (it is created as *.tmp, synced, then renamed).
//   - A sealed segment (any but the last) is complete on disk: it is
//     fdatasynced before the next segment is created, under every policy.
//   - No segment file is modified in place other than by appending to the
//     active segment: truncation rewrites the prefix into a new file and
//     renames it over the old one. A reader's mapping therefore never
//     shrinks under it (no SIGBUS).
//   - A segment is deleted only when no reader holds it; until then it is
//     renamed to *.dead. Every creation, rename and removal is followed by
//     a directory fsync before anything that depends on it is
//     acknowledged.
//   - After a failed write, fsync, rename or removal the journal is failed:
//     every later mutation returns the same error, wrapping ErrFailed and
//     the cause. The in-memory state never includes a frame whose write
//     failed, and an fsync is never retried. Close and Open to continue.
//   - The in-memory index is one uint32 byte offset per entry per segment,
//     and the segment's term runs (terms.go: the first index and term of
//     each stretch of entries with one term), so that Term reads no frame.
//     Sealing a segment writes both to an index file beside the segment
//     (%020d.idx, segindex.go, version 2); Open takes a sealed segment from
//     a valid index file (checked against the segment's header, size and
//     last frame) without reading its frames, and scans it otherwise (or
//     with Options.ScanSealed). The last segment is always scanned. A
//     version-1 index file (no runs) is still accepted; that segment's runs
//     are filled from its frame headers the first time Term needs them.
//   - Reads: a sealed segment is read through a reference-counted read-only
//     mmap (on vfs.Default; other file systems use ReadAt), the active
//     segment through ReadAt on its own read-only handle. Every read checks
//     the frame's CRC again. The mapped pages readers touch stay resident
//     for about Options.MaxResidentBytes of segments, least recently read
//     dropped first (MADV_DONTNEED; resident.go).
//   - The active segment is created at SegmentSize (fallocate mode 0,
//     sizing_linux.go), so appends do not change its size; its zeros after
//     the last frame are free space. A segment is trimmed to its frames
//     (and fsynced) before the next one is created, so a sealed segment's
//     size is its data. See docs/decisions/0007.
//
// # On-disk layout
//
// (NEVER CHANGE a constant of this format: add a version. The magics, the
// header sizes, the field offsets, the meaning of each version number and
// the EntryKind values never change; only currentSegmentVersion, the
// version new segments get, moves when a version is added. docs/format.md
// has the same layout with the rationale.) This is format version 3. All
// integers are little-endian. Segment files are named %020d.seg with the
// index of their first entry:
//
//	00000000000000000001.seg  00000000000000004097.seg  ...  LOCK
//
// A segment is a 32-byte header followed by frames, back to back:
//
//	 0      4      5      8              16             24      28      32
//	+------+------+------+--------------+--------------+-------+-------+
//	|magic |ver   | 0 0 0| first index  | first seq    | flags | crc32c|
//	|"BBJS"|=1, 2 |      | (u64)        | (u64)        | =0    | [0,28)|
//	+------+------+------+--------------+--------------+-------+-------+
//
// and in version 3 (segments created since recycling, decision 0007) two
// fields change meaning:
//
//	 0      4      5      6      8              16             24      28      32
//	+------+------+------+------+--------------+--------------+-------+-------+
//	|magic |ver   |flags | 0 0  | first index  | first seq    | salt  | crc32c|
//	|"BBJS"|=3    |bit 0:|      | (u64)        | (u64)        | u32   | [0,28)|
//	|      |      |recycl|      |              |              |       |       |
//	+------+------+------+------+--------------+--------------+-------+-------+
//
// The salt is random, new for every life of the file (never the previous
// life's). Bit 0 of flags says the file held an earlier life, whose bytes
// may follow this life's frames.
//
// A frame (one entry) is a 64-byte header and the payload:
//
//	 0      4    5    6      8        16       24         32          40
//	+------+----+----+------+--------+--------+----------+-----------+
//	|magic |ver |kind| rsv  | index  | term   | first seq| timestamp |
//	|"BBJE"|=seg|    | =0   | u64    | u64    | u64      | i64 ns    |
//	+------+----+----+------+--------+--------+----------+-----------+
//	 40          48        52       56         60        64
//	+-----------+---------+--------+----------+---------+---------------+
//	| synced    | records | groups | length   | crc32c  | payload       |
//	| u64       | u32     | u32    | u32      |         | length bytes  |
//	+-----------+---------+--------+----------+---------+---------------+
//
// crc32c is CRC-32C (Castagnoli) over header bytes [0,60) followed by the
// payload; in a version-3 segment, over the salt's 4 bytes (little-endian)
// followed by the same bytes, so that a frame of an earlier life of the
// file fails the CRC wherever it lies and whatever index it carries.
// synced is the highest index the writer knew to be durable when
// it wrote this frame (under SyncNone: index-1). A frame's version byte is
// its segment's. The segment version says what the byte at offset 5 (the
// frame's flags byte) may hold:
//
//   - version 1 (the first format): 0. Every entry is KindGroups.
//   - version 2 (segments created since the journal became raft's log): the
//     entry's EntryKind, 0 (KindGroups) or 1 (KindConfChange).
//   - version 3 (the salt): as version 2.
//
// Version 1 and 2 segments are read as before, and a version-1 or -2
// active segment keeps its version until the next roll (its frames keep
// the CRC without a salt). New segments are version 3; a binary that
// knows only versions 1 and 2 refuses them at the header.
//
// A binary that knows only version 1 refuses a version-2 segment at its
// header (ErrCorrupt, "unknown segment version"), before it reads any
// frame, so it never takes a frame of a new kind for a torn tail. This
// code reads both versions, creates version 2, and keeps version-1
// segments readable by the first format: it appends KindGroups frames to a
// version-1 active segment as version-1 frames, and moves to a new
// version-2 segment (a roll, or, if the version-1 segment is empty, a
// replacement by an empty version-2 one) before the first entry of
// another kind. A KindConfChange payload is opaque bytes (raft's
// marshaled ConfChange or ConfChangeV2; records = groups = 0). A
// KindGroups payload is a sequence of groups, possibly none:
//
//	 0        4         8       9           17          25 (if flagged)
//	+--------+---------+-------+-----------+-----------+------------------+
//	| size   | records | flags | timestamp | expected  | uvarint len +    |
//	| u32    | u32     | u8    | i64 ns    | last off  | stream, uvarint  |
//	| (whole | count   |       |           | i64, only | len + idempotency|
//	| group) |         |       |           | with bit0 | key, records...  |
//	+--------+---------+-------+-----------+-----------+------------------+
//
// and each record is
//
//	uvarint body length | flags u8 | zigzag-varint (timestamp - group
//	timestamp) | uvarint len + key | uvarint header count | per header:
//	uvarint len + name, uvarint len + value | uvarint len + value
//
// # Reading a tail: valid, torn, or corrupt
//
// Open reads the last segment (and every sealed segment without a valid
// index file, or all of them under Options.ScanSealed) from its header,
// frame by frame. A frame is
// valid if all of these hold: at least 64 bytes remain; the magic matches,
// the version is the segment's, the kind byte is one the segment's
// version allows (an unknown kind is invalid like any other bad field),
// and the reserved bytes are 0; length <= 1 GiB and the payload fits in the
// file; the CRC matches; index and first seq continue the previous frame.
// The first invalid frame at offset X ends the valid prefix. These rules
// do not depend on the kind: a conf change or an empty entry (a 64-byte
// frame) is torn, repaired and vouched for (rule 2) like any other.
// Then:
//
//  1. In a sealed segment: interior corruption. Open fails with ErrCorrupt
//     naming the file and X. (A sealed segment taken from its index is not
//     read at Open; damage inside it fails the read that meets it, with the
//     same ErrCorrupt, file and offset.)
//  2. In the last segment, if some checksum-valid frame after X has
//     index >= E and synced >= E (E is the index expected at X): that frame
//     was written after entry E was fsynced, so E was durable and its bytes
//     have since been damaged. Interior corruption: ErrCorrupt, file and X.
//  3. If the bytes from X to the end of the last segment are all zeros,
//     they are free space (the rest of a segment created at full size):
//     nothing is rewritten or reported, and the writer continues at X.
//     In a recycled segment (version 3, flag bit 0), bytes after X among
//     which no frame verifies with this life's salt are free space too:
//     the earlier life's frames, or a torn frame of this life, which can
//     never verify and which the writer overwrites. A checksum-valid frame
//     of this life after X is not free space: rule 4 cuts it, so that it
//     can never reappear behind a later frame as an entry that was never
//     acknowledged.
//  4. Otherwise the bytes from X on were never known durable: a torn,
//     zero-filled or garbage tail (including garbage that parses as a
//     header with a plausible length, which fails the CRC or the length
//     bound). Open rewrites the segment to its first X bytes and reports
//     it in RepairReport. Checksum-valid frames after X (written, never
//     synced, possibly with an unsynced block lost in between) are dropped
//     and counted in RepairReport.Entries.
//
// Rule 2 is what lets a power loss that keeps some unsynced 4 KiB blocks
// and loses others be repaired, while a bit flip in an entry that a later
// durable frame vouches for is reported. Its blind spot: damage to an entry
// of the last synced batch when no later frame vouches for it is
// indistinguishable from a torn write and is repaired (and reported).
//
// # Retention
//
// TruncateFront and EnforceRetention remove whole sealed segments from the
// front, oldest first, each removal made durable before the next; the
// active segment always stays. Retention by age compares a segment's newest
// entry's write timestamp with now-RetentionAge; retention by bytes drops
// the oldest segments while the total exceeds RetentionBytes. Both run
// after every roll and on demand.
//
// A removed segment that no reader holds may be kept, renamed
// <name>.seg.spare, to be reused as a future segment (Options.
// RecycleSegments, default 1): appends into a reused file overwrite
// written blocks, so their fdatasync commits no metadata. TruncateBack
// never recycles. See spare.go.
//
// # Concurrency
//
// Journal is safe for concurrent use by one writer and many readers. The
// writer's methods serialize on the writer lock (w); readers (Read, Term,
// Info, iterators, the getters) take only mu's read lock, which the writer
// holds (mu.Lock) just to publish a frame it has written or to swap a
// segment, so a reader never waits for a write or an fsync. (The one
// reader that takes mu.Lock is the Term that fills a sealed segment's term
// runs from a version-1 index, once per segment, after its reads.) Lock
// order: w before mu. Term and Info on the active segment see exactly the
// entries published so far. Iterator, GroupReader, GroupView, RecordView and
// Handler are not safe for concurrent use. Under SyncInterval the journal
// owns one goroutine, the syncer; on vfs.Default with preallocation on it
// owns the preparer (spare.go), which makes the next segment's file ready
// (sized, fsynced, its directory entry fsynced) before the roll needs it.
// Close stops and joins both.
package journal
