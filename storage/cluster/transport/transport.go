package transport

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Handler receives what the transport reads from peers and its reports about
// what it sends. Its methods are called on the transport's goroutines, which
// RemovePeer and Close wait for: a Handler method must not call RemovePeer
// or Close, nor wait for the goroutine that calls them.
//
// Receive is never called concurrently for one peer; it is called
// concurrently for different peers, and concurrently with ReceiveSnapshot
// and the reports. Implementations must be safe for concurrent use.
type Handler interface {
	// Receive is called for every message from a peer, on the transport's
	// reader goroutine for that connection, in the order the peer sent them.
	// It must not block for long (the node enqueues): while it runs, nothing
	// more is read from that peer, and the peer's queue fills. The message
	// is the Handler's; the transport keeps no reference to it. MsgSnap
	// messages never arrive here, and neither do messages whose From is not
	// the authenticated peer or whose To is not this node.
	Receive(m *raftpb.Message)
	// ReceiveSnapshot is called for a MsgSnap with the snapshot's body as a
	// stream (bounded memory: never buffer it whole). The handler stages
	// the body (e.g. to disk), reading body until io.EOF, and returns nil
	// once it holds it durably; then the transport acknowledges the sender.
	// body returns io.EOF only after the whole body arrived intact; any
	// damage, disconnect or timeout is an error from Read. An error from
	// ReceiveSnapshot makes the sender report the snapshot as failed. If it
	// returns nil before body reached io.EOF, the transport reads and
	// discards the rest and acknowledges only if that rest is intact.
	ReceiveSnapshot(m *raftpb.Message, body io.Reader) error
	// ReportUnreachable is called when a message to peer id was dropped
	// (queue full, connection down, unknown peer, too large). It may be
	// called from Send, on the caller's goroutine, and from the peer's
	// sender goroutine; it is called at most once per Send call per peer.
	ReportUnreachable(id uint64)
	// ReportSnapshot is called when sending a snapshot to id finished
	// (failed=false: the receiver acknowledged it) or failed. It is called
	// exactly once for every MsgSnap given to Send, except for transfers
	// still running when Close is called, which are abandoned unreported.
	ReportSnapshot(id uint64, failed bool)
}

// SnapshotSource streams the bodies of outgoing snapshots. It must be safe
// for concurrent use: transfers to different peers run concurrently.
type SnapshotSource interface {
	// WriteSnapshot streams the body of the snapshot described by m (a
	// MsgSnap) to w. A write error (the receiver went away, RemovePeer,
	// Close) must make it return; its error makes the transfer fail.
	WriteSnapshot(m *raftpb.Message, w io.Writer) error
}

// maxPendingHandshakes bounds the incoming connections that have not
// completed a handshake; more are closed at once.
const maxPendingHandshakes = 64

// Transport carries raft messages between the nodes of one cluster over
// TCP with its own authenticated framing (doc.go). It is safe for
// concurrent use. Every goroutine it starts is stopped and joined by Close
// (a peer's own goroutines also by RemovePeer).
type Transport struct {
	opts     Options
	log      *slog.Logger
	ln       net.Listener
	addr     string
	hs       handshakeConfig
	dialer   net.Dialer
	stats    counters
	incoming closerSet     // every accepted connection until its goroutine ends
	pending  chan struct{} // semaphore: accepted connections still in their handshake
	closing  atomic.Bool   // set at the start of Close: no more reports
	wg       sync.WaitGroup

	mu struct {
		sync.RWMutex
		closed bool
		peers  map[uint64]*peer
	}
}

