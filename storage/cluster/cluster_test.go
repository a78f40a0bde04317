package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/badbatch/badbatch/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	pb "go.etcd.io/raft/v3/raftpb"
)

func rec(v string) storage.Record { return storage.Record{Value: []byte(v)} }

// TestReplicatedAppendAndRead: appends through the leader are applied by
// every node, at the same offsets, and a follower refuses to append.
func TestReplicatedAppendAndRead(t *testing.T) {
	c := newTestCluster(t, 3, 1)
	c.openAll()
	ld := c.leader(10 * time.Second)
	ctx := context.Background()
	for i := range 50 {
		res, err := ld.Store().Append(ctx, "s", rec(fmt.Sprint("v", i)), rec(fmt.Sprint("w", i)))
		require.NoError(t, err)
		assert.Equal(t, uint64(2*i), res.FirstOffset)
		assert.Equal(t, storage.DurabilityFsynced, res.Durability)
	}
	for id := uint64(1); id <= 3; id++ {
		n := c.node(id)
		got := readAll(t, n, "s")
		require.Len(t, got, 100, "node %d", id)
		for i, r := range got {
			assert.Equal(t, uint64(i), r.Offset)
		}
		assert.Equal(t, "w49", string(got[99].Value))
		if n != ld {
			_, err := n.Store().Append(ctx, "s", rec("x"))
			assert.ErrorIs(t, err, storage.ErrNotLeader, "node %d is a follower", id)
		}
	}
	st := ld.Status()
	assert.Equal(t, ld.ID(), st.LeaderID)
	assert.Len(t, st.Nodes, 3)
	// The followers' match indexes reach the leader with their next
	// acknowledgements.
	assert.Eventually(t, func() bool {
		for _, m := range ld.Status().Nodes {
			if !m.Healthy || m.MatchIndex <= 50 {
				return false
			}
		}
		return true
	}, 5*time.Second, 5*time.Millisecond, "every node healthy and matching: %+v", ld.Status().Nodes)
}

// TestIdempotentRetryAcrossLeaderChange: an append whose outcome is
// unknown (its leader stopped) is retried under the same key on the new
// leader and stored once.
func TestIdempotentRetryAcrossLeaderChange(t *testing.T) {
	c := newTestCluster(t, 3, 2)
	c.openAll()
	ld := c.leader(10 * time.Second)
	ctx := context.Background()
	opts := storage.AppendOptions{IdempotencyKey: "k-1"}
	first, err := ld.Store().AppendWith(ctx, "s", opts, rec("once"))
	require.NoError(t, err)
	c.stop(ld.ID())
	c.leader(10 * time.Second)
	again, err := c.appendRetry(ctx, "s", opts, rec("once"))
	require.NoError(t, err)
	assert.True(t, again.Replayed, "the idempotency table is replicated state")
	assert.Equal(t, first.FirstOffset, again.FirstOffset)
	c.open(ld.ID())
	for id := uint64(1); id <= 3; id++ {
		assert.Len(t, readAll(t, c.node(id), "s"), 1, "node %d", id)
	}
}

