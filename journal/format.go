package journal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strconv"
	"strings"
)

// The on-disk format. See doc.go and docs/format.md for the layout. Every
// constant in this block is part of the format: NEVER CHANGE ONE. A new
// layout gets a new version number and a decoder for the old one.
const (
	// segmentMagic opens every segment file.
	segmentMagic uint32 = 0x534a4242 // "BBJS" little-endian
	// frameMagic opens every entry frame.
	frameMagic uint32 = 0x454a4242 // "BBJE" little-endian
	// segmentVersion1 is the version byte of a segment header and of every
	// frame in it, as the first format wrote them: a frame's flags byte
	// must be 0 (every entry is KindGroups).
	segmentVersion1 = 1
	// segmentVersion2 is the version byte of a segment header and of every
	// frame in it whose flags byte holds the entry's kind (EntryKind):
	// KindGroups or KindConfChange. Everything else is laid out as in
	// version 1. A binary that knows only version 1 refuses such a segment
	// at its header (ErrCorrupt, "unknown segment version 2") before it
	// reads a frame, so it can never take a frame of a new kind for a torn
	// tail and cut it off.
	segmentVersion2 = 2
	// segmentVersion3 is version 2 with a per-life salt: the segment
	// header carries a 4-byte salt (where versions 1 and 2 have the flags
	// field) and a flags byte (where they have their first reserved byte),
	// and every frame's CRC32C starts with the salt's 4 bytes. A file that
	// is reused for a new segment (recycled, decision 0007) gets a new
	// salt, so a frame of an earlier life fails the CRC wherever it lies.
	// Frames are laid out as in version 2.
	segmentVersion3 = 3
	// segFlagRecycled (version 3, header byte 5, bit 0): the file held an
	// earlier life, whose bytes may follow the last frame. In the last
	// segment, bytes after the valid prefix among which no frame verifies
	// with the current salt are free space, as zeros are.
	segFlagRecycled = 1 << 0
	// segmentHeaderSize is the fixed size of a segment header.
	segmentHeaderSize = 32
	// frameHeaderSize is the fixed size of an entry frame header.
	frameHeaderSize = 64
	// maxFramePayload is the largest payload length a reader accepts,
	// whatever Options.MaxEntrySize says.
	maxFramePayload = 1 << 30
	// segmentSuffix and segmentNameDigits name segments:
	// %020d.seg with the segment's first index.
	segmentSuffix     = ".seg"
	segmentNameDigits = 20
	// tmpSuffix marks a segment being written before its rename; deadSuffix
	// marks a removed segment still mapped by a reader. Open deletes both.
	tmpSuffix  = ".tmp"
	deadSuffix = ".dead"
	// spareSuffix marks a file kept to become a future segment: a retired
	// segment kept for recycling (<name>.seg.spare) or a new file made
	// ready ahead of need (%020d.spare). Its contents mean nothing; Open
	// keeps up to Options.RecycleSegments+1 of them and deletes the rest.
	spareSuffix = ".spare"
)

// currentSegmentVersion is the version of the segments this code creates.
// Unlike the constants above, it changes when a version is added.
const currentSegmentVersion = segmentVersion3

// Field offsets inside a frame header (bytes).
const (
	frameOffMagic     = 0
	frameOffVersion   = 4
	frameOffFlags     = 5
	frameOffReserved  = 6
	frameOffIndex     = 8
	frameOffTerm      = 16
	frameOffFirstSeq  = 24
	frameOffTimestamp = 32
	frameOffSynced    = 40
	frameOffRecords   = 48
	frameOffGroups    = 52
	frameOffLength    = 56
	frameOffCRC       = 60
)

// Field offsets inside a segment header (bytes).
const (
	segOffMagic      = 0
	segOffVersion    = 4
	segOffReserved   = 5
	segOffFirstIndex = 8
	segOffFirstSeq   = 16
	segOffFlags      = 24 // versions 1 and 2: flags, always 0
	segOffCRC        = 28
	// Version 3 reuses two of those fields.
	segOffFlagsV3 = 5  // one byte: segFlagRecycled; bytes 6 and 7 stay reserved
	segOffSalt    = 24 // u32: the life's salt
)

