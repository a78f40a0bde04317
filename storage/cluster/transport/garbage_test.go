package transport

import (
	"bytes"
	"encoding/binary"
	mrand "math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
)

// hostile returns the messages b received that are not from honestExchange.
func hostile(b *node) []*raftpb.Message {
	var out []*raftpb.Message
	for _, m := range b.rec.received() {
		if m.GetIndex() < 10_000 {
			out = append(out, m)
		}
	}
	return out
}

// honestExchange checks that b still serves an honest peer: a fresh node
// with id 1 connects and delivers, and b answers it.
func honestExchange(t *testing.T, b *node, round uint64) {
	t.Helper()
	a := startNode(t, 1, nil)
	a.AddPeer(2, b.Addr())
	b.AddPeer(1, a.Addr())
	want := uint64(10_000 + round)
	require.Eventually(t, func() bool {
		a.Send([]*raftpb.Message{appMsg(1, 2, want, 10)})
		for _, m := range b.rec.received() {
			if m.GetIndex() == want {
				return true
			}
		}
		return false
	}, waitFor, 20*tick)
	require.NoError(t, a.Close())
}

// garbageTarget is node 2, which knows node 1 (at an address where nobody
// listens, so it does not dial anyone useful).
func garbageTarget(t *testing.T) *node {
	return startNode(t, 2, func(o *Options) {
		o.HandshakeTimeout = 300 * time.Millisecond
		o.MaxFrameBytes = 1 << 20
	})
}

func rawConn(t *testing.T, addr string) net.Conn {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Before any handshake: random bytes, truncated hellos, a slow dialer, a
// recorded session replayed. Each connection is closed by node 2, nothing is
// delivered, and an honest peer is served afterwards.
func TestGarbageBeforeHandshake(t *testing.T) {
	b := garbageTarget(t)
	b.AddPeer(1, "127.0.0.1:1")
	rng := mrand.New(mrand.NewPCG(1, 2))

	h := hello{version: protocolVersion, kind: kindStream, clusterID: testClusterID, from: 1, to: 2, url: "u", addr: "a"}
	validHello := appendHello(nil, &h)

	// A real session's dialer bytes, recorded, to replay.
	rec, err := dialRaw(t, b.Addr(), rawIdentity(1), kindStream, 2)
	require.NoError(t, err)
	rec.write(t, rec.frame(frameMessages, batch(t, appMsg(1, 2, 1, 10))))
	require.Eventually(t, func() bool { return b.rec.count() == 1 }, waitFor, tick)
	// Reconstruct what the dialer sent: its hello and proof are not kept by
	// rawClient, so record a second session through a capturing conn.
	capture := &capturingConn{Conn: rawConn(t, b.Addr())}
	_ = capture.SetDeadline(time.Now().Add(waitFor))
	sess, err := dialHandshake(capture, rawIdentity(1), kindStream, 2)
	require.NoError(t, err)
	fw := newFrameWriter(sess.sendKey[:])
	frame := fw.appendFrame(nil, frameMessages, batch(t, appMsg(1, 2, 2, 10)))
	_, err = capture.Write(frame)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.rec.count() == 2 }, waitFor, tick)
	recorded := capture.written.Bytes()

	cases := map[string][]byte{
		"random 1 byte":     randomBytes(rng, 1),
		"random 67 bytes":   randomBytes(rng, 67),
		"random 4 KiB":      randomBytes(rng, 4096),
		"magic then random": append([]byte("BBCT\x01\x01\x00\x00"), randomBytes(rng, 200)...),
		"half a hello":      validHello[:30],
		"hello without url": validHello[:helloFixedSize],
		"hello, no proof":   validHello,
		"hello, half proof": append(bytes.Clone(validHello), make([]byte, 16)...),
		"hello, zero proof": append(bytes.Clone(validHello), make([]byte, 32)...),
		"session replayed":  recorded,
		"frame, no hello":   frame,
		"nothing":           nil, // a slow dialer: the handshake times out
	}
	round := uint64(0)
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			conn := rawConn(t, b.Addr())
			_ = conn.SetWriteDeadline(time.Now().Add(waitFor))
			_, _ = conn.Write(data) // node 2 may close before it has read all
			requireClosedByPeer(t, conn)
			assert.Len(t, hostile(b), 2, "nothing delivered")
			round++
			honestExchange(t, b, round)
		})
	}
	s := b.Stats()
	assert.GreaterOrEqual(t, s.HandshakeFailures+s.AuthFailures, uint64(len(cases)))
	assert.Zero(t, s.ProtocolErrors)
}

// capturingConn records what is written through it.
type capturingConn struct {
	net.Conn
	written bytes.Buffer
}

