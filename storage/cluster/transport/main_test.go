package transport

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

// TestMain fails the package if any test or benchmark leaves a goroutine
// behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testClusterID = 7
	// waitFor bounds every eventual condition. It is generous: the tests
	// share two cores with whatever else runs (and the race detector).
	waitFor = 30 * time.Second
	tick    = 2 * time.Millisecond
)

var testSecret = []byte("0123456789abcdef-the-cluster-secret")

// recorder is a Handler that records everything.
type recorder struct {
	mu          sync.Mutex
	msgs        []*raftpb.Message
	unreachable map[uint64]int
	snapReports []snapReport
	// onReceive, if set, runs before a message is recorded (e.g. blocks).
	onReceive func(m *raftpb.Message)
	// onSnapshot, if set, handles ReceiveSnapshot; the default drains the
	// body and accepts.
	onSnapshot func(m *raftpb.Message, body io.Reader) error
	snapshots  []*raftpb.Message
}

type snapReport struct {
	id     uint64
	failed bool
}

func newRecorder() *recorder { return &recorder{unreachable: map[uint64]int{}} }

func (r *recorder) Receive(m *raftpb.Message) {
	if r.onReceive != nil {
		r.onReceive(m)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

func (r *recorder) ReceiveSnapshot(m *raftpb.Message, body io.Reader) error {
	r.mu.Lock()
	r.snapshots = append(r.snapshots, m)
	r.mu.Unlock()
	if r.onSnapshot != nil {
		return r.onSnapshot(m, body)
	}
	_, err := io.Copy(io.Discard, body)
	return err
}

func (r *recorder) ReportUnreachable(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unreachable[id]++
}

func (r *recorder) ReportSnapshot(id uint64, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snapReports = append(r.snapReports, snapReport{id, failed})
}

func (r *recorder) received() []*raftpb.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*raftpb.Message(nil), r.msgs...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *recorder) receivedSnapshots() []*raftpb.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*raftpb.Message(nil), r.snapshots...)
}

func (r *recorder) unreachableCount(id uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unreachable[id]
}

func (r *recorder) reports() []snapReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]snapReport(nil), r.snapReports...)
}

func (r *recorder) receivedFrom(from uint64) []*raftpb.Message {
	var out []*raftpb.Message
	for _, m := range r.received() {
		if m.GetFrom() == from {
			out = append(out, m)
		}
	}
	return out
}

// logBuffer collects a transport's log lines; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// node is one transport under test with its handler and its log.
type node struct {
	*Transport
	id   uint64
	rec  *recorder
	logs *logBuffer
	opts *Options
}

// testOptions are short intervals for loopback tests, with timeouts long
// enough that a loaded machine does not trip them.
func testOptions(id uint64, h Handler, logs io.Writer) *Options {
	return &Options{
		NodeID:            id,
		ClusterID:         testClusterID,
		ListenAddr:        "127.0.0.1:0",
		Secret:            testSecret,
		HTTPURL:           "http://node" + string(rune('0'+id%10)) + ".test:8080",
		Handler:           h,
		Logger:            slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		DialTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		HandshakeTimeout:  5 * time.Second,
		HeartbeatInterval: 50 * time.Millisecond,
		IdleTimeout:       5 * time.Second,
		BackoffMin:        5 * time.Millisecond,
		BackoffMax:        50 * time.Millisecond,
	}
}

// startNode starts a transport; mutate may change its options first. The
// transport is closed at the end of the test (if the test did not).
func startNode(t testing.TB, id uint64, mutate func(*Options)) *node {
	t.Helper()
	rec := newRecorder()
	logs := &logBuffer{}
	o := testOptions(id, rec, logs)
	if mutate != nil {
		mutate(o)
	}
	tr, err := New(o)
	require.NoError(t, err)
	n := &node{Transport: tr, id: id, rec: rec, logs: logs, opts: o}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("close node %d: %v", id, err)
		}
		if t.Failed() {
			t.Logf("node %d log:\n%s", id, logs.String())
		}
	})
	return n
}

