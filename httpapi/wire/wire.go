package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// MediaType is the content type of the format, for Content-Type (append
// batches) and Accept (read pages).
const MediaType = "application/vnd.badbatch.records"

// Magic strings and flag bits. Part of the format: never change them.
const (
	batchMagic = "BBR1"
	pageMagic  = "BBP1"

	batchFlagIdempotencyKey = 1 << 0
	batchFlagExpected       = 1 << 1
	batchFlagsKnown         = batchFlagIdempotencyKey | batchFlagExpected

	recordFlagJSON      = 1 << 0
	recordFlagTimestamp = 1 << 1
	recordFlagsKnown    = recordFlagJSON | recordFlagTimestamp

	// minRecord is the smallest record on the wire: its length (1 byte)
	// and a body of rflags, key length, header count and value length.
	minRecord = 5
)

// MaxIdempotencyKey bounds a batch's idempotency key, as the
// Idempotency-Key header is bounded.
const MaxIdempotencyKey = 256

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("wire: malformed records")

// Record is one record of an append batch, or the record part of a page's
// StoredRecord. A zero Timestamp is "none" (the server's time on append).
type Record struct {
	Key       []byte
	Value     []byte
	JSON      bool
	Headers   map[string]string
	Timestamp time.Time
}

// StoredRecord is a record of a read page.
type StoredRecord struct {
	Record
	Offset uint64
	Seq    uint64
}

// Batch is a decoded append batch. IdempotencyKey "" is no key;
// ExpectedLastOffset nil is no condition.
type Batch struct {
	IdempotencyKey     string
	ExpectedLastOffset *int64
	Records            []Record
}

// Page is a decoded read page.
type Page struct {
	NextOffset uint64
	Records    []StoredRecord
}

// AppendBatchHeader appends a batch's header (magic, flags, options and
// the record count) to dst. The count records follow, each written with
// AppendRecord. idempotencyKey "" is no key; expected nil is no condition.
func AppendBatchHeader(dst []byte, idempotencyKey string, expected *int64, count int) []byte {
	dst = append(dst, batchMagic...)
	var flags byte
	if idempotencyKey != "" {
		flags |= batchFlagIdempotencyKey
	}
	if expected != nil {
		flags |= batchFlagExpected
	}
	dst = append(dst, flags)
	if idempotencyKey != "" {
		dst = binary.AppendUvarint(dst, uint64(len(idempotencyKey)))
		dst = append(dst, idempotencyKey...)
	}
	if expected != nil {
		dst = binary.AppendVarint(dst, *expected)
	}
	return binary.AppendUvarint(dst, uint64(count))
}

// AppendBatch appends a whole batch to dst.
func AppendBatch(dst []byte, b *Batch) []byte {
	dst = AppendBatchHeader(dst, b.IdempotencyKey, b.ExpectedLastOffset, len(b.Records))
	for i := range b.Records {
		dst = AppendRecord(dst, &b.Records[i])
	}
	return dst
}

// AppendRecord appends one record of an append batch to dst.
func AppendRecord(dst []byte, r *Record) []byte {
	return appendRecord(dst, r, false, 0, 0)
}

// AppendPageHeader appends a page's header to dst; count records follow,
// each written with AppendStoredRecord.
func AppendPageHeader(dst []byte, nextOffset uint64, count int) []byte {
	dst = append(dst, pageMagic...)
	dst = append(dst, 0)
	dst = binary.AppendUvarint(dst, nextOffset)
	return binary.AppendUvarint(dst, uint64(count))
}

// AppendStoredRecord appends one record of a read page to dst. A page
// always carries the timestamp.
func AppendStoredRecord(dst []byte, r *Record, offset, seq uint64) []byte {
	return appendRecord(dst, r, true, offset, seq)
}

func appendRecord(dst []byte, r *Record, stored bool, offset, seq uint64) []byte {
	n := bodySize(r, stored, offset, seq)
	dst = binary.AppendUvarint(dst, uint64(n))
	if stored {
		dst = binary.AppendUvarint(dst, offset)
		dst = binary.AppendUvarint(dst, seq)
	}
	var flags byte
	if r.JSON {
		flags |= recordFlagJSON
	}
	hasTime := stored || !r.Timestamp.IsZero()
	if hasTime {
		flags |= recordFlagTimestamp
	}
	dst = append(dst, flags)
	if hasTime {
		dst = binary.AppendVarint(dst, r.Timestamp.UnixNano())
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Key)))
	dst = append(dst, r.Key...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Headers)))
	for k, v := range r.Headers {
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		dst = append(dst, v...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Value)))
	return append(dst, r.Value...)
}

