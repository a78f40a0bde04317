// Package vfsutil holds the durable directory operations that storage and
// storage/cluster share: a directory entry survives a power loss only once
// its parent directory is fsynced.
package vfsutil

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// MkdirAll creates dir and its missing parents, fsyncing each new
// directory's parent so that the entry survives a power loss.
func MkdirAll(fs vfs.FS, dir string) error {
	if _, err := fs.Stat(dir); err == nil {
		return nil
	}
	parent := fs.PathDir(dir)
	if parent != dir && parent != "" {
		if err := MkdirAll(fs, parent); err != nil {
			return err
		}
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if parent == "" {
		parent = "."
	}
	return SyncDir(fs, parent)
}

// SyncDir fsyncs the directory dir.
func SyncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return d.Close()
}
