package storage

import (
	"time"

	"github.com/badbatch/badbatch"
	"github.com/badbatch/badbatch/journal"
)

// Record is one record as a producer hands it to Append.
//
// The store copies every byte it needs before Append returns (or, for
// AppendAsync, before AppendAsync returns), so the caller may reuse Key,
// Value and the Headers map afterwards.
type Record struct {
	// Key is an optional record key (any bytes).
	Key []byte
	// Value is the payload. It may be empty.
	Value []byte
	// JSON says that Value is JSON text, so that it reads back as JSON over
	// HTTP rather than as base64.
	JSON bool
	// Headers are optional string pairs.
	Headers map[string]string
	// Timestamp is the record's time. The zero value means "now": the store
	// stamps the record when Append is called, before the record enters the
	// ring, so the journaled time is what every later decision uses.
	Timestamp time.Time
}

// StoredRecord is a committed record as read back from the store.
//
// The byte slices are owned by the caller: they never alias the journal's
// mapped memory.
type StoredRecord struct {
	Record
	// Stream is the stream the record belongs to.
	Stream string
	// Offset is the record's position within its stream, dense from 0.
	Offset uint64
	// Seq is the record's global position in journal commit order. It
	// increases but is not dense: rejected and duplicate appends are
	// journaled too and consume positions.
	Seq uint64
}

// AppendOptions are the per-append conditions (badbatch.AppendOptions):
// ExpectedLastOffset nil is no condition (a pointer to -1: the stream must
// be empty); IdempotencyKey "" is no key. A mismatch is an
// *OffsetMismatchError (errors.Is ErrOffsetMismatch), checked when the
// business logic applies the append. A repeat of a key on the same stream
// within Options.IdempotencyWindow (measured in journaled timestamps)
// returns the original result and appends nothing.
type AppendOptions = badbatch.AppendOptions

// AppendResult describes a committed append (badbatch.AppendResult). Its
// offsets are final.
type AppendResult = badbatch.AppendResult

// StreamInfo describes one stream (badbatch.StreamInfo).
type StreamInfo = badbatch.StreamInfo

// Durability strings reported in AppendResult.Durability.
const (
	DurabilityFsynced = badbatch.DurabilityFsynced
	DurabilityWritten = badbatch.DurabilityWritten
	DurabilityNoSync  = badbatch.DurabilityNoSync
)

func durabilityOf(p journal.SyncPolicy) string {
	switch p {
	case journal.SyncAlways:
		return DurabilityFsynced
	case journal.SyncInterval:
		return DurabilityWritten
	default:
		return DurabilityNoSync
	}
}
