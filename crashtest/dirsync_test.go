package crashtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/badbatch/badbatch/journal"
	"github.com/badbatch/badbatch/storage"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dirAuditor follows a faultFS and knows, at any instant, which namespace
// changes (create, mkdir, rename, link, remove) under root have not yet
// been followed by an fsync of their parent directory.
type dirAuditor struct {
	root string
	mu   sync.Mutex
	// pending maps a directory to its unsynced changes.
	pending map[string][]fsOp
	counts  map[opKind]int
}

func newDirAuditor(fs *faultFS, root string) *dirAuditor {
	a := &dirAuditor{root: filepath.Clean(root), pending: map[string][]fsOp{}, counts: map[opKind]int{}}
	fs.listen(a.observe)
	return a
}

func (a *dirAuditor) under(p string) bool {
	return p == a.root || strings.HasPrefix(p, a.root+string(filepath.Separator))
}

func (a *dirAuditor) observe(op fsOp) {
	if op.err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch op.kind {
	case opCreate, opMkdir, opRename, opLink, opRemove:
		if !a.under(op.path) {
			return
		}
		a.counts[op.kind]++
		dir := filepath.Dir(op.path)
		a.pending[dir] = append(a.pending[dir], op)
	case opSyncDir:
		a.counts[op.kind]++
		// The sync covers every change that completed before it began.
		a.pending[op.path] = slices.DeleteFunc(a.pending[op.path], func(p fsOp) bool { return p.seq < op.seq })
	}
}