func (c *capturingConn) Write(p []byte) (int, error) {
	c.written.Write(p)
	return c.Conn.Write(p)
}

func randomBytes(rng *mrand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// After an authenticated handshake: frames that are truncated, damaged,
// replayed (from this or another connection), reordered, oversize or of the
// wrong type. node 2 closes the connection at the first bad frame, counts a
// protocol error, delivers nothing of that frame or after it, and keeps
// serving honest peers.
func TestGarbageFrames(t *testing.T) {
	b := garbageTarget(t)
	b.AddPeer(1, "127.0.0.1:1")
	good := func(i uint64) *raftpb.Message { return appMsg(1, 2, i, 10) }

	// A frame from an earlier session, for the splice case.
	old, err := dialRaw(t, b.Addr(), rawIdentity(1), kindStream, 2)
	require.NoError(t, err)
	oldFrame := old.frame(frameMessages, batch(t, good(1)))
	old.write(t, oldFrame)
	require.Eventually(t, func() bool { return b.rec.count() == 1 }, waitFor, tick)

	header := func(length uint32, typ frameType) []byte {
		h := make([]byte, frameHeaderSize)
		binary.LittleEndian.PutUint32(h, length)
		h[4] = byte(typ)
		return h
	}
	// Each case writes some frames with a fresh session; wantGood messages
	// of them are delivered before the bad frame.
	cases := []struct {
		name     string
		frames   func(c *rawClient) []byte
		wantGood int
	}{
		{"truncated frame", func(c *rawClient) []byte {
			f := c.frame(frameMessages, batch(t, good(2)))
			return f[:len(f)-5]
		}, 0},
		{"flipped byte in the header", func(c *rawClient) []byte { return flipAt(c.frame(frameMessages, batch(t, good(2))), 1) }, 0},
		{"flipped byte in the body", func(c *rawClient) []byte { return flipAt(c.frame(frameMessages, batch(t, good(2))), frameHeaderSize+3) }, 0},
		{"flipped byte in the MAC", func(c *rawClient) []byte {
			f := c.frame(frameMessages, batch(t, good(2)))
			return flipAt(f, len(f)-1)
		}, 0},
		{"frame of another connection", func(c *rawClient) []byte { return oldFrame }, 0},
		{"valid, then replayed", func(c *rawClient) []byte {
			f := c.frame(frameMessages, batch(t, good(2)))
			return append(bytes.Clone(f), f...)
		}, 1},
		{"reordered", func(c *rawClient) []byte {
			f1 := c.frame(frameMessages, batch(t, good(2)))
			f2 := c.frame(frameMessages, batch(t, good(3)))
			return append(f2, f1...)
		}, 0},
		{"oversize length", func(c *rawClient) []byte { return header(1<<20+1, frameMessages) }, 0},
		{"maximal length", func(c *rawClient) []byte { return header(^uint32(0), frameMessages) }, 0},
		{"unknown type", func(c *rawClient) []byte { return c.frame(frameType(99), nil) }, 0},
		{"snapshot chunk on a stream", func(c *rawClient) []byte { return c.frame(frameSnapshotChunk, []byte("x")) }, 0},
		{"undecodable batch", func(c *rawClient) []byte { return c.frame(frameMessages, []byte{5, 1}) }, 0},
		{"valid, then garbage", func(c *rawClient) []byte {
			return append(c.frame(frameMessages, batch(t, good(2))), 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8)
		}, 1},
	}
	round := uint64(0)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b.rec.mu.Lock()
			b.rec.msgs = nil
			b.rec.mu.Unlock()
			protoErrs := b.Stats().ProtocolErrors
			cl, err := dialRaw(t, b.Addr(), rawIdentity(1), kindStream, 2)
			require.NoError(t, err)
			_, _ = cl.conn.Write(c.frames(cl))
			// End our side, so that a truncated frame is seen as truncated
			// rather than as a slow peer.
			_ = cl.conn.(*net.TCPConn).CloseWrite()
			requireClosedByPeer(t, cl.conn)
			require.Eventually(t, func() bool { return b.Stats().ProtocolErrors == protoErrs+1 }, waitFor, tick)
			assert.Len(t, hostile(b), c.wantGood)
			for _, m := range hostile(b) {
				assert.Equal(t, uint64(2), m.GetIndex(), "only the valid frame before the bad one")
			}
			assert.Contains(t, b.logs.String(), "bad frame; connection closed")
			round++
			honestExchange(t, b, round)
		})
	}
}

func flipAt(b []byte, i int) []byte {
	b[i] ^= 0x10
	return b
}
