package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/badbatch/badbatch/storage"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/require"
)

// TestSnapshotInstallCrashPoints loses power on a lagging follower at each
// step of a snapshot's receipt and installation in turn (every create,
// rename, removal and fsync from the first write of the staged snapshot
// on), keeping only what was synced, and checks that the node reopens,
// catches up and holds every record. The installation's commit point is
// the state file: a crash just before it once left a state file that named
// the snapshot over the old journal, and the node failed at its next write
// ("write entry N+1, the next index is M").
func TestSnapshotInstallCrashPoints(t *testing.T) {
	c := newTestCluster(t, 3, 21)
	c.tune = func(o *Options) { o.SnapshotEntries = 20 }
	c.openAll()
	ld := c.leader(10 * time.Second)
	down := c.followerOf(ld)
	ctx := context.Background()
	var want int
	appendSome := func(n int) {
		t.Helper()
		for range n {
			_, err := c.appendRetry(ctx, "s", storage.AppendOptions{}, rec(fmt.Sprint("v", want)))
			require.NoError(t, err)
			want++
		}
	}
	crashed := 0
	for k := 1; ; k++ {
		require.Less(t, k, 400, "the installation never ends")
		last, err := c.node(down).rl.LastIndex() // its raft log's end
		require.NoError(t, err)
		c.stop(down)
		// The leader compacts past the follower, so that it needs a
		// snapshot. (The leader compacts as its store applies, which
		// may lag its raft log: append until it has.)
		appendSome(150)
		for i := 0; c.leader(10*time.Second).rlSnapIndex() <= last; i++ {
			require.Less(t, i, 100, "the leader never compacted past the follower's %d", last)
			appendSome(5)
		}
		var (
			mu    sync.Mutex
			count int
			img   *vfs.MemFS
			dead  atomic.Bool
		)
		mem := c.fs[down]
		inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
			if dead.Load() {
				// Power is lost: nothing the node does from here on is
				// durable (its image is taken), so it must not
				// acknowledge anything either. Pebble's own syncs are
				// left alone: it treats a failed sync as fatal.
				if isSync(op.Kind) && op.Path != "/data/index" && !strings.HasPrefix(op.Path, "/data/index/") {
					return errFrozen
				}
				return nil
			}
			if !installStep(op) {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			if count++; count == k {
				img = mem.CrashClone(vfs.CrashCloneCfg{})
				dead.Store(true)
				return errFrozen
			}
			return nil
		})
		o := c.options(down)
		o.Store.FS = errorfs.Wrap(mem, inj)
		n, err := Open("/data", o)
		if err == nil {
			c.mu.Lock()
			c.nodes[down] = n
			c.mu.Unlock()
			target := c.leader(5 * time.Second).AppliedIndex()
			caughtUp := func() bool { return dead.Load() || n.AppliedIndex() >= target }
			require.Eventually(t, caughtUp, 20*time.Second, 5*time.Millisecond)
		}
		if !dead.Load() {
			// k is past the last step: every step has been crashed.
			require.NoError(t, err)
			require.Greater(t, n.snapshotsInstalled.Load(), int64(0), "caught up by snapshot")
			break
		}
		crashed++
		c.stop(down)
		c.mu.Lock()
		c.fs[down] = img
		c.mu.Unlock()
		n = c.open(down) // from the image: must open, catch up, and hold everything
		target := c.leader(5 * time.Second).AppliedIndex()
		require.Eventually(t, func() bool {
			return n.Err() != nil || n.AppliedIndex() >= target
		}, 20*time.Second, 5*time.Millisecond, "crash at step %d: the node catches up", k)
		require.NoError(t, n.Err(), "crash at step %d", k)
		got := readAll(t, n, "s")
		require.Len(t, got, want, "crash at step %d", k)
		for i, r := range got {
			require.Equal(t, fmt.Sprint("v", i), string(r.Value), "crash at step %d", k)
		}
	}
	t.Logf("%d crash points in a snapshot's receipt and installation, each reopened and caught up", crashed)
	require.Greater(t, crashed, 5)
}

// installStep reports whether op is a step of a snapshot installation that
// a crash can fall between: a file system metadata change or an fsync.
func installStep(op errorfs.Op) bool {
	switch op.Kind {
	case errorfs.OpCreate, errorfs.OpRename, errorfs.OpRemove, errorfs.OpRemoveAll, errorfs.OpMkdirAll,
		errorfs.OpFileSync, errorfs.OpFileSyncData:
	default:
		return false
	}
	if op.Path == "/data/journal" || op.Path == "/data/index" {
		// The swap of the staged directories (not pebble's own syncs of
		// its directory).
		return op.Kind == errorfs.OpRename || op.Kind == errorfs.OpRemoveAll
	}
	return strings.Contains(op.Path, "/snapshot-in") || strings.Contains(op.Path, "/cluster/")
}

func isSync(k errorfs.OpKind) bool {
	return k == errorfs.OpFileSync || k == errorfs.OpFileSyncData || k == errorfs.OpFileSyncTo
}
