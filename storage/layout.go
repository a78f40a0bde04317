package storage

import (
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A store's data directory holds two directories (and, in cluster mode,
// ClusterDir): the journal, which is the source of truth, and the index,
// which Open can always rebuild from the journal while the journal still
// starts at its first entry.
const (
	journalDirName = "journal"
	indexDirName   = "index"
)

// JournalDir returns the journal's directory inside the data directory dir.
func JournalDir(fs vfs.FS, dir string) string { return fs.PathJoin(dir, journalDirName) }

// MoveIndexAside renames the index of the store in dir, which must not be
// open, out of the way (to index.broken-<now, UTC>), so that the next Open
// rebuilds it from the journal. It returns the new path. For an operator
// repairing an index that does not open (badbatch verify --repair).
func MoveIndexAside(fs vfs.FS, dir string, now time.Time) (string, error) {
	aside := fs.PathJoin(dir, indexDirName+".broken-"+now.UTC().Format("20060102T150405"))
	if err := fs.Rename(fs.PathJoin(dir, indexDirName), aside); err != nil {
		return "", fmt.Errorf("storage: move the index aside: %w", err)
	}
	return aside, nil
}
