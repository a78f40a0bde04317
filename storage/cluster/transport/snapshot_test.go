package transport

import (
	"crypto/sha256"
	"errors"
	"io"
	mrand "math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// snapMsg is a MsgSnap from -> to at index.
func snapMsg(from, to, index uint64) *raftpb.Message {
	m := msg(raftpb.MsgSnap, from, to, 0)
	m.Snapshot = &raftpb.Snapshot{
		Data: []byte("checkpoint manifest"),
		Metadata: &raftpb.SnapshotMetadata{
			Index:     proto.Uint64(index),
			Term:      proto.Uint64(3),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		},
	}
	return m
}

// testSource writes size pseudo-random bytes (from seed) in 32 KiB writes
// from one reused buffer, and records their SHA-256. failAfter >= 0 makes
// it fail once that many bytes are written.
type testSource struct {
	size      int64
	failAfter int64
	// progress, if set, is called after every write with the bytes so far.
	progress func(n int64)
	mu       sync.Mutex
	sums     [][sha256.Size]byte
}

func newTestSource(size int64) *testSource { return &testSource{size: size, failAfter: -1} }

var errSourceFailed = errors.New("test source failed")

func (s *testSource) WriteSnapshot(m *raftpb.Message, w io.Writer) error {
	h := sha256.New()
	rng := mrand.NewChaCha8([32]byte{byte(m.GetSnapshot().GetMetadata().GetIndex())})
	buf := make([]byte, 32<<10)
	for n := int64(0); n < s.size; {
		if s.failAfter >= 0 && n >= s.failAfter {
			return errSourceFailed
		}
		k := int(min(int64(len(buf)), s.size-n))
		_, _ = rng.Read(buf[:k])
		h.Write(buf[:k])
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n += int64(k)
		if s.progress != nil {
			s.progress(n)
		}
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	s.mu.Lock()
	s.sums = append(s.sums, sum)
	s.mu.Unlock()
	return nil
}

// hashingReceiver makes r hash each snapshot body it receives.
type hashingReceiver struct {
	mu    sync.Mutex
	sums  [][sha256.Size]byte
	sizes []int64
}

func (h *hashingReceiver) receive(_ *raftpb.Message, body io.Reader) error {
	d := sha256.New()
	n, err := io.CopyBuffer(d, body, make([]byte, 64<<10))
	if err != nil {
		return err
	}
	var sum [sha256.Size]byte
	d.Sum(sum[:0])
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sums = append(h.sums, sum)
	h.sizes = append(h.sizes, n)
	return nil
}

func snapshotPair(t *testing.T, src SnapshotSource, mutate func(*Options)) (a, b *node) {
	a = startNode(t, 1, func(o *Options) {
		o.Snapshots = src
		if mutate != nil {
			mutate(o)
		}
	})
	b = startNode(t, 2, mutate)
	mesh(t, a, b)
	return a, b
}

func waitReport(t *testing.T, n *node, want snapReport) {
	t.Helper()
	require.Eventually(t, func() bool { return len(n.rec.reports()) > 0 }, waitFor, tick)
	assert.Equal(t, []snapReport{want}, n.rec.reports())
}

func TestSnapshotTransfer(t *testing.T) {
	for _, size := range []int64{0, 1, DefaultSnapshotChunkBytes, 3*DefaultSnapshotChunkBytes + 12345} {
		src := newTestSource(size)
		a, b := snapshotPair(t, src, nil)
		hr := &hashingReceiver{}
		b.rec.onSnapshot = hr.receive
		m := snapMsg(1, 2, 100)
		a.Send([]*raftpb.Message{m, appMsg(1, 2, 5, 10)})
		waitReport(t, a, snapReport{2, false})
		hr.mu.Lock()
		require.Len(t, hr.sums, 1)
		assert.Equal(t, src.sums[0], hr.sums[0], "body integrity")
		assert.Equal(t, size, hr.sizes[0])
		hr.mu.Unlock()
		snaps := b.rec.receivedSnapshots()
		require.Len(t, snaps, 1)
		assert.True(t, proto.Equal(m, snaps[0]), "the MsgSnap message arrives as sent")
		require.Eventually(t, func() bool { return b.rec.count() == 1 }, waitFor, tick)
		for _, got := range b.rec.received() {
			assert.NotEqual(t, raftpb.MsgSnap, got.GetType(), "MsgSnap never reaches Receive")
		}
		sa := a.Stats()
		assert.Equal(t, uint64(1), sa.SnapshotsSent)
		assert.Equal(t, uint64(size), sa.SnapshotBodyBytesSent)
		// The receiver counts after its ack is written.
		require.Eventually(t, func() bool { return b.Stats().SnapshotsReceived == 1 }, waitFor, tick)
		assert.Equal(t, uint64(size), b.Stats().SnapshotBodyBytesReceived)
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
	}
}

// A 200 MiB body (64 MiB under the race detector) goes through with the
// heap staying small on both sides (both run in this process).
func TestSnapshotBoundedMemory(t *testing.T) {
	size := int64(200 << 20)
	if raceEnabled {
		size = 64 << 20
	}
	src := newTestSource(size)
	a, b := snapshotPair(t, src, nil)
	hr := &hashingReceiver{}
	b.rec.onSnapshot = hr.receive

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // samples the heap until the transfer ends
		defer wg.Done()
		ticker := time.NewTicker(5 * time.Millisecond)
		defer ticker.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-ticker.C:
			}
		}
	}()
	a.Send([]*raftpb.Message{snapMsg(1, 2, 7)})
	require.Eventually(t, func() bool { return len(a.rec.reports()) > 0 }, 2*waitFor, tick)
	close(stop)
	wg.Wait()
	assert.Equal(t, []snapReport{{2, false}}, a.rec.reports())
	hr.mu.Lock()
	require.Len(t, hr.sums, 1)
	assert.Equal(t, src.sums[0], hr.sums[0])
	hr.mu.Unlock()
	grew := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("body %d MiB, heap peak %+.1f MiB over the baseline", size>>20, float64(grew)/(1<<20))
	assert.Less(t, grew, int64(32<<20), "the heap stays small whatever the snapshot's size")
}

