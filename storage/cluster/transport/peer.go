package transport

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// errStopped ends a peer's goroutines after RemovePeer or Close.
var errStopped = errors.New("cluster/transport: peer stopped")

// peer is one remote node: its queue, its sender goroutine (run) and at
// most one snapshot goroutine, both owned by the peer (wg) and stopped by
// halt.
type peer struct {
	t     *Transport
	id    uint64
	log   *slog.Logger
	queue chan *raftpb.Message
	stop  chan struct{} // closed by halt
	// closers holds the peer's connections both ways and its dials in
	// progress, so that halt can abort them.
	closers      closerSet
	wg           sync.WaitGroup
	haltOnce     sync.Once
	outUp        atomic.Bool  // the outgoing stream is authenticated and up
	inStreams    atomic.Int32 // incoming stream connections being served
	snapshotBusy atomic.Bool  // a snapshot transfer to this peer is running
	// deliver serializes Handler.Receive for this peer across its incoming
	// connections (an old one may still deliver its last frame).
	deliver sync.Mutex

	mu struct {
		sync.Mutex
		addr        string   // where to dial
		url         string   // announced HTTP URL
		clusterAddr string   // announced cluster address
		outStream   net.Conn // current outgoing stream, if any
		inStream    net.Conn // current incoming stream, if any
		inSnapshot  net.Conn // current incoming snapshot, if any
	}
}

func newPeer(t *Transport, id uint64, addr string) *peer {
	p := &peer{
		t:     t,
		id:    id,
		log:   t.log.With("peer", id),
		queue: make(chan *raftpb.Message, t.opts.QueueSize),
		stop:  make(chan struct{}),
	}
	p.mu.addr = addr
	return p
}

// halt stops the peer's goroutines and closes its connections; the caller
// then waits on wg.
func (p *peer) halt() {
	p.haltOnce.Do(func() {
		close(p.stop)
		p.closers.closeAll()
	})
}

func (p *peer) stopped() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// setAddr changes where the peer is dialed; a change drops the current
// outgoing stream so that the next connection uses it.
func (p *peer) setAddr(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.addr == addr {
		return
	}
	p.mu.addr = addr
	if p.mu.outStream != nil {
		p.mu.outStream.Close()
	}
}

// learn records what the peer announced in a handshake.
func (p *peer) learn(h *hello) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.url = h.url
	p.mu.clusterAddr = h.addr
}

// attachIncomingStream makes conn the peer's incoming stream and closes the
// previous one: a peer has one stream to us at a time, the newest.
func (p *peer) attachIncomingStream(conn net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.mu.inStream; old != nil && old != conn {
		old.Close()
	}
	p.mu.inStream = conn
}

// attachIncomingSnapshot is attachIncomingStream for snapshot connections.
func (p *peer) attachIncomingSnapshot(conn net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.mu.inSnapshot; old != nil && old != conn {
		old.Close()
	}
	p.mu.inSnapshot = conn
}

// backoff is a capped exponential delay with jitter (each wait is drawn
// from [d/2, d]).
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + rand.N(b.cur-half+1)
}

func (b *backoff) reset() { b.cur = 0 }

// run is the peer's sender goroutine: connect, stream the queue, and on
// failure wait (dropping what is queued meanwhile) and reconnect.
func (p *peer) run() {
	defer p.wg.Done()
	b := backoff{min: p.t.opts.BackoffMin, max: p.t.opts.BackoffMax}
	for {
		conn, sess, err := p.connect(kindStream)
		if err == nil {
			b.reset()
			p.log.Info("cluster transport: outgoing stream up", "remote", conn.RemoteAddr().String())
			err = p.stream(conn, sess)
		}
		if p.stopped() {
			p.dropQueued(false)
			return
		}
		if conn != nil {
			p.t.connectionEnded(err, p.log, "outgoing stream down")
		}
		p.dropQueued(true)
		if !p.waitDropping(b.next()) {
			return
		}
	}
}