// unsynced lists the changes still waiting for their directory fsync
// that keep accepts.
func (a *dirAuditor) unsynced(keep func(dir string, op fsOp) bool) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for dir, ops := range a.pending {
		for _, op := range ops {
			if keep(dir, op) {
				out = append(out, op.String())
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestDirectoryFsyncAudit runs a real storage.Store (on disk) through a
// recording FS and checks the contract's rule on directory entries: every
// file created or renamed (and every directory made, every segment removed)
// in the data directory is followed by an fsync of its parent directory
// before the next acknowledgement: Open returning, Append returning,
// SetCursor returning. Appends are made one at a time, so that everything
// the journal did before an acknowledgement was done for it. Tiny segments
// make the journal roll every few appends and retention remove segments;
// a torn tail added before the reopen makes Open repair by rename.
//
// Two kinds of change are audited at Close only: Pebble's own files (the
// index may lag the journal and is rebuilt from it, so no acknowledgement
// depends on a table Pebble is still writing in a background flush or
// compaction, even when Open returns), and journal segment removals
// (unlinks, or renames to a spare when the journal recycles), which
// the store's retention goroutine makes concurrently with appends that do
// not depend on them. At Close, every change must have been followed by its
// directory fsync, except Pebble's deletions of obsolete tables (harmless
// if a crash brings one back: Pebble deletes unreferenced files at open).
func TestDirectoryFsyncAudit(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "a", "b", "data")
	ffs := newFaultFS(vfs.Default)
	audit := newDirAuditor(ffs, filepath.Dir(filepath.Dir(root)))
	opts := storage.DefaultOptions()
	opts.FS = ffs
	opts.SegmentSize = 2 << 10
	opts.IndexFlushBytes = 4 << 10
	opts.RetentionBytes = 16 << 10
	opts.RingSize = 16
	indexDir := filepath.Join(root, "index")
	// A retired segment the journal keeps for recycling is renamed to a
	// spare (journal.IsSpareFile) instead of removed: a removal like any
	// other, which no acknowledgement depends on.
	removal := func(op fsOp) bool {
		return op.kind == opRemove || op.kind == opRename && journal.IsSpareFile(filepath.Base(op.path))
	}
	notIndex := func(dir string, op fsOp) bool {
		return !removal(op) && dir != indexDir && !strings.HasPrefix(dir, indexDir+"/")
	}
	atClose := func(dir string, op fsOp) bool {
		return !removal(op) || dir != indexDir && !strings.HasPrefix(dir, indexDir+"/")
	}

	checkAck := func(what string, keep func(string, fsOp) bool) {
		t.Helper()
		if u := audit.unsynced(keep); len(u) > 0 {
			t.Errorf("%s acknowledged with directory entries not yet fsynced:\n  %s", what, strings.Join(u, "\n  "))
		}
	}

	const appends = 400
	for round := range 2 {
		s, err := storage.Open(root, opts)
		require.NoError(t, err)
		checkAck(fmt.Sprintf("round %d: Open", round), notIndex)
		ctx := context.Background()
		for i := range appends {
			stream := fmt.Sprintf("s%d", i%3)
			_, err := s.Append(ctx, stream, storage.Record{Value: []byte(fmt.Sprintf("r%d-%d-%0200d", round, i, i))})
			require.NoError(t, err)
			checkAck(fmt.Sprintf("round %d: Append %d", round, i), notIndex)
			if i%50 == 49 {
				require.NoError(t, s.SetCursor(context.Background(), stream, "c", uint64(i/3)))
				checkAck(fmt.Sprintf("round %d: SetCursor after append %d", round, i), notIndex)
			}
		}
		require.NoError(t, s.Close())
		checkAck(fmt.Sprintf("round %d: Close", round), atClose)
		if t.Failed() {
			return
		}
		// A torn tail for the next Open to repair (write-to-temp, rename).
		jdir := filepath.Join(root, "journal")
		names, err := os.ReadDir(jdir)
		require.NoError(t, err)
		var last string
		for _, e := range names {
			if strings.HasSuffix(e.Name(), ".seg") {
				last = e.Name()
			}
		}
		f, err := os.OpenFile(filepath.Join(jdir, last), os.O_WRONLY|os.O_APPEND, 0)
		require.NoError(t, err)
		_, err = f.Write(make([]byte, 100))
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	audit.mu.Lock()
	counts := audit.counts
	audit.mu.Unlock()
	t.Logf("audited %d creates, %d mkdirs, %d renames, %d removes, %d directory fsyncs over %d acknowledgements",
		counts[opCreate], counts[opMkdir], counts[opRename], counts[opRemove], counts[opSyncDir], 2*(appends+appends/50+2))
	assert.Positive(t, counts[opRename], "segments were created by rename")
	assert.Positive(t, counts[opRemove], "retention removed segments")
}

// TestDirAuditorDetects proves the audit can fail: a create or rename whose
// directory is not fsynced afterwards is reported, one that is is not.
func TestDirAuditorDetects(t *testing.T) {
	tests := []struct {
		name    string
		run     func(t *testing.T, fs vfs.FS)
		pending int
	}{
		{"create without dir sync", func(t *testing.T, fs vfs.FS) {
			f, err := fs.Create("d/x", vfs.WriteCategoryUnspecified)
			require.NoError(t, err)
			require.NoError(t, f.Sync())
			require.NoError(t, f.Close())
		}, 1},
		{"create then dir sync", func(t *testing.T, fs vfs.FS) {
			f, err := fs.Create("d/x", vfs.WriteCategoryUnspecified)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			syncDir(t, fs, "d")
		}, 0},
		{"dir sync then rename", func(t *testing.T, fs vfs.FS) {
			f, err := fs.Create("d/x", vfs.WriteCategoryUnspecified)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			syncDir(t, fs, "d")
			require.NoError(t, fs.Rename("d/x", "d/y"))
		}, 1},
		{"rename synced in the wrong directory", func(t *testing.T, fs vfs.FS) {
			require.NoError(t, fs.MkdirAll("d/e", 0o755))
			syncDir(t, fs, "d")
			f, err := fs.Create("d/e/x", vfs.WriteCategoryUnspecified)
			require.NoError(t, err)
			require.NoError(t, f.Close())
			syncDir(t, fs, "d")
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := vfs.NewMem()
			require.NoError(t, mem.MkdirAll("d", 0o755))
			ffs := newFaultFS(mem)
			a := newDirAuditor(ffs, "d")
			tt.run(t, ffs)
			assert.Len(t, a.unsynced(func(string, fsOp) bool { return true }), tt.pending)
		})
	}
}

func syncDir(t *testing.T, fs vfs.FS, dir string) {
	t.Helper()
	d, err := fs.OpenDir(dir)
	require.NoError(t, err)
	require.NoError(t, d.Sync())
	require.NoError(t, d.Close())
}