// bodySize is the length of a record's body on the wire.
func bodySize(r *Record, stored bool, offset, seq uint64) int {
	n := 1 // rflags
	if stored {
		n += uvarintLen(offset) + uvarintLen(seq)
	}
	if stored || !r.Timestamp.IsZero() {
		n += varintLen(r.Timestamp.UnixNano())
	}
	n += uvarintLen(uint64(len(r.Key))) + len(r.Key)
	n += uvarintLen(uint64(len(r.Headers)))
	for k, v := range r.Headers {
		n += uvarintLen(uint64(len(k))) + len(k) + uvarintLen(uint64(len(v))) + len(v)
	}
	return n + uvarintLen(uint64(len(r.Value))) + len(r.Value)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func varintLen(x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return uvarintLen(ux)
}

// IsBatch reports whether data starts like an append batch.
func IsBatch(data []byte) bool {
	return len(data) >= len(batchMagic) && string(data[:len(batchMagic)]) == batchMagic
}

// DecodeBatch decodes an append batch. The records' keys and values alias
// data; dst's memory is reused for the records when it is large enough.
// Errors wrap ErrMalformed and name the record and byte offset.
func DecodeBatch(data []byte, dst []Record) (Batch, error) {
	d := decoder{data: data}
	var b Batch
	if !d.magic(batchMagic) {
		return b, d.fail(-1, "want the magic %q", batchMagic)
	}
	flags, ok := d.byte()
	if !ok {
		return b, d.fail(-1, "truncated header")
	}
	if flags&^batchFlagsKnown != 0 {
		return b, d.fail(-1, "unknown batch flags %#02x", flags)
	}
	if flags&batchFlagIdempotencyKey != 0 {
		k, ok := d.bytes()
		if !ok {
			return b, d.fail(-1, "truncated idempotency key")
		}
		if len(k) == 0 || len(k) > MaxIdempotencyKey {
			return b, d.fail(-1, "idempotency key of %d bytes: want 1 to %d", len(k), MaxIdempotencyKey)
		}
		b.IdempotencyKey = string(k)
	}
	if flags&batchFlagExpected != 0 {
		n, ok := d.varint()
		if !ok {
			return b, d.fail(-1, "truncated expected last offset")
		}
		if n < -1 {
			return b, d.fail(-1, "expected last offset %d: want >= -1", n)
		}
		b.ExpectedLastOffset = &n
	}
	count, ok := d.uvarint()
	if !ok {
		return b, d.fail(-1, "truncated record count")
	}
	if count > uint64(len(d.data)-d.pos)/minRecord {
		return b, d.fail(-1, "%d records cannot fit in %d bytes", count, len(d.data)-d.pos)
	}
	recs := dst[:0]
	for i := 0; i < int(count); i++ {
		var r Record
		if err := d.record(&r, nil, i); err != nil {
			return b, err
		}
		recs = append(recs, r)
	}
	if d.pos != len(d.data) {
		return b, d.fail(-1, "%d bytes after the last record", len(d.data)-d.pos)
	}
	b.Records = recs
	return b, nil
}

// DecodePage decodes a read page. Keys and values alias data.
func DecodePage(data []byte) (Page, error) {
	d := decoder{data: data}
	var p Page
	if !d.magic(pageMagic) {
		return p, d.fail(-1, "want the magic %q", pageMagic)
	}
	flags, ok := d.byte()
	if !ok {
		return p, d.fail(-1, "truncated header")
	}
	if flags != 0 {
		return p, d.fail(-1, "unknown page flags %#02x", flags)
	}
	if p.NextOffset, ok = d.uvarint(); !ok {
		return p, d.fail(-1, "truncated next offset")
	}
	count, ok := d.uvarint()
	if !ok {
		return p, d.fail(-1, "truncated record count")
	}
	if count > uint64(len(d.data)-d.pos)/minRecord {
		return p, d.fail(-1, "%d records cannot fit in %d bytes", count, len(d.data)-d.pos)
	}
	p.Records = make([]StoredRecord, count)
	for i := range p.Records {
		r := &p.Records[i]
		if err := d.record(&r.Record, r, i); err != nil {
			return p, err
		}
	}
	if d.pos != len(d.data) {
		return p, d.fail(-1, "%d bytes after the last record", len(d.data)-d.pos)
	}
	return p, nil
}

type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) fail(index int, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if index >= 0 {
		return fmt.Errorf("%w: record %d at byte %d: %s", ErrMalformed, index, d.pos, msg)
	}
	return fmt.Errorf("%w: at byte %d: %s", ErrMalformed, d.pos, msg)
}

