package transport

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

const fuzzMaxBody = 1 << 16

// frameSeeds are well-formed frame streams sealed with testKey, and
// damaged versions of them.
func frameSeeds(t testing.TB) [][]byte {
	w := newFrameWriter(testKey)
	var s []byte
	s = w.appendFrame(s, frameMessages, batch(t, everyType(1, 2)...))
	s = w.appendFrame(s, frameHeartbeat, nil)
	s = w.appendFrame(s, frameSnapshotChunk, []byte("chunk"))
	s = w.appendFrame(s, frameSnapshotEnd, nil)
	s = w.appendFrame(s, frameSnapshotAck, []byte{ackFailed, 'n', 'o'})
	one := newFrameWriter(testKey).appendFrame(nil, frameMessages, batch(t, appMsg(1, 2, 3, 40)))
	flipped := bytes.Clone(one)
	flipped[frameHeaderSize+4] ^= 1
	return [][]byte{nil, {0}, s, one, one[:len(one)-3], flipped, batch(t, appMsg(1, 2, 9, 5), msg(raftpb.MsgHeartbeat, 1, 2, 0))}
}

// FuzzReadFrame reads arbitrary bytes as a frame stream, and seals them as
// the body of a messages frame and decodes that. The reader must never
// panic or allocate past its bounds, must report damage as ErrFrame (or a
// clean io.EOF), and whatever it accepts must re-encode to the same bytes;
// a batch it accepts must re-encode to messages that decode equal.
func FuzzReadFrame(f *testing.F) {
	for _, s := range frameSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// The bytes as a stream of frames.
		r := newFrameReader(bytes.NewReader(data), testKey, fuzzMaxBody)
		w := newFrameWriter(testKey)
		for {
			start := r.bytes
			typ, body, err := r.next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					require.ErrorIs(t, err, ErrFrame)
				}
				break
			}
			again := w.appendFrame(nil, typ, body)
			require.Equal(t, data[start:r.bytes], again, "an accepted frame re-encodes to its bytes")
			if typ == frameMessages {
				checkBatch(t, body)
			}
		}
		// The bytes as a messages body, sealed.
		if len(data) == 0 || len(data) > fuzzMaxBody {
			return
		}
		sealed := newFrameWriter(testKey).appendFrame(nil, frameMessages, data)
		typ, body, err := newFrameReader(bytes.NewReader(sealed), testKey, fuzzMaxBody).next()
		require.NoError(t, err)
		require.Equal(t, frameMessages, typ)
		require.Equal(t, data, body)
		checkBatch(t, body)
	})
}

// checkBatch decodes body; if accepted, its messages re-encode and decode
// to equal messages.
func checkBatch(t *testing.T, body []byte) {
	msgs, err := decodeBatch(body, nil, 0)
	if err != nil {
		require.ErrorIs(t, err, ErrFrame)
		require.Empty(t, msgs)
		return
	}
	require.NotEmpty(t, msgs)
	var again []byte
	for _, m := range msgs {
		again, err = appendMessage(again, m, messageSize(m))
		require.NoError(t, err)
	}
	msgs2, err := decodeBatch(again, nil, 0)
	require.NoError(t, err)
	require.Len(t, msgs2, len(msgs))
	for i := range msgs {
		require.True(t, proto.Equal(msgs[i], msgs2[i]))
	}
}

// scriptConn plays a recorded peer: reads come from the script, writes are
// discarded.
type scriptConn struct{ r *bytes.Reader }

func (c *scriptConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) { return len(p), nil }

// fuzzIdentity is a node with a fixed nonce sequence, so that a recorded
// transcript replays against it.
func fuzzIdentity(nodeID uint64) *handshakeConfig {
	id := identity(nodeID, testSecret, 42)
	id.url, id.addr = "http://fuzz", "127.0.0.1:9"
	return id
}

