//go:build !linux

package journal

import "github.com/cockroachdb/pebble/v2/vfs"

// sizeFile is not implemented here: the journal grows segment files as it
// writes (see sizing_linux.go).
func sizeFile(vfs.File, int64) (bool, error) { return false, nil }

// trimFile has nothing to trim where sizeFile does nothing.
func trimFile(vfs.File, int64) error { return nil }