// castagnoli is CRC32C; hash/crc32 uses SSE4.2 / ARMv8 CRC instructions.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameHeader is the decoded header of one entry frame.
type frameHeader struct {
	kind      EntryKind // the flags byte; always KindGroups in a version-1 segment
	index     uint64
	term      uint64
	firstSeq  uint64
	timestamp int64
	synced    uint64 // highest index known durable when this frame was written
	records   uint32
	groups    uint32
	length    uint32 // payload bytes
	crc       uint32
}

// info returns the EntryInfo the header describes.
func (h *frameHeader) info() EntryInfo {
	return EntryInfo{
		Index:     h.index,
		Term:      h.term,
		Kind:      h.kind,
		FirstSeq:  h.firstSeq,
		Records:   int(h.records),
		Groups:    int(h.groups),
		Timestamp: h.timestamp,
	}
}

// putFrameHeader encodes h into b[:frameHeaderSize] for a segment of the
// given version, leaving the CRC field zero. The caller computes the CRC
// with frameCRC and stores it. REQUIRES: h.kind is KindGroups in a
// version-1 segment.
func putFrameHeader(b []byte, version uint8, h *frameHeader) {
	_ = b[frameHeaderSize-1]
	binary.LittleEndian.PutUint32(b[frameOffMagic:], frameMagic)
	b[frameOffVersion] = version
	b[frameOffFlags] = uint8(h.kind)
	binary.LittleEndian.PutUint16(b[frameOffReserved:], 0)
	binary.LittleEndian.PutUint64(b[frameOffIndex:], h.index)
	binary.LittleEndian.PutUint64(b[frameOffTerm:], h.term)
	binary.LittleEndian.PutUint64(b[frameOffFirstSeq:], h.firstSeq)
	binary.LittleEndian.PutUint64(b[frameOffTimestamp:], uint64(h.timestamp))
	binary.LittleEndian.PutUint64(b[frameOffSynced:], h.synced)
	binary.LittleEndian.PutUint32(b[frameOffRecords:], h.records)
	binary.LittleEndian.PutUint32(b[frameOffGroups:], h.groups)
	binary.LittleEndian.PutUint32(b[frameOffLength:], h.length)
	binary.LittleEndian.PutUint32(b[frameOffCRC:], 0)
}

// frameCRC is the CRC32C of the header bytes before the CRC field followed
// by the payload, continued from seed: the segment's crcSeed (0 in versions
// 1 and 2, the CRC of the salt's 4 bytes in version 3).
func frameCRC(seed uint32, header, payload []byte) uint32 {
	c := crc32.Update(seed, castagnoli, header[:frameOffCRC])
	return crc32.Update(c, castagnoli, payload)
}

// crcSeed returns the CRC state every frame of a segment starts from: 0 in
// versions 1 and 2; in version 3 the CRC32C of the salt, little-endian.
func crcSeed(version uint8, salt uint32) uint32 {
	if version < segmentVersion3 {
		return 0
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], salt)
	return crc32.Update(0, castagnoli, b[:])
}

// frameProblem says why bytes are not a valid frame. The zero value means
// valid.
type frameProblem uint8

const (
	frameOK frameProblem = iota
	frameShortHeader
	frameZeroed
	frameBadMagic
	frameBadVersion
	frameBadKind
	frameBadLength
	frameBeyondEnd
	frameBadChecksum
	frameBadIndex
	frameBadSeq
)

func (p frameProblem) String() string {
	switch p {
	case frameOK:
		return "valid"
	case frameShortHeader:
		return "torn frame header"
	case frameZeroed:
		return "zero-filled"
	case frameBadMagic:
		return "bad frame magic"
	case frameBadVersion:
		return "unknown frame version or reserved bits set"
	case frameBadKind:
		return "unknown entry kind"
	case frameBadLength:
		return "payload length above the format limit"
	case frameBeyondEnd:
		return "payload extends past the end of the file"
	case frameBadChecksum:
		return "checksum mismatch"
	case frameBadIndex:
		return "index discontinuity"
	case frameBadSeq:
		return "sequence discontinuity"
	default:
		return fmt.Sprintf("frameProblem(%d)", uint8(p))
	}
}