// connect dials the peer and runs the dialer's handshake for kind. On
// success the connection is registered in closers (the caller removes it).
// A failed handshake is counted and logged here.
func (p *peer) connect(kind connKind) (net.Conn, *session, error) {
	p.mu.Lock()
	addr := p.mu.addr
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), p.t.opts.DialTimeout)
	dialing := &cancelCloser{cancel: cancel}
	if !p.closers.add(dialing) {
		cancel()
		return nil, nil, errStopped
	}
	conn, err := p.t.dialer.DialContext(ctx, "tcp", addr)
	p.closers.remove(dialing)
	cancel()
	if err != nil {
		if !p.stopped() {
			p.t.stats.dialFailures.Add(1)
			p.log.Debug("cluster transport: dial failed", "addr", addr, "reason", err.Error())
		}
		return nil, nil, err
	}
	if !p.closers.add(conn) {
		conn.Close()
		return nil, nil, errStopped
	}
	_ = conn.SetDeadline(time.Now().Add(p.t.opts.HandshakeTimeout))
	sess, err := dialHandshake(conn, &p.t.hs, kind, p.id)
	if err != nil {
		p.closers.remove(conn)
		conn.Close()
		if !p.stopped() {
			p.t.handshakeFailed(err, conn.RemoteAddr().String(), p.id, "dial")
		}
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	p.learn(&sess.peer)
	p.t.stats.connections.Add(1)
	return conn, sess, nil
}

// cancelCloser lets closerSet abort a dial in progress.
type cancelCloser struct{ cancel context.CancelFunc }

func (c *cancelCloser) Close() error { c.cancel(); return nil }

// stream writes the queue to an authenticated outgoing stream until the
// connection fails or the peer stops. A second goroutine (joined before
// stream returns) reads the acceptor's heartbeats, so that a dead or
// vanished acceptor is noticed within IdleTimeout even when nothing is
// being sent.
func (p *peer) stream(conn net.Conn, sess *session) error {
	o := &p.t.opts
	p.mu.Lock()
	p.mu.outStream = conn
	p.mu.Unlock()
	p.outUp.Store(true)

	watchDone := make(chan struct{})
	var watchErr error
	go func() {
		defer close(watchDone)
		watchErr = p.watch(conn, newFrameReader(conn, sess.recvKey[:], minFrameBytes))
		conn.Close()
	}()
	defer func() {
		p.outUp.Store(false)
		p.mu.Lock()
		p.mu.outStream = nil
		p.mu.Unlock()
		conn.Close()
		<-watchDone
		p.closers.remove(conn)
	}()

	fw := newFrameWriter(sess.sendKey[:])
	var (
		buf   []byte
		carry *raftpb.Message // taken from the queue, not yet in a frame
	)
	idle := time.NewTimer(o.HeartbeatInterval)
	defer idle.Stop()
	for {
		var first *raftpb.Message
		if carry != nil {
			first, carry = carry, nil
		} else {
			select {
			case <-p.stop:
				return errStopped
			case <-watchDone:
				return watchErr
			case <-idle.C:
				buf = fw.appendFrame(buf[:0], frameHeartbeat, nil)
				if err := p.write(conn, buf, 0); err != nil {
					return err
				}
				idle.Reset(o.HeartbeatInterval)
				continue
			case first = <-p.queue:
			}
		}
		var n int
		buf, n, carry = p.fill(fw, buf[:0], first)
		if n > 0 {
			if err := p.write(conn, buf, n); err != nil {
				return err
			}
		}
		if cap(buf) > retainBytes {
			buf = nil
		}
		idle.Reset(o.HeartbeatInterval)
	}
}

