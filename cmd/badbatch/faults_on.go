//go:build badbatch_faults

package main

import (
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"github.com/badbatch/badbatch/internal/faultfs"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// faultEnv names the fault to inject in a binary built with
// -tags badbatch_faults (crashtest/heal_test.go): "N" or "N+K" fails the
// Nth write or fsync of a journal file counted from when serve has opened
// the store (1-based), and the K after it (the reopens that fall on them
// fail too), with EIO. Normal builds do not contain this file.
const faultEnv = "BBTEST_JOURNAL_FAULT"

func journalFaults(fs vfs.FS, logger *slog.Logger) (vfs.FS, func(), error) {
	v := os.Getenv(faultEnv)
	if v == "" {
		return fs, func() {}, nil
	}
	if fs == nil {
		fs = vfs.Default
	}
	f, err := faultfs.ParseJournalFault(v)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", faultEnv, err)
	}
	f.Err = fmt.Errorf("injected (%s): %w", f, syscall.EIO)
	f.OnHit = func(i int64, op errorfs.Op) {
		logger.Warn("test fault: failing a journal operation", "index", i, "op", op.Kind, "path", op.Path)
	}
	logger.Warn("test build: journal fault armed after open", "fault", f.String())
	return errorfs.Wrap(fs, f), f.Arm, nil
}