// New clones opts, fills in the defaults, validates them and starts
// listening on ListenAddr. The caller then adds peers and sends.
func New(opts *Options) (*Transport, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	lc := net.ListenConfig{KeepAlive: o.KeepAlive}
	ln, err := lc.Listen(context.Background(), "tcp", o.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster/transport: listen on %s: %w", o.ListenAddr, err)
	}
	t := &Transport{
		opts:    o,
		log:     o.Logger.With("node", o.NodeID),
		ln:      ln,
		addr:    ln.Addr().String(),
		dialer:  net.Dialer{KeepAlive: o.KeepAlive},
		pending: make(chan struct{}, maxPendingHandshakes),
	}
	t.hs = handshakeConfig{secret: o.Secret, clusterID: o.ClusterID, nodeID: o.NodeID, url: o.HTTPURL, addr: t.addr, rand: rand.Reader}
	t.mu.peers = make(map[uint64]*peer)
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// Addr returns the address the cluster port listens on (with the port
// chosen when ListenAddr asked for port 0).
func (t *Transport) Addr() string { return t.addr }

// AddPeer adds peer id at addr (host:port of its cluster port) and starts
// connecting to it. It is idempotent; for a known peer it updates the
// address, and a changed address drops the current outgoing connection so
// that the next one goes to the new address. Ids 0 and NodeID are ignored.
func (t *Transport) AddPeer(id uint64, addr string) {
	if id == 0 || id == t.opts.NodeID {
		t.log.Warn("cluster transport: AddPeer ignored", "peer", id, "addr", addr)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return
	}
	if p := t.mu.peers[id]; p != nil {
		p.setAddr(addr)
		return
	}
	p := newPeer(t, id, addr)
	t.mu.peers[id] = p
	p.wg.Add(1)
	go p.run()
}

// RemovePeer removes peer id: its queued messages are dropped, its
// connections (both ways) closed, a snapshot transfer to it aborted (and
// reported failed), and its goroutines joined before RemovePeer returns.
// Connections from it are refused from then on. Unknown ids are ignored.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.mu.peers[id]
	delete(t.mu.peers, id)
	t.mu.Unlock()
	if p == nil {
		return
	}
	p.halt()
	p.wg.Wait()
}

// Send queues msgs for their peers (by m.GetTo()) and returns without
// blocking on the network. A message whose peer's queue is full, or whose
// peer is unknown, is dropped and the peer reported unreachable. A MsgSnap
// starts a snapshot transfer on its own connection. Send takes ownership
// of the messages: the caller must not modify them afterwards. After Close
// it drops everything, unreported.
func (t *Transport) Send(msgs []*raftpb.Message) {
	var (
		unreachable [4]uint64
		nUnreach    int
		extra       []uint64
		snapFailed  []uint64
	)
	markUnreachable := func(id uint64) {
		for _, u := range unreachable[:nUnreach] {
			if u == id {
				return
			}
		}
		for _, u := range extra {
			if u == id {
				return
			}
		}
		if nUnreach < len(unreachable) {
			unreachable[nUnreach] = id
			nUnreach++
			return
		}
		extra = append(extra, id)
	}
	t.mu.RLock()
	if t.mu.closed {
		t.mu.RUnlock()
		t.stats.messagesDropped.Add(uint64(len(msgs)))
		return
	}
	for _, m := range msgs {
		if m == nil {
			continue
		}
		p := t.mu.peers[m.GetTo()]
		if m.GetType() == raftpb.MsgSnap {
			if p == nil || !p.startSnapshotLocked(m) {
				snapFailed = append(snapFailed, m.GetTo())
			}
			continue
		}
		if p == nil {
			t.stats.messagesDropped.Add(1)
			markUnreachable(m.GetTo())
			continue
		}
		select {
		case p.queue <- m:
		default:
			t.stats.messagesDropped.Add(1)
			markUnreachable(p.id)
		}
	}
	t.mu.RUnlock()
	for _, id := range unreachable[:nUnreach] {
		t.opts.Handler.ReportUnreachable(id)
	}
	for _, id := range extra {
		t.opts.Handler.ReportUnreachable(id)
	}
	for _, id := range snapFailed {
		t.stats.snapshotsSendFailed.Add(1)
		t.log.Warn("cluster transport: snapshot not sent", "peer", id, "reason", "unknown peer or a transfer to it in progress")
		t.opts.Handler.ReportSnapshot(id, true)
	}
}

// PeerURL returns the HTTP URL that peer id announced in its latest
// handshake (either way), or "" if none is known.
func (t *Transport) PeerURL(id uint64) string {
	if p := t.peer(id); p != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.mu.url
	}
	return ""
}

// Connected reports whether an authenticated stream connection to or from
// peer id is up.
func (t *Transport) Connected(id uint64) bool {
	p := t.peer(id)
	return p != nil && (p.outUp.Load() || p.inStreams.Load() > 0)
}

