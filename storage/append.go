package storage

import (
	"context"
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/badbatch/badbatch/journal"
)

// cursorStreamPrefix starts the journal stream field of a SetCursor command
// group. Stream names never start with 0x00, so command groups and append
// groups cannot be confused. Part of the journal format (see doc.go).
const cursorStreamPrefix = "\x00c"

// encoder is a producer's scratch space, pooled so that the steady-state
// append path allocates nothing.
type encoder struct {
	recs    []journal.Record
	headers []journal.Header
	stream  []byte
	control []byte
}

// stringBytes returns the bytes of s without copying. The result must only
// be read, and only while s is live: the producer hands it to AppendGroup,
// which copies it into the ring slot.
func stringBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// Append appends recs to stream as one atomic batch and returns once it is
// committed: journaled (fsynced under the default sync policy) and applied
// by the business logic. The returned offsets are final.
//
// See AppendWith for the errors and for what a cancelled ctx means.
func (s *Store) Append(ctx context.Context, stream string, recs ...Record) (AppendResult, error) {
	return s.AppendWith(ctx, stream, AppendOptions{}, recs...)
}

// AppendWith is Append with an expected-offset condition and/or an
// idempotency key.
//
// Errors, none of which changes anything stored: ErrInvalidStream,
// ErrEmptyBatch, ErrRecordTooLarge, ErrBatchTooLarge, ErrInvalidArgument
// (a timestamp outside 1678-2262, an idempotency key over 256 bytes, an
// expected offset below -1), ErrClosed, ErrUnavailable (the journal has
// failed: the append was not acknowledged; reopen the store) and
// *OffsetMismatchError (errors.Is ErrOffsetMismatch).
//
// Cancellation: once the batch has entered the ring it commits or fails as
// a whole whatever ctx does. If ctx ends first, AppendWith returns
// ctx.Err() and the outcome is unknown to the caller; retrying with the
// same IdempotencyKey (within Options.IdempotencyWindow) resolves it: the
// retry returns the original result (Replayed) if the first attempt
// committed, or appends once if it did not.
func (s *Store) AppendWith(ctx context.Context, stream string, opts AppendOptions, recs ...Record) (AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return AppendResult{}, err
	}
	f, err := s.AppendAsync(stream, opts, recs...)
	if err != nil {
		return AppendResult{}, err
	}
	res, err := f.Wait(ctx)
	f.Release()
	return res, err
}

// AppendAsync validates and enqueues an append and returns its future
// without waiting. Validation errors (see AppendWith) are returned at once
// and enqueue nothing. The store copies recs before returning, so the
// caller may reuse them (and their byte slices and header maps) at once.
//
// AppendAsync blocks while the ring is full (back pressure).
func (s *Store) AppendAsync(stream string, opts AppendOptions, recs ...Record) (*AppendFuture, error) {
	if err := s.validateAppend(stream, &opts, recs); err != nil {
		return nil, err
	}
	if c, ok := controlFor(&opts); ok {
		return s.enqueue(stream, &opts, &c, recs)
	}
	return s.enqueue(stream, &opts, nil, recs)
}

// enqueue encodes one group (opts' condition and key, c's control bytes
// when not nil) and publishes it, returning its future. Every append and
// lifecycle command goes through it.
func (s *Store) enqueue(stream string, opts *AppendOptions, c *control, recs []Record) (*AppendFuture, error) {
	now := s.now()
	enc := s.encoders.Get().(*encoder)
	g := journal.Group{Stream: stringBytes(stream), Timestamp: now}
	if opts != nil {
		g.IdempotencyKey = stringBytes(opts.IdempotencyKey)
		if opts.ExpectedLastOffset != nil {
			g.Flags |= journal.GroupHasExpectedOffset
			g.ExpectedLastOffset = *opts.ExpectedLastOffset
		}
	}
	if c != nil {
		enc.control = appendControl(enc.control[:0], c)
		g.Flags |= journal.GroupHasControl
		g.Control = enc.control
	}
	enc.fill(recs, now)
	f := newFuture()
	f.records = len(recs)
	f.stream = stream
	if s.metrics != nil {
		f.start = time.Now()
	}
	err := s.publish(&g, enc.recs, f)
	enc.clear()
	s.encoders.Put(enc)
	if err != nil {
		f.Release()
		return nil, err
	}
	return f, nil
}