// decodeFrame validates the frame at the start of b, which holds every byte
// from the frame's start to the end of a segment of the given version and
// CRC seed (crcSeed). It checks, in order: header length, magic, version
// and reserved bits, kind, length bound, length against the bytes present,
// and the CRC. Index and sequence continuity are the caller's. On success
// it returns the header and the frame's total size.
func decodeFrame(b []byte, version uint8, seed uint32) (frameHeader, int, frameProblem) {
	var h frameHeader
	if len(b) < frameHeaderSize {
		if allZero(b) {
			return h, 0, frameZeroed
		}
		return h, 0, frameShortHeader
	}
	h, p := decodeFrameHeader(b[:frameHeaderSize], version)
	if p != frameOK {
		return h, 0, p
	}
	size := frameHeaderSize + int(h.length)
	if size > len(b) {
		return h, 0, frameBeyondEnd
	}
	if frameCRC(seed, b[:frameHeaderSize], b[frameHeaderSize:size]) != h.crc {
		return h, 0, frameBadChecksum
	}
	return h, size, frameOK
}

// decodeFrameHeader decodes and checks the fields of a frame header that
// can be checked without the payload: magic, version (the segment's),
// reserved bits, kind (0 in a version-1 segment, a known EntryKind in a
// version-2 one) and the length bound. The header has no checksum of its
// own: the CRC covers it with the payload (decodeFrame).
func decodeFrameHeader(b []byte, version uint8) (frameHeader, frameProblem) {
	var h frameHeader
	_ = b[frameHeaderSize-1]
	if binary.LittleEndian.Uint32(b[frameOffMagic:]) != frameMagic {
		if allZero(b[:frameHeaderSize]) {
			return h, frameZeroed
		}
		return h, frameBadMagic
	}
	if b[frameOffVersion] != version || binary.LittleEndian.Uint16(b[frameOffReserved:]) != 0 {
		return h, frameBadVersion
	}
	h.kind = EntryKind(b[frameOffFlags])
	if !kindAllowed(version, h.kind) {
		return h, frameBadKind
	}
	h.length = binary.LittleEndian.Uint32(b[frameOffLength:])
	if h.length > maxFramePayload {
		return h, frameBadLength
	}
	h.crc = binary.LittleEndian.Uint32(b[frameOffCRC:])
	h.index = binary.LittleEndian.Uint64(b[frameOffIndex:])
	h.term = binary.LittleEndian.Uint64(b[frameOffTerm:])
	h.firstSeq = binary.LittleEndian.Uint64(b[frameOffFirstSeq:])
	h.timestamp = int64(binary.LittleEndian.Uint64(b[frameOffTimestamp:]))
	h.synced = binary.LittleEndian.Uint64(b[frameOffSynced:])
	h.records = binary.LittleEndian.Uint32(b[frameOffRecords:])
	h.groups = binary.LittleEndian.Uint32(b[frameOffGroups:])
	return h, frameOK
}

// kindAllowed reports whether a frame of a segment of the given version
// may hold an entry of kind k.
func kindAllowed(version uint8, k EntryKind) bool {
	switch version {
	case segmentVersion1:
		return k == KindGroups
	case segmentVersion2, segmentVersion3:
		return k.known()
	default:
		return false
	}
}

// segmentHeader is the decoded header of a segment file.
type segmentHeader struct {
	version    uint8 // segmentVersion1, 2 or 3; also every frame's version byte
	firstIndex uint64
	firstSeq   uint64
	salt       uint32 // version 3: this life's salt; 0 before
	recycled   bool   // version 3: segFlagRecycled
}

