package crashfs

import (
	"errors"
	"fmt"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// ErrInjected is matched (errors.Is) by every error Faults injects. The
// injected errors also match their errno: syscall.ENOSPC or syscall.EIO.
var ErrInjected = errors.New("crashfs: injected fault")

// InjectedError is the error Faults returns.
type InjectedError struct {
	Op    errorfs.Op
	Errno syscall.Errno
}

func (e *InjectedError) Error() string {
	return fmt.Sprintf("crashfs: injected %v on %s %q", e.Errno, opName(e.Op.Kind), e.Op.Path)
}

// Unwrap returns the errno, so errors.Is(err, syscall.ENOSPC) works.
func (e *InjectedError) Unwrap() error { return e.Errno }

// Is reports whether target is ErrInjected.
func (e *InjectedError) Is(target error) bool { return target == ErrInjected }

// Faults is an errorfs.Injector that fails the operation at index At
// (0-based, counting only the operations Match accepts) with ENOSPC, or
// EIO if it is a sync or a read. With Sticky, every later matching operation fails the
// same way, as a disk that stays full or a device that stays broken. A
// negative At injects nothing, which counts the operations of a workload.
// It is safe for concurrent use.
type Faults struct {
	At     int
	Sticky bool
	// Match selects the operations that are counted and may fail. Nil means
	// DefaultMatch.
	Match func(op errorfs.Op) bool

	mu struct {
		sync.Mutex
		seen  int
		fired []errorfs.Op
	}
}

var _ errorfs.Injector = (*Faults)(nil)

// ReadMatch accepts the operations that read: opens, reads, stats and
// directory listings. Their injected error is EIO.
func ReadMatch(op errorfs.Op) bool {
	return op.Kind.ReadOrWrite() == errorfs.OpIsRead
}

// DefaultMatch accepts file writes, syncs, and the namespace operations
// that allocate or change directory entries.
func DefaultMatch(op errorfs.Op) bool {
	switch op.Kind {
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData,
		errorfs.OpFileSyncTo, errorfs.OpFilePreallocate, errorfs.OpCreate, errorfs.OpLink,
		errorfs.OpRename, errorfs.OpReuseForWrite, errorfs.OpMkdirAll, errorfs.OpRemove:
		return true
	}
	return false
}

// Wrap returns fs with f injected into it.
func (f *Faults) Wrap(fs vfs.FS) vfs.FS { return errorfs.Wrap(fs, f) }

// String implements fmt.Stringer.
func (f *Faults) String() string {
	return fmt.Sprintf("(crashfs.Faults at=%d sticky=%t)", f.At, f.Sticky)
}

// MaybeError implements errorfs.Injector.
func (f *Faults) MaybeError(op errorfs.Op) error {
	match := f.Match
	if match == nil {
		match = DefaultMatch
	}
	if !match(op) {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.mu.seen
	f.mu.seen++
	if f.At < 0 || idx < f.At || (idx > f.At && !f.Sticky) {
		return nil
	}
	f.mu.fired = append(f.mu.fired, op)
	errno := syscall.ENOSPC
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo,
		errorfs.OpFileRead, errorfs.OpFileReadAt, errorfs.OpOpen, errorfs.OpOpenDir,
		errorfs.OpList, errorfs.OpStat, errorfs.OpFileStat:
		errno = syscall.EIO
	}
	return &InjectedError{Op: op, Errno: errno}
}

// Seen returns how many matching operations were evaluated.
func (f *Faults) Seen() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.seen
}

// Fired returns the operations that were failed, in order.
func (f *Faults) Fired() []errorfs.Op {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]errorfs.Op(nil), f.mu.fired...)
}

func opName(k errorfs.OpKind) string {
	switch k {
	case errorfs.OpCreate:
		return "create"
	case errorfs.OpLink:
		return "link"
	case errorfs.OpRemove:
		return "remove"
	case errorfs.OpRename:
		return "rename"
	case errorfs.OpReuseForWrite:
		return "reuse"
	case errorfs.OpMkdirAll:
		return "mkdir"
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt:
		return "write"
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		return "sync"
	case errorfs.OpFilePreallocate:
		return "preallocate"
	case errorfs.OpFileRead, errorfs.OpFileReadAt:
		return "read"
	case errorfs.OpOpen, errorfs.OpOpenDir:
		return "open"
	case errorfs.OpList:
		return "list"
	case errorfs.OpStat, errorfs.OpFileStat:
		return "stat"
	default:
		return fmt.Sprintf("op%d", int(k))
	}
}