// fill converts recs into journal records, stamping zero timestamps with
// now. The journal records alias the caller's bytes until AppendGroup
// copies them.
func (e *encoder) fill(recs []Record, now int64) {
	nh := 0
	for i := range recs {
		nh += len(recs[i].Headers)
	}
	e.recs = e.recs[:0]
	if cap(e.headers) < nh {
		e.headers = make([]journal.Header, 0, nh)
	}
	e.headers = e.headers[:0]
	for i := range recs {
		r := &recs[i]
		jr := journal.Record{Timestamp: now, Key: r.Key, Value: r.Value}
		if !r.Timestamp.IsZero() {
			jr.Timestamp = r.Timestamp.UnixNano()
		}
		if r.JSON {
			jr.Flags = journal.FlagJSON
		}
		if len(r.Headers) > 0 {
			start := len(e.headers)
			for k, v := range r.Headers {
				e.headers = append(e.headers, journal.Header{Name: stringBytes(k), Value: stringBytes(v)})
			}
			jr.Headers = e.headers[start:len(e.headers):len(e.headers)]
		}
		e.recs = append(e.recs, jr)
	}
}

// clear drops the references to the caller's bytes before pooling.
func (e *encoder) clear() {
	clear(e.recs)
	clear(e.headers)
	e.recs, e.headers = e.recs[:0], e.headers[:0]
}

// now is the producers' clock: the group timestamp and the default record
// timestamp, in unix nanoseconds.
func (s *Store) now() int64 {
	return s.clock().UnixNano()
}

// Timestamps a record may carry: those time.Time.UnixNano represents.
var (
	minTimestamp = time.Unix(0, math.MinInt64)
	maxTimestamp = time.Unix(0, math.MaxInt64)
)

func (s *Store) validateAppend(stream string, opts *AppendOptions, recs []Record) error {
	if err := ValidateStreamName(stream); err != nil {
		return err
	}
	if len(recs) == 0 {
		return fmt.Errorf("%w: stream %q", ErrEmptyBatch, stream)
	}
	if len(recs) > math.MaxInt32 {
		return fmt.Errorf("%w: %d records", ErrBatchTooLarge, len(recs))
	}
	if opts.ExpectedLastOffset != nil && *opts.ExpectedLastOffset < -1 {
		return fmt.Errorf("%w: expected last offset %d < -1", ErrInvalidArgument, *opts.ExpectedLastOffset)
	}
	if len(opts.IdempotencyKey) > MaxIdempotencyKeyLength {
		return fmt.Errorf("%w: idempotency key is %d bytes, at most %d", ErrInvalidArgument, len(opts.IdempotencyKey), MaxIdempotencyKeyLength)
	}
	if err := validateProducer(opts.Producer); err != nil {
		return err
	}
	if len(opts.StreamSeq) > MaxIdempotencyKeyLength {
		return fmt.Errorf("%w: stream seq is %d bytes, at most %d", ErrInvalidArgument, len(opts.StreamSeq), MaxIdempotencyKeyLength)
	}
	total := 0
	for i := range recs {
		r := &recs[i]
		n := RecordSize(r)
		if n > s.opts.MaxRecordBytes {
			return fmt.Errorf("%w: record %d is %d bytes, at most %d", ErrRecordTooLarge, i, n, s.opts.MaxRecordBytes)
		}
		total += n
		if total > s.opts.MaxBatchBytes {
			return fmt.Errorf("%w: more than %d bytes", ErrBatchTooLarge, s.opts.MaxBatchBytes)
		}
		if !r.Timestamp.IsZero() && (r.Timestamp.Before(minTimestamp) || r.Timestamp.After(maxTimestamp)) {
			return fmt.Errorf("%w: record %d: timestamp %v outside the representable range", ErrInvalidArgument, i, r.Timestamp)
		}
	}
	return nil
}

