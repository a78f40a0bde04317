package transport

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
)

// requireRefusal waits until n has counted an auth failure and logged one
// for reason, with the remote address. Other refusals may come first: the
// two nodes learn each other's addresses one after the other, so an early
// dial can be refused as "unknown peer id" before the refusal under test.
func requireRefusal(t *testing.T, n *node, reason string) {
	t.Helper()
	var line string
	ok := assert.Eventually(t, func() bool {
		if n.Stats().AuthFailures == 0 {
			return false
		}
		for _, l := range strings.Split(n.logs.String(), "\n") {
			if strings.Contains(l, "level=WARN") && strings.Contains(l, "connection refused") && strings.Contains(l, reason) {
				line = l
				return true
			}
		}
		return false
	}, waitFor, tick)
	require.True(t, ok, "a Warn line for the refusal (%s) in\n%s", reason, n.logs.String())
	assert.Contains(t, line, "remote=127.0.0.1:")
}

// requireNothingDelivered checks that no message, snapshot or connection
// reached the Handler or the connection state.
func requireNothingDelivered(t *testing.T, nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		assert.Zero(t, n.rec.count(), "node %d received messages", n.id)
		assert.Zero(t, n.Stats().MessagesReceived)
		assert.Zero(t, n.Stats().Connections)
		for _, other := range []uint64{1, 2, 3} {
			assert.False(t, n.Connected(other))
			assert.Empty(t, n.PeerURL(other), "an unauthenticated announcement is not kept")
		}
	}
}

func TestRefused(t *testing.T) {
	cases := []struct {
		name         string
		b            func(*Options) // node 2's options
		dialReason   string         // what node 1 (the dialer to 2) logs
		acceptReason string         // what node 2 logs about node 1's dial
	}{
		{
			name:         "wrong secret",
			b:            func(o *Options) { o.Secret = []byte("a completely different secret") },
			dialReason:   "bad proof",
			acceptReason: "bad proof",
		},
		{
			name:         "wrong cluster id",
			b:            func(o *Options) { o.ClusterID = testClusterID + 1 },
			dialReason:   "wrong cluster id",
			acceptReason: "wrong cluster id",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := startNode(t, 1, nil), startNode(t, 2, c.b)
			addPeers(a, b)
			a.Send([]*raftpb.Message{appMsg(1, 2, 1, 10)})
			b.Send([]*raftpb.Message{appMsg(2, 1, 1, 10)})
			requireRefusal(t, a, c.dialReason)
			requireRefusal(t, b, c.acceptReason)
			// Keep trying for a while: still nothing gets through.
			require.Eventually(t, func() bool { return a.Stats().AuthFailures >= 3 && b.Stats().AuthFailures >= 3 }, waitFor, tick)
			requireNothingDelivered(t, a, b)
			require.Eventually(t, func() bool { return a.rec.unreachableCount(2) > 0 }, waitFor, tick)
		})
	}
}

// Node 1 believes node 2 is at node 3's address: node 3 refuses (it is not
// 2) and node 1 refuses too.
func TestRefusedWrongNodeAtAddress(t *testing.T) {
	a, c := startNode(t, 1, nil), startNode(t, 3, nil)
	a.AddPeer(2, c.Addr())
	a.Send([]*raftpb.Message{appMsg(1, 2, 1, 10)})
	requireRefusal(t, a, "wrong node id")
	requireRefusal(t, c, "wrong node id")
	assert.Zero(t, c.rec.count())
	assert.False(t, a.Connected(2))
}

// Impersonation with the right secret: a dialer that claims an id the
// acceptor does not know, or the acceptor's own id, is refused; an
// authenticated peer's messages that claim another sender, or address
// another node, are dropped and counted.
func TestRefusedImpersonation(t *testing.T) {
	b := startNode(t, 2, nil)
	b.AddPeer(1, "127.0.0.1:1") // knows node 1 (at an address nobody listens on)

	for _, claimed := range []uint64{3, 2, 0} {
		_, err := dialRaw(t, b.Addr(), rawIdentity(claimed), kindStream, 2)
		var ae *authError
		require.ErrorAs(t, err, &ae, "claimed id %d", claimed)
		assert.Equal(t, statusUnknownPeer, ae.status)
	}
	require.Eventually(t, func() bool { return b.Stats().AuthFailures == 3 }, waitFor, tick)
	assert.Contains(t, b.logs.String(), "unknown peer id")

	// Authenticated as 1: forged From and To are dropped, the rest delivered.
	c, err := dialRaw(t, b.Addr(), rawIdentity(1), kindStream, 2)
	require.NoError(t, err)
	good1, forgedFrom, forgedTo, snap, good2 := appMsg(1, 2, 1, 10), appMsg(3, 2, 2, 10), appMsg(1, 4, 3, 10), msg(raftpb.MsgSnap, 1, 2, 4), appMsg(1, 2, 5, 10)
	c.write(t, c.frame(frameMessages, batch(t, good1, forgedFrom, forgedTo, snap, good2)))
	require.Eventually(t, func() bool { return b.rec.count() == 2 }, waitFor, tick)
	requireSameMessages(t, []*raftpb.Message{good1, good2}, b.rec.received())
	assert.Equal(t, uint64(3), b.Stats().MessagesRejected)
	assert.Contains(t, b.logs.String(), "message rejected")
	assert.Equal(t, "http://raw.test", b.PeerURL(1))
	assert.True(t, b.Connected(1))
}
