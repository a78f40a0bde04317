package transport

import (
	"bytes"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
)

func TestOptions(t *testing.T) {
	h := newRecorder()
	base := func() *Options {
		return &Options{NodeID: 1, ListenAddr: "127.0.0.1:0", Secret: bytes.Clone(testSecret), Handler: h}
	}
	cases := map[string]func(o *Options){
		"NodeID 0":              func(o *Options) { o.NodeID = 0 },
		"no ListenAddr":         func(o *Options) { o.ListenAddr = "" },
		"short secret":          func(o *Options) { o.Secret = []byte("fifteen bytes!!") },
		"no Handler":            func(o *Options) { o.Handler = nil },
		"long HTTPURL":          func(o *Options) { o.HTTPURL = string(make([]byte, MaxAnnounceBytes+1)) },
		"negative QueueSize":    func(o *Options) { o.QueueSize = -1 },
		"tiny MaxFrameBytes":    func(o *Options) { o.MaxFrameBytes = 1024 },
		"huge MaxFrameBytes":    func(o *Options) { o.MaxFrameBytes = maxFrameBytes + 1 },
		"BatchBytes over max":   func(o *Options) { o.BatchBytes = DefaultMaxFrameBytes + 1 },
		"chunk over max":        func(o *Options) { o.SnapshotChunkBytes = DefaultMaxFrameBytes + 1 },
		"negative timeout":      func(o *Options) { o.WriteTimeout = -1 },
		"idle under heartbeat":  func(o *Options) { o.IdleTimeout = o.HeartbeatInterval; o.HeartbeatInterval = 2 * DefaultIdleTimeout },
		"backoff max under min": func(o *Options) { o.BackoffMin = DefaultBackoffMax + 1 },
		"unusable ListenAddr":   func(o *Options) { o.ListenAddr = "not an address" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			o := base()
			mutate(o)
			tr, err := New(o)
			require.Error(t, err)
			assert.Nil(t, tr)
			if name != "unusable ListenAddr" {
				assert.ErrorIs(t, err, ErrInvalidOptions)
			}
		})
	}

	t.Run("defaults filled, caller's options untouched", func(t *testing.T) {
		o := base()
		before := *o
		tr, err := New(o)
		require.NoError(t, err)
		defer tr.Close()
		assert.Equal(t, before, *o)
		d := DefaultOptions()
		assert.Equal(t, d.QueueSize, tr.opts.QueueSize)
		assert.Equal(t, d.MaxFrameBytes, tr.opts.MaxFrameBytes)
		assert.Equal(t, d.IdleTimeout, tr.opts.IdleTimeout)
		assert.NotNil(t, tr.opts.Logger)
		o.Secret[0] ^= 1 // the transport has its own copy
		assert.Equal(t, testSecret, tr.opts.Secret)
		_, port, err := net.SplitHostPort(tr.Addr())
		require.NoError(t, err)
		assert.NotEqual(t, "0", port)
		require.NoError(t, tr.Close())
		assert.ErrorIs(t, tr.Close(), ErrClosed)
	})
}

// everyType is one message of every type but MsgSnap from -> to, with the
// fields raft uses, then some MsgApp with entries.
func everyType(from, to uint64) []*raftpb.Message {
	var out []*raftpb.Message
	for typ := range int32(len(raftpb.MessageType_name)) {
		if raftpb.MessageType(typ) == raftpb.MsgSnap {
			continue
		}
		m := msg(raftpb.MessageType(typ), from, to, uint64(100+typ))
		m.Commit = newUint64(uint64(typ))
		m.Context = []byte(fmt.Sprintf("context %d", typ))
		if typ%2 == 0 {
			m.Reject = newBool(true)
			m.RejectHint = newUint64(9)
		}
		out = append(out, m)
	}
	for i := range uint64(10) {
		out = append(out, appMsg(from, to, 1000+i, int(i)*100))
	}
	return out
}

func newUint64(v uint64) *uint64 { return &v }
func newBool(v bool) *bool       { return &v }