func (d *decoder) magic(m string) bool {
	if len(d.data) < len(m) || string(d.data[:len(m)]) != m {
		return false
	}
	d.pos = len(m)
	return true
}

func (d *decoder) byte() (byte, bool) {
	if d.pos >= len(d.data) {
		return 0, false
	}
	d.pos++
	return d.data[d.pos-1], true
}

func (d *decoder) uvarint() (uint64, bool) {
	x, n := binary.Uvarint(d.data[d.pos:])
	if n <= 0 {
		return 0, false
	}
	if n > 1 && d.data[d.pos+n-1] == 0 {
		return 0, false // not minimal: one value, one encoding
	}
	d.pos += n
	return x, true
}

func (d *decoder) varint() (int64, bool) {
	ux, ok := d.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x, ok
}

// bytes reads a length-prefixed field, aliasing data.
func (d *decoder) bytes() ([]byte, bool) {
	n, ok := d.uvarint()
	if !ok || n > uint64(len(d.data)-d.pos) {
		return nil, false
	}
	b := d.data[d.pos : d.pos+int(n) : d.pos+int(n)]
	d.pos += int(n)
	return b, true
}

// record decodes one record into r; with s non-nil (pages) the offset and
// seq go to s and the timestamp is required.
func (d *decoder) record(r *Record, s *StoredRecord, index int) error {
	n, ok := d.uvarint()
	if !ok || n > uint64(len(d.data)-d.pos) {
		return d.fail(index, "truncated record length")
	}
	end := d.pos + int(n)
	body := decoder{data: d.data[:end], pos: d.pos}
	if err := body.recordBody(r, s, index); err != nil {
		return err
	}
	if body.pos != end {
		return body.fail(index, "%d bytes left in the record body", end-body.pos)
	}
	d.pos = end
	return nil
}

func (d *decoder) recordBody(r *Record, s *StoredRecord, index int) error {
	var ok bool
	if s != nil {
		if s.Offset, ok = d.uvarint(); !ok {
			return d.fail(index, "truncated offset")
		}
		if s.Seq, ok = d.uvarint(); !ok {
			return d.fail(index, "truncated seq")
		}
	}
	flags, ok := d.byte()
	if !ok {
		return d.fail(index, "truncated flags")
	}
	if flags&^recordFlagsKnown != 0 {
		return d.fail(index, "unknown record flags %#02x", flags)
	}
	r.JSON = flags&recordFlagJSON != 0
	if flags&recordFlagTimestamp != 0 {
		ns, ok := d.varint()
		if !ok {
			return d.fail(index, "truncated timestamp")
		}
		if ns == math.MinInt64 {
			return d.fail(index, "timestamp out of range")
		}
		r.Timestamp = time.Unix(0, ns).UTC()
	} else if s != nil {
		return d.fail(index, "a stored record without a timestamp")
	}
	key, ok := d.bytes()
	if !ok {
		return d.fail(index, "truncated key")
	}
	if len(key) > 0 {
		r.Key = key
	}
	nh, ok := d.uvarint()
	if !ok {
		return d.fail(index, "truncated header count")
	}
	if nh > uint64(len(d.data)-d.pos)/3 { // a header is at least 3 bytes
		return d.fail(index, "%d headers cannot fit in the record", nh)
	}
	if nh > 0 {
		r.Headers = make(map[string]string, nh)
		for range nh {
			k, ok := d.bytes()
			if !ok {
				return d.fail(index, "truncated header name")
			}
			v, ok := d.bytes()
			if !ok {
				return d.fail(index, "truncated header value")
			}
			if len(k) == 0 {
				return d.fail(index, "empty header name")
			}
			if _, dup := r.Headers[string(k)]; dup {
				return d.fail(index, "duplicate header %q", k)
			}
			r.Headers[string(k)] = string(v)
		}
	}
	value, ok := d.bytes()
	if !ok {
		return d.fail(index, "truncated value")
	}
	r.Value = value
	return nil
}