func TestSnapshotReceiverFails(t *testing.T) {
	src := newTestSource(5 << 20)
	a, b := snapshotPair(t, src, nil)
	b.rec.onSnapshot = func(_ *raftpb.Message, body io.Reader) error {
		_, _ = io.CopyN(io.Discard, body, 1<<20)
		return errors.New("disk full")
	}
	a.Send([]*raftpb.Message{snapMsg(1, 2, 9)})
	waitReport(t, a, snapReport{2, true})
	assert.Equal(t, uint64(1), a.Stats().SnapshotsSendFailed)
	require.Eventually(t, func() bool { return b.Stats().SnapshotsReceiveFailed == 1 }, waitFor, tick)
	assert.Zero(t, b.Stats().SnapshotsReceived)
}

// The receiver accepts after reading everything: the reason is in the ack.
func TestSnapshotReceiverRefusesAtTheEnd(t *testing.T) {
	a, b := snapshotPair(t, newTestSource(100<<10), nil)
	b.rec.onSnapshot = func(_ *raftpb.Message, body io.Reader) error {
		_, err := io.Copy(io.Discard, body)
		require.NoError(t, err)
		return errors.New("checksum of the staged checkpoint does not match")
	}
	a.Send([]*raftpb.Message{snapMsg(1, 2, 9)})
	waitReport(t, a, snapReport{2, true})
	assert.Contains(t, a.logs.String(), "checksum of the staged checkpoint does not match")
}

// The receiver dies mid-stream: the sender reports failure, and the
// receiver's Handler sees an error from the body (never io.EOF).
func TestSnapshotReceiverDies(t *testing.T) {
	a, b := snapshotPair(t, newTestSource(64<<20), nil)
	var bodyErr atomic.Value
	midway := make(chan struct{})
	b.rec.onSnapshot = func(_ *raftpb.Message, body io.Reader) error {
		_, err := io.CopyN(io.Discard, body, 2<<20)
		require.NoError(t, err)
		close(midway)
		_, err = io.Copy(io.Discard, body) // until Close cuts the connection
		if err == nil {
			err = errors.New("io.Copy ended with no error")
		}
		bodyErr.Store(err)
		return err
	}
	a.Send([]*raftpb.Message{snapMsg(1, 2, 9)})
	<-midway
	require.NoError(t, b.Close())
	waitReport(t, a, snapReport{2, true})
	err, _ := bodyErr.Load().(error)
	require.Error(t, err)
	assert.NotErrorIs(t, err, io.EOF)
}

