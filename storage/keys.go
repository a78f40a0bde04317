package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// This file is the Pebble key and value layout of the index. doc.go draws
// it; the constants below are an on-disk format and must never change
// meaning (add a new tag instead).

// Key tags: the first byte of every index key.
const (
	tagApplied  = 0x01 // the applied journal position (one key)
	tagStream   = 0x02 // per-stream metadata
	tagRun      = 0x03 // sparse (stream, last offset) -> journal position
	tagTime     = 0x04 // sparse (stream, max timestamp so far) -> offset
	tagIdem     = 0x05 // (stream, idempotency key) -> original result
	tagCursor   = 0x06 // (stream, cursor name) -> offset
	tagChunk    = 0x07 // (first seq) -> per-group decisions of a run of one entry
	tagProducer = 0x08 // (stream, producer id) -> epoch, last seq, last result
)

// indexFormatVersion is stored in the applied-position value. Open refuses
// (and rebuilds) an index written with another version.
const indexFormatVersion = 1

// nameTerminator ends the stream name inside composite keys. Stream names
// never contain it, so one stream's keys are contiguous and never
// interleave with a stream whose name extends it ("a" vs "a.b").
const nameTerminator = 0x00

var errCorruptIndex = errors.New("storage: corrupt index value")

// appliedKey is the single key holding the applied position.
var appliedKey = []byte{tagApplied, 'a'}

// position is a point in the journal between two groups, with the one
// piece of business-logic state that is not per stream: the next group the
// business logic will apply is group ordinal Ordinal of entry Entry, its
// first record has global position Seq, and Clock is the largest group
// timestamp applied so far (the idempotency window's clock).
type position struct {
	Entry   uint64 // journal entry index (from 1)
	Ordinal uint32 // group ordinal within the entry
	Seq     uint64 // global position of the next record
	Clock   int64  // max journaled group timestamp so far, unix nanoseconds
}

// appliedValue layout (29 bytes):
//
//	[0]     format version (indexFormatVersion)
//	[1:9]   entry index, big endian
//	[9:13]  group ordinal, big endian
//	[13:21] next seq, big endian
//	[21:29] idempotency clock, big endian two's complement
func encodeApplied(dst []byte, p position) []byte {
	dst = append(dst, indexFormatVersion)
	dst = binary.BigEndian.AppendUint64(dst, p.Entry)
	dst = binary.BigEndian.AppendUint32(dst, p.Ordinal)
	dst = binary.BigEndian.AppendUint64(dst, p.Seq)
	return binary.BigEndian.AppendUint64(dst, uint64(p.Clock))
}

func decodeApplied(v []byte) (position, error) {
	if len(v) != 29 {
		return position{}, fmt.Errorf("%w: applied position is %d bytes", errCorruptIndex, len(v))
	}
	if v[0] != indexFormatVersion {
		return position{}, fmt.Errorf("%w: index format version %d, want %d", errCorruptIndex, v[0], indexFormatVersion)
	}
	return position{
		Entry:   binary.BigEndian.Uint64(v[1:9]),
		Ordinal: binary.BigEndian.Uint32(v[9:13]),
		Seq:     binary.BigEndian.Uint64(v[13:21]),
		Clock:   int64(binary.BigEndian.Uint64(v[21:29])),
	}, nil
}

// streamKey: tag | stream.
func streamKey(dst []byte, stream []byte) []byte {
	dst = append(dst, tagStream)
	return append(dst, stream...)
}

