package journal

import (
	"errors"
	"fmt"
)

// Sentinel errors. Check them with errors.Is: the journal wraps them with the
// file name and byte offset where that makes sense.
var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("journal: closed")
	// ErrCorrupt reports an entry or segment that fails validation. It is
	// always wrapped with the segment's file name and the byte offset.
	ErrCorrupt = errors.New("journal: corrupt entry")
	// ErrTruncated is returned for an index below FirstIndex.
	ErrTruncated = errors.New("journal: entry removed by retention")
	// ErrOutOfRange is returned for an index above LastIndex.
	ErrOutOfRange = errors.New("journal: index out of range")
	// ErrInvalidIndex is returned by WriteEntry for an index other than
	// LastIndex()+1. Nothing is written, and the journal is not failed.
	ErrInvalidIndex = errors.New("journal: invalid index")
	// ErrEntryTooLarge is returned by Write when the payload exceeds
	// Options.MaxEntrySize, or by the handler for a single such group.
	ErrEntryTooLarge = errors.New("journal: entry too large")
	// ErrFailed is the sticky error: after a failed write, fsync, rename or
	// removal the journal refuses every further mutation. The returned error
	// wraps both ErrFailed and the cause. The only way forward is Close and
	// Open, which repairs the tail.
	ErrFailed = errors.New("journal: failed; close and reopen")
)

// corruptf wraps ErrCorrupt with the file name and byte offset.
func corruptf(file string, offset int64, format string, args ...any) error {
	return fmt.Errorf("%w: %s at offset %d: %s", ErrCorrupt, file, offset, fmt.Sprintf(format, args...))
}

// failure is the sticky error value: ErrFailed plus the cause.
type failure struct {
	op    string
	file  string
	off   int64
	cause error
}

func (f *failure) Error() string {
	if f.off >= 0 {
		return fmt.Sprintf("%v: %s %s at offset %d: %v", ErrFailed, f.op, f.file, f.off, f.cause)
	}
	return fmt.Sprintf("%v: %s %s: %v", ErrFailed, f.op, f.file, f.cause)
}

// Unwrap makes errors.Is(err, ErrFailed) and errors.Is(err, cause) both hold.
func (f *failure) Unwrap() []error { return []error{ErrFailed, f.cause} }
