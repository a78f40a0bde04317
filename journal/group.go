package journal

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// RecordFlags are per-record bits stored with the record and returned as
// they were written. The journal interprets none of them. A plain value.
type RecordFlags uint8

// FlagJSON says the record's value is JSON text.
const FlagJSON RecordFlags = 1 << 0

// Header is one record header. The journal stores names and values as
// opaque bytes, in the order given. A plain value; not safe for concurrent
// mutation while it is being encoded.
type Header struct{ Name, Value []byte }

// Record is one record to encode with AppendGroup. It is a plain value, not
// safe for concurrent mutation while it is being encoded.
type Record struct {
	Timestamp int64 // unix nanoseconds
	Flags     RecordFlags
	Key       []byte
	Headers   []Header
	Value     []byte
}

// GroupFlags are per-group bits. Unknown bits are rejected by the decoder,
// because a flag may add a field to the group header. A plain value.
type GroupFlags uint8

// GroupHasExpectedOffset says the group carries ExpectedLastOffset.
const GroupHasExpectedOffset GroupFlags = 1 << 0

// GroupHasControl says the group carries Control: opaque bytes that the
// writer of the group (the store) interprets, such as a stream lifecycle
// command that rides with the group's records. The journal only stores them.
const GroupHasControl GroupFlags = 1 << 1

// knownGroupFlags are the bits this version of the format understands.
const knownGroupFlags = GroupHasExpectedOffset | GroupHasControl

// Group is the header of one producer's atomic append to one stream. It is a
// plain value, not safe for concurrent mutation while it is being encoded.
type Group struct {
	Stream             []byte
	Flags              GroupFlags
	ExpectedLastOffset int64  // meaningful with GroupHasExpectedOffset; -1 means "stream must be empty"
	IdempotencyKey     []byte // empty = none
	Timestamp          int64  // append time, unix ns
	Control            []byte // meaningful with GroupHasControl; opaque to the journal
}

// Group layout offsets (NEVER CHANGE: part of the format, see doc.go).
const (
	groupOffSize      = 0  // uint32: total bytes of the group, this field included
	groupOffRecords   = 4  // uint32: number of records
	groupOffFlags     = 8  // uint8: GroupFlags
	groupOffTimestamp = 9  // int64: append time
	groupFixedSize    = 17 // bytes before the optional expected offset
	groupExpectedSize = 8  // int64 expected last offset, if flagged
)

// GroupSize returns the exact number of bytes AppendGroup appends for g and
// recs.
func GroupSize(g *Group, recs []Record) int {
	n := groupFixedSize
	if g.Flags&GroupHasExpectedOffset != 0 {
		n += groupExpectedSize
	}
	n += lenPrefixed(len(g.Stream)) + lenPrefixed(len(g.IdempotencyKey))
	if g.Flags&GroupHasControl != 0 {
		n += lenPrefixed(len(g.Control))
	}
	for i := range recs {
		body := recordBodySize(g.Timestamp, &recs[i])
		n += uvarintLen(uint64(body)) + body
	}
	return n
}

// recordBodySize is the size of a record after its own length prefix.
func recordBodySize(groupTS int64, r *Record) int {
	n := 1 // flags
	n += uvarintLen(zigzag(r.Timestamp - groupTS))
	n += lenPrefixed(len(r.Key))
	n += uvarintLen(uint64(len(r.Headers)))
	for i := range r.Headers {
		n += lenPrefixed(len(r.Headers[i].Name)) + lenPrefixed(len(r.Headers[i].Value))
	}
	n += lenPrefixed(len(r.Value))
	return n
}

// AppendGroup appends the encoding of g and recs to dst and returns the
// extended slice. It allocates only if dst lacks GroupSize(g, recs) bytes of
// spare capacity. Unknown bits in g.Flags are dropped, so that what is
// written always decodes.
func AppendGroup(dst []byte, g *Group, recs []Record) []byte {
	size := GroupSize(g, recs)
	start := len(dst)
	dst = slices.Grow(dst, size)[:start+size]
	b := dst[start:]
	binary.LittleEndian.PutUint32(b[groupOffSize:], uint32(size))
	binary.LittleEndian.PutUint32(b[groupOffRecords:], uint32(len(recs)))
	flags := g.Flags & knownGroupFlags
	b[groupOffFlags] = byte(flags)
	binary.LittleEndian.PutUint64(b[groupOffTimestamp:], uint64(g.Timestamp))
	p := groupFixedSize
	if flags&GroupHasExpectedOffset != 0 {
		binary.LittleEndian.PutUint64(b[p:], uint64(g.ExpectedLastOffset))
		p += groupExpectedSize
	}
	p = putBytes(b, p, g.Stream)
	p = putBytes(b, p, g.IdempotencyKey)
	if flags&GroupHasControl != 0 {
		p = putBytes(b, p, g.Control)
	}
	for i := range recs {
		r := &recs[i]
		p += binary.PutUvarint(b[p:], uint64(recordBodySize(g.Timestamp, r)))
		b[p] = byte(r.Flags)
		p++
		p += binary.PutUvarint(b[p:], zigzag(r.Timestamp-g.Timestamp))
		p = putBytes(b, p, r.Key)
		p += binary.PutUvarint(b[p:], uint64(len(r.Headers)))
		for h := range r.Headers {
			p = putBytes(b, p, r.Headers[h].Name)
			p = putBytes(b, p, r.Headers[h].Value)
		}
		p = putBytes(b, p, r.Value)
	}
	if p != size {
		panic("journal: GroupSize disagrees with AppendGroup") // a bug in this file, not an input error
	}
	return dst
}

func putBytes(b []byte, p int, v []byte) int {
	p += binary.PutUvarint(b[p:], uint64(len(v)))
	return p + copy(b[p:], v)
}

func lenPrefixed(n int) int { return uvarintLen(uint64(n)) + n }

// uvarintLen is the length of binary.PutUvarint's encoding of v.
func uvarintLen(v uint64) int {
	return (bits.Len64(v|1) + 6) / 7
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }
