//go:build !badbatch_faults

package main

import (
	"log/slog"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// journalFaults is the test builds' fault injection (faults_on.go); in a
// normal build it leaves the file system alone and arm does nothing.
func journalFaults(fs vfs.FS, _ *slog.Logger) (vfs.FS, func(), error) { return fs, func() {}, nil }
