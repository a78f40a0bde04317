package storage

import (
	"time"

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

// AppendOptions are the per-append conditions.
type AppendOptions struct {
	// HasExpectedLastOffset enables the optimistic-concurrency check: the
	// append is rejected with an *OffsetMismatchError (errors.Is
	// ErrOffsetMismatch) unless the stream's last offset equals
	// ExpectedLastOffset at the moment the business logic applies it.
	HasExpectedLastOffset bool
	// ExpectedLastOffset is the required last offset; -1 means the stream
	// must be empty (or never written).
	ExpectedLastOffset int64
	// IdempotencyKey, when not empty, makes a repeat of the same key on the
	// same stream within Options.IdempotencyWindow (measured in journaled
	// timestamps) return the original result and append nothing.
	IdempotencyKey string
}

// AppendResult describes a committed append. Its offsets are final.
type AppendResult struct {
	Stream      string
	FirstOffset uint64
	LastOffset  uint64
	Count       int
	FirstSeq    uint64
	LastSeq     uint64
	// Replayed is true when an idempotency key matched an earlier append:
	// the result is that append's, and nothing new was stored.
	Replayed bool
	// Durability names what the acknowledgement means under the store's
	// sync policy: "fsynced" for journal.SyncAlways, "written, not yet
	// fsynced" for the weaker, opt-in policies.
	Durability string
}

// StreamInfo describes one stream.
type StreamInfo struct {
	Stream string
	// FirstOffset is the first offset still retained.
	FirstOffset uint64
	// NextOffset is the offset the next append will get (the count of
	// records ever appended).
	NextOffset uint64
	// Records is the number of retained records (NextOffset - FirstOffset).
	Records uint64
	// Bytes is the total size of the values and keys ever appended.
	Bytes uint64
	// LastTimestamp is the timestamp of the last record appended.
	LastTimestamp time.Time
}

// Durability strings reported in AppendResult.Durability.
const (
	DurabilityFsynced = "fsynced"
	DurabilityWritten = "written, not yet fsynced"
	DurabilityNoSync  = "written, never fsynced (test only)"
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
