package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A segment index file (%020d.idx, beside the segment of the same number)
// holds a sealed segment's in-memory index: its entries' byte offsets and
// the few facts Open would otherwise learn by reading every frame. It is
// written (in place, not synced: see writeSegIndex) when the segment is
// sealed, and when Open had to scan a sealed segment that lacked a valid
// one. With it, Open
// reads a sealed segment's 32-byte header, its index and its last frame's
// 64-byte header instead of every byte, so Open's time and the process's
// resident memory no longer grow with the log (see
// docs/decisions/0008-sealed-segment-index.md).
//
// The index is a hint, never the truth: Open accepts it only if it is
// entirely consistent with the segment (below), and otherwise scans the
// segment as it always did. A lost, torn, stale or damaged index therefore
// costs a scan, never data. What the index does give up: a sealed segment
// whose index is accepted is not CRC-checked at Open. Its entries are still
// checked on every read (ErrCorrupt with file and offset), and
// Options.ScanSealed (used by `badbatch verify`) restores the full scan.
//
// Layout (little-endian), NEVER CHANGE: add a version. Version 2 (written
// since the journal became raft's log) adds the segment's term runs
// (terms.go) after the offsets, and their count in the first half of what
// version 1 reserves:
//
//	 0      4     5      8            16          24         32
//	+------+-----+------+------------+-----------+----------+
//	|magic |ver  | 0 0 0| first index| first seq | size     |
//	|"BBJI"|=1,2 |      | u64        | u64       | u64      |
//	+------+-----+------+------------+-----------+----------+
//	 32          40          48        52          56          60        64
//	+-----------+-----------+---------+-----------+-----------+---------+
//	| next seq  | last ts   | entries | last crc  | v1: 0     | 0       |
//	| u64       | i64 ns    | u32 = n | u32       | v2: runs r| u32     |
//	+-----------+-----------+---------+-----------+-----------+---------+
//	 64                 64+4n (v2 only)                  64+4n+12r (r=0 in v1)
//	+------------------+-------------------------------+------------------------+
//	| n u32 entry      | r runs: u32 ordinal of the    | crc32c of the bytes    |
//	| offsets          | run's first entry, u64 term   | before it              |
//	+------------------+-------------------------------+------------------------+
//
// size is the segment file's size; last crc is the CRC field of the last
// frame. A run's ordinal is its first entry's position in the segment (0
// for the first entry). Open accepts the index only if: the file is exactly
// 68+4n+12r bytes with a matching CRC, magic, a known version and zero
// reserved bytes; first index and first seq equal the segment header's;
// size equals the segment file's size; n >= 1, the first offset is 32 and
// each offset is at least 64 bytes past the previous one; in version 2,
// 1 <= r <= n, the first run's ordinal is 0, ordinals increase and stay
// below n, and consecutive runs' terms differ; and the segment's last frame
// header, read at the last offset, has a valid magic, version (the
// segment's) and kind, index first+n-1, the CRC field last crc, first seq +
// records = next seq, timestamp last ts, ends exactly at size, and (version
// 2) has the last run's term. A version-1 index is still accepted; the
// segment's term runs are then filled on first use.
const (
	segIndexMagic      uint32 = 0x494a4242 // "BBJI" little-endian
	segIndexSuffix            = ".idx"
	segIndexHeaderSize        = 64
	segIndexRunSize           = 12 // u32 ordinal + u64 term

	// segIndexVersion1: offsets only. Still read; no longer written.
	segIndexVersion1 = 1
	// segIndexVersion2: offsets and term runs.
	segIndexVersion2 = 2

	sixOffMagic      = 0
	sixOffVersion    = 4
	sixOffFirstIndex = 8
	sixOffFirstSeq   = 16
	sixOffSize       = 24
	sixOffNextSeq    = 32
	sixOffLastTS     = 40
	sixOffEntries    = 48
	sixOffLastCRC    = 52
	sixOffReserved   = 56 // version 1: u64 = 0
	sixOffRuns       = 56 // version 2: u32 run count
	sixOffReserved2  = 60 // version 2: u32 = 0
)

// segIndexPath is the index file beside segment path.
func segIndexPath(segPath string) string {
	return segPath[:len(segPath)-len(segmentSuffix)] + segIndexSuffix
}

// parseSegIndexName returns the first index encoded in an index file name.
func parseSegIndexName(name string) (uint64, bool) {
	if len(name) != segmentNameDigits+len(segIndexSuffix) || name[segmentNameDigits:] != segIndexSuffix {
		return 0, false
	}
	return parseSegmentName(name[:segmentNameDigits] + segmentSuffix)
}

