package replay

import (
	"context"
	"fmt"
	"iter"
	"time"
)

// Records replays stream from offset from up to its end: the records
// [from, end) where end is the stream's end when the last (empty) read is
// made. An offset at or past the end yields nothing. Errors (yielded once,
// last) wrap the Source's: below retention, unknown stream, ctx.
func (r *Reader[R]) Records(ctx context.Context, stream string, from uint64) iter.Seq2[R, error] {
	return func(yield func(R, error) bool) {
		next, size := from, r.firstBatch()
		for {
			recs, err := r.read(ctx, stream, next, size)
			if err != nil {
				var zero R
				yield(zero, err)
				return
			}
			if len(recs) == 0 {
				return
			}
			if !yieldAll(recs, yield) {
				return
			}
			next += uint64(len(recs))
			size = r.grow(size)
		}
	}
}

// Subscribe replays stream from offset from and then follows it: when it
// reaches the end it waits for the next commit (Source.Wait) and goes on.
// Every record from from on is yielded once, in offset order, with no gap
// and no duplicate at the switch from history to live (see the package
// doc). An offset past the end waits until the stream gets there. It ends
// only when the loop breaks or with an error: ctx's (wrapped), below
// retention (a subscriber that falls behind retention gets it too),
// unknown stream, or the Source closing.
func (r *Reader[R]) Subscribe(ctx context.Context, stream string, from uint64) iter.Seq2[R, error] {
	return func(yield func(R, error) bool) {
		next, size := from, r.firstBatch()
		for {
			recs, err := r.Next(ctx, stream, next, size)
			if err != nil {
				var zero R
				yield(zero, err)
				return
			}
			if !yieldAll(recs, yield) {
				return
			}
			next += uint64(len(recs))
			size = r.grow(size)
		}
	}
}

// FromTime replays stream from its first record at or after t (the rule
// is in the package doc) up to its end. If no record is at or after t it
// yields nothing.
func (r *Reader[R]) FromTime(ctx context.Context, stream string, t time.Time) iter.Seq2[R, error] {
	return func(yield func(R, error) bool) {
		var zero R
		recs, err := r.src.ReadFromTime(ctx, stream, t, r.batch)
		if err != nil {
			yield(zero, fmt.Errorf("replay: stream %q from time %s: %w", stream, t.Format(time.RFC3339Nano), err))
			return
		}
		if len(recs) == 0 {
			return
		}
		next := r.pos(&recs[0]).Offset
		if err := r.checkBatch(stream, next, recs); err != nil {
			yield(zero, err)
			return
		}
		for {
			if !yieldAll(recs, yield) {
				return
			}
			next += uint64(len(recs))
			if recs, err = r.read(ctx, stream, next, r.batch); err != nil {
				yield(zero, err)
				return
			}
			if len(recs) == 0 {
				return
			}
		}
	}
}

// Global replays every stream in commit order from global position
// fromSeq up to the end. Seqs increase but have gaps; a fromSeq below
// retention starts at the first retained record.
func (r *Reader[R]) Global(ctx context.Context, fromSeq uint64) iter.Seq2[R, error] {
	return func(yield func(R, error) bool) {
		next, size := fromSeq, r.firstBatch()
		for {
			recs, err := r.src.ReadGlobal(ctx, next, size)
			if err != nil {
				var zero R
				yield(zero, fmt.Errorf("replay: global from seq %d: %w", next, err))
				return
			}
			if len(recs) == 0 {
				return
			}
			last := r.pos(&recs[len(recs)-1]).Seq
			if first := r.pos(&recs[0]).Seq; first < next || last < first {
				var zero R
				yield(zero, fmt.Errorf("%w: global asked from seq %d, got [%d, %d]", ErrOutOfOrder, next, first, last))
				return
			}
			if !yieldAll(recs, yield) {
				return
			}
			next = last + 1
			size = r.grow(size)
		}
	}
}

// yieldAll yields every record of recs; false when the consumer stopped.
func yieldAll[R any](recs []R, yield func(R, error) bool) bool {
	for i := range recs {
		if !yield(recs[i], nil) {
			return false
		}
	}
	return true
}

// firstBatchSize is the most records the first read of an iterator asks
// for: the time to the first record is then that of a small read, not of
// a full batch (measured in docs/replay.md).
const firstBatchSize = 16

// firstBatch returns the size of an iterator's first read.
func (r *Reader[R]) firstBatch() int { return min(firstBatchSize, r.batch) }

// grow doubles a read size up to the batch size.
func (r *Reader[R]) grow(size int) int { return min(2*size, r.batch) }
