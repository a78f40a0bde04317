// Package replay reads BadBatch streams back: cursors from a stream offset,
// from a timestamp or from a global position, and live subscriptions that
// catch up from the journal and then follow new commits.
//
// # Import graph
//
// replay does not import storage (storage may import replay). It is generic
// over the record type R and reads through Source[R], the four read calls
// of a store. *storage.Store satisfies Source[storage.StoredRecord] as it
// is; the caller adds a Position function that says where a record sits
// (its stream offset and its global seq):
//
//	r, err := replay.New(store, func(rec *storage.StoredRecord) replay.Position {
//		return replay.Position{Offset: rec.Offset, Seq: rec.Seq}
//	}, nil)
//	for rec, err := range r.Subscribe(ctx, "orders", 42) { ... }
//
// Position is called once per batch (on its last record), never per record.
//
// # Iterators
//
// Records, FromTime and Global replay history: they read batches of up to
// Options.BatchSize through the Source (an iterator's first read asks for
// at most 16 records and each later one for twice as many, so that the
// first record comes as fast as a small read) and end when a read comes back
// empty (the end as it was at that moment). Subscribe never ends by
// itself: when it reaches the end it calls Source.Wait and continues. Each
// iterator yields (record, nil) and, at most once and last, (zero, err).
// Breaking out of the loop stops the iterator; nothing keeps running.
//
// # No gap and no duplicate at the switch to live
//
// A subscription is pull-based: it holds one number, next, the offset of
// the first record it has not yet delivered. It asks the Source for
// records [next, next+BatchSize), delivers what it received and advances
// next by exactly that count (and checks that the batch's last offset is
// next-1, else ErrOutOfOrder). When a read is empty it waits until the
// stream has a record at next, then reads again from next. History and live
// are the same loop, so the hand-over is exact by construction: no record
// is pushed, buffered or dropped on its behalf anywhere else.
//
// # Slow subscribers
//
// Producers never wait for a subscriber: a subscriber only reads the
// journal. A subscriber holds at most one batch (BatchSize records) in
// memory, however far behind it is; a slow one simply reads older parts
// of the journal when it comes back, and catches up at its own pace.
//
// # Positions and errors
//
// replay passes the Source's errors on, wrapped with the stream and the
// position (%w), so callers check them with errors.Is against the Source's
// own sentinels. With *storage.Store:
//
//   - an offset at or past the end: Records yields nothing; Subscribe
//     waits for it;
//   - an offset below retention: storage.ErrGone (HTTP 410);
//   - a stream never written: storage.ErrNotFound (HTTP 404), also for
//     Subscribe (it does not wait for the stream to be created);
//   - the store closed: storage.ErrClosed; ctx ended: ctx.Err().
//
// Global replays from a seq below retention start at the first retained
// record without an error, as storage.ReadGlobal does. replay defines only
// the sentinels for its own failures: ErrInvalidOptions and ErrOutOfOrder.
// Over HTTP a negative or malformed offset is a 400 answered by httpapi
// before replay is called.
//
// # Timestamps
//
// FromTime follows storage.ReadFromTime's rule (the Kafka time-index
// rule): timestamps need not increase along a stream (producers may send
// their own), and the replay starts at the LOWEST offset whose own
// timestamp is at or after t, then continues in offset order from there,
// including later records whose timestamps are below t. Records with equal
// timestamps are ordered by offset, so the first of them is the start.
// If no record is at or after t, FromTime yields nothing. After the first
// batch, FromTime continues with plain offset reads.
//
// # Concurrency
//
// A Reader is immutable after New and safe for concurrent use; each
// iterator it returns belongs to the goroutine that ranges over it. The
// Source must be safe for concurrent use if the Reader is shared.
//
// Measurements are in docs/replay.md.
package replay