// encodeSegIndex returns the index file's bytes for a sealed segment, in
// the given version (segIndexVersion2, except in tests that make an old
// index). REQUIRES: the segment is sealed or w held; it has an entry; its
// terms are known (version 2).
func encodeSegIndex(s *segment, version uint8) []byte {
	n := len(s.offsets)
	var runs []termRun
	if version >= segIndexVersion2 {
		runs = s.terms
	}
	end := segIndexHeaderSize + 4*n + segIndexRunSize*len(runs)
	b := make([]byte, end+4)
	binary.LittleEndian.PutUint32(b[sixOffMagic:], segIndexMagic)
	b[sixOffVersion] = version
	binary.LittleEndian.PutUint64(b[sixOffFirstIndex:], s.firstIndex)
	binary.LittleEndian.PutUint64(b[sixOffFirstSeq:], s.firstSeq)
	binary.LittleEndian.PutUint64(b[sixOffSize:], uint64(s.size))
	binary.LittleEndian.PutUint64(b[sixOffNextSeq:], s.nextSeq)
	binary.LittleEndian.PutUint64(b[sixOffLastTS:], uint64(s.lastTS))
	binary.LittleEndian.PutUint32(b[sixOffEntries:], uint32(n))
	binary.LittleEndian.PutUint32(b[sixOffLastCRC:], s.lastCRC)
	if version >= segIndexVersion2 {
		binary.LittleEndian.PutUint32(b[sixOffRuns:], uint32(len(runs)))
	}
	for i, off := range s.offsets {
		binary.LittleEndian.PutUint32(b[segIndexHeaderSize+4*i:], off)
	}
	at := segIndexHeaderSize + 4*n
	for _, r := range runs {
		binary.LittleEndian.PutUint32(b[at:], uint32(r.first-s.firstIndex))
		binary.LittleEndian.PutUint64(b[at+4:], r.term)
		at += segIndexRunSize
	}
	binary.LittleEndian.PutUint32(b[end:], crc32.Checksum(b[:end], castagnoli))
	return b
}