// addPeers makes every node a peer of every other.
func addPeers(nodes ...*node) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.AddPeer(b.id, b.Addr())
			}
		}
	}
}

// mesh makes every node a peer of every other and waits until every
// outgoing stream is up. (A node that dials before the other has added it
// is refused as an unknown peer, and the messages queued meanwhile are
// dropped: raft would retry them, a test would not.)
func mesh(t testing.TB, nodes ...*node) {
	t.Helper()
	addPeers(nodes...)
	require.Eventually(t, func() bool {
		for _, a := range nodes {
			for _, b := range nodes {
				if a != b && !a.outgoingUp(b.id) {
					return false
				}
			}
		}
		return true
	}, waitFor, tick)
}

// outgoingUp reports whether the outgoing stream to peer id is up.
func (n *node) outgoingUp(id uint64) bool {
	p := n.peer(id)
	return p != nil && p.outUp.Load()
}

// msg builds a message of type typ from -> to with distinguishing fields.
func msg(typ raftpb.MessageType, from, to, index uint64) *raftpb.Message {
	return &raftpb.Message{
		Type:  typ.Enum(),
		From:  proto.Uint64(from),
		To:    proto.Uint64(to),
		Term:  proto.Uint64(3),
		Index: proto.Uint64(index),
	}
}

// appMsg is a MsgApp carrying one entry of payload bytes.
func appMsg(from, to, index uint64, payload int) *raftpb.Message {
	m := msg(raftpb.MsgApp, from, to, index)
	data := make([]byte, payload)
	for i := range data {
		data[i] = byte(index + uint64(i))
	}
	m.Entries = []*raftpb.Entry{{Term: proto.Uint64(3), Index: proto.Uint64(index + 1), Type: raftpb.EntryNormal.Enum(), Data: data}}
	m.Commit = proto.Uint64(index)
	return m
}

// requireSameMessages checks got equals want, in order.
func requireSameMessages(t *testing.T, want, got []*raftpb.Message) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Truef(t, proto.Equal(want[i], got[i]), "message %d: want %v, got %v", i, want[i], got[i])
	}
}

// rawClient is a hand-driven dialer for hostile-input tests: it runs the
// real handshake with any identity and then writes whatever it likes.
type rawClient struct {
	conn net.Conn
	sess *session
	fw   *frameWriter
	sent bytes.Buffer // every byte written after the handshake
}

// rawIdentity is a dialer identity: the test secret and cluster by default.
func rawIdentity(nodeID uint64) *handshakeConfig {
	return &handshakeConfig{secret: testSecret, clusterID: testClusterID, nodeID: nodeID, url: "http://raw.test", addr: "127.0.0.1:1", rand: rand.Reader}
}

func dialRaw(t testing.TB, addr string, id *handshakeConfig, kind connKind, peerID uint64) (*rawClient, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(waitFor))
	sess, err := dialHandshake(conn, id, kind, peerID)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &rawClient{conn: conn, sess: sess, fw: newFrameWriter(sess.sendKey[:])}, nil
}

// frame seals one frame with the client's key and counter.
func (c *rawClient) frame(typ frameType, body []byte) []byte {
	return c.fw.appendFrame(nil, typ, body)
}

// batch is the body of a messages frame holding msgs.
func batch(t testing.TB, msgs ...*raftpb.Message) []byte {
	var b []byte
	for _, m := range msgs {
		var err error
		b, err = appendMessage(b, m, messageSize(m))
		require.NoError(t, err)
	}
	return b
}

func (c *rawClient) write(t testing.TB, b []byte) {
	t.Helper()
	c.sent.Write(b)
	_, err := c.conn.Write(b)
	require.NoError(t, err)
}

// requireClosedByPeer reads conn until it fails and requires that the
// other side closed it (not a timeout of ours).
func requireClosedByPeer(t testing.TB, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	buf := make([]byte, 4096)
	for {
		_, err := conn.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "the connection was not closed by the peer: %v", err)
		return
	}
}