// The source fails mid-stream: the sender reports failure, and the
// receiver's Handler gets an error, not a short body.
func TestSnapshotSourceFails(t *testing.T) {
	src := newTestSource(8 << 20)
	src.failAfter = 3 << 20
	a, b := snapshotPair(t, src, nil)
	got := make(chan error, 1)
	b.rec.onSnapshot = func(_ *raftpb.Message, body io.Reader) error {
		_, err := io.Copy(io.Discard, body)
		got <- err
		return err
	}
	a.Send([]*raftpb.Message{snapMsg(1, 2, 9)})
	waitReport(t, a, snapReport{2, true})
	assert.Contains(t, a.logs.String(), errSourceFailed.Error())
	err := <-got
	require.ErrorIs(t, err, ErrFrame)
}

// A Handler that returns nil without reading the body: the transport reads
// the rest and acknowledges only because it is intact.
func TestSnapshotHandlerSkipsBody(t *testing.T) {
	a, b := snapshotPair(t, newTestSource(3<<20), nil)
	b.rec.onSnapshot = func(*raftpb.Message, io.Reader) error { return nil }
	a.Send([]*raftpb.Message{snapMsg(1, 2, 9)})
	waitReport(t, a, snapReport{2, false})
	require.Eventually(t, func() bool { return b.Stats().SnapshotBodyBytesReceived == 3<<20 }, waitFor, tick)
}

// One transfer per peer at a time; no source; unknown peer; RemovePeer
// aborts a transfer. Each MsgSnap gets exactly one report.
func TestSnapshotReports(t *testing.T) {
	t.Run("busy", func(t *testing.T) {
		src := newTestSource(32 << 20)
		started := make(chan struct{})
		var once sync.Once
		src.progress = func(int64) { once.Do(func() { close(started) }) }
		a, _ := snapshotPair(t, src, nil)
		a.Send([]*raftpb.Message{snapMsg(1, 2, 1)})
		<-started
		a.Send([]*raftpb.Message{snapMsg(1, 2, 2)})
		require.Eventually(t, func() bool { return len(a.rec.reports()) == 2 }, waitFor, tick)
		assert.Equal(t, []snapReport{{2, true}, {2, false}}, a.rec.reports(), "the second fails at once, the first completes")
	})
	t.Run("no source", func(t *testing.T) {
		a, _ := snapshotPair(t, nil, nil)
		a.Send([]*raftpb.Message{snapMsg(1, 2, 1)})
		waitReport(t, a, snapReport{2, true})
	})
	t.Run("unknown peer", func(t *testing.T) {
		a := startNode(t, 1, func(o *Options) { o.Snapshots = newTestSource(1) })
		a.Send([]*raftpb.Message{snapMsg(1, 5, 1)})
		assert.Equal(t, []snapReport{{5, true}}, a.rec.reports())
	})
	t.Run("peer removed", func(t *testing.T) {
		src := newTestSource(1 << 30)
		started := make(chan struct{})
		var once sync.Once
		src.progress = func(int64) { once.Do(func() { close(started) }) }
		a, b := snapshotPair(t, src, nil)
		b.rec.onSnapshot = func(_ *raftpb.Message, body io.Reader) error {
			_, err := io.Copy(io.Discard, body)
			return err
		}
		a.Send([]*raftpb.Message{snapMsg(1, 2, 1)})
		<-started
		a.RemovePeer(2) // joins the transfer
		assert.Equal(t, []snapReport{{2, true}}, a.rec.reports())
	})
	t.Run("closed mid-transfer", func(t *testing.T) {
		src := newTestSource(1 << 30)
		started := make(chan struct{})
		var once sync.Once
		src.progress = func(int64) { once.Do(func() { close(started) }) }
		a, _ := snapshotPair(t, src, nil)
		a.Send([]*raftpb.Message{snapMsg(1, 2, 1)})
		<-started
		require.NoError(t, a.Close())
		assert.Empty(t, a.rec.reports(), "abandoned unreported")
	})
}

// A forged MsgSnap (another sender) on a snapshot connection is rejected
// before the Handler sees it.
func TestSnapshotForgedSender(t *testing.T) {
	b := startNode(t, 2, nil)
	b.AddPeer(1, "127.0.0.1:1")
	c, err := dialRaw(t, b.Addr(), rawIdentity(1), kindSnapshot, 2)
	require.NoError(t, err)
	forged := snapMsg(3, 2, 1)
	body, err := proto.Marshal(forged)
	require.NoError(t, err)
	c.write(t, c.frame(frameSnapshotMessage, body))
	requireClosedByPeer(t, c.conn)
	assert.Empty(t, b.rec.receivedSnapshots())
	assert.Equal(t, uint64(1), b.Stats().MessagesRejected)
}