// putSegmentHeader encodes h into b[:segmentHeaderSize], CRC included.
func putSegmentHeader(b []byte, h segmentHeader) {
	_ = b[segmentHeaderSize-1]
	binary.LittleEndian.PutUint32(b[segOffMagic:], segmentMagic)
	b[segOffVersion] = h.version
	b[segOffReserved], b[segOffReserved+1], b[segOffReserved+2] = 0, 0, 0
	binary.LittleEndian.PutUint64(b[segOffFirstIndex:], h.firstIndex)
	binary.LittleEndian.PutUint64(b[segOffFirstSeq:], h.firstSeq)
	binary.LittleEndian.PutUint32(b[segOffFlags:], 0)
	if h.version >= segmentVersion3 {
		if h.recycled {
			b[segOffFlagsV3] = segFlagRecycled
		}
		binary.LittleEndian.PutUint32(b[segOffSalt:], h.salt)
	}
	binary.LittleEndian.PutUint32(b[segOffCRC:], crc32.Checksum(b[:segOffCRC], castagnoli))
}

// decodeSegmentHeader validates and decodes a segment header; the string is
// empty on success and says what is wrong otherwise.
func decodeSegmentHeader(b []byte) (segmentHeader, string) {
	var h segmentHeader
	switch {
	case len(b) < segmentHeaderSize:
		return h, fmt.Sprintf("segment header truncated to %d bytes", len(b))
	case binary.LittleEndian.Uint32(b[segOffMagic:]) != segmentMagic:
		return h, "bad segment magic"
	case b[segOffVersion] < segmentVersion1 || b[segOffVersion] > segmentVersion3:
		return h, fmt.Sprintf("unknown segment version %d", b[segOffVersion])
	case crc32.Checksum(b[:segOffCRC], castagnoli) != binary.LittleEndian.Uint32(b[segOffCRC:]):
		return h, "segment header checksum mismatch"
	case b[segOffVersion] == segmentVersion3:
		if b[segOffFlagsV3]&^segFlagRecycled != 0 || b[segOffReserved+1] != 0 || b[segOffReserved+2] != 0 {
			return h, "segment header reserved bits set"
		}
		h.recycled = b[segOffFlagsV3]&segFlagRecycled != 0
		h.salt = binary.LittleEndian.Uint32(b[segOffSalt:])
	case b[segOffReserved] != 0 || b[segOffReserved+1] != 0 || b[segOffReserved+2] != 0 ||
		binary.LittleEndian.Uint32(b[segOffFlags:]) != 0:
		return h, "segment header reserved bits set"
	}
	h.version = b[segOffVersion]
	h.firstIndex = binary.LittleEndian.Uint64(b[segOffFirstIndex:])
	h.firstSeq = binary.LittleEndian.Uint64(b[segOffFirstSeq:])
	return h, ""
}

// segmentName returns the file name of the segment whose first entry has
// the given index.
func segmentName(firstIndex uint64) string {
	var buf [segmentNameDigits + len(segmentSuffix)]byte
	s := strconv.AppendUint(buf[:0], firstIndex, 10)
	out := make([]byte, 0, len(buf))
	for range segmentNameDigits - len(s) {
		out = append(out, '0')
	}
	out = append(out, s...)
	out = append(out, segmentSuffix...)
	return string(out)
}

// parseSegmentName returns the first index encoded in a segment file name.
func parseSegmentName(name string) (uint64, bool) {
	if len(name) != segmentNameDigits+len(segmentSuffix) || !strings.HasSuffix(name, segmentSuffix) {
		return 0, false
	}
	digits := name[:segmentNameDigits]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// newSalt returns a salt for a new segment life, never prev (the salt of
// the file's previous life, 0 for a new file). Salts are random: an
// earlier life's frame verifies with the new salt only by a CRC collision
// (about 2^-32), and must then also carry the expected index and seq at
// the expected offset.
func newSalt(prev uint32) uint32 {
	for {
		if s := rand.Uint32(); s != prev {
			return s
		}
	}
}
