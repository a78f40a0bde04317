// Package faultfs injects journal faults for the self-healing tests: the
// storage package's tests and the server binary built with
// -tags badbatch_faults (crashtest) share this one injector.
package faultfs

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// JournalFault is an errorfs.Injector that fails a journal's write and
// fsync operations (those on a path containing "journal") from the Nth one
// counted after Arm (1-based) through the (N+Persist)th: a disk that fails
// once, or for a while (the reopens that fall in the window fail too).
// Safe for concurrent use once built.
type JournalFault struct {
	N, Persist int64
	// Err is what a failed operation returns; nil means
	// errorfs.ErrInjected.
	Err error
	// OnHit, if set, is called for each failed operation.
	OnHit func(index int64, op errorfs.Op)

	armed atomic.Bool
	ops   atomic.Int64
	hits  atomic.Int64
}

// Arm starts the count: operations before it are never failed.
func (f *JournalFault) Arm() { f.armed.Store(true) }

// Hits returns how many operations were failed.
func (f *JournalFault) Hits() int64 { return f.hits.Load() }

// MaybeError implements errorfs.Injector.
func (f *JournalFault) MaybeError(op errorfs.Op) error {
	if !f.armed.Load() || !strings.Contains(op.Path, "journal") {
		return nil
	}
	switch op.Kind {
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
	default:
		return nil
	}
	i := f.ops.Add(1)
	if i < f.N || i > f.N+f.Persist {
		return nil
	}
	f.hits.Add(1)
	if f.OnHit != nil {
		f.OnHit(i, op)
	}
	if f.Err != nil {
		return f.Err
	}
	return errorfs.ErrInjected
}

// String implements errorfs.Injector.
func (f *JournalFault) String() string {
	return fmt.Sprintf("journal write/fsync #%d+%d", f.N, f.Persist)
}

// ParseJournalFault parses "N" or "N+K" (N >= 1, K >= 0) into a fault
// that fails operations N through N+K.
func ParseJournalFault(v string) (*JournalFault, error) {
	f := &JournalFault{}
	nStr, kStr, plus := strings.Cut(v, "+")
	if _, err := fmt.Sscan(nStr, &f.N); err != nil || f.N < 1 {
		return nil, fmt.Errorf("fault %q: want N or N+K, N >= 1", v)
	}
	if plus {
		if _, err := fmt.Sscan(kStr, &f.Persist); err != nil || f.Persist < 0 {
			return nil, fmt.Errorf("fault %q: want N or N+K, K >= 0", v)
		}
	}
	return f, nil
}