// streamMeta is a stream's state. All but FirstOffset is the business
// logic's and durable; FirstOffset is derived from the journal's retention
// (see retention.go) and not stored.
type streamMeta struct {
	NextOffset  uint64
	FirstOffset uint64
	Bytes       uint64
	LastTime    int64 // timestamp of the last record, unix nanoseconds
	MaxTime     int64 // largest record timestamp so far, unix nanoseconds
	// Lifecycle (lifecycle.go): created explicitly (it exists while empty),
	// closed, and the configuration it was created with.
	Explicit bool
	Closed   bool
	Config   streamConfig
	// Access is the journaled time of the last create, append or touch
	// (unix ns): a TTL runs from it.
	Access int64
	// A fork reads offsets [0, ForkOffset) from Source ("" for a stream
	// that is not a fork). Forks counts the live forks of this stream;
	// a stream deleted while it has forks is SoftDeleted (410) until the
	// last one goes.
	Source      string
	ForkOffset  uint64
	Forks       uint64
	SoftDeleted bool
	// StreamSeq is the last accepted writer sequence label ("": none).
	StreamSeq string
	// ForkSub is a fork's sub-offset: its first own record is the first
	// ForkSub bytes of the source's record at ForkOffset (0: none).
	ForkSub uint64
}

// streamMeta flag bits, in the optional tail of the value.
const (
	metaExplicit = 1 << 0
	metaClosed   = 1 << 1
	metaDeleted  = 1 << 2
	metaKnown    = metaExplicit | metaClosed | metaDeleted
)

// streamMeta value layout (big endian): next offset, bytes, last
// timestamp, max timestamp (32 bytes); then, only for a stream with
// lifecycle state, a flags byte (metaExplicit, metaClosed), uvarint
// content-type length, content type, uvarint TTL (ns), varint expires-at
// (unix ns), varint access time (unix ns), uvarint source length, source,
// uvarint fork offset, uvarint live forks, uvarint stream-seq length,
// stream seq, uvarint fork sub-offset.
func encodeStreamMeta(dst []byte, m *streamMeta) []byte {
	dst = binary.BigEndian.AppendUint64(dst, m.NextOffset)
	dst = binary.BigEndian.AppendUint64(dst, m.Bytes)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.LastTime))
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.MaxTime))
	var flags byte
	if m.Explicit {
		flags |= metaExplicit
	}
	if m.Closed {
		flags |= metaClosed
	}
	if m.SoftDeleted {
		flags |= metaDeleted
	}
	if !m.hasTail() {
		return dst
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(len(m.Config.ContentType)))
	dst = append(dst, m.Config.ContentType...)
	dst = binary.AppendUvarint(dst, uint64(m.Config.TTL))
	dst = binary.AppendVarint(dst, m.Config.ExpiresAt)
	dst = binary.AppendVarint(dst, m.Access)
	dst = binary.AppendUvarint(dst, uint64(len(m.Source)))
	dst = append(dst, m.Source...)
	dst = binary.AppendUvarint(dst, m.ForkOffset)
	dst = binary.AppendUvarint(dst, m.Forks)
	dst = binary.AppendUvarint(dst, uint64(len(m.StreamSeq)))
	dst = append(dst, m.StreamSeq...)
	return binary.AppendUvarint(dst, m.ForkSub)
}

// hasTail reports whether m has a field of the metadata's tail set: the
// encoding is the 32 fixed bytes alone exactly when it has none.
func (m *streamMeta) hasTail() bool {
	return m.Explicit || m.Closed || m.SoftDeleted || m.Config != (streamConfig{}) || m.Access != 0 ||
		m.Source != "" || m.ForkOffset != 0 || m.Forks != 0 || m.StreamSeq != "" || m.ForkSub != 0
}

