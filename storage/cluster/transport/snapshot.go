package transport

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"
	"unicode/utf8"

	"go.etcd.io/raft/v3/raftpb"
)

// startSnapshotLocked starts the transfer of MsgSnap m to p on its own
// goroutine (owned by p). It returns false if a transfer to p is already
// running; then the caller reports m failed.
//
// REQUIRES: t.mu held (read or write), so that p.wg.Add cannot race with
// RemovePeer's or Close's wait.
func (p *peer) startSnapshotLocked(m *raftpb.Message) bool {
	if !p.snapshotBusy.CompareAndSwap(false, true) {
		return false
	}
	p.wg.Add(1)
	go p.runSnapshot(m)
	return true
}

// runSnapshot transfers one snapshot and reports the outcome, unless the
// transport is closing.
func (p *peer) runSnapshot(m *raftpb.Message) {
	defer p.wg.Done()
	defer p.snapshotBusy.Store(false)
	start := time.Now()
	bytes, err := p.sendSnapshot(m)
	if p.t.closing.Load() {
		return
	}
	meta := m.GetSnapshot().GetMetadata()
	if err != nil {
		p.t.stats.snapshotsSendFailed.Add(1)
		p.log.Warn("cluster transport: snapshot send failed", "index", meta.GetIndex(), "term", meta.GetTerm(),
			"body_bytes", bytes, "reason", err.Error())
	} else {
		p.t.stats.snapshotsSent.Add(1)
		p.log.Info("cluster transport: snapshot sent", "index", meta.GetIndex(), "term", meta.GetTerm(),
			"body_bytes", bytes, "duration", time.Since(start))
	}
	p.t.opts.Handler.ReportSnapshot(p.id, err != nil)
}

// sendSnapshot dials a snapshot connection, sends m, streams the body from
// the SnapshotSource in chunk frames, sends the end frame and waits for the
// receiver's ack. It returns the body bytes sent.
func (p *peer) sendSnapshot(m *raftpb.Message) (uint64, error) {
	o := &p.t.opts
	if o.Snapshots == nil {
		return 0, fmt.Errorf("%w: this node has no SnapshotSource", ErrSnapshot)
	}
	size := messageSize(m)
	if size < 1 || size > o.MaxFrameBytes {
		return 0, fmt.Errorf("%w: the MsgSnap message has %d bytes, outside [1, %d]", ErrSnapshot, size, o.MaxFrameBytes)
	}
	conn, sess, err := p.connect(kindSnapshot)
	if err != nil {
		return 0, fmt.Errorf("%w: connecting: %w", ErrSnapshot, err)
	}
	defer p.closers.remove(conn)
	defer conn.Close()

	fw := newFrameWriter(sess.sendKey[:])
	buf, start := fw.begin(make([]byte, 0, frameOverhead+size))
	if buf, err = marshalOptions.MarshalAppend(buf, m); err != nil || len(buf)-start-frameHeaderSize != size {
		return 0, fmt.Errorf("%w: encoding the MsgSnap message: %v", ErrSnapshot, err)
	}
	buf = fw.finish(buf, start, frameSnapshotMessage)
	w := &chunkWriter{conn: conn, fw: fw, stats: &p.t.stats, timeout: o.WriteTimeout, size: o.SnapshotChunkBytes}
	if err := w.writeFrame(buf); err != nil {
		return 0, fmt.Errorf("%w: sending the MsgSnap message: %w", ErrSnapshot, err)
	}
	w.buf, _ = fw.begin(make([]byte, 0, frameOverhead+o.SnapshotChunkBytes))
	if err := o.Snapshots.WriteSnapshot(m, w); err != nil {
		return w.body, fmt.Errorf("%w: streaming the body: %w", ErrSnapshot, err)
	}
	if w.err != nil {
		// The source ignored a write error.
		return w.body, fmt.Errorf("%w: streaming the body: %w", ErrSnapshot, w.err)
	}
	if err := w.flush(); err != nil {
		return w.body, fmt.Errorf("%w: streaming the body: %w", ErrSnapshot, err)
	}
	if err := w.writeFrame(fw.appendFrame(buf[:0], frameSnapshotEnd, nil)); err != nil {
		return w.body, fmt.Errorf("%w: sending the end frame: %w", ErrSnapshot, err)
	}
	p.t.stats.snapshotBodyBytesSent.Add(w.body)

	_ = conn.SetReadDeadline(time.Now().Add(o.SnapshotAckTimeout))
	fr := newFrameReader(conn, sess.recvKey[:], minFrameBytes)
	typ, body, err := fr.next()
	if err == nil && typ != frameSnapshotAck {
		err = frameErrorf(fr.counter-1, "expected a snapshot-ack frame, got %s", typ)
	}
	if err != nil {
		if errors.Is(err, ErrFrame) {
			p.t.stats.protocolErrors.Add(1)
		}
		return w.body, fmt.Errorf("%w: waiting for the ack: %w", ErrSnapshot, err)
	}
	p.t.stats.framesReceived.Add(1)
	p.t.stats.bytesReceived.Add(fr.bytes)
	if body[0] != ackOK {
		return w.body, fmt.Errorf("%w: the receiver refused it: %q", ErrSnapshot, body[1:])
	}
	return w.body, nil
}

