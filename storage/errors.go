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
