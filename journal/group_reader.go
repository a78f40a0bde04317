package journal

import (
	"encoding/binary"
	"fmt"
)

// GroupView is the decoded header of the group a GroupReader is positioned
// on. Its byte slices alias the payload. Not safe for concurrent use.
type GroupView struct {
	Stream             []byte
	Flags              GroupFlags
	ExpectedLastOffset int64 // meaningful with GroupHasExpectedOffset
	IdempotencyKey     []byte
	Timestamp          int64
	Control            []byte // meaningful with GroupHasControl
	Records            int    // records in the group
	FirstSeq           uint64 // global position of the group's first record
	Ordinal            int    // index of the group within the payload, from 0
	Offset             int    // byte offset of the group within the payload
	Size               int    // encoded bytes of the group
}

// RecordView is the decoded record a GroupReader is positioned on. Its byte
// slices alias the payload. Not safe for concurrent use.
type RecordView struct {
	Seq       uint64 // global position
	Ordinal   int    // index of the record within its group, from 0
	Timestamp int64
	Flags     RecordFlags
	Key       []byte
	Value     []byte

	numHeaders int
	headers    []byte // the encoded headers, already validated
	// cursor of the last Header call, so that a loop over i is O(total).
	hIndex int
	hOff   int
}

// NumHeaders returns the number of headers of the record.
func (v *RecordView) NumHeaders() int { return v.numHeaders }

// Header returns header i (0 <= i < NumHeaders). The slices alias the
// payload. Sequential access is O(1) per call.
func (v *RecordView) Header(i int) (name, value []byte) {
	if i < 0 || i >= v.numHeaders {
		return nil, nil
	}
	if i < v.hIndex {
		v.hIndex, v.hOff = 0, 0
	}
	b := v.headers
	for {
		nl, n := binary.Uvarint(b[v.hOff:])
		name = b[v.hOff+n : v.hOff+n+int(nl)]
		p := v.hOff + n + int(nl)
		vl, m := binary.Uvarint(b[p:])
		value = b[p+m : p+m+int(vl)]
		if v.hIndex == i {
			return name, value
		}
		v.hIndex++
		v.hOff = p + m + int(vl)
	}
}

// GroupReader decodes a payload of concatenated groups (an Entry's Payload,
// or a single group from AppendGroup) without allocating:
//
//	var r journal.GroupReader
//	r.Reset(e.Payload, e.FirstSeq)
//	for r.Next() {
//		g := r.Group()
//		for r.NextRecord() {
//			rec := r.Record()
//		}
//	}
//	if err := r.Err(); err != nil { ... }
//
// Next skips the unread records of the current group in O(1). A decode error
// stops the reader; Err returns it wrapped in ErrCorrupt. The zero value is
// an empty reader. Not safe for concurrent use.
type GroupReader struct {
	payload []byte
	off     int    // start of the next group
	ordinal int    // ordinal of the next group
	seq     uint64 // first seq of the next group

	// where Reset or ResetAt started, for SeekGroup
	baseOff     int
	baseOrdinal int
	baseSeq     uint64

	inGroup bool
	group   GroupView
	recOff  int // next record's offset within payload
	recEnd  int // end of the current group
	recNext int // ordinal of the next record
	record  RecordView
	err     error
}

// Reset positions r before the first group of payload, whose first record
// has global position firstSeq.
func (r *GroupReader) Reset(payload []byte, firstSeq uint64) {
	r.ResetAt(payload, 0, 0, firstSeq)
}

// ResetAt positions r so that the next Next decodes the group at byte
// offset off of payload, with the given ordinal and first record seq: the
// storage index can jump straight to a group by remembering its
// GroupView.Offset, Ordinal and FirstSeq.
func (r *GroupReader) ResetAt(payload []byte, off, ordinal int, firstSeq uint64) {
	*r = GroupReader{
		payload: payload, off: off, ordinal: ordinal, seq: firstSeq,
		baseOff: off, baseOrdinal: ordinal, baseSeq: firstSeq,
	}
	if off < 0 || off > len(payload) {
		r.fail(off, "group offset out of range")
	}
}

// SeekGroup positions r on the group with the given ordinal, as if Next had
// returned true ordinal+1 times since Reset (or ordinal-k times since
// ResetAt with ordinal k). It reads only the fixed part of each skipped
// group. It returns false if the payload has no such group or is malformed
// (see Err).
func (r *GroupReader) SeekGroup(ordinal int) bool {
	base := *r
	*r = GroupReader{
		payload: base.payload, off: base.baseOff, ordinal: base.baseOrdinal, seq: base.baseSeq,
		baseOff: base.baseOff, baseOrdinal: base.baseOrdinal, baseSeq: base.baseSeq,
	}
	if ordinal < r.ordinal {
		r.fail(r.off, "group %d lies before the reader's start (group %d)", ordinal, r.ordinal)
		return false
	}
	for r.ordinal < ordinal {
		size, recs, ok := r.peekGroup(r.off)
		if !ok {
			return false
		}
		r.off += size
		r.seq += uint64(recs)
		r.ordinal++
	}
	return r.Next()
}