// Stats returns the transport's counters.
func (t *Transport) Stats() Stats { return t.stats.snapshot() }

// Close stops listening, closes every connection, drops every queued
// message and waits for every goroutine, including the Handler calls in
// progress. Snapshot transfers still running are abandoned unreported.
// Calls after the first return ErrClosed.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	t.mu.closed = true
	t.closing.Store(true)
	peers := make([]*peer, 0, len(t.mu.peers))
	for _, p := range t.mu.peers {
		peers = append(peers, p)
	}
	clear(t.mu.peers)
	t.mu.Unlock()

	err := t.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	t.incoming.closeAll()
	for _, p := range peers {
		p.halt()
	}
	for _, p := range peers {
		p.wg.Wait()
	}
	t.wg.Wait()
	return err
}

// peer returns peer id, or nil.
func (t *Transport) peer(id uint64) *peer {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.mu.peers[id]
}

// checkDialer is the acceptor's judgement of a dialer's claimed id.
func (t *Transport) checkDialer(id uint64) status {
	if id == 0 || id == t.opts.NodeID || t.peer(id) == nil {
		return statusUnknownPeer
	}
	return statusOK
}

// acceptLoop accepts connections until the listener is closed and hands
// each to its own goroutine.
func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || t.closing.Load() {
				return
			}
			// EMFILE and the like: wait a little instead of spinning.
			t.log.Warn("cluster transport: accept", "reason", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		select {
		case t.pending <- struct{}{}:
		default:
			t.stats.handshakeFailures.Add(1)
			t.log.Warn("cluster transport: too many handshakes in progress; connection closed", "remote", conn.RemoteAddr().String())
			conn.Close()
			continue
		}
		if !t.incoming.add(conn) {
			<-t.pending
			conn.Close()
			return
		}
		t.wg.Add(1)
		go t.serveIncoming(conn)
	}
}

// serveIncoming runs the acceptor's handshake on conn and then serves it
// by kind until it ends.
func (t *Transport) serveIncoming(conn net.Conn) {
	defer t.wg.Done()
	defer t.incoming.remove(conn)
	defer conn.Close()
	remote := conn.RemoteAddr().String()

	_ = conn.SetDeadline(time.Now().Add(t.opts.HandshakeTimeout))
	sess, err := acceptHandshake(conn, &t.hs, t.checkDialer)
	<-t.pending
	if err != nil {
		t.handshakeFailed(err, remote, 0, "accept")
		return
	}
	_ = conn.SetDeadline(time.Time{})
	p := t.peer(sess.peer.from)
	if p == nil || !p.closers.add(conn) {
		return // removed meanwhile
	}
	defer p.closers.remove(conn)
	p.learn(&sess.peer)
	t.stats.connections.Add(1)
	log := t.log.With("peer", p.id, "remote", remote, "kind", sess.peer.kind.String())
	switch sess.peer.kind {
	case kindStream:
		t.receiveStream(p, conn, sess, log)
	case kindSnapshot:
		t.receiveSnapshot(p, conn, sess, log)
	}
}

// handshakeFailed counts and logs a failed handshake on either side.
func (t *Transport) handshakeFailed(err error, remote string, peerID uint64, side string) {
	log := t.log
	if peerID != 0 {
		log = log.With("peer", peerID)
	}
	var auth *authError
	switch {
	// Log, then count: a count that is visible implies its log line is.
	case errors.As(err, &auth):
		log.Warn("cluster transport: connection refused", "side", side, "remote", remote, "reason", err.Error())
		t.stats.authFailures.Add(1)
	case errors.Is(err, errNoHello) && side == "accept":
		// A connect-and-close (a port probe): nothing worth a warning.
		log.Debug("cluster transport: connection closed before its handshake", "remote", remote)
		t.stats.handshakeFailures.Add(1)
	default:
		log.Warn("cluster transport: handshake failed", "side", side, "remote", remote, "reason", err.Error())
		t.stats.handshakeFailures.Add(1)
	}
}