func decodeStreamMeta(v []byte) (streamMeta, error) {
	if len(v) < 32 {
		return streamMeta{}, fmt.Errorf("%w: stream metadata is %d bytes", errCorruptIndex, len(v))
	}
	m := streamMeta{
		NextOffset: binary.BigEndian.Uint64(v[0:8]),
		Bytes:      binary.BigEndian.Uint64(v[8:16]),
		LastTime:   int64(binary.BigEndian.Uint64(v[16:24])),
		MaxTime:    int64(binary.BigEndian.Uint64(v[24:32])),
	}
	if len(v) == 32 {
		return m, nil
	}
	flags, rest := v[32], v[33:]
	m.Explicit, m.Closed, m.SoftDeleted = flags&metaExplicit != 0, flags&metaClosed != 0, flags&metaDeleted != 0
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k) || flags&^metaKnown != 0 {
		return streamMeta{}, fmt.Errorf("%w: stream metadata tail", errCorruptIndex)
	}
	m.Config.ContentType = string(rest[k : k+int(n)])
	rest = rest[k+int(n):]
	ttl, k1 := binary.Uvarint(rest)
	if k1 <= 0 || ttl > math.MaxInt64 {
		return streamMeta{}, fmt.Errorf("%w: stream metadata tail", errCorruptIndex)
	}
	m.Config.TTL = int64(ttl)
	e, k2 := binary.Varint(rest[k1:])
	if k2 <= 0 {
		return streamMeta{}, fmt.Errorf("%w: stream metadata tail", errCorruptIndex)
	}
	m.Config.ExpiresAt = e
	acc, k3 := binary.Varint(rest[k1+k2:])
	if k3 <= 0 {
		return streamMeta{}, fmt.Errorf("%w: stream metadata tail", errCorruptIndex)
	}
	m.Access = acc
	rest = rest[k1+k2+k3:]
	n, k = binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k) {
		return streamMeta{}, fmt.Errorf("%w: stream metadata tail", errCorruptIndex)
	}
	m.Source = string(rest[k : k+int(n)])
	rest = rest[k+int(n):]
	var k4, k5 int
	m.ForkOffset, k4 = binary.Uvarint(rest)
	if k4 > 0 {
		m.Forks, k5 = binary.Uvarint(rest[k4:])
	}
	if k4 <= 0 || k5 <= 0 {
		return streamMeta{}, fmt.Errorf("%w: stream metadata tail", errCorruptIndex)
	}
	rest = rest[k4+k5:]
	n, k = binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k) {
		return streamMeta{}, fmt.Errorf("%w: stream metadata tail", errCorruptIndex)
	}
	m.StreamSeq = string(rest[k : k+int(n)])
	rest = rest[k+int(n):]
	m.ForkSub, k = binary.Uvarint(rest)
	if k <= 0 || k != len(rest) {
		return streamMeta{}, fmt.Errorf("%w: stream metadata tail", errCorruptIndex)
	}
	// The encoding is canonical (minimal varints; no tail of defaults
	// only), so a value that decodes is exactly what the store wrote, or
	// corrupt. Decoded at Open only, once per stream.
	var buf [128]byte
	if !bytes.Equal(encodeStreamMeta(buf[:0], &m), v) {
		return streamMeta{}, fmt.Errorf("%w: stream metadata is not in canonical form", errCorruptIndex)
	}
	return m, nil
}

// producerKey: tag | stream | 0x00 | producer id.
func producerKey(dst []byte, stream, id []byte) []byte {
	return append(streamPrefix(dst, tagProducer, stream), id...)
}

// producer value layout (36 bytes, big endian): epoch, last seq, first
// offset, count (4), first seq of the last accepted append.
func encodeProducer(dst []byte, p producerState) []byte {
	dst = binary.BigEndian.AppendUint64(dst, p.Epoch)
	dst = binary.BigEndian.AppendUint64(dst, p.Seq)
	dst = binary.BigEndian.AppendUint64(dst, p.FirstOffset)
	dst = binary.BigEndian.AppendUint32(dst, p.Count)
	return binary.BigEndian.AppendUint64(dst, p.FirstSeq)
}

func decodeProducer(v []byte) (producerState, error) {
	if len(v) != 36 {
		return producerState{}, fmt.Errorf("%w: producer is %d bytes", errCorruptIndex, len(v))
	}
	return producerState{
		Epoch:       binary.BigEndian.Uint64(v[0:8]),
		Seq:         binary.BigEndian.Uint64(v[8:16]),
		FirstOffset: binary.BigEndian.Uint64(v[16:24]),
		Count:       binary.BigEndian.Uint32(v[24:28]),
		FirstSeq:    binary.BigEndian.Uint64(v[28:36]),
	}, nil
}