func TestExchangeTwoNodes(t *testing.T) {
	a, b := startNode(t, 1, nil), startNode(t, 2, nil)
	mesh(t, a, b)
	// mesh may see a refusal (one node dials before the other knows it);
	// count from here.
	sa0, sb0 := a.Stats(), b.Stats()
	ab, ba := everyType(1, 2), everyType(2, 1)
	a.Send(ab)
	b.Send(ba)
	require.Eventually(t, func() bool { return b.rec.count() == len(ab) && a.rec.count() == len(ba) }, waitFor, tick)
	requireSameMessages(t, ab, b.rec.received())
	requireSameMessages(t, ba, a.rec.received())
	require.Eventually(t, func() bool { return a.Connected(2) && b.Connected(1) }, waitFor, tick)
	assert.Equal(t, "http://node2.test:8080", a.PeerURL(2))
	assert.Equal(t, "http://node1.test:8080", b.PeerURL(1))
	assert.Equal(t, "", a.PeerURL(3))
	assert.False(t, a.Connected(3))

	// The sender counts a write after it returns, which can be after the
	// receiver has delivered it.
	require.Eventually(t, func() bool { return a.Stats().MessagesSent == uint64(len(ab)) }, waitFor, tick)
	sa, sb := a.Stats(), b.Stats()
	assert.Equal(t, uint64(len(ab)), sa.MessagesSent)
	assert.Equal(t, uint64(len(ab)), sb.MessagesReceived)
	assert.Zero(t, sa.MessagesDropped+sb.MessagesDropped+sa.MessagesRejected+sb.MessagesRejected)
	assert.Zero(t, sa.AuthFailures-sa0.AuthFailures+sb.AuthFailures-sb0.AuthFailures+sa.ProtocolErrors+sb.ProtocolErrors)
	assert.NotZero(t, sa.BytesSent)
	assert.NotZero(t, sb.BytesReceived)
	assert.Zero(t, a.rec.unreachableCount(2))
}

// A large batch crosses several frames (BatchBytes) and one message is
// larger than BatchBytes alone; all arrive, in order.
func TestExchangeLargeBatches(t *testing.T) {
	a, b := startNode(t, 1, func(o *Options) { o.BatchBytes = 16 << 10 }), startNode(t, 2, nil)
	mesh(t, a, b)
	var want []*raftpb.Message
	for i := range uint64(3000) {
		size := 200
		if i == 1500 {
			size = 3 << 20
		}
		want = append(want, appMsg(1, 2, i, size))
	}
	for i := 0; i < len(want); i += 1000 { // Send calls of 1000, under the queue's 4096
		a.Send(want[i : i+1000])
	}
	require.Eventually(t, func() bool { return b.rec.count() == len(want) }, waitFor, tick)
	requireSameMessages(t, want, b.rec.received())
	s := a.Stats()
	assert.Greater(t, s.FramesSent, uint64(30), "BatchBytes splits the batch")
	assert.Less(t, s.FramesSent, uint64(len(want)), "messages are batched into frames")
	assert.Zero(t, s.MessagesDropped)
}

func TestExchangeThreeNodes(t *testing.T) {
	nodes := []*node{startNode(t, 1, nil), startNode(t, 2, nil), startNode(t, 3, nil)}
	mesh(t, nodes...)
	want := map[[2]uint64][]*raftpb.Message{}
	for round := range 5 {
		for _, from := range nodes {
			for _, to := range nodes {
				if from == to {
					continue
				}
				var batch []*raftpb.Message
				for i := range 50 {
					batch = append(batch, appMsg(from.id, to.id, uint64(round*100+i), 64))
				}
				want[[2]uint64{from.id, to.id}] = append(want[[2]uint64{from.id, to.id}], batch...)
				from.Send(batch)
			}
		}
	}
	require.Eventually(t, func() bool {
		for _, n := range nodes {
			if n.rec.count() != 2*5*50 {
				return false
			}
		}
		return true
	}, waitFor, tick)
	for _, to := range nodes {
		for _, from := range nodes {
			if from != to {
				requireSameMessages(t, want[[2]uint64{from.id, to.id}], to.rec.receivedFrom(from.id))
				assert.Equal(t, from.opts.HTTPURL, to.PeerURL(from.id))
			}
		}
	}
}

func TestAddRemovePeer(t *testing.T) {
	a, b := startNode(t, 1, nil), startNode(t, 2, nil)
	mesh(t, a, b)
	a.Send([]*raftpb.Message{appMsg(1, 2, 1, 10)})
	require.Eventually(t, func() bool { return b.rec.count() == 1 && a.Connected(2) }, waitFor, tick)

	// Idempotent: the same address again keeps the connection.
	conns := a.Stats().Connections
	a.AddPeer(2, b.Addr())
	a.Send([]*raftpb.Message{appMsg(1, 2, 2, 10)})
	require.Eventually(t, func() bool { return b.rec.count() == 2 }, waitFor, tick)
	assert.Equal(t, conns, a.Stats().Connections)

	// Ignored ids.
	a.AddPeer(0, b.Addr())
	a.AddPeer(1, b.Addr())
	assert.False(t, a.Connected(1))

	// Removed: sends to it are dropped and reported, connections both ways
	// close, and b's reconnects are refused as an unknown peer.
	a.RemovePeer(2)
	a.RemovePeer(2) // unknown now: ignored
	assert.False(t, a.Connected(2))
	assert.Equal(t, "", a.PeerURL(2))
	a.Send([]*raftpb.Message{appMsg(1, 2, 3, 10)})
	assert.Equal(t, 1, a.rec.unreachableCount(2))
	require.Eventually(t, func() bool { return !b.Connected(1) }, waitFor, tick)
	b.Send([]*raftpb.Message{appMsg(2, 1, 1, 10)})
	require.Eventually(t, func() bool { return a.Stats().AuthFailures > 0 && b.Stats().AuthFailures > 0 }, waitFor, tick)
	assert.Contains(t, a.logs.String(), "unknown peer id")
	assert.Zero(t, a.rec.count())

	// Added back: both directions work again.
	a.AddPeer(2, b.Addr())
	require.Eventually(t, func() bool {
		a.Send([]*raftpb.Message{appMsg(1, 2, 4, 10)})
		b.Send([]*raftpb.Message{appMsg(2, 1, 2, 10)})
		return b.rec.count() > 2 && a.rec.count() > 0
	}, waitFor, 20*tick)
}