// peekGroup validates the fixed fields of the group at off and returns its
// size and record count.
func (r *GroupReader) peekGroup(off int) (size, recs int, ok bool) {
	rest := len(r.payload) - off
	if rest < groupFixedSize {
		if rest != 0 {
			r.fail(off, "truncated group header")
		}
		return 0, 0, false
	}
	s := binary.LittleEndian.Uint32(r.payload[off+groupOffSize:])
	if s < groupFixedSize+2 || int64(s) > int64(rest) {
		r.fail(off, "group size %d outside [%d, %d]", s, groupFixedSize+2, rest)
		return 0, 0, false
	}
	n := binary.LittleEndian.Uint32(r.payload[off+groupOffRecords:])
	if int64(n) > int64(s) { // every record takes at least one byte
		r.fail(off, "group claims %d records in %d bytes", n, s)
		return 0, 0, false
	}
	return int(s), int(n), true
}

// Next advances to the next group and returns false at the end of the
// payload or on a decode error.
func (r *GroupReader) Next() bool {
	if r.err != nil {
		return false
	}
	if r.inGroup {
		r.off = r.group.Offset + r.group.Size
		r.seq = r.group.FirstSeq + uint64(r.group.Records)
		r.ordinal = r.group.Ordinal + 1
		r.inGroup = false
	}
	off := r.off
	size, recs, ok := r.peekGroup(off)
	if !ok {
		return false
	}
	b := r.payload[off : off+size]
	flags := GroupFlags(b[groupOffFlags])
	if flags&^knownGroupFlags != 0 {
		r.fail(off, "unknown group flags %#x", uint8(flags))
		return false
	}
	g := &r.group
	*g = GroupView{
		Flags:     flags,
		Timestamp: int64(binary.LittleEndian.Uint64(b[groupOffTimestamp:])),
		Records:   recs,
		FirstSeq:  r.seq,
		Ordinal:   r.ordinal,
		Offset:    off,
		Size:      size,
	}
	p := groupFixedSize
	if flags&GroupHasExpectedOffset != 0 {
		if p+groupExpectedSize > size {
			r.fail(off, "truncated expected offset")
			return false
		}
		g.ExpectedLastOffset = int64(binary.LittleEndian.Uint64(b[p:]))
		p += groupExpectedSize
	}
	if g.Stream, p, ok = getBytes(b, p); !ok {
		r.fail(off+p, "bad stream name length")
		return false
	}
	if g.IdempotencyKey, p, ok = getBytes(b, p); !ok {
		r.fail(off+p, "bad idempotency key length")
		return false
	}
	if flags&GroupHasControl != 0 {
		if g.Control, p, ok = getBytes(b, p); !ok {
			r.fail(off+p, "bad control length")
			return false
		}
	}
	r.inGroup = true
	r.recOff = off + p
	r.recEnd = off + size
	r.recNext = 0
	return true
}

// Group returns the current group. Valid after Next returned true, until the
// next call to Next, Reset or ResetAt.
func (r *GroupReader) Group() *GroupView { return &r.group }

// NextRecord advances to the next record of the current group and returns
// false after the group's last record or on a decode error.
func (r *GroupReader) NextRecord() bool {
	if r.err != nil || !r.inGroup {
		return false
	}
	if r.recNext >= r.group.Records {
		if r.recOff != r.recEnd {
			r.fail(r.recOff, "%d stray bytes after the group's last record", r.recEnd-r.recOff)
		}
		return false
	}
	start := r.recOff
	body, n := binary.Uvarint(r.payload[start:r.recEnd])
	if n <= 0 || body < 1 || body > uint64(r.recEnd-start-n) {
		r.fail(start, "bad record length")
		return false
	}
	b := r.payload[start+n : start+n+int(body)]
	v := &r.record
	*v = RecordView{Seq: r.group.FirstSeq + uint64(r.recNext), Ordinal: r.recNext, Flags: RecordFlags(b[0])}
	p := 1
	ts, m := binary.Uvarint(b[p:])
	if m <= 0 {
		r.fail(start, "bad record timestamp")
		return false
	}
	v.Timestamp = r.group.Timestamp + unzigzag(ts)
	p += m
	var ok bool
	if v.Key, p, ok = getBytes(b, p); !ok {
		r.fail(start, "bad record key length")
		return false
	}
	nh, m := binary.Uvarint(b[p:])
	if m <= 0 || nh > uint64(len(b)-p) {
		r.fail(start, "bad header count")
		return false
	}
	p += m
	hstart := p
	for range nh {
		if _, p, ok = getBytes(b, p); !ok {
			r.fail(start, "bad header name length")
			return false
		}
		if _, p, ok = getBytes(b, p); !ok {
			r.fail(start, "bad header value length")
			return false
		}
	}
	v.numHeaders = int(nh)
	v.headers = b[hstart:p]
	if v.Value, p, ok = getBytes(b, p); !ok || p != len(b) {
		r.fail(start, "bad record value length")
		return false
	}
	r.recOff = start + n + int(body)
	r.recNext++
	return true
}

// Record returns the current record. Valid after NextRecord returned true,
// until the next call that moves the reader.
func (r *GroupReader) Record() *RecordView { return &r.record }

// Err returns the first decode error, wrapping ErrCorrupt, or nil.
func (r *GroupReader) Err() error { return r.err }

func (r *GroupReader) fail(off int, format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: group payload at offset %d: %s", ErrCorrupt, off, fmt.Sprintf(format, args...))
	}
	r.inGroup = false
}

// getBytes reads a uvarint length and that many bytes from b at p.
func getBytes(b []byte, p int) ([]byte, int, bool) {
	if p > len(b) {
		return nil, p, false
	}
	l, n := binary.Uvarint(b[p:])
	if n <= 0 || l > uint64(len(b)-p-n) {
		return nil, p, false
	}
	p += n
	return b[p : p+int(l) : p+int(l)], p + int(l), true
}