// chunkWriter is the io.Writer handed to SnapshotSource.WriteSnapshot: it
// cuts the body into chunk frames of size bytes and writes each with the
// write deadline. Its first write error is sticky. Not safe for concurrent
// use.
type chunkWriter struct {
	conn    net.Conn
	fw      *frameWriter
	stats   *counters
	timeout time.Duration
	size    int    // chunk body size
	buf     []byte // the chunk frame being filled: header room, then body
	body    uint64 // body bytes written in frames
	err     error
}

var _ io.Writer = (*chunkWriter)(nil)

func (w *chunkWriter) Write(b []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(b) > 0 {
		k := min(w.size-(len(w.buf)-frameHeaderSize), len(b))
		w.buf = append(w.buf, b[:k]...)
		b, n = b[k:], n+k
		if len(w.buf)-frameHeaderSize == w.size {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flush sends the chunk being filled, if it has any bytes.
func (w *chunkWriter) flush() error {
	if w.err != nil {
		return w.err
	}
	body := len(w.buf) - frameHeaderSize
	if body == 0 {
		return nil
	}
	frame := w.fw.finish(w.buf, 0, frameSnapshotChunk)
	if err := w.writeFrame(frame); err != nil {
		return err
	}
	w.body += uint64(body)
	w.buf, _ = w.fw.begin(frame[:0])
	return nil
}

func (w *chunkWriter) writeFrame(frame []byte) error {
	_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	if _, err := w.conn.Write(frame); err != nil {
		w.err = err
		return err
	}
	w.stats.sent(1, 0, len(frame))
	return nil
}

// receiveSnapshot serves an incoming snapshot connection: the MsgSnap
// message, the body through Handler.ReceiveSnapshot, then the ack.
func (t *Transport) receiveSnapshot(p *peer, conn net.Conn, sess *session, log *slog.Logger) {
	p.attachIncomingSnapshot(conn)
	fr := newFrameReader(conn, sess.recvKey[:], t.opts.MaxFrameBytes)
	_ = conn.SetReadDeadline(time.Now().Add(t.opts.IdleTimeout))
	typ, body, err := fr.next()
	if err == nil && typ != frameSnapshotMessage {
		err = frameErrorf(fr.counter-1, "expected a snapshot-message frame, got %s", typ)
	}
	var m *raftpb.Message
	if err == nil {
		m, err = decodeMessage(body, fr.counter-1)
	}
	if err != nil {
		t.stats.snapshotsReceiveFailed.Add(1)
		t.connectionEnded(err, log, "incoming snapshot ended before its message")
		return
	}
	t.stats.framesReceived.Add(1)
	if m.GetType() != raftpb.MsgSnap || m.GetFrom() != p.id || m.GetTo() != t.opts.NodeID {
		t.stats.messagesRejected.Add(1)
		t.stats.snapshotsReceiveFailed.Add(1)
		log.Warn("cluster transport: snapshot message rejected", "type", m.GetType().String(), "from", m.GetFrom(), "to", m.GetTo())
		return
	}
	meta := m.GetSnapshot().GetMetadata()
	log = log.With("index", meta.GetIndex(), "term", meta.GetTerm())
	start := time.Now()
	b := &snapshotBody{conn: conn, fr: fr, idle: t.opts.IdleTimeout}
	err = t.opts.Handler.ReceiveSnapshot(m, b)
	if err == nil && !b.eof {
		if _, derr := io.Copy(io.Discard, b); derr != nil {
			err = derr
		}
	}
	t.stats.framesReceived.Add(b.frames)
	t.stats.bytesReceived.Add(fr.bytes)
	t.stats.snapshotBodyBytesReceived.Add(b.body)
	if b.err != nil && errors.Is(b.err, ErrFrame) {
		t.stats.protocolErrors.Add(1)
	}

	ack := []byte{ackOK}
	if err != nil {
		t.stats.snapshotsReceiveFailed.Add(1)
		log.Warn("cluster transport: snapshot receive failed", "body_bytes", b.body, "reason", err.Error())
		ack = append([]byte{ackFailed}, truncateUTF8(err.Error(), maxAckReason)...)
	}
	fw := newFrameWriter(sess.sendKey[:])
	frame := fw.appendFrame(nil, frameSnapshotAck, ack)
	_ = conn.SetWriteDeadline(time.Now().Add(t.opts.WriteTimeout))
	if _, werr := conn.Write(frame); werr != nil {
		if err == nil {
			t.stats.snapshotsReceiveFailed.Add(1)
			log.Warn("cluster transport: snapshot ack not sent", "reason", werr.Error())
		}
		return
	}
	t.stats.sent(1, 0, len(frame))
	if err == nil {
		t.stats.snapshotsReceived.Add(1)
		log.Info("cluster transport: snapshot received", "body_bytes", b.body, "duration", time.Since(start))
	}
}

// truncateUTF8 returns s cut to at most n bytes on a rune boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// snapshotBody is the io.Reader handed to Handler.ReceiveSnapshot: the
// bodies of the chunk frames, then io.EOF at the end frame. Any other
// outcome (a bad frame, a disconnect, a timeout) is a sticky error. Not
// safe for concurrent use.
type snapshotBody struct {
	conn   net.Conn
	fr     *frameReader
	idle   time.Duration
	chunk  []byte // unread rest of the current chunk (aliases fr's buffer)
	body   uint64 // body bytes received
	frames uint64
	eof    bool
	err    error
}

var _ io.Reader = (*snapshotBody)(nil)

func (b *snapshotBody) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(b.chunk) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		_ = b.conn.SetReadDeadline(time.Now().Add(b.idle))
		typ, body, err := b.fr.next()
		switch {
		case err != nil:
			if errors.Is(err, io.EOF) {
				err = frameErrorf(b.fr.counter, "connection closed before the end of the snapshot body")
			}
			b.err = err
		case typ == frameSnapshotChunk:
			b.frames++
			b.body += uint64(len(body))
			b.chunk = body
		case typ == frameSnapshotEnd:
			b.frames++
			b.eof = true
			b.err = io.EOF
		default:
			b.err = frameErrorf(b.fr.counter-1, "unexpected %s frame in a snapshot body", typ)
		}
	}
	n := copy(p, b.chunk)
	b.chunk = b.chunk[n:]
	return n, nil
}