// AddPeer with a new address moves the outgoing stream there.
func TestAddPeerNewAddress(t *testing.T) {
	a, b := startNode(t, 1, nil), startNode(t, 2, nil)
	mesh(t, a, b)
	require.Eventually(t, func() bool {
		a.Send([]*raftpb.Message{appMsg(1, 2, 1, 10)})
		return b.rec.count() > 0
	}, waitFor, 20*tick)
	b2 := startNode(t, 2, nil) // the same node id on a new port
	b2.AddPeer(1, a.Addr())
	a.AddPeer(2, b2.Addr())
	require.Eventually(t, func() bool {
		a.Send([]*raftpb.Message{appMsg(1, 2, 2, 10)})
		return b2.rec.count() > 0
	}, waitFor, 20*tick)
}

func TestReconnectAfterPeerRestart(t *testing.T) {
	a, b := startNode(t, 1, nil), startNode(t, 2, nil)
	mesh(t, a, b)
	require.Eventually(t, func() bool {
		a.Send([]*raftpb.Message{appMsg(1, 2, 1, 10)})
		return b.rec.count() > 0 && a.Connected(2)
	}, waitFor, 20*tick)

	addr := b.Addr()
	require.NoError(t, b.Close())
	require.Eventually(t, func() bool { return !a.Connected(2) }, waitFor, tick)
	a.Send([]*raftpb.Message{appMsg(1, 2, 2, 10)}) // dropped while b is down, reported
	require.Eventually(t, func() bool { return a.rec.unreachableCount(2) > 0 }, waitFor, tick)

	b2 := startNode(t, 2, func(o *Options) { o.ListenAddr = addr })
	b2.AddPeer(1, a.Addr())
	require.Eventually(t, func() bool {
		a.Send([]*raftpb.Message{appMsg(1, 2, 3, 10)})
		b2.Send([]*raftpb.Message{appMsg(2, 1, 1, 10)})
		return b2.rec.count() > 0 && a.rec.count() > 0
	}, waitFor, 20*tick)
	assert.True(t, a.Connected(2))
	assert.Equal(t, uint64(3), b2.rec.received()[0].GetIndex(), "nothing stale arrives after the restart")
}

func TestSendUnknownPeerAndAfterClose(t *testing.T) {
	a := startNode(t, 1, nil)
	a.Send([]*raftpb.Message{appMsg(1, 5, 1, 10), appMsg(1, 5, 2, 10), appMsg(1, 6, 1, 10), nil})
	assert.Equal(t, 1, a.rec.unreachableCount(5), "one report per peer per Send")
	assert.Equal(t, 1, a.rec.unreachableCount(6))
	assert.Equal(t, uint64(3), a.Stats().MessagesDropped)

	require.NoError(t, a.Close())
	a.AddPeer(2, "127.0.0.1:1")
	a.Send([]*raftpb.Message{appMsg(1, 2, 1, 10)})
	assert.Equal(t, 0, a.rec.unreachableCount(2), "nothing is reported after Close")
	assert.False(t, a.Connected(2))
}

// raft hands MsgApps to different followers that share the same *Entry
// values; the peers' sender goroutines encode them concurrently (the race
// detector checks this).
func TestSharedEntriesAcrossPeers(t *testing.T) {
	nodes := []*node{startNode(t, 1, nil), startNode(t, 2, nil), startNode(t, 3, nil)}
	mesh(t, nodes...)
	shared := appMsg(1, 2, 0, 1000).Entries
	var want2, want3 []*raftpb.Message
	for i := range uint64(200) {
		m2, m3 := msg(raftpb.MsgApp, 1, 2, i), msg(raftpb.MsgApp, 1, 3, i)
		m2.Entries, m3.Entries = shared, shared
		want2, want3 = append(want2, m2), append(want3, m3)
		nodes[0].Send([]*raftpb.Message{m2, m3})
	}
	require.Eventually(t, func() bool { return nodes[1].rec.count() == 200 && nodes[2].rec.count() == 200 }, waitFor, tick)
	requireSameMessages(t, want2, nodes[1].rec.received())
	requireSameMessages(t, want3, nodes[2].rec.received())
}