// writeSegIndex writes s's index file in place, without an fsync: it is a
// hint that Open checks in full (length, CRC, and against the segment), so
// a crash that leaves it missing, empty, torn or unsynced costs the next
// Open a scan of the segment and nothing else, while a roll saves an
// fdatasync and a rename on the writer's path. The directory entry is
// synced with the roll's (or Open's) directory fsync.
func writeSegIndex(fs vfs.FS, s *segment) error {
	b := encodeSegIndex(s, segIndexVersion2)
	path := segIndexPath(s.path)
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// removeSegIndex removes s's index file if there is one. The caller syncs
// the directory.
func removeSegIndex(fs vfs.FS, s *segment) error {
	if err := fs.Remove(segIndexPath(s.path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// segIndex is a decoded index file.
type segIndex struct {
	version              uint8
	firstIndex, firstSeq uint64
	size                 int64
	nextSeq              uint64
	lastTS               int64
	lastCRC              uint32
	offsets              []uint32
	terms                []termRun // version 2; nil in version 1
}

// decodeSegIndex checks an index file's own consistency (length, CRC,
// magic, version, reserved bytes, offsets, term runs). The string says what
// is wrong; empty means it is self-consistent.
func decodeSegIndex(b []byte) (segIndex, string) {
	var x segIndex
	if len(b) < segIndexHeaderSize+4 {
		return x, fmt.Sprintf("%d bytes, shorter than an index", len(b))
	}
	x.version = b[sixOffVersion]
	n := int(binary.LittleEndian.Uint32(b[sixOffEntries:]))
	r := 0
	if x.version == segIndexVersion2 {
		r = int(binary.LittleEndian.Uint32(b[sixOffRuns:]))
	}
	// n and r are below 2^32: the sum cannot overflow an int64.
	end := int64(segIndexHeaderSize) + 4*int64(n) + segIndexRunSize*int64(r)
	switch {
	case n < 1:
		return x, "no entries"
	case int64(len(b)) != end+4:
		return x, fmt.Sprintf("%d bytes, want %d for %d entries and %d term runs", len(b), end+4, n, r)
	case crc32.Checksum(b[:end], castagnoli) != binary.LittleEndian.Uint32(b[end:]):
		return x, "checksum mismatch"
	case binary.LittleEndian.Uint32(b[sixOffMagic:]) != segIndexMagic:
		return x, "bad magic"
	case b[5] != 0 || b[6] != 0 || b[7] != 0:
		return x, "reserved bits set"
	case x.version == segIndexVersion1 && binary.LittleEndian.Uint64(b[sixOffReserved:]) != 0,
		x.version == segIndexVersion2 && binary.LittleEndian.Uint32(b[sixOffReserved2:]) != 0:
		return x, "reserved bits set"
	case x.version != segIndexVersion1 && x.version != segIndexVersion2:
		return x, fmt.Sprintf("unknown version %d", x.version)
	case x.version == segIndexVersion2 && (r < 1 || r > n):
		return x, fmt.Sprintf("%d term runs for %d entries", r, n)
	}
	x.firstIndex = binary.LittleEndian.Uint64(b[sixOffFirstIndex:])
	x.firstSeq = binary.LittleEndian.Uint64(b[sixOffFirstSeq:])
	x.size = int64(binary.LittleEndian.Uint64(b[sixOffSize:]))
	x.nextSeq = binary.LittleEndian.Uint64(b[sixOffNextSeq:])
	x.lastTS = int64(binary.LittleEndian.Uint64(b[sixOffLastTS:]))
	x.lastCRC = binary.LittleEndian.Uint32(b[sixOffLastCRC:])
	x.offsets = make([]uint32, n)
	prev := int64(segmentHeaderSize - frameHeaderSize)
	for i := range x.offsets {
		off := binary.LittleEndian.Uint32(b[segIndexHeaderSize+4*i:])
		if int64(off) < prev+frameHeaderSize || (i == 0 && off != segmentHeaderSize) {
			return x, fmt.Sprintf("offset %d of entry %d out of order", off, i)
		}
		x.offsets[i] = off
		prev = int64(off)
	}
	if x.size > maxSegmentSizeLimit+maxFramePayload+frameHeaderSize || prev+frameHeaderSize > x.size {
		return x, fmt.Sprintf("last entry at %d does not fit in %d bytes", prev, x.size)
	}
	if r > 0 {
		x.terms = make([]termRun, r)
	}
	at := segIndexHeaderSize + 4*n
	for i := range x.terms {
		ordinal := binary.LittleEndian.Uint32(b[at:])
		term := binary.LittleEndian.Uint64(b[at+4:])
		at += segIndexRunSize
		switch {
		case i == 0 && ordinal != 0:
			return x, fmt.Sprintf("the first term run starts at entry %d", ordinal)
		case i > 0 && (uint64(ordinal) <= x.terms[i-1].first-x.firstIndex || int(ordinal) >= n):
			return x, fmt.Sprintf("term run %d at entry %d out of order", i, ordinal)
		case i > 0 && term == x.terms[i-1].term:
			return x, fmt.Sprintf("term runs %d and %d have the same term", i-1, i)
		}
		x.terms[i] = termRun{first: x.firstIndex + uint64(ordinal), term: term}
	}
	return x, ""
}

// loadSegIndex reads and validates the index of the sealed segment at path
// (file size size, header h) against the segment itself. It returns the
// index, or a reason to scan the segment instead.
func loadSegIndex(fs vfs.FS, path string, size int64, h segmentHeader) (segIndex, string) {
	ipath := segIndexPath(path)
	st, err := fs.Stat(ipath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return segIndex{}, "no index"
		}
		return segIndex{}, err.Error()
	}
	// Bound the read before trusting the length: 4 bytes per entry, at
	// most 12 per term run (one per entry), and an entry takes at least a
	// 64-byte frame header.
	if st.Size() > segIndexHeaderSize+4+(4+segIndexRunSize)*(size/frameHeaderSize+1) {
		return segIndex{}, fmt.Sprintf("index of %d bytes is too large for a %d-byte segment", st.Size(), size)
	}
	b := make([]byte, st.Size())
	if err := readFileAt(fs, ipath, 0, b); err != nil {
		return segIndex{}, err.Error()
	}
	x, problem := decodeSegIndex(b)
	switch {
	case problem != "":
		return x, problem
	case x.firstIndex != h.firstIndex || x.firstSeq != h.firstSeq:
		return x, "index and segment header disagree"
	case x.size != size:
		return x, fmt.Sprintf("index says %d bytes, segment has %d", x.size, size)
	}
	lastAt := int64(x.offsets[len(x.offsets)-1])
	var hdr [frameHeaderSize]byte
	if err := readFileAt(fs, path, lastAt, hdr[:]); err != nil {
		return x, err.Error()
	}
	fh, p := decodeFrameHeader(hdr[:], h.version)
	switch {
	case p != frameOK:
		return x, fmt.Sprintf("no frame at the last entry's offset: %v", p)
	case fh.index != x.firstIndex+uint64(len(x.offsets))-1,
		fh.crc != x.lastCRC,
		fh.firstSeq+uint64(fh.records) != x.nextSeq,
		fh.timestamp != x.lastTS,
		lastAt+frameHeaderSize+int64(fh.length) != size,
		x.terms != nil && fh.term != x.terms[len(x.terms)-1].term:
		return x, "the last frame does not match the index"
	}
	return x, ""
}

// readFileAt fills p from path at off.
func readFileAt(fs vfs.FS, path string, off int64, p []byte) error {
	f, err := fs.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if n, err := f.ReadAt(p, off); n != len(p) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}
