package storage

import (
	"errors"
	"fmt"
)

// Sentinel errors. Check them with errors.Is. The kinds shared with the
// HTTP API and the clients (docs/clients/README.md, Errors) carry the same
// names: ErrOffsetMismatch (offset_mismatch), ErrGone (gone), ErrNotFound
// (not_found), ErrTooLarge (too_large), ErrInvalidArgument (bad_request),
// ErrInvalidStream (invalid_stream), ErrUnavailable (unavailable) and
// ErrNotLeader (not_leader).
var (
	// ErrInvalidArgument is returned for malformed arguments (negative
	// limits, bad header names, ...). ErrEmptyBatch matches it too.
	ErrInvalidArgument = errors.New("storage: invalid argument")
	// ErrTooLarge is matched by ErrRecordTooLarge and ErrBatchTooLarge.
	ErrTooLarge = errors.New("storage: too large")

	// ErrClosed is returned by every call on a closed store.
	ErrClosed = errors.New("storage: closed")
	// ErrInvalidStream is returned for a stream name that does not match
	// [A-Za-z0-9][A-Za-z0-9._-]{0,199}.
	ErrInvalidStream = errors.New("storage: invalid stream name")
	// ErrEmptyBatch is returned by an append of zero records.
	ErrEmptyBatch = fmt.Errorf("%w: empty batch", ErrInvalidArgument)
	// ErrRecordTooLarge is returned when one record exceeds
	// Options.MaxRecordBytes.
	ErrRecordTooLarge = fmt.Errorf("%w: record above MaxRecordBytes", ErrTooLarge)
	// ErrBatchTooLarge is returned when one append exceeds
	// Options.MaxBatchBytes.
	ErrBatchTooLarge = fmt.Errorf("%w: batch above MaxBatchBytes", ErrTooLarge)
	// ErrOffsetMismatch is matched by *OffsetMismatchError.
	ErrOffsetMismatch = errors.New("storage: expected last offset mismatch")
	// ErrNotFound is returned for a stream that was never written, or a
	// cursor that was never set.
	ErrNotFound = errors.New("storage: not found")
	// ErrGone is returned for a read below the retention horizon (the
	// records were removed by retention).
	ErrGone = errors.New("storage: gone: offset removed by retention")
	// ErrUnavailable is returned while the journal has failed (a write or
	// fsync error): the store acknowledges nothing until it is closed and
	// reopened. It wraps the journal's sticky error.
	ErrUnavailable = errors.New("storage: journal failed; not accepting appends")
	// ErrNotLeader is returned in cluster mode by an append made on a node
	// that is not the leader (or lost leadership before it proposed the
	// append): nothing was stored; send it to the leader.
	ErrNotLeader = errors.New("storage: not the leader")
	// ErrNotCommitted is returned in cluster mode when a leader change
	// proved that an append this node proposed was never committed:
	// nothing was stored, and a retry is safe.
	ErrNotCommitted = errors.New("storage: not committed: leadership changed before the append was replicated")
	// ErrStreamClosed is returned by an append to a closed stream: nothing
	// was stored.
	ErrStreamClosed = errors.New("storage: stream closed")
	// ErrStreamExists is returned by CreateStream for a stream that exists
	// with another configuration: nothing was changed.
	ErrStreamExists = errors.New("storage: stream exists with another configuration")
	// ErrStreamDeleted is returned for a stream that was deleted while
	// forks still read its records: it answers nothing until its last
	// fork is deleted, and then it is gone for good. errors.Is(err,
	// ErrGone) is true too.
	ErrStreamDeleted = fmt.Errorf("%w: stream deleted; forks still read it", ErrGone)
	// ErrStreamSeq is returned for an append whose StreamSeq does not sort
	// after the stream's last accepted one: nothing was stored.
	ErrStreamSeq = errors.New("storage: stream seq not above the last one")
	// ErrProducerFenced is matched by *ProducerError for an append whose
	// producer epoch is older than the producer's current epoch.
	ErrProducerFenced = errors.New("storage: producer fenced by a newer epoch")
	// ErrProducerSeqGap is matched by *ProducerError for an append whose
	// producer seq is not the next one.
	ErrProducerSeqGap = errors.New("storage: producer seq out of order")
	// ErrWrongMode is returned by Open for a data directory written in the
	// other mode (a cluster node's directory opened standalone, or the
	// reverse).
	ErrWrongMode = errors.New("storage: data directory belongs to the other mode")
)

// OffsetMismatchError is the rejection of an append whose expected last
// offset did not match. errors.Is(err, ErrOffsetMismatch) is true.
type OffsetMismatchError struct {
	Stream string
	// Expected is what the append required (-1: empty stream).
	Expected int64
	// Current is the stream's last offset when the append was applied
	// (-1: the stream is empty).
	Current int64
}

func (e *OffsetMismatchError) Error() string {
	return fmt.Sprintf("storage: stream %q: expected last offset %d, current last offset %d",
		e.Stream, e.Expected, e.Current)
}

// Is reports whether target is ErrOffsetMismatch.
func (e *OffsetMismatchError) Is(target error) bool { return target == ErrOffsetMismatch }

// ProducerError refuses an idempotent producer's append: its epoch is
// fenced (errors.Is ErrProducerFenced) or its seq skips one (errors.Is
// ErrProducerSeqGap). Nothing was stored.
type ProducerError struct {
	Stream string
	// Epoch is the producer's current epoch in the stream.
	Epoch uint64
	// ExpectedSeq is the seq the producer must send next in Epoch; Seq is
	// what it sent.
	ExpectedSeq, Seq uint64
	fenced           bool
}

func (e *ProducerError) Error() string {
	if e.fenced {
		return fmt.Sprintf("storage: stream %q: producer fenced: its current epoch is %d", e.Stream, e.Epoch)
	}
	return fmt.Sprintf("storage: stream %q: producer sent seq %d, expected %d (epoch %d)", e.Stream, e.Seq, e.ExpectedSeq, e.Epoch)
}

// Is reports whether target is ErrProducerFenced or ErrProducerSeqGap, as
// the case may be.
func (e *ProducerError) Is(target error) bool {
	if e.fenced {
		return target == ErrProducerFenced
	}
	return target == ErrProducerSeqGap
}