// fill builds one messages frame in buf: first, then whatever else is
// queued right now, until the body reaches BatchBytes. It returns the frame
// (empty if every message was dropped), the number of messages in it, and
// the message that did not fit (nil if none).
func (p *peer) fill(fw *frameWriter, buf []byte, first *raftpb.Message) ([]byte, int, *raftpb.Message) {
	o := &p.t.opts
	buf, start := fw.begin(buf)
	n, dropped := 0, 0
	for m := first; m != nil; {
		size := messageSize(m)
		const maxPrefix = 10 // a uvarint of a 64-bit value
		switch {
		case size+maxPrefix > o.MaxFrameBytes:
			dropped++
			p.log.Error("cluster transport: message larger than MaxFrameBytes dropped", "type", m.GetType().String(), "bytes", size, "max", o.MaxFrameBytes)
		case n > 0 && (len(buf)-start-frameHeaderSize+size+maxPrefix > o.BatchBytes || n == maxBatchMessages):
			return p.finishFill(fw, buf, start, n, dropped, m)
		default:
			mark := len(buf)
			var err error
			if buf, err = appendMessage(buf, m, size); err != nil {
				buf = buf[:mark]
				dropped++
				p.log.Error("cluster transport: message dropped", "type", m.GetType().String(), "reason", err.Error())
			} else {
				n++
			}
		}
		select {
		case m = <-p.queue:
		default:
			m = nil
		}
	}
	return p.finishFill(fw, buf, start, n, dropped, nil)
}

func (p *peer) finishFill(fw *frameWriter, buf []byte, start, n, dropped int, carry *raftpb.Message) ([]byte, int, *raftpb.Message) {
	if dropped > 0 {
		p.t.stats.messagesDropped.Add(uint64(dropped))
		p.t.opts.Handler.ReportUnreachable(p.id)
	}
	if n == 0 {
		return buf[:start], 0, carry
	}
	return fw.finish(buf, start, frameMessages), n, carry
}

// write writes one or more frames holding n messages with the write
// deadline. On failure the messages are dropped and the peer reported
// unreachable.
func (p *peer) write(conn net.Conn, buf []byte, n int) error {
	_ = conn.SetWriteDeadline(time.Now().Add(p.t.opts.WriteTimeout))
	if _, err := conn.Write(buf); err != nil {
		if n > 0 {
			p.t.stats.messagesDropped.Add(uint64(n))
			if !p.stopped() {
				p.t.opts.Handler.ReportUnreachable(p.id)
			}
		}
		return err
	}
	p.t.stats.sent(1, n, len(buf))
	return nil
}

// watch reads the acceptor's frames on an outgoing stream: heartbeats only.
func (p *peer) watch(conn net.Conn, fr *frameReader) error {
	for {
		_ = conn.SetReadDeadline(time.Now().Add(p.t.opts.IdleTimeout))
		before := fr.bytes
		typ, _, err := fr.next()
		if err != nil {
			return err
		}
		if typ != frameHeartbeat {
			return frameErrorf(fr.counter-1, "unexpected %s frame from the acceptor of a stream", typ)
		}
		p.t.stats.framesReceived.Add(1)
		p.t.stats.bytesReceived.Add(fr.bytes - before)
	}
}

// dropQueued drops everything queued; report says whether to tell the
// Handler (not when the peer was removed or the transport closed).
func (p *peer) dropQueued(report bool) {
	n := 0
	for {
		select {
		case <-p.queue:
			n++
			continue
		default:
		}
		break
	}
	if n == 0 {
		return
	}
	p.t.stats.messagesDropped.Add(uint64(n))
	if report && !p.stopped() {
		p.t.opts.Handler.ReportUnreachable(p.id)
	}
}

// waitDropping waits d before the next connection attempt, dropping (and
// reporting) the messages queued meanwhile: raft retries them, and stale
// messages are worth less than fresh ones. It returns false if the peer
// stopped.
func (p *peer) waitDropping(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-p.stop:
			p.dropQueued(false)
			return false
		case <-timer.C:
			return true
		case <-p.queue:
			p.t.stats.messagesDropped.Add(1)
			p.dropQueued(false)
			p.t.opts.Handler.ReportUnreachable(p.id)
		}
	}
}
