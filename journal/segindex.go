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
// Layout (little-endian), NEVER CHANGE: add a version.
//
//	 0      4     5      8            16          24         32
//	+------+-----+------+------------+-----------+----------+
//	|magic |ver=1| 0 0 0| first index| first seq | size     |
//	|"BBJI"|     |      | u64        | u64       | u64      |
//	+------+-----+------+------------+-----------+----------+
//	 32          40          48        52          56        64
//	+-----------+-----------+---------+-----------+---------+
//	| next seq  | last ts   | entries | last crc  | reserved|
//	| u64       | i64 ns    | u32 = n | u32       | u64 = 0 |
//	+-----------+-----------+---------+-----------+---------+
//	 64                       64+4n
//	+------------------------+--------------------------+
//	| n u32 entry offsets    | crc32c of bytes [0,64+4n)|
//	+------------------------+--------------------------+
//
// size is the segment file's size; last crc is the CRC field of the last
// frame. Open accepts the index only if: the file is exactly 68+4n bytes
// with a matching CRC, magic, version and zero reserved bytes; first index
// and first seq equal the segment header's; size equals the segment file's
// size; n >= 1, the first offset is 32 and each offset is at least 64 bytes
// past the previous one; and the segment's last frame header, read at the
// last offset, has a valid magic and version, index first+n-1, the CRC
// field last crc, first seq + records = next seq, timestamp last ts, and
// ends exactly at size.
const (
	segIndexMagic      uint32 = 0x494a4242 // "BBJI" little-endian
	segIndexSuffix            = ".idx"
	segIndexHeaderSize        = 64
	segIndexVersion           = 1

	sixOffMagic      = 0
	sixOffVersion    = 4
	sixOffFirstIndex = 8
	sixOffFirstSeq   = 16
	sixOffSize       = 24
	sixOffNextSeq    = 32
	sixOffLastTS     = 40
	sixOffEntries    = 48
	sixOffLastCRC    = 52
	sixOffReserved   = 56
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

// encodeSegIndex returns the index file's bytes for a sealed segment.
// REQUIRES: the segment is sealed or w held, and it has an entry.
func encodeSegIndex(s *segment) []byte {
	n := len(s.offsets)
	b := make([]byte, segIndexHeaderSize+4*n+4)
	binary.LittleEndian.PutUint32(b[sixOffMagic:], segIndexMagic)
	b[sixOffVersion] = segIndexVersion
	binary.LittleEndian.PutUint64(b[sixOffFirstIndex:], s.firstIndex)
	binary.LittleEndian.PutUint64(b[sixOffFirstSeq:], s.firstSeq)
	binary.LittleEndian.PutUint64(b[sixOffSize:], uint64(s.size))
	binary.LittleEndian.PutUint64(b[sixOffNextSeq:], s.nextSeq)
	binary.LittleEndian.PutUint64(b[sixOffLastTS:], uint64(s.lastTS))
	binary.LittleEndian.PutUint32(b[sixOffEntries:], uint32(n))
	binary.LittleEndian.PutUint32(b[sixOffLastCRC:], s.lastCRC)
	for i, off := range s.offsets {
		binary.LittleEndian.PutUint32(b[segIndexHeaderSize+4*i:], off)
	}
	end := segIndexHeaderSize + 4*n
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
	b := encodeSegIndex(s)
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
	firstIndex, firstSeq uint64
	size                 int64
	nextSeq              uint64
	lastTS               int64
	lastCRC              uint32
	offsets              []uint32
}

// decodeSegIndex checks an index file's own consistency (length, CRC,
// magic, version, reserved bytes, offsets). The string says what is wrong;
// empty means it is self-consistent.
func decodeSegIndex(b []byte) (segIndex, string) {
	var x segIndex
	if len(b) < segIndexHeaderSize+4 {
		return x, fmt.Sprintf("%d bytes, shorter than an index", len(b))
	}
	n := int(binary.LittleEndian.Uint32(b[sixOffEntries:]))
	end := segIndexHeaderSize + 4*n
	switch {
	case n < 1:
		return x, "no entries"
	case len(b) != end+4:
		return x, fmt.Sprintf("%d bytes, want %d for %d entries", len(b), end+4, n)
	case crc32.Checksum(b[:end], castagnoli) != binary.LittleEndian.Uint32(b[end:]):
		return x, "checksum mismatch"
	case binary.LittleEndian.Uint32(b[sixOffMagic:]) != segIndexMagic:
		return x, "bad magic"
	case b[sixOffVersion] != segIndexVersion || b[5] != 0 || b[6] != 0 || b[7] != 0 ||
		binary.LittleEndian.Uint64(b[sixOffReserved:]) != 0:
		return x, "unknown version or reserved bits set"
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
	// Bound the read before trusting the length: 4 bytes per entry, and an
	// entry takes at least a 64-byte frame header.
	if st.Size() > segIndexHeaderSize+4+4*(size/frameHeaderSize+1) {
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
		lastAt+frameHeaderSize+int64(fh.length) != size:
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