// publish claims a slot, encodes the group into it and publishes it. The
// claim is the ring's one atomic add; nothing else is shared. Close seals
// the ring after setting closed: a claim made before the seal is drained by
// Close, one made after it fails, and is reported as ErrClosed.
func (s *Store) publish(g *journal.Group, recs []journal.Record, f *AppendFuture) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.Err(); err != nil {
		return err
	}
	hi, err := s.d.Next(1)
	if err != nil {
		if s.closed.Load() {
			return ErrClosed
		}
		if e := s.Err(); e != nil {
			return e
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	sl := s.d.Get(hi)
	buf := sl.buf // nil once the business processor has released the slot
	if buf == nil {
		buf = s.slotBufs.get()
	}
	sl.buf = journal.AppendGroup(buf[:0], g, recs)
	sl.future = f
	if err := s.d.Publish(hi, hi); err != nil {
		// Only after a halt; the processors will never see the slot.
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// SetCursor stores the named consumer cursor of stream at offset. The
// cursor is journaled like an append (durable when SetCursor returns) and
// consumes one global position. Errors: ErrInvalidStream, ErrNotFound (the
// stream was never written), ErrInvalidArgument (a bad name, or an offset
// beyond the stream's NextOffset), ErrClosed, ErrUnavailable, and ctx's
// error when ctx ends first (as for AppendWith, the cursor may still be
// stored).
func (s *Store) SetCursor(ctx context.Context, stream, name string, offset uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidateStreamName(stream); err != nil {
		return err
	}
	if err := validateCursorName(name); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	m, ok := s.lookup(stream)
	if !ok {
		return fmt.Errorf("%w: stream %q", ErrNotFound, stream)
	}
	if offset > m.NextOffset {
		return fmt.Errorf("%w: cursor offset %d beyond the stream's next offset %d", ErrInvalidArgument, offset, m.NextOffset)
	}
	enc := s.encoders.Get().(*encoder)
	defer s.encoders.Put(enc)
	now := s.now()
	enc.stream = append(append(enc.stream[:0], cursorStreamPrefix...), stream...)
	g := journal.Group{Stream: enc.stream, Timestamp: now}
	enc.recs = append(enc.recs[:0], journal.Record{Timestamp: now, Key: stringBytes(name), Value: appendUint64(nil, offset)})
	f := newFuture()
	f.records = 1
	f.stream = stream
	err := s.publish(&g, enc.recs, f)
	enc.clear()
	if err != nil {
		f.Release()
		return err
	}
	_, err = f.Wait(ctx)
	f.Release()
	return err
}

func validateCursorName(name string) error {
	if err := ValidateStreamName(name); err != nil {
		return fmt.Errorf("%w: cursor name %q must match %s", ErrInvalidArgument, name, NamePattern)
	}
	return nil
}

// Cursor returns the named cursor of stream, or ErrNotFound. It reads the
// index only; ctx is checked before the read.
func (s *Store) Cursor(ctx context.Context, stream, name string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := ValidateStreamName(stream); err != nil {
		return 0, err
	}
	if err := validateCursorName(name); err != nil {
		return 0, err
	}
	if err := s.beginRead(); err != nil {
		return 0, err
	}
	defer s.endRead()
	v, ok, err := s.x.get(cursorKey(nil, stringBytes(stream), stringBytes(name)), nil)
	if err != nil {
		return 0, fmt.Errorf("storage: read cursor: %w", err)
	}
	if !ok {
		return 0, fmt.Errorf("%w: cursor %q of stream %q", ErrNotFound, name, stream)
	}
	return decodeUint64(v)
}
