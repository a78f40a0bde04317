package transport

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
)

// A peer whose Handler blocks stops reading; the sender's writes stall and
// time out, its queue fills, and Send drops and reports instead of
// blocking. Once the Handler returns, messages flow again.
func TestSlowConsumer(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	var blocked atomic.Bool
	b := startNode(t, 2, nil)
	b.rec.onReceive = func(*raftpb.Message) {
		blocked.Store(true)
		<-release
	}
	t.Cleanup(unblock) // before b.Close (cleanups run last-first)
	a := startNode(t, 1, func(o *Options) {
		o.QueueSize = 16
		o.WriteTimeout = 200 * time.Millisecond
	})
	mesh(t, a, b)

	// Send far more than the socket buffers hold (64 KiB entries) from a
	// goroutine owned by the test. Every Send must return: the loop ends.
	const sends = 2000
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range uint64(sends) {
			a.Send([]*raftpb.Message{appMsg(1, 2, i, 64<<10)})
			if i%100 == 99 {
				time.Sleep(5 * time.Millisecond) // let the writer run into its deadline
			}
		}
		done.Store(true)
	}()
	require.Eventually(t, done.Load, waitFor, tick, "Send blocked on a slow peer")
	wg.Wait()
	assert.True(t, blocked.Load())
	s := a.Stats()
	assert.Greater(t, s.MessagesDropped, uint64(sends/2), "most messages were dropped, not queued")
	assert.Positive(t, a.rec.unreachableCount(2), "drops are reported")
	assert.Less(t, s.MessagesSent, uint64(sends))

	// The stalled write times out (WriteTimeout), the connection is dropped
	// and dialed again, and stalls again while the Handler stays blocked.
	conns := s.Connections
	require.Eventually(t, func() bool {
		a.Send([]*raftpb.Message{appMsg(1, 2, 0, 64<<10)})
		return a.Stats().Connections > conns
	}, waitFor, 20*tick)
	assert.Contains(t, a.logs.String(), "i/o timeout")

	// Unblocked: a fresh message gets through.
	unblock()
	require.Eventually(t, func() bool {
		a.Send([]*raftpb.Message{appMsg(1, 2, 1_000_000, 10)})
		for _, m := range b.rec.received() {
			if m.GetIndex() == 1_000_000 {
				return true
			}
		}
		return false
	}, waitFor, 20*tick)
}

// A full queue drops on Send itself: one report per Send call per peer.
func TestQueueFullReportsOncePerSend(t *testing.T) {
	// A listener that never answers: the sender is stuck in its handshake
	// (HandshakeTimeout), so nothing drains the queue meanwhile.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer silent.Close()
	a := startNode(t, 1, func(o *Options) {
		o.QueueSize = 4
		o.HandshakeTimeout = 300 * time.Millisecond
	})
	a.AddPeer(2, silent.Addr().String())
	var msgs []*raftpb.Message
	for i := range uint64(50) {
		msgs = append(msgs, appMsg(1, 2, i, 10))
	}
	a.Send(msgs)
	assert.Equal(t, uint64(50-4), a.Stats().MessagesDropped)
	assert.Equal(t, 1, a.rec.unreachableCount(2), "one report per Send call")
	// The handshake times out; the queued four are dropped and reported.
	require.Eventually(t, func() bool { return a.Stats().MessagesDropped == 50 }, waitFor, tick)
	require.Eventually(t, func() bool { return a.rec.unreachableCount(2) == 2 }, waitFor, tick)
	assert.Equal(t, uint64(1), a.Stats().HandshakeFailures)
}

// An authenticated peer that goes silent is cut off after IdleTimeout; the
// acceptor's heartbeats reach it meanwhile.
func TestIdleConnectionClosed(t *testing.T) {
	b := startNode(t, 2, func(o *Options) {
		o.HeartbeatInterval = 20 * time.Millisecond
		o.IdleTimeout = 300 * time.Millisecond
	})
	b.AddPeer(1, "127.0.0.1:1")
	c, err := dialRaw(t, b.Addr(), rawIdentity(1), kindStream, 2)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.Connected(1) }, waitFor, tick)
	r := newFrameReader(c.conn, c.sess.recvKey[:], minFrameBytes)
	heartbeats := 0
	for {
		typ, _, err := r.next()
		if err != nil {
			break // closed by b
		}
		assert.Equal(t, frameHeartbeat, typ)
		heartbeats++
	}
	assert.Positive(t, heartbeats)
	require.Eventually(t, func() bool { return !b.Connected(1) }, waitFor, tick)
	assert.Contains(t, b.logs.String(), "i/o timeout")
	assert.Zero(t, b.Stats().ProtocolErrors, "silence is not a protocol error")
}
