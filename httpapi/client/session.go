package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/badbatch/badbatch/httpapi/wire"
)

// SessionOptions configure an append session. The zero value (or nil) is
// every default.
type SessionOptions struct {
	// Window is how many bytes of batches the session may have sent and
	// not yet seen answered. The server may grant less (it caps the window
	// at 64 MiB); 0 asks for the server's default (4 MiB). A batch larger
	// than the window is sent alone.
	Window int64
}

// ErrSessionClosed is returned for batches still unanswered when their
// session is closed, and by Send on a closed session.
var ErrSessionClosed = errors.New("client: append session closed")

// Session is an append session (GET /v1/streams/{stream}/append over
// WebSocket): batches are sent without waiting for the answers of earlier
// ones, and answered in order once durable. Open one with
// Client.OpenSession. Its methods are safe for concurrent use; batches
// sent concurrently are ordered as Send calls return.
//
// Every batch carries an idempotency key (the caller's, or a generated one
// unless Options.GenerateIdempotencyKeys is off). When the connection
// drops, the session reconnects (with the client's retry policy) and
// resends every unanswered batch under its key, so that nothing is stored
// twice and nothing is lost. A batch without a key cannot be resent
// safely: after a drop its Wait returns a connection error (outcome
// unknown).
type Session struct {
	c      *Client
	path   string
	query  url.Values
	stream string

	// wmu orders sends: it is held while a batch joins the queue and its
	// frame is written, and while a reconnect resends the queue.
	// Lock order: wmu, then mu.
	wmu sync.Mutex
	mu  struct {
		sync.Mutex
		conn     *wsConn
		pending  []*Pending // sent, unanswered, in order
		inflight int64      // bytes of pending
		window   int64      // granted by the server
		err      error      // sticky: the session is over
		closed   bool
	}
	room       chan struct{} // capacity 1: signalled when inflight drops
	done       chan struct{} // closed when the reader goroutine exits
	closeCh    chan struct{} // closed by Close
	closeOnce  sync.Once
	reconnects atomic.Int64
}

// Pending is a sent batch awaiting its answer.
type Pending struct {
	frame     []byte
	size      int64
	resend    bool // it has an idempotency key
	done      chan struct{}
	res       AppendResult
	err       error
	completed bool // REQUIRES: the session's mu held
}

// Done is closed once the batch has its answer.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Wait returns the batch's answer, or ctx's error if ctx ends first (the
// batch stays in the session and is still answered).
func (p *Pending) Wait(ctx context.Context) (AppendResult, error) {
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		return AppendResult{}, ctxError(ctx)
	}
}

// OpenSession opens an append session on stream. A refused upgrade is the
// server's *Error (401, 403, 400 invalid_stream, ...).
func (c *Client) OpenSession(ctx context.Context, stream string, opts *SessionOptions) (*Session, error) {
	s := &Session{c: c, stream: stream, path: "/v1/streams/" + url.PathEscape(stream) + "/append",
		room: make(chan struct{}, 1), done: make(chan struct{}), closeCh: make(chan struct{})}
	if opts != nil && opts.Window > 0 {
		s.query = url.Values{"window": {strconv.FormatInt(opts.Window, 10)}}
	}
	conn, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.conn = conn
	go s.readLoop()
	return s, nil
}

func (s *Session) dial(ctx context.Context) (*wsConn, error) {
	conn, resp, err := s.c.dialWS(ctx, s.path, s.query)
	if err != nil {
		return nil, err
	}
	window, perr := strconv.ParseInt(resp.Header.Get("Session-Window"), 10, 64)
	if perr != nil || window < 1 {
		conn.closeNow()
		return nil, newClientError(CodeConnection, "the server granted no Session-Window", perr)
	}
	s.mu.Lock()
	s.mu.window = window
	s.mu.Unlock()
	return conn, nil
}

// Window is the window the server granted, in bytes.
func (s *Session) Window() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.window
}

// Reconnects is how many times the session reconnected after a drop.
func (s *Session) Reconnects() int64 { return s.reconnects.Load() }

// Append sends one batch and waits for its answer.
func (s *Session) Append(ctx context.Context, recs []Record, opts *AppendOptions) (AppendResult, error) {
	p, err := s.Send(ctx, recs, opts)
	if err != nil {
		return AppendResult{}, err
	}
	return p.Wait(ctx)
}