// recordHandshake runs a real handshake between node 1 (dialer) and node 2
// (acceptor), both with fixed nonces, and returns what each side wrote,
// followed by frames sealed with that side's session key.
func recordHandshake(t testing.TB, kind connKind) (dialerBytes, acceptorBytes []byte) {
	c1, c2 := net.Pipe()
	d := &capturingConn{Conn: c1}
	a := &capturingConn{Conn: c2}
	done := make(chan *session, 1)
	go func() {
		s, _ := acceptHandshake(a, fuzzIdentity(2), func(uint64) status { return statusOK })
		done <- s
	}()
	ds, err := dialHandshake(d, fuzzIdentity(1), kind, 2)
	require.NoError(t, err)
	as := <-done
	require.NotNil(t, as)
	c1.Close()
	c2.Close()
	dw := newFrameWriter(ds.sendKey[:])
	dialerBytes = d.written.Bytes()
	if kind == kindStream {
		dialerBytes = dw.appendFrame(dialerBytes, frameMessages, batch(t, appMsg(1, 2, 1, 20), msg(raftpb.MsgHeartbeat, 1, 2, 0)))
		dialerBytes = dw.appendFrame(dialerBytes, frameHeartbeat, nil)
	} else {
		body, err := proto.Marshal(snapMsg(1, 2, 5))
		require.NoError(t, err)
		dialerBytes = dw.appendFrame(dialerBytes, frameSnapshotMessage, body)
		dialerBytes = dw.appendFrame(dialerBytes, frameSnapshotChunk, []byte("body"))
		dialerBytes = dw.appendFrame(dialerBytes, frameSnapshotEnd, nil)
	}
	aw := newFrameWriter(as.sendKey[:])
	acceptorBytes = aw.appendFrame(a.written.Bytes(), frameHeartbeat, nil)
	return dialerBytes, acceptorBytes
}

// FuzzHandshake plays arbitrary bytes as the peer of a handshake, on both
// sides: as what a dialer sent to node 2 (acceptor), and as what an
// acceptor sent to node 1 (dialer). Nonces are fixed, so the recorded seeds
// complete the handshake and go on into frames. Nothing may panic; a
// refusal wraps ErrHandshake or ErrAuth; an accepted peer is the expected
// one, in our cluster; then its frames are read as a real connection would.
func FuzzHandshake(f *testing.F) {
	for _, kind := range []connKind{kindStream, kindSnapshot} {
		d, a := recordHandshake(f, kind)
		f.Add(d)
		f.Add(a)
		f.Add(d[:helloFixedSize+20])
		f.Add(a[:len(a)-frameOverhead-1])
	}
	h := hello{version: protocolVersion, kind: kindStream, clusterID: testClusterID, from: 1, to: 2}
	f.Add(appendHello(nil, &h))
	f.Add([]byte("BBCT"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Parsing alone: an accepted hello re-encodes to its bytes.
		if hl, raw, err := readHello(bytes.NewReader(data)); err == nil {
			require.Equal(t, raw, appendHello(nil, &hl))
			require.Equal(t, data[:len(raw)], raw)
		} else {
			require.ErrorIs(t, err, ErrHandshake)
		}

		// As the acceptor (node 2, which knows node 1 only).
		conn := &scriptConn{r: bytes.NewReader(data)}
		s, err := acceptHandshake(conn, fuzzIdentity(2), func(id uint64) status {
			if id == 1 {
				return statusOK
			}
			return statusUnknownPeer
		})
		if err != nil {
			requireHandshakeError(t, err)
		} else {
			require.Equal(t, uint64(1), s.peer.from)
			require.Equal(t, uint64(2), s.peer.to)
			require.Equal(t, uint64(testClusterID), s.peer.clusterID)
			readAll(t, conn, s)
		}

		// As the dialer (node 1, expecting node 2).
		conn = &scriptConn{r: bytes.NewReader(data)}
		s, err = dialHandshake(conn, fuzzIdentity(1), kindStream, 2)
		if err != nil {
			requireHandshakeError(t, err)
		} else {
			require.Equal(t, uint64(2), s.peer.from)
			require.Equal(t, uint64(testClusterID), s.peer.clusterID)
			readAll(t, conn, s)
		}
	})
}

func requireHandshakeError(t *testing.T, err error) {
	if !errors.Is(err, ErrHandshake) && !errors.Is(err, ErrAuth) {
		t.Fatalf("a refusal that is neither ErrHandshake nor ErrAuth: %v", err)
	}
}

// readAll reads the rest of the script as frames with the session's key.
func readAll(t *testing.T, conn *scriptConn, s *session) {
	r := newFrameReader(conn, s.recvKey[:], fuzzMaxBody)
	for {
		typ, body, err := r.next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				require.ErrorIs(t, err, ErrFrame)
			}
			return
		}
		if typ == frameMessages {
			checkBatch(t, body)
		}
		if typ == frameSnapshotMessage {
			_, _ = decodeMessage(body, 0)
		}
	}
}
