package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/badbatch/badbatch/storage"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// envCount reads a loop count from the environment (CI raises it).
func envCount(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

var testSecret = []byte("0123456789abcdef-test-secret")

// testCluster runs nodes in this process over a simNet, each on its own
// crashable in-memory file system.
type testCluster struct {
	t     testing.TB
	net   *simNet
	peers map[uint64]string
	mu    sync.Mutex
	fs    map[uint64]*vfs.MemFS
	// frozen[id] makes node id's journal and state-file fsyncs fail: a
	// crash freezes the node's disk before it takes the image, so that the
	// node cannot acknowledge (or count towards a commit) anything it made
	// durable after its own power loss.
	frozen map[uint64]*atomic.Bool
	nodes  map[uint64]*Node
	// tune adjusts every node's options before Open.
	tune func(o *Options)
}

func newTestCluster(t testing.TB, n int, seed uint64) *testCluster {
	c := &testCluster{
		t: t, net: newSimNet(seed), peers: map[uint64]string{},
		fs: map[uint64]*vfs.MemFS{}, nodes: map[uint64]*Node{}, frozen: map[uint64]*atomic.Bool{},
	}
	for id := uint64(1); id <= uint64(n); id++ {
		c.peers[id] = fmt.Sprintf("sim-%d:7000", id)
		c.fs[id] = vfs.NewCrashableMem()
	}
	t.Cleanup(c.closeAll)
	return c
}

func (c *testCluster) options(id uint64) *Options {
	o := DefaultOptions()
	o.NodeID = id
	o.ClusterAddr = fmt.Sprintf("sim-%d:7000", id)
	o.HTTPURL = fmt.Sprintf("http://node-%d", id)
	o.Peers = c.peers
	o.Secret = testSecret
	o.TickInterval = 10 * time.Millisecond
	o.NewTransport = c.net.transport()
	so := storage.DefaultOptions()
	so.FS = c.freezable(id)
	so.RingSize = 256
	so.SegmentSize = 256 << 10
	so.IndexFlushBytes = 128 << 10
	o.Store = so
	if c.tune != nil {
		c.tune(o)
	}
	return o
}

// freezable returns node id's file system behind a fresh freeze switch.
func (c *testCluster) freezable(id uint64) vfs.FS {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fs[id] == nil {
		c.fs[id] = vfs.NewCrashableMem()
	}
	f := new(atomic.Bool)
	c.frozen[id] = f
	return errorfs.Wrap(c.fs[id], errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !f.Load() {
			return nil
		}
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if strings.Contains(op.Path, "/journal/") || strings.Contains(op.Path, "/"+storage.ClusterDir+"/") {
				return errFrozen
			}
		}
		return nil
	}))
}

var errFrozen = errors.New("test: the node's disk is frozen (power lost)")

// open opens node id on its file system.
func (c *testCluster) open(id uint64) *Node {
	c.t.Helper()
	n, err := Open("/data", c.options(id))
	require.NoError(c.t, err)
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	return n
}

func (c *testCluster) openAll() {
	for id := range c.peers {
		c.open(id)
	}
}

func (c *testCluster) node(id uint64) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// stop closes node id cleanly.
func (c *testCluster) stop(id uint64) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if n != nil {
		_ = n.Close()
	}
}

// crash takes node id's power-loss image (unsynced data dropped at
// random), closes the node and keeps the image as its file system.
func (c *testCluster) crash(id uint64, rng *rand.Rand) {
	c.mu.Lock()
	fs := c.fs[id]
	if f := c.frozen[id]; f != nil {
		f.Store(true)
	}
	c.mu.Unlock()
	img := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
	c.stop(id)
	c.mu.Lock()
	c.fs[id] = img
	c.mu.Unlock()
}

func (c *testCluster) closeAll() {
	c.mu.Lock()
	ids := make([]uint64, 0, len(c.nodes))
	for id := range c.nodes {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	for _, id := range ids {
		c.stop(id)
	}
}

// followerOf returns the lowest node id that is not ld's.
func (c *testCluster) followerOf(ld *Node) uint64 {
	for id := uint64(1); ; id++ {
		if id != ld.ID() {
			return id
		}
	}
}

// leader waits for a leader that every running node agrees on.
func (c *testCluster) leader(timeout time.Duration) *Node {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		var lead uint64
		agree := len(c.nodes) > 0
		for _, n := range c.nodes {
			st := n.Status()
			if st.LeaderID == 0 || (lead != 0 && st.LeaderID != lead) {
				agree = false
				break
			}
			lead = st.LeaderID
		}
		ln := c.nodes[lead]
		c.mu.Unlock()
		if agree && ln != nil && ln.IsLeader() {
			return ln
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatalf("no agreed leader within %v", timeout)
	return nil
}

// appendRetry appends through whichever node leads, retrying (under one
// idempotency key) while leadership moves.
func (c *testCluster) appendRetry(ctx context.Context, stream string, opts storage.AppendOptions, recs ...storage.Record) (storage.AppendResult, error) {
	for {
		var last error
		c.mu.Lock()
		nodes := make([]*Node, 0, len(c.nodes))
		for _, n := range c.nodes {
			nodes = append(nodes, n)
		}
		c.mu.Unlock()
		for _, n := range nodes {
			if !n.IsLeader() {
				continue
			}
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			res, err := n.Store().AppendWith(actx, stream, opts, recs...)
			cancel()
			if err == nil {
				return res, nil
			}
			last = err
		}
		select {
		case <-ctx.Done():
			return storage.AppendResult{}, fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// readAll reads a whole stream from n after a linearizable barrier.
func readAll(t testing.TB, n *Node, stream string) []storage.StoredRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.ReadIndex(ctx); err != nil {
		require.NoError(t, err, "node %d: %v", n.ID(), n.Err())
	}
	var out []storage.StoredRecord
	for {
		page, err := n.Store().Read(ctx, stream, uint64(len(out)), 1000)
		if err != nil {
			if len(out) == 0 {
				return nil
			}
			require.NoError(t, err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
	}
}

// joinServer is a member's join endpoint for in-process tests: it adds
// the node on the leader, as POST /v1/cluster/nodes does over HTTP.
func joinServer(t testing.TB, c *testCluster) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var jr JoinRequest
		if err := json.NewDecoder(r.Body).Decode(&jr); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+JoinToken(testSecret) {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		ld := c.leader(10 * time.Second)
		info, err := ld.AddNode(r.Context(), jr.ID, jr.ClusterAddr, jr.URL)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(info)
	}))
	t.Cleanup(srv.Close)
	return srv
}