// Send sends one batch (atomic, as AppendBatch) without waiting for its
// answer; it blocks only while the window is full. opts may set
// IdempotencyKey and ExpectedLastOffset, the only options a session's
// frames carry: Producer, Close, StreamSeq and MustExist are
// ErrInvalidOptions, and nothing is sent.
func (s *Session) Send(ctx context.Context, recs []Record, opts *AppendOptions) (*Pending, error) {
	key := ""
	var expected *int64
	if opts != nil {
		if opts.Producer != nil || opts.Close {
			return nil, newClientError(CodeInvalidOptions, "an append session takes no producer and no close; use AppendBatch", nil)
		}
		if opts.StreamSeq != "" {
			return nil, newClientError(CodeInvalidOptions, "an append session cannot carry a StreamSeq label; use Append or AppendBatch", nil)
		}
		if opts.MustExist {
			return nil, mustExistRefused()
		}
		key, expected = opts.IdempotencyKey, opts.ExpectedLastOffset
	}
	if err := checkIdempotencyKey(key); err != nil {
		return nil, err
	}
	if err := checkExpectedLastOffset(expected); err != nil {
		return nil, err
	}
	if key == "" && s.c.s.generateIdempotencyKeys {
		key = randomKey()
	}
	size := 32 + len(key)
	for i := range recs {
		size += 24 + len(recs[i].Key) + len(recs[i].Value)
		for k, v := range recs[i].Headers {
			size += 4 + len(k) + len(v)
		}
	}
	frame := wire.AppendBatchHeader(make([]byte, 0, size), key, expected, len(recs))
	for i := range recs {
		r := &recs[i]
		if r.JSON && !json.Valid(r.Value) {
			return nil, newClientError(CodeBadRequest, fmt.Sprintf("record %d: JSON flag on a value that is not JSON", i), nil)
		}
		w := wire.Record{Key: []byte(r.Key), Value: r.Value, JSON: r.JSON, Headers: r.Headers, Timestamp: r.Timestamp}
		frame = wire.AppendRecord(frame, &w)
	}
	p := &Pending{frame: frame, size: int64(len(frame)), resend: key != "", done: make(chan struct{})}
	for {
		s.wmu.Lock()
		s.mu.Lock()
		if err := s.mu.err; err != nil {
			s.mu.Unlock()
			s.wmu.Unlock()
			return nil, err
		}
		if s.mu.inflight == 0 || s.mu.inflight+p.size <= s.mu.window {
			s.mu.pending = append(s.mu.pending, p)
			s.mu.inflight += p.size
			conn := s.mu.conn
			s.mu.Unlock()
			if err := conn.write(wsBinary, frame); err != nil {
				conn.closeNow() // the reader reconnects and resends p
			}
			s.wmu.Unlock()
			return p, nil
		}
		s.mu.Unlock()
		s.wmu.Unlock()
		select {
		case <-s.room:
		case <-s.done:
		case <-ctx.Done():
			return nil, ctxError(ctx)
		}
	}
}

