package cluster

import (
	"io"
	"math/rand/v2"
	"sync"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

// simNet is an in-process network for cluster tests: every node's
// transport delivers through it, and a test can drop, delay, reorder and
// partition messages. Each directed link has its own goroutine, so a slow
// receiver only delays its own link. Safe for concurrent use.
type simNet struct {
	mu    sync.Mutex
	nodes map[uint64]*simTransport
	// cut[a][b]: messages from a to b are dropped.
	cut map[uint64]map[uint64]bool
	// dropRate is the chance a message is dropped; maxDelay the most a
	// message is held back (messages on one link may overtake each other
	// when delayed).
	dropRate float64
	maxDelay time.Duration
	rng      *rand.Rand
	// intercept, if set, sees every message (not snapshots) before it is
	// routed, and drops those it returns true for (it may keep them).
	intercept func(m *pb.Message) bool
}

func newSimNet(seed uint64) *simNet {
	return &simNet{
		nodes: map[uint64]*simTransport{},
		cut:   map[uint64]map[uint64]bool{},
		rng:   rand.New(rand.NewPCG(seed, seed^0x5eed)),
	}
}

// transport returns the NewTransport for the node being opened.
func (s *simNet) transport() func(c *TransportConfig) (Transport, error) {
	return func(c *TransportConfig) (Transport, error) {
		t := &simTransport{net: s, id: c.NodeID, url: c.HTTPURL, h: c.Handler, src: c.Snapshots,
			links: map[uint64]chan *pb.Message{}, stop: make(chan struct{})}
		s.mu.Lock()
		s.nodes[c.NodeID] = t
		s.mu.Unlock()
		return t, nil
	}
}

// partition cuts every link between the two groups (both directions).
func (s *simNet) partition(a, b []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range a {
		for _, y := range b {
			s.setCutLocked(x, y, true)
			s.setCutLocked(y, x, true)
		}
	}
}

// heal restores every link.
func (s *simNet) heal() {
	s.mu.Lock()
	s.cut = map[uint64]map[uint64]bool{}
	s.mu.Unlock()
}

func (s *simNet) setCutLocked(a, b uint64, v bool) {
	if s.cut[a] == nil {
		s.cut[a] = map[uint64]bool{}
	}
	s.cut[a][b] = v
}

// setIntercept sets (nil: clears) the intercept function.
func (s *simNet) setIntercept(f func(m *pb.Message) bool) {
	s.mu.Lock()
	s.intercept = f
	s.mu.Unlock()
}

func (s *simNet) intercepted(m *pb.Message) bool {
	s.mu.Lock()
	f := s.intercept
	s.mu.Unlock()
	return f != nil && f(m)
}

// setFaults drops a share of the messages and delays the others by up to
// maxDelay.
func (s *simNet) setFaults(dropRate float64, maxDelay time.Duration) {
	s.mu.Lock()
	s.dropRate, s.maxDelay = dropRate, maxDelay
	s.mu.Unlock()
}

// route decides a message's fate: deliver (after delay) or drop.
func (s *simNet) route(from, to uint64) (dst *simTransport, delay time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dst = s.nodes[to]
	if dst == nil || s.cut[from][to] {
		return nil, 0, false
	}
	if s.dropRate > 0 && s.rng.Float64() < s.dropRate {
		return nil, 0, false
	}
	if s.maxDelay > 0 {
		delay = time.Duration(s.rng.Int64N(int64(s.maxDelay)))
	}
	return dst, delay, true
}

// simTransport is one node's end of the simNet.
type simTransport struct {
	net *simNet
	id  uint64
	url string
	h   TransportHandler
	src SnapshotSource

	mu     sync.Mutex
	links  map[uint64]chan *pb.Message
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

func (t *simTransport) Send(msgs []*pb.Message) {
	for _, m := range msgs {
		to := m.GetTo()
		if m.GetType() == pb.MessageType_MsgSnap {
			t.sendSnapshot(m)
			continue
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return
		}
		ch, ok := t.links[to]
		if !ok {
			ch = make(chan *pb.Message, 4096)
			t.links[to] = ch
			t.wg.Add(1)
			go t.link(to, ch)
		}
		t.mu.Unlock()
		select {
		case ch <- m:
		default:
			t.h.ReportUnreachable(to)
		}
	}
}

// link delivers one directed link's messages.
func (t *simTransport) link(to uint64, ch chan *pb.Message) {
	defer t.wg.Done()
	for {
		select {
		case <-t.stop:
			return
		case m := <-ch:
			if t.net.intercepted(m) {
				continue
			}
			dst, delay, ok := t.net.route(t.id, to)
			if !ok {
				continue
			}
			if delay > 0 {
				select {
				case <-time.After(delay):
				case <-t.stop:
					return
				}
			}
			if dst.isClosed() {
				continue
			}
			dst.h.Receive(m)
		}
	}
}

func (t *simTransport) sendSnapshot(m *pb.Message) {
	to := m.GetTo()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.wg.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.wg.Done()
		dst, _, ok := t.net.route(t.id, to)
		if !ok || dst.isClosed() {
			t.h.ReportSnapshot(to, true)
			return
		}
		pr, pw := io.Pipe()
		go func() { _ = pw.CloseWithError(t.src.WriteSnapshot(m, pw)) }()
		err := dst.h.ReceiveSnapshot(m, pr)
		_ = pr.CloseWithError(io.ErrClosedPipe)
		t.h.ReportSnapshot(to, err != nil)
	}()
}

func (t *simTransport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

func (t *simTransport) AddPeer(uint64, string) {}
func (t *simTransport) RemovePeer(uint64)      {}

func (t *simTransport) PeerURL(id uint64) string {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	if p := t.net.nodes[id]; p != nil {
		return p.url
	}
	return ""
}

func (t *simTransport) Connected(id uint64) bool {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	p := t.net.nodes[id]
	return p != nil && !t.net.cut[t.id][id]
}

func (t *simTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.stop)
	t.mu.Unlock()
	t.wg.Wait()
	t.net.mu.Lock()
	if t.net.nodes[t.id] == t {
		delete(t.net.nodes, t.id)
	}
	t.net.mu.Unlock()
	return nil
}