// TestMinorityAcknowledgesNothing: a leader cut off from the majority
// acknowledges no append; the majority elects a leader and goes on; after
// healing every node holds the same records.
func TestMinorityAcknowledgesNothing(t *testing.T) {
	c := newTestCluster(t, 3, 3)
	c.openAll()
	old := c.leader(10 * time.Second)
	ctx := context.Background()
	_, err := old.Store().Append(ctx, "s", rec("before"))
	require.NoError(t, err)
	var others []uint64
	for id := uint64(1); id <= 3; id++ {
		if id != old.ID() {
			others = append(others, id)
		}
	}
	c.net.partition([]uint64{old.ID()}, others)
	actx, cancel := context.WithTimeout(ctx, time.Second)
	_, err = old.Store().Append(actx, "s", rec("minority"))
	cancel()
	require.Error(t, err, "the minority side must not acknowledge")
	// The majority elects a new leader.
	var nl *Node
	require.Eventually(t, func() bool {
		for _, id := range others {
			if n := c.node(id); n.IsLeader() {
				nl = n
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond)
	for i := range 10 {
		_, err := nl.Store().Append(ctx, "s", rec(fmt.Sprint("majority-", i)))
		require.NoError(t, err)
	}
	c.net.heal()
	c.leader(10 * time.Second)
	want := readAll(t, nl, "s")
	for id := uint64(1); id <= 3; id++ {
		got := readAll(t, c.node(id), "s")
		require.Equal(t, len(want), len(got), "node %d", id)
		for i := range got {
			assert.Equal(t, string(want[i].Value), string(got[i].Value), "node %d offset %d", id, i)
		}
		for _, r := range got {
			if string(r.Value) == "minority" {
				// Allowed only if it was committed after all; then it was
				// not acknowledged by the old leader, and it is present
				// exactly once on every node (checked by equality above).
				t.Logf("the unacknowledged minority append was committed later (allowed)")
			}
		}
	}
}

// TestCoordinatedPowerLoss crashes every node at once, dropping a random
// share of unsynced data on each, reopens them and checks that every
// acknowledged append is present at its acknowledged offset, once, and
// that the nodes agree. This is the scenario in which Jepsen's NATS 2.12.1
// analysis lost 131,418 of 930,005 acknowledged messages.
func TestCoordinatedPowerLoss(t *testing.T) {
	images := envCount("BADBATCH_CLUSTER_CRASH_IMAGES", 12)
	if testing.Short() {
		images = 3
	}
	// A cluster lives for imagesPerCluster images, then a fresh one takes
	// over: every image then costs the same (a crash clones every file of
	// every node, and a store's open reads every stream it holds), so the
	// count grows the run linearly.
	const imagesPerCluster = 50
	rng := rand.New(rand.NewPCG(7, uint64(images)))
	var total int
	for first := 0; first < images; first += imagesPerCluster {
		n := min(imagesPerCluster, images-first)
		total += coordinatedPowerLosses(t, rng, first, n)
		if t.Failed() {
			break
		}
		t.Logf("images %d-%d: 0 acknowledged appends lost (%d so far)", first, first+n-1, total)
	}
	t.Logf("%d coordinated crash images, %d acknowledged appends, each checked after its own crash and again after its cluster's last, 0 lost", images, total)
}

// coordinatedPowerLosses runs images first..first+n-1 on a fresh cluster
// and returns how many acknowledged appends it checked.
func coordinatedPowerLosses(t *testing.T, rng *rand.Rand, first, n int) int {
	c := newTestCluster(t, 3, uint64(4+first))
	defer c.closeAll()
	c.tune = func(o *Options) {
		o.SnapshotEntries = 200
		o.TickInterval = 5 * time.Millisecond // elections in 50-100 ms: many images per minute
	}
	c.openAll()
	type ack struct {
		offset uint64
		value  string
	}
	// Each image appends to its own stream; every acknowledgement of every
	// image is checked after that image's crash, and all of them again,
	// on every node, after the cluster's last image.
	acked := map[string][]ack{}
	var total int
	check := func(img int, stream string, must []ack) {
		t.Helper()
		ld := c.leader(15 * time.Second)
		got := readAll(t, ld, stream)
		for _, a := range must {
			if a.offset >= uint64(len(got)) || string(got[a.offset].Value) != a.value {
				t.Errorf("image %d: acknowledged %q at offset %d of %s is missing", img, a.value, a.offset, stream)
			}
		}
		seen := map[string]bool{}
		for _, r := range got {
			require.False(t, seen[string(r.Value)], "image %d: %q stored twice", img, r.Value)
			seen[string(r.Value)] = true
		}
		for id := uint64(1); id <= 3; id++ {
			other := readAll(t, c.node(id), stream)
			require.Equal(t, len(got), len(other), "image %d: node %d, stream %s", img, id, stream)
			for i := range other {
				require.Equal(t, string(got[i].Value), string(other[i].Value), "image %d: node %d, %s/%d", img, id, stream, i)
			}
		}
	}
	for img := first; img < first+n; img++ {
		stream := fmt.Sprint("s", img)
		c.leader(15 * time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		var mu sync.Mutex
		var wg sync.WaitGroup
		var mine []ack
		for p := range 4 {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					v := fmt.Sprintf("img%d-p%d-%d", img, p, i)
					actx, acancel := context.WithTimeout(ctx, time.Second)
					res, err := c.appendRetry(actx, stream, storage.AppendOptions{IdempotencyKey: v}, rec(v))
					acancel()
					if err != nil {
						continue
					}
					mu.Lock()
					mine = append(mine, ack{res.FirstOffset, v})
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(10+rng.IntN(60)) * time.Millisecond)
		// Freeze the set of acknowledged appends, then pull the plug on
		// every node at once: the network goes first, so that no node
		// can acknowledge or commit anything after its image was taken
		// (a node still running after its clone would act after its own
		// power loss).
		mu.Lock()
		mustSurvive := append([]ack(nil), mine...)
		mu.Unlock()
		c.net.partition([]uint64{1, 2, 3}, []uint64{1, 2, 3})
		for id := uint64(1); id <= 3; id++ {
			c.crash(id, rng)
		}
		cancel()
		wg.Wait()
		c.net.heal()
		c.openAll()
		check(img, stream, mustSurvive)
		acked[stream] = mustSurvive
		total += len(mustSurvive)
	}
	for img := first; img < first+n; img++ {
		stream := fmt.Sprint("s", img)
		check(img, stream, acked[stream])
	}
	return total
}

// TestLaggingFollowerCatchesUpBySnapshot: a follower that was down while
// the leader compacted its raft log past it receives a snapshot (index
// checkpoint + journal) and then holds every record.
func TestLaggingFollowerCatchesUpBySnapshot(t *testing.T) {
	c := newTestCluster(t, 3, 5)
	c.tune = func(o *Options) { o.SnapshotEntries = 20 }
	c.openAll()
	ld := c.leader(10 * time.Second)
	down := c.followerOf(ld)
	c.stop(down)
	ctx := context.Background()
	for i := range 300 {
		_, err := ld.Store().Append(ctx, "s", rec(fmt.Sprint("v", i)))
		require.NoError(t, err)
	}
	require.Greater(t, ld.rlSnapIndex(), uint64(0), "the leader compacted its raft log")
	n := c.open(down)
	require.Eventually(t, func() bool { return n.AppliedIndex() >= ld.AppliedIndex() }, 15*time.Second, 10*time.Millisecond)
	got := readAll(t, n, "s")
	require.Len(t, got, 300)
	assert.Equal(t, "v299", string(got[299].Value))
	assert.Greater(t, n.snapshotsInstalled.Load(), int64(0), "caught up by snapshot")
}

// TestJoinLearnerPromoted: a fresh node joins through a member, enters as
// a learner, catches up (by snapshot: the log was compacted) and is
// promoted to voter; then a node is removed under load.
func TestJoinLearnerPromoted(t *testing.T) {
	c := newTestCluster(t, 3, 6)
	c.tune = func(o *Options) { o.SnapshotEntries = 20 }
	c.openAll()
	ld := c.leader(10 * time.Second)
	ctx := context.Background()
	for i := range 200 {
		_, err := ld.Store().Append(ctx, "s", rec(fmt.Sprint("v", i)))
		require.NoError(t, err)
	}
	srv := joinServer(t, c)
	c.fs[4] = newCrashableMem()
	o := c.options(4)
	o.Peers, o.Join = nil, srv.URL
	n4, err := Open("/data", o)
	require.NoError(t, err)
	c.mu.Lock()
	c.nodes[4] = n4
	c.mu.Unlock()
	require.Eventually(t, func() bool {
		st := c.leader(5 * time.Second).Status()
		for _, m := range st.Nodes {
			if m.ID == 4 && m.Role == RoleFollower {
				return true
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "node 4 promoted to voter")
	assert.Greater(t, n4.snapshotsInstalled.Load(), int64(0), "the learner caught up by snapshot")
	got := readAll(t, n4, "s")
	require.Len(t, got, 200)

	// Remove a follower under load.
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	var loadErr atomic.Value
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stopLoad:
				return
			default:
			}
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := c.appendRetry(actx, "load", storage.AppendOptions{IdempotencyKey: fmt.Sprint("l", i)}, rec(fmt.Sprint(i)))
			cancel()
			if err != nil {
				loadErr.Store(err)
				return
			}
		}
	})
	ld = c.leader(10 * time.Second)
	var victim uint64
	for id := uint64(1); id <= 3; id++ {
		if id != ld.ID() {
			victim = id
			break
		}
	}
	require.NoError(t, ld.RemoveNode(ctx, victim))
	time.Sleep(200 * time.Millisecond)
	close(stopLoad)
	wg.Wait()
	if err, _ := loadErr.Load().(error); err != nil {
		t.Fatalf("load failed during removal: %v", err)
	}
	c.stop(victim)
	st := c.leader(10 * time.Second).Status()
	assert.Len(t, st.Nodes, 3)
	for _, m := range st.Nodes {
		assert.NotEqual(t, victim, m.ID)
	}
}

// TestWipedNodeIsRefused: a node restarted with its old id and an empty
// data directory stops with ErrDataLost (it could otherwise vote twice in
// one term), naming the replacement procedure.
func TestWipedNodeIsRefused(t *testing.T) {
	c := newTestCluster(t, 3, 7)
	c.openAll()
	ld := c.leader(10 * time.Second)
	for i := range 20 {
		_, err := ld.Store().Append(context.Background(), "s", rec(fmt.Sprint(i)))
		require.NoError(t, err)
	}
	var victim uint64
	for id := uint64(1); id <= 3; id++ {
		if id != ld.ID() {
			victim = id
			break
		}
	}
	c.stop(victim)
	c.fs[victim] = newCrashableMem()
	n := c.open(victim)
	select {
	case <-n.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the wiped node kept running")
	}
	require.ErrorIs(t, n.Err(), ErrDataLost)
	assert.Contains(t, n.Err().Error(), "--join")
}

// TestBadConfiguration: clear errors at start.
func TestBadConfiguration(t *testing.T) {
	c := newTestCluster(t, 3, 8)
	n := c.open(1)
	_ = n
	c.stop(1)
	cases := []struct {
		name string
		edit func(o *Options)
		want string
	}{
		{"peers disagree with the stored membership", func(o *Options) {
			o.Peers = map[uint64]string{1: o.ClusterAddr, 2: "sim-2:7000", 4: "sim-4:7000"}
		}, "disagree with the membership"},
		{"node id not among the peers", func(o *Options) { o.NodeID = 9 }, "not among the peers"},
		{"short secret", func(o *Options) { o.Secret = []byte("short") }, "at least 16 bytes"},
		{"no peers and no join", func(o *Options) { o.Peers = nil }, "give the initial members"},
		{"peers and join", func(o *Options) { o.Join = "http://x" }, "exclusive"},
		{"duplicate address", func(o *Options) {
			o.Peers = map[uint64]string{1: o.ClusterAddr, 2: o.ClusterAddr}
		}, "share the cluster address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := c.options(1)
			tc.edit(o)
			_, err := Open("/data", o)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrBadConfig)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	t.Run("standalone directory", func(t *testing.T) {
		fs := newCrashableMem()
		so := storage.DefaultOptions()
		so.FS = fs
		s, err := storage.Open("/data", so)
		require.NoError(t, err)
		_, err = s.Append(context.Background(), "s", rec("v"))
		require.NoError(t, err)
		require.NoError(t, s.Close())
		o := c.options(1)
		o.Store.FS = fs
		_, err = Open("/data", o)
		require.ErrorIs(t, err, storage.ErrWrongMode)
	})
	t.Run("cluster directory opened standalone", func(t *testing.T) {
		so := storage.DefaultOptions()
		so.FS = c.fs[1]
		_, err := storage.Open("/data", so)
		require.ErrorIs(t, err, storage.ErrWrongMode)
	})
}

// TestLinearizableReadOnFollower: a follower's ReadIndex sees an append
// acknowledged just before it, and fails with no leader.
func TestLinearizableReadOnFollower(t *testing.T) {
	c := newTestCluster(t, 3, 9)
	c.openAll()
	ld := c.leader(10 * time.Second)
	var f *Node
	for id := uint64(1); id <= 3; id++ {
		if id != ld.ID() {
			f = c.node(id)
		}
	}
	for i := range 20 {
		res, err := ld.Store().Append(context.Background(), "s", rec(fmt.Sprint(i)))
		require.NoError(t, err)
		require.NoError(t, f.ReadIndex(context.Background()))
		info, err := f.Store().StreamInfo(context.Background(), "s")
		require.NoError(t, err)
		assert.Equal(t, res.LastOffset+1, info.NextOffset)
	}
	c.closeAll()
	c.open(f.ID())
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := c.node(f.ID()).ReadIndex(ctx)
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrNoLeader) || errors.Is(err, context.DeadlineExceeded), "got %v", err)
}

// TestReadIndexAnswerToEarlierIncarnation: the leader's answer to a read a
// node made before it restarted reaches the restarted node while its own
// first read waits. The answer names a commit index from before appends
// the cluster acknowledged since; it must not complete the new read (which
// would then miss them).
func TestReadIndexAnswerToEarlierIncarnation(t *testing.T) {
	c := newTestCluster(t, 3, 12)
	c.openAll()
	ld := c.leader(10 * time.Second)
	var fid uint64
	for id := uint64(1); id <= 3; id++ {
		if id != ld.ID() {
			fid = id
			break
		}
	}
	ctx := context.Background()
	_, err := ld.Store().Append(ctx, "s", rec("a"))
	require.NoError(t, err)
	// (No read on the follower before the one below: that is its first.)
	require.Eventually(t, func() bool { return c.node(fid).AppliedIndex() >= ld.AppliedIndex() }, 5*time.Second, time.Millisecond)

	// The follower reads; the leader's answer is held back.
	var mu sync.Mutex
	var held *pb.Message
	c.net.setIntercept(func(m *pb.Message) bool {
		if m.GetType() != pb.MessageType_MsgReadIndexResp || m.GetTo() != fid {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if held == nil {
			held = m
		}
		return true
	})
	rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	require.Error(t, c.node(fid).ReadIndex(rctx), "its answer was held back")
	cancel()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return held != nil }, 5*time.Second, time.Millisecond)

	// The follower restarts; meanwhile the cluster acknowledges "b".
	c.stop(fid)
	_, err = ld.Store().Append(ctx, "s", rec("b"))
	require.NoError(t, err)
	// The restarted node hears the leader's heartbeats, but neither its
	// entries nor its answers.
	c.net.setIntercept(func(m *pb.Message) bool {
		if m.GetTo() != fid {
			return false
		}
		switch m.GetType() {
		case pb.MessageType_MsgApp, pb.MessageType_MsgSnap, pb.MessageType_MsgReadIndexResp:
			return true
		}
		return false
	})
	defer c.net.setIntercept(nil)
	n := c.open(fid)
	require.Eventually(t, func() bool { return n.Status().LeaderID == ld.ID() }, 10*time.Second, time.Millisecond)

	done := make(chan error, 1)
	go func() {
		rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		done <- n.ReadIndex(rctx)
	}()
	time.Sleep(30 * time.Millisecond) // the new read is in flight
	mu.Lock()
	n.Receive(held) // the earlier incarnation's answer arrives late
	mu.Unlock()
	if err := <-done; err == nil {
		recs, err := n.Store().Read(ctx, "s", 0, 10)
		require.NoError(t, err)
		assert.Len(t, recs, 2, "a linearizable read after \"b\" was acknowledged must see it")
	} else {
		t.Logf("the new read did not complete (its own answers are held back): %v", err)
	}
}

// TestListenAddr: the transport listens on ListenAddr when it is set, and
// on ClusterAddr otherwise; the membership names ClusterAddr either way.
func TestListenAddr(t *testing.T) {
	for _, tc := range []struct{ name, listen, want string }{
		{"default", "", "sim-1:7000"},
		{"behind a proxy", "127.0.0.1:9999", "127.0.0.1:9999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, 1, 10)
			var got string
			sim := c.net.transport()
			c.tune = func(o *Options) {
				o.ListenAddr = tc.listen
				o.NewTransport = func(tc *TransportConfig) (Transport, error) {
					got = tc.ClusterAddr
					return sim(tc)
				}
			}
			n := c.open(1)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, "sim-1:7000", n.Status().Nodes[0].ClusterAddr)
		})
	}
}
