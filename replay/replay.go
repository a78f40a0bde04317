package replay

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors for replay's own failures. Errors of the Source are
// passed on wrapped, not mapped to these.
var (
	// ErrInvalidOptions is returned by New for a nil Source, a nil
	// Position function or a negative batch size.
	ErrInvalidOptions = errors.New("replay: invalid options")
	// ErrOutOfOrder is returned when the Source hands back a batch that
	// does not continue exactly where the previous one ended (a gap, an
	// overlap or records out of order). It means the Source is broken.
	ErrOutOfOrder = errors.New("replay: source returned records out of order")
)

// DefaultBatchSize is the number of records one read asks for.
const DefaultBatchSize = 1000

// Source is what replay reads. *storage.Store satisfies
// Source[storage.StoredRecord].
//
// Contract (storage's): Read returns the records [from, from+n) of stream
// with n <= limit, empty when from is at or past the end; ReadFromTime
// returns up to limit records starting at the first record at or after
// t; ReadGlobal returns up to limit records of every stream in commit
// order from seq fromSeq on; Wait returns nil once the stream has a record
// at offset, or ctx.Err(), or an error of the Source.
type Source[R any] interface {
	Read(ctx context.Context, stream string, from uint64, limit int) ([]R, error)
	ReadFromTime(ctx context.Context, stream string, t time.Time, limit int) ([]R, error)
	ReadGlobal(ctx context.Context, fromSeq uint64, limit int) ([]R, error)
	Wait(ctx context.Context, stream string, offset uint64) error
}

// Position is where a record sits: its offset within its stream and its
// global position (seq) in commit order.
type Position struct {
	Offset uint64
	Seq    uint64
}

// Options configure a Reader. The zero value is valid.
type Options struct {
	// BatchSize is how many records one Source read asks for, and so the
	// most records one iterator holds in memory. 0 means
	// DefaultBatchSize. It must stay within the Source's own limit
	// (storage.MaxReadLimit).
	BatchSize int
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options { return Options{BatchSize: DefaultBatchSize} }

// Reader replays records of one Source. It is immutable after New and safe
// for concurrent use; the iterators it returns are not (each belongs to the
// goroutine ranging over it).
type Reader[R any] struct {
	src   Source[R]
	pos   func(*R) Position
	batch int
}

// New returns a Reader over src. pos tells where a record sits. opts nil
// means DefaultOptions(); opts is not retained.
func New[R any](src Source[R], pos func(*R) Position, opts *Options) (*Reader[R], error) {
	o := DefaultOptions()
	if opts != nil {
		o = *opts
	}
	switch {
	case src == nil:
		return nil, fmt.Errorf("%w: nil source", ErrInvalidOptions)
	case pos == nil:
		return nil, fmt.Errorf("%w: nil position function", ErrInvalidOptions)
	case o.BatchSize < 0:
		return nil, fmt.Errorf("%w: batch size %d", ErrInvalidOptions, o.BatchSize)
	case o.BatchSize == 0:
		o.BatchSize = DefaultBatchSize
	}
	return &Reader[R]{src: src, pos: pos, batch: o.BatchSize}, nil
}

// BatchSize returns the number of records one read asks for.
func (r *Reader[R]) BatchSize() int { return r.batch }

// read returns up to limit records of stream from offset from, checked to
// be exactly [from, from+len); a batch that is not is reported as
// ErrOutOfOrder. A read that races retention needs no second try: storage
// never skips over runs retention removed, it returns the records before
// the hole or ErrGone.
func (r *Reader[R]) read(ctx context.Context, stream string, from uint64, limit int) ([]R, error) {
	recs, err := r.src.Read(ctx, stream, from, limit)
	if err != nil {
		return nil, fmt.Errorf("replay: stream %q offset %d: %w", stream, from, err)
	}
	if err := r.checkBatch(stream, from, recs); err != nil {
		return nil, err
	}
	return recs, nil
}

// checkBatch verifies that recs is the run [from, from+len(recs)) (its
// first and last offsets; the Source returns runs, so the ends suffice).
func (r *Reader[R]) checkBatch(stream string, from uint64, recs []R) error {
	if len(recs) == 0 {
		return nil
	}
	first, last := r.pos(&recs[0]).Offset, r.pos(&recs[len(recs)-1]).Offset
	if first != from || last != from+uint64(len(recs))-1 {
		return fmt.Errorf("%w: stream %q asked from %d, got %d records [%d, %d]", ErrOutOfOrder, stream, from, len(recs), first, last)
	}
	return nil
}

// Next returns the next records of stream from offset from: up to limit
// of them (limit <= 0 means the batch size), blocking until there is at
// least one. It is the single step that Subscribe repeats. It returns an
// error wrapping ctx.Err() when ctx ends first.
func (r *Reader[R]) Next(ctx context.Context, stream string, from uint64, limit int) ([]R, error) {
	if limit <= 0 {
		limit = r.batch
	}
	for {
		recs, err := r.read(ctx, stream, from, limit)
		if err != nil || len(recs) > 0 {
			return recs, err
		}
		if err := r.src.Wait(ctx, stream, from); err != nil {
			return nil, fmt.Errorf("replay: wait for stream %q offset %d: %w", stream, from, err)
		}
	}
}

// Poll is Next with a time limit: it returns up to limit records of stream
// from offset from, waiting up to maxWait for the first one (maxWait <= 0:
// not at all). If none came in time it returns an empty slice and no
// error. When ctx itself ends it returns ctx.Err().
func (r *Reader[R]) Poll(ctx context.Context, stream string, from uint64, limit int, maxWait time.Duration) ([]R, error) {
	if limit <= 0 {
		limit = r.batch
	}
	if maxWait <= 0 {
		return r.read(ctx, stream, from, limit)
	}
	wctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	recs, err := r.Next(wctx, stream, from, limit)
	switch {
	case err == nil:
		return recs, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case wctx.Err() != nil && errors.Is(err, context.DeadlineExceeded):
		return nil, nil
	}
	return nil, err
}