// streamPrefix: tag | stream | 0x00, the prefix of every composite key of
// the stream under tag.
func streamPrefix(dst []byte, tag byte, stream []byte) []byte {
	dst = append(dst, tag)
	dst = append(dst, stream...)
	return append(dst, nameTerminator)
}

// runKey: tagRun | stream | 0x00 | last offset of the run (8 bytes BE).
// Keying by the LAST offset lets SeekGE(runKey(o)) land on the run that
// holds offset o.
func runKey(dst []byte, stream []byte, lastOffset uint64) []byte {
	dst = streamPrefix(dst, tagRun, stream)
	return binary.BigEndian.AppendUint64(dst, lastOffset)
}

// run is one accepted group: Count records of one stream at consecutive
// offsets, stored in one journal group.
type run struct {
	Entry    uint64 // journal entry index
	Ordinal  uint32 // group ordinal within the entry
	Offset   uint32 // byte offset of the group within the entry's payload
	Count    uint32 // records in the group (all accepted together)
	FirstSeq uint64 // global position of the group's first record
}

// run value layout (28 bytes, big endian): entry, ordinal, payload offset,
// count, first seq.
func encodeRun(dst []byte, r run) []byte {
	dst = binary.BigEndian.AppendUint64(dst, r.Entry)
	dst = binary.BigEndian.AppendUint32(dst, r.Ordinal)
	dst = binary.BigEndian.AppendUint32(dst, r.Offset)
	dst = binary.BigEndian.AppendUint32(dst, r.Count)
	return binary.BigEndian.AppendUint64(dst, r.FirstSeq)
}

func decodeRun(v []byte) (run, error) {
	if len(v) != 28 {
		return run{}, fmt.Errorf("%w: run is %d bytes", errCorruptIndex, len(v))
	}
	return run{
		Entry:    binary.BigEndian.Uint64(v[0:8]),
		Ordinal:  binary.BigEndian.Uint32(v[8:12]),
		Offset:   binary.BigEndian.Uint32(v[12:16]),
		Count:    binary.BigEndian.Uint32(v[16:20]),
		FirstSeq: binary.BigEndian.Uint64(v[20:28]),
	}, nil
}

// sortableTime maps a signed nanosecond time onto an unsigned integer with
// the same order.
func sortableTime(ns int64) uint64 { return uint64(ns) ^ (1 << 63) }

// timeKey: tagTime | stream | 0x00 | sortableTime(max timestamp so far).
// The value is the 8-byte BE offset of the first record of the run at which
// the stream's maximum timestamp first reached the key's time.
func timeKey(dst []byte, stream []byte, ns int64) []byte {
	dst = streamPrefix(dst, tagTime, stream)
	return binary.BigEndian.AppendUint64(dst, sortableTime(ns))
}

// idemKey: tagIdem | stream | 0x00 | idempotency key bytes.
func idemKey(dst []byte, stream, key []byte) []byte {
	dst = streamPrefix(dst, tagIdem, stream)
	return append(dst, key...)
}

// idemRecord is the remembered result of an accepted append that carried
// an idempotency key.
type idemRecord struct {
	Time        int64 // the original group's journaled timestamp
	FirstOffset uint64
	Count       uint32
	FirstSeq    uint64
}

// idem value layout (28 bytes, big endian): time, first offset, count,
// first seq.
func encodeIdem(dst []byte, r idemRecord) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Time))
	dst = binary.BigEndian.AppendUint64(dst, r.FirstOffset)
	dst = binary.BigEndian.AppendUint32(dst, r.Count)
	return binary.BigEndian.AppendUint64(dst, r.FirstSeq)
}

