package journal

import (
	"encoding/binary"
	"fmt"
)

// WriteEntry appends one entry at exactly index, with term, kind and
// payload: the call raft's log makes (a follower writes the leader's
// entries at the leader's indexes). index must equal LastIndex()+1; a
// caller replacing a conflicting suffix truncates it with TruncateBack
// first. Otherwise it returns an error wrapping ErrInvalidIndex and writes
// nothing.
//
// For KindGroups the payload must be a concatenation of groups (each the
// output of AppendGroup), possibly empty; each group is checked exactly as
// Write checks its groups (ErrCorrupt for a malformed one, nothing
// written), and the entry's records and groups are counted from them. For
// KindConfChange the payload is opaque and the entry has no records and no
// groups. An unknown kind is refused with ErrCorrupt. The entry's FirstSeq
// is NextSeq.
//
// The entry is written, not synced: call Sync before acknowledging it. It
// does not retain payload. Other errors are Write's: ErrClosed,
// ErrEntryTooLarge (nothing written), or the sticky ErrFailed. Safe for
// concurrent use; writers serialize on the writer lock (w).
func (j *Journal) WriteEntry(index, term uint64, kind EntryKind, payload []byte) (EntryInfo, error) {
	j.w.Lock()
	defer j.w.Unlock()
	if err := j.writableLocked(); err != nil {
		return EntryInfo{}, err
	}
	if next := j.mu.lastIndex + 1; index != next { // only the writer changes lastIndex
		return EntryInfo{}, fmt.Errorf("%w: write entry %d, the next index is %d", ErrInvalidIndex, index, next)
	}
	var records, groups uint64
	switch kind {
	case KindGroups:
		var err error
		if groups, records, err = countGroups(payload); err != nil {
			return EntryInfo{}, fmt.Errorf("journal: write entry %d: %w", index, err)
		}
	case KindConfChange:
	default:
		return EntryInfo{}, fmt.Errorf("%w: write entry %d: unknown entry kind %d", ErrCorrupt, index, uint8(kind))
	}
	parts := [1][]byte{payload}
	return j.appendLocked(term, kind, parts[:], int64(len(payload)), records, groups)
}

// countGroups splits a payload of concatenated groups by their size fields,
// checks each as Write checks a group (groupRecords), and counts the groups
// and records.
func countGroups(payload []byte) (groups, records uint64, err error) {
	for off := 0; off < len(payload); groups++ {
		rest := payload[off:]
		if len(rest) < groupFixedSize+2 {
			return 0, 0, fmt.Errorf("group %d: %w: %d bytes left, shorter than a group header", groups, ErrCorrupt, len(rest))
		}
		size := int64(binary.LittleEndian.Uint32(rest[groupOffSize:]))
		if size > int64(len(rest)) {
			return 0, 0, fmt.Errorf("group %d: %w: group header says %d bytes, %d left", groups, ErrCorrupt, size, len(rest))
		}
		n, err := groupRecords(rest[:size])
		if err != nil {
			return 0, 0, fmt.Errorf("group %d: %w", groups, err)
		}
		records += n
		off += int(size)
	}
	return groups, records, nil
}

// Info returns entry i's EntryInfo (index, term, kind, first seq, records,
// groups, timestamp) from its 64-byte frame header, without reading or
// checksumming its payload. The header's magic, version, kind, reserved
// bits, index and length (against the entry's bounds) are checked: a
// header that fails is ErrCorrupt with the file and offset. The header has
// no checksum of its own (the frame's CRC covers header and payload), so
// damage to another field is reported by the next Read of the entry, not
// by Info. Errors otherwise as Read: ErrTruncated, ErrOutOfRange,
// ErrClosed. Safe for concurrent use; like Read it takes mu.RLock only to
// locate and pin the segment, and never waits for the writer's I/O.
func (j *Journal) Info(i uint64) (EntryInfo, error) {
	v, err := j.locate(i)
	if err != nil {
		return EntryInfo{}, err
	}
	defer v.unpin()
	st := readPool.Get().(*readState) // a buffer for ReadAt, as Read's
	defer readPool.Put(st)
	b, err := v.h.read(v.start, v.start+frameHeaderSize, &st.buf)
	if err != nil {
		return EntryInfo{}, err
	}
	j.resident.touch(v.h)
	h, p := decodeFrameHeader(b, v.seg.version)
	switch {
	case p != frameOK:
	case h.index != i:
		p = frameBadIndex
	case v.start+frameHeaderSize+int64(h.length) != v.end:
		p = frameBadLength
	}
	if p != frameOK {
		return EntryInfo{}, corruptf(v.seg.name, v.start, "reading the header of entry %d: %v", i, p)
	}
	return h.info(), nil
}
