//go:build badbatch_faults

package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// faultEnv names the fault to inject in a binary built with
// -tags badbatch_faults (crashtest/heal_test.go): "N" or "N+K" fails the
// Nth write or fsync of a journal file counted from when serve has opened
// the store (1-based), and the K after it (the reopens that fall on them
// fail too), with EIO. Normal builds do not contain this file.
const faultEnv = "BBTEST_JOURNAL_FAULT"

type journalFault struct {
	armed      atomic.Bool
	ops        atomic.Int64
	n, persist int64
	log        *slog.Logger
}

func (f *journalFault) String() string {
	return fmt.Sprintf("journal write/fsync #%d+%d", f.n, f.persist)
}

func (f *journalFault) MaybeError(op errorfs.Op) error {
	if !f.armed.Load() || !strings.Contains(op.Path, "journal") {
		return nil
	}
	switch op.Kind {
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
	default:
		return nil
	}
	if i := f.ops.Add(1); i >= f.n && i <= f.n+f.persist {
		f.log.Warn("test fault: failing a journal operation", "index", i, "op", op.Kind, "path", op.Path)
		return fmt.Errorf("injected (%s): %w", f, syscall.EIO)
	}
	return nil
}

func journalFaults(fs vfs.FS, logger *slog.Logger) (vfs.FS, func(), error) {
	v := os.Getenv(faultEnv)
	if v == "" {
		return fs, func() {}, nil
	}
	if fs == nil {
		fs = vfs.Default
	}
	f := &journalFault{log: logger}
	nStr, kStr, _ := strings.Cut(v, "+")
	if _, err := fmt.Sscan(nStr, &f.n); err != nil || f.n < 1 {
		return nil, nil, fmt.Errorf("%s=%q: want N or N+K, N >= 1", faultEnv, v)
	}
	if kStr != "" {
		if _, err := fmt.Sscan(kStr, &f.persist); err != nil || f.persist < 0 {
			return nil, nil, fmt.Errorf("%s=%q: want N or N+K, K >= 0", faultEnv, v)
		}
	}
	logger.Warn("test build: journal fault armed after open", "fault", f.String())
	return errorfs.Wrap(fs, f), func() { f.armed.Store(true) }, nil
}