func decodeIdem(v []byte) (idemRecord, error) {
	if len(v) != 28 {
		return idemRecord{}, fmt.Errorf("%w: idempotency record is %d bytes", errCorruptIndex, len(v))
	}
	return idemRecord{
		Time:        int64(binary.BigEndian.Uint64(v[0:8])),
		FirstOffset: binary.BigEndian.Uint64(v[8:16]),
		Count:       binary.BigEndian.Uint32(v[16:20]),
		FirstSeq:    binary.BigEndian.Uint64(v[20:28]),
	}, nil
}

// cursorKey: tagCursor | stream | 0x00 | cursor name. Value: 8-byte BE
// offset.
func cursorKey(dst []byte, stream, name []byte) []byte {
	dst = streamPrefix(dst, tagCursor, stream)
	return append(dst, name...)
}

// chunkKey: tagChunk | first seq of the chunk's first group (8 bytes BE).
//
// A chunk lists, for consecutive groups of one journal entry applied in one
// Pebble batch, whether each was accepted and at which offset. ReadGlobal
// uses it to skip rejected and duplicate groups and to label records with
// their offsets without re-running the business logic.
func chunkKey(dst []byte, firstSeq uint64) []byte {
	dst = append(dst, tagChunk)
	return binary.BigEndian.AppendUint64(dst, firstSeq)
}

// chunk value layout:
//
//	uvarint entry index
//	uvarint ordinal of the first group
//	uvarint byte offset of the first group within the entry's payload
//	uvarint group count n
//	n times: uvarint record count, uvarint (0: not indexed | first offset + 1)
type chunkGroup struct {
	Records  uint32
	Accepted bool
	Offset   uint64 // first offset when Accepted
}

func appendChunkHeader(dst []byte, entry uint64, ordinal, offset uint32, groups int) []byte {
	dst = binary.AppendUvarint(dst, entry)
	dst = binary.AppendUvarint(dst, uint64(ordinal))
	dst = binary.AppendUvarint(dst, uint64(offset))
	return binary.AppendUvarint(dst, uint64(groups))
}

func appendChunkGroup(dst []byte, g chunkGroup) []byte {
	dst = binary.AppendUvarint(dst, uint64(g.Records))
	if !g.Accepted {
		return binary.AppendUvarint(dst, 0)
	}
	return binary.AppendUvarint(dst, g.Offset+1)
}

// chunkDecoder walks a chunk value without allocating.
type chunkDecoder struct {
	Entry   uint64
	Ordinal uint32
	Offset  uint32
	Groups  int
	rest    []byte
	err     error
}

func (d *chunkDecoder) reset(v []byte) error {
	*d = chunkDecoder{rest: v}
	e := d.uvarint()
	o := d.uvarint()
	off := d.uvarint()
	n := d.uvarint()
	if d.err != nil {
		return d.err
	}
	if o > math.MaxUint32 || off > math.MaxUint32 || n > math.MaxInt32 {
		return fmt.Errorf("%w: chunk header out of range", errCorruptIndex)
	}
	d.Entry, d.Ordinal, d.Offset, d.Groups = e, uint32(o), uint32(off), int(n)
	return nil
}

func (d *chunkDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.rest)
	if n <= 0 {
		d.err = fmt.Errorf("%w: truncated chunk", errCorruptIndex)
		return 0
	}
	d.rest = d.rest[n:]
	return v
}

// next decodes the next group; call it exactly Groups times.
func (d *chunkDecoder) next() (chunkGroup, error) {
	r := d.uvarint()
	o := d.uvarint()
	if d.err != nil {
		return chunkGroup{}, d.err
	}
	if r > math.MaxUint32 {
		return chunkGroup{}, fmt.Errorf("%w: chunk record count out of range", errCorruptIndex)
	}
	if o == 0 {
		return chunkGroup{Records: uint32(r)}, nil
	}
	return chunkGroup{Records: uint32(r), Accepted: true, Offset: o - 1}, nil
}

// keyUpperBound returns the smallest key greater than every key with the
// given prefix (nil when there is none).
func keyUpperBound(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}