// Flush waits until every batch sent so far is answered (their errors are
// theirs: see Pending.Wait), or the session ends.
func (s *Session) Flush(ctx context.Context) error {
	s.mu.Lock()
	pend := append([]*Pending(nil), s.mu.pending...)
	s.mu.Unlock()
	for _, p := range pend {
		select {
		case <-p.done:
		case <-ctx.Done():
			return ctxError(ctx)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil
	}
	return s.mu.err
}

// Close ends the session: batches still unanswered fail with
// ErrSessionClosed (their outcome is unknown; Flush first to wait for
// them). It waits for the session's goroutine.
func (s *Session) Close() error {
	s.closeOnce.Do(func() { close(s.closeCh) })
	s.wmu.Lock()
	s.mu.Lock()
	if s.mu.err == nil {
		s.mu.err = newClientError(CodeConnection, ErrSessionClosed.Error(), ErrSessionClosed)
	}
	s.mu.closed = true
	conn := s.mu.conn
	s.mu.Unlock()
	s.wmu.Unlock()
	conn.close()
	<-s.done
	return nil
}

// sessionAnswer is an answer frame: the 201 fields, or an error and the
// status the POST would have given.
type sessionAnswer struct {
	AppendResult
	Error *struct {
		Code              string `json:"code"`
		Message           string `json:"message"`
		CurrentLastOffset *int64 `json:"current_last_offset"`
	} `json:"error"`
	Status int `json:"status"`
}

// readLoop reads the answers and resolves the batches in order; on a drop
// it reconnects and resends. It owns the session's end: it fails what is
// left and closes done.
func (s *Session) readLoop() {
	defer close(s.done)
	var buf []byte
	for {
		s.mu.Lock()
		conn := s.mu.conn
		s.mu.Unlock()
		var err error
		for err == nil {
			var msg []byte
			_, msg, err = conn.read(buf)
			if err != nil {
				break
			}
			buf = msg[:0]
			err = s.answer(msg)
		}
		conn.closeNow()
		s.mu.Lock()
		closed := s.mu.closed
		s.mu.Unlock()
		if closed {
			s.fail(nil)
			return
		}
		cause := err
		if errors.Is(err, errWSClosed) {
			cause = fmt.Errorf("%w (%s)", err, conn.closeError())
		}
		if rerr := s.reconnect(cause); rerr != nil {
			s.fail(rerr)
			return
		}
	}
}

// errReconnect makes readLoop drop the connection and resend: the server
// answered a batch with 307 not_leader or 503 no_leader (nothing stored).
var errReconnect = errors.New("client: the server asked the session to reconnect")

// answer resolves the oldest pending batch with one answer frame.
func (s *Session) answer(msg []byte) error {
	var a sessionAnswer
	if !parseSessionResult(msg, &a.AppendResult) {
		a = sessionAnswer{}
		if err := json.Unmarshal(msg, &a); err != nil {
			return fmt.Errorf("client: bad session answer: %w", err)
		}
	}
	var berr error
	if a.Error != nil {
		if a.Status == http.StatusTemporaryRedirect || (a.Status == http.StatusServiceUnavailable && a.Error.Code == CodeNoLeader) {
			return errReconnect
		}
		berr = &Error{Status: a.Status, Code: a.Error.Code, Message: a.Error.Message, CurrentLastOffset: a.Error.CurrentLastOffset}
	}
	s.mu.Lock()
	if len(s.mu.pending) == 0 {
		s.mu.Unlock()
		return errors.New("client: a session answer without a batch")
	}
	p := s.mu.pending[0]
	s.mu.pending[0] = nil
	s.mu.pending = s.mu.pending[1:]
	s.mu.inflight -= p.size
	p.res, p.err = a.AppendResult, berr
	p.frame = nil // answered: never resent, and a caller may keep p
	p.completed = true
	s.mu.Unlock()
	close(p.done)
	select {
	case s.room <- struct{}{}:
	default:
	}
	return nil
}

// reconnect dials again with the client's backoff and resends the
// unanswered batches; a batch without a key fails instead (its outcome is
// unknown). It gives up after MaxRetries attempts or on a refusal that
// retrying cannot change (401, 403, 404, ...).
func (s *Session) reconnect(cause error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.reconnects.Add(1)
	var last error = cause
	for attempt := 0; ; attempt++ {
		if attempt > s.c.s.maxRetries {
			return newClientError(CodeConnection, fmt.Sprintf("append session lost and not restored after %d attempts: %v", attempt, last), last)
		}
		if attempt > 0 {
			select {
			case <-time.After(s.c.backoff(attempt - 1)):
			case <-s.closeCh:
				return ErrSessionClosed
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.c.s.requestTimeout)
		conn, err := s.dial(ctx)
		cancel()
		if err != nil {
			var e *Error
			if errors.As(err, &e) && e.Status != 0 && e.Status != http.StatusServiceUnavailable &&
				e.Status != http.StatusTooManyRequests && e.Status < 500 {
				return err
			}
			last = err
			continue
		}
		s.mu.Lock()
		if s.mu.closed {
			s.mu.Unlock()
			conn.closeNow()
			return ErrSessionClosed
		}
		var lost []*Pending
		keep := s.mu.pending[:0]
		for _, p := range s.mu.pending {
			if p.resend {
				keep = append(keep, p)
			} else {
				lost = append(lost, p)
				s.mu.inflight -= p.size
			}
		}
		clear(s.mu.pending[len(keep):])
		s.mu.pending = keep
		s.mu.conn = conn
		resend := append([]*Pending(nil), keep...)
		s.mu.Unlock()
		for _, p := range lost {
			p.err = newClientError(CodeConnection, "append session dropped before the answer of a batch without an idempotency key (outcome unknown)", cause)
			close(p.done)
		}
		var werr error
		for _, p := range resend {
			if werr = conn.write(wsBinary, p.frame); werr != nil {
				break
			}
		}
		if werr != nil {
			conn.closeNow()
			last = werr
			continue
		}
		return nil
	}
}

// fail ends the session: err (nil: closed) becomes sticky and every
// unanswered batch fails with it.
func (s *Session) fail(err error) {
	s.mu.Lock()
	if err != nil && (s.mu.err == nil || !s.mu.closed) {
		s.mu.err = err
	}
	final := s.mu.err
	pend := s.mu.pending
	s.mu.pending = nil
	s.mu.inflight = 0
	s.mu.Unlock()
	for _, p := range pend {
		p.err = final
		close(p.done)
	}
}