// receiveStream reads message frames from an incoming stream connection
// and delivers them, while a second goroutine sends heartbeats back.
func (t *Transport) receiveStream(p *peer, conn net.Conn, sess *session, log *slog.Logger) {
	p.attachIncomingStream(conn)
	p.inStreams.Add(1)
	defer p.inStreams.Add(-1)
	log.Info("cluster transport: incoming stream up")

	stopHeartbeats := make(chan struct{})
	heartbeatsDone := make(chan struct{})
	go func() {
		defer close(heartbeatsDone)
		t.sendHeartbeats(conn, newFrameWriter(sess.sendKey[:]), stopHeartbeats)
	}()
	defer func() {
		close(stopHeartbeats)
		conn.Close()
		<-heartbeatsDone
	}()

	fr := newFrameReader(conn, sess.recvKey[:], t.opts.MaxFrameBytes)
	var msgs []*raftpb.Message
	warnedReject := false
	for {
		_ = conn.SetReadDeadline(time.Now().Add(t.opts.IdleTimeout))
		before := fr.bytes
		typ, body, err := fr.next()
		if err == nil && typ != frameHeartbeat && typ != frameMessages {
			err = frameErrorf(fr.counter-1, "unexpected %s frame on a stream", typ)
		}
		if err == nil && typ == frameMessages {
			msgs, err = decodeBatch(body, msgs[:0], fr.counter-1)
		}
		if err != nil {
			t.connectionEnded(err, log, "incoming stream down")
			return
		}
		t.stats.framesReceived.Add(1)
		t.stats.bytesReceived.Add(fr.bytes - before)
		if typ == frameHeartbeat {
			continue
		}
		p.deliver.Lock()
		for _, m := range msgs {
			if m.GetFrom() != p.id || m.GetTo() != t.opts.NodeID || m.GetType() == raftpb.MsgSnap {
				t.stats.messagesRejected.Add(1)
				if !warnedReject {
					warnedReject = true
					log.Warn("cluster transport: message rejected", "from", m.GetFrom(), "to", m.GetTo(), "type", m.GetType().String())
				}
				continue
			}
			t.stats.messagesReceived.Add(1)
			t.opts.Handler.Receive(m)
		}
		p.deliver.Unlock()
		clear(msgs)
	}
}

// connectionEnded counts and logs the end of an authenticated connection.
func (t *Transport) connectionEnded(err error, log *slog.Logger, what string) {
	switch {
	case errors.Is(err, ErrFrame):
		log.Warn("cluster transport: bad frame; connection closed", "reason", err.Error())
		t.stats.protocolErrors.Add(1)
	case t.closing.Load() || errors.Is(err, net.ErrClosed):
		log.Debug("cluster transport: "+what, "reason", err.Error())
	default:
		log.Info("cluster transport: "+what, "reason", err.Error())
	}
}

// sendHeartbeats writes a heartbeat frame every HeartbeatInterval until
// stop is closed or a write fails (then it closes conn).
func (t *Transport) sendHeartbeats(conn net.Conn, fw *frameWriter, stop <-chan struct{}) {
	ticker := time.NewTicker(t.opts.HeartbeatInterval)
	defer ticker.Stop()
	buf := make([]byte, 0, frameOverhead)
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
		buf = fw.appendFrame(buf[:0], frameHeartbeat, nil)
		_ = conn.SetWriteDeadline(time.Now().Add(t.opts.WriteTimeout))
		if _, err := conn.Write(buf); err != nil {
			conn.Close()
			return
		}
		t.stats.sent(1, 0, len(buf))
	}
}

// closerSet tracks what an owner must close when it stops: connections and
// dials in progress. Safe for concurrent use.
type closerSet struct {
	mu     sync.Mutex
	closed bool
	items  map[io.Closer]struct{}
}

// add registers c; after closeAll it closes nothing and returns false.
func (s *closerSet) add(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.items == nil {
		s.items = make(map[io.Closer]struct{})
	}
	s.items[c] = struct{}{}
	return true
}

func (s *closerSet) remove(c io.Closer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, c)
}

// closeAll closes everything registered and refuses later additions.
func (s *closerSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	items := s.items
	s.items = nil
	s.mu.Unlock()
	for c := range items {
		c.Close()
	}
}
