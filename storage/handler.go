package storage

import "github.com/badbatch/badbatch/journal"

// Handler is the embedder's business logic. The store calls it on the
// business-logic goroutine, never concurrently with itself.
//
// Handlers run after the records' ring batch is fsynced in the journal and
// its index batch is committed, and before the producers' appends return.
//
// Errors: an error returned by OnRecord does not undo anything (the record
// is committed); the store logs it, counts it in Stats.HandlerErrors and
// goes on with the next record and handler.
//
// Recovery: Open re-applies the journal written after the index's last
// durable position before it accepts appends, and calls the handlers for
// the records it re-applies. Across a crash a handler may therefore see a
// record again (at least once); within one process lifetime it sees each
// committed record exactly once, in commit order. A handler that keeps
// state of its own should store the last Seq it applied and ignore records
// at or below it.
//
// A handler must not wait for the store: Append, SetCursor, Wait and Close
// called from OnRecord would wait for the very goroutine that runs it.
// AppendAsync without waiting is allowed while the ring has room; reads are
// allowed.
type Handler interface {
	// OnRecord runs for every committed (accepted) record, in commit order.
	// Rejected and duplicate appends never reach it. rec, its slices and
	// its Headers map are valid only during the call (they are reused).
	// endOfBatch is true on the last record of a business-logic batch.
	OnRecord(rec *StoredRecord, endOfBatch bool) error
}

// standalone is the replication stage of a standalone store: a
// pass-through, so that the standalone pipeline keeps the design's graph
// (journaling and replication both gate the business logic). Cluster mode
// replaces the whole graph (see replica.go).
type standalone struct{}

func (standalone) replicate([]byte, bool) error { return nil }

// Stats is a snapshot of the store's counters, for metrics.
type Stats struct {
	// Appends counts appends completed with success (replays included);
	// Records and Bytes count the records (keys and values) they stored.
	Appends uint64
	Records uint64
	Bytes   uint64
	// Rejected counts expected-offset mismatches; Duplicates counts
	// idempotent replays.
	Rejected   uint64
	Duplicates uint64
	// Batches counts business-logic batches (one Pebble batch each).
	Batches uint64
	// HandlerErrors counts errors returned by Options.Handlers.
	HandlerErrors uint64
	// IndexFlushes counts index flushes the store requested.
	IndexFlushes uint64
	// RingSize and RingOccupancy are the ring's slots and those in use.
	RingSize      int64
	RingOccupancy int64
	// Streams is the number of streams.
	Streams int
	// Journal is the journal's own statistics.
	Journal journal.Stats
	// Recovery is what the last recovery re-applied.
	Recovery RecoveryStats
}
