package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/badbatch/badbatch/storage"
	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Append sessions: GET /v1/streams/{stream}/append upgrades to a WebSocket
// on which a producer sends batches without waiting, each a binary frame
// (an append batch of package wire) or a JSON text frame (sessionFrame
// below). The server answers every batch, in the order received, once it
// is durable: a text frame with the fields of the POST's 201 answer, or
// the POST's error body plus "status".
//
// Two goroutines per session, both owned by the handler, which waits for
// them before it returns:
//
//	reader (the handler's)            acknowledger
//	  read frame, admit it in the       take the oldest pending batch
//	  window, parse, AppendAsync,       wait for its future
//	  queue (future, size) ----chan---> release its bytes from the window
//	                                    write its answer frame
//
// The window bounds the frame bytes sent and not yet answered. A frame is
// admitted when nothing is in flight or when it fits; a client that sends
// past the window is closed with 1008 (policy violation). The server frees
// a batch's bytes before writing its answer, so a client that counts its
// window from the answers it received never overruns the server's count.

// Session parameters.
const (
	headerSessionWindow = "Session-Window"
	// defaultSessionWindow is the window of a client that asks for none.
	defaultSessionWindow = 4 << 20
	// maxSessionWindow caps what a client may ask for.
	maxSessionWindow = 64 << 20
	// sessionQueue bounds the batches in flight whatever their size (a
	// full queue stops the reader: TCP back pressure, not a violation).
	sessionQueue = 4096
	// sessionKeepBuffer is the largest frame buffer a session keeps for
	// its next frame; a larger one is dropped after its frame.
	sessionKeepBuffer = 1 << 20
)

// asyncAppender is the optional pipelined append of a Store.
// *storage.Store and *storage.Healer have it; a Store without it is served
// one batch at a time (AppendWith in the reader's goroutine), which keeps
// the batches in the order they were sent but does not pipeline them.
type asyncAppender interface {
	AppendAsync(stream string, opts storage.AppendOptions, recs ...storage.Record) (*storage.AppendFuture, error)
}

var (
	_ asyncAppender = (*storage.Store)(nil)
	_ asyncAppender = (*storage.Healer)(nil)
)

// sessionBatch is one batch in flight: a future, a fallback result, or
// the error of a frame rejected before it reached the store.
type sessionBatch struct {
	future   *storage.AppendFuture
	fallback *sessionResult // a Store without AppendAsync
	err      error          // a frame rejected before the store
	size     int64          // frame bytes, freed from the window when answered
	records  int
	recBytes int
}

// sessionWindow parses ?window=: bytes, capped at maxSessionWindow.
func sessionWindow(c echo.Context) (int64, *apiError) {
	v := c.QueryParam("window")
	if v == "" {
		return defaultSessionWindow, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, badRequest("window=%q: want a number of bytes >= 1", v)
	}
	return min(n, maxSessionWindow), nil
}

// handleAppendSession is GET /v1/streams/{stream}/append.
func (s *Server) handleAppendSession(c echo.Context) error {
	stream, err, refused := s.admitAppend(c)
	if refused {
		return err
	}
	window, aerr := sessionWindow(c)
	if aerr != nil {
		return aerr
	}
	ctx, done, ok := s.beginTail(c.Request())
	if !ok {
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "shutting down")
	}
	defer done()
	c.Response().Header().Set(headerSessionWindow, strconv.FormatInt(window, 10))
	// A session outlives the server's whole-request deadlines; the
	// acknowledger bounds each write on its own.
	rc := http.NewResponseController(c.Response())
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	conn, err := websocket.Accept(c.Response(), c.Request(), &websocket.AcceptOptions{
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil // Accept already answered the handshake error
	}
	defer conn.CloseNow()
	conn.SetReadLimit(s.opts.MaxRequestBytes)
	m := &s.metrics.session
	m.open.Inc()
	defer m.open.Dec()

	// The session's own context: a cancelled read closes a coder/websocket
	// connection at once, so shutdown does not cancel it; shutdown sends
	// the going-away close instead, which ends the read.
	tok, _ := c.Get(tokenContextKey).(*Token)
	ss := &session{s: s, conn: conn, stream: stream, window: window,
		queue: make(chan sessionBatch, sessionQueue), limitKey: limitKey(c, tok), shutdown: ctx.Done()}
	ss.ctx, ss.cancel = context.WithCancel(context.Background())
	defer ss.cancel()
	goneAway := make(chan struct{})
	stopGoingAway := context.AfterFunc(ctx, func() {
		defer close(goneAway)
		_ = conn.Close(websocket.StatusGoingAway, "server shutting down")
	})
	ss.acks.Add(1)
	go ss.acknowledge()
	status, reason := ss.read()
	close(ss.queue)
	ss.acks.Wait()
	if !stopGoingAway() {
		<-goneAway // shutdown closed the connection
		return nil
	}
	_ = conn.Close(status, reason)
	return nil
}

// session is one append session. Not safe for concurrent use, except
// inflight (reader and acknowledger) and the conn's writes (acknowledger
// only, then the handler after both stopped).
type session struct {
	s      *Server
	conn   *websocket.Conn
	stream string
	window int64
	ctx    context.Context
	cancel context.CancelFunc
	queue  chan sessionBatch
	acks   sync.WaitGroup

	inflight atomic.Int64 // frame bytes admitted and not yet answered
	// writeErr is set by the acknowledger when it could not answer.
	writeErr atomic.Bool

	// limitKey is the rate limiter's key of the session's token (or IP):
	// each batch takes a token, as a POST would. shutdown ends a wait for
	// one.
	limitKey string
	shutdown <-chan struct{}

	buf []byte       // the frame being read (reused)
	sc  parseScratch // its records (reused: AppendAsync copies them)
}

// read reads and enqueues frames until the client closes, an error, or a
// window violation; it returns the close status to send.
func (ss *session) read() (websocket.StatusCode, string) {
	m := &ss.s.metrics.session
	for {
		typ, r, err := ss.conn.Reader(ss.ctx)
		if err != nil {
			return ss.readError(err)
		}
		ss.buf, err = readAllInto(r, ss.buf[:0])
		if err != nil {
			return ss.readError(err)
		}
		size := int64(len(ss.buf))
		m.framesIn.Inc()
		m.bytesIn.Add(float64(size))
		if !ss.throttle() {
			return websocket.StatusNormalClosure, ""
		}
		// Admit the frame: nothing in flight, or it fits.
		if cur := ss.inflight.Load(); cur > 0 && cur+size > ss.window {
			return websocket.StatusPolicyViolation, "window exceeded: " + strconv.FormatInt(cur+size, 10) +
				" bytes unanswered, window " + strconv.FormatInt(ss.window, 10)
		}
		ss.inflight.Add(size)
		b := ss.enqueue(typ, ss.buf)
		b.size = size
		if cap(ss.buf) > sessionKeepBuffer {
			// The store copied the frame's records: a session that sent
			// one large frame does not keep its buffer for life.
			ss.buf = nil
		}
		select {
		case ss.queue <- b:
		case <-ss.ctx.Done():
			return websocket.StatusNormalClosure, ""
		}
	}
}

// throttle takes a rate limiter token for the frame just read, waiting
// for it when the session's rate is spent (the next frame is read later:
// TCP back pressure on the producer, and no batch is refused or
// reordered). It returns false when the session ends meanwhile.
func (ss *session) throttle() bool {
	l := ss.s.limiter
	if l == nil {
		return true
	}
	d := l.reserve(ss.limitKey, time.Now())
	if d <= 0 {
		return true
	}
	ss.s.metrics.session.throttled.Inc()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ss.ctx.Done():
	case <-ss.shutdown:
	}
	return false
}

func (ss *session) readError(err error) (websocket.StatusCode, string) {
	if ss.writeErr.Load() || ss.ctx.Err() != nil {
		return websocket.StatusNormalClosure, ""
	}
	switch st := websocket.CloseStatus(err); st {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return websocket.StatusNormalClosure, ""
	case -1:
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return websocket.StatusNormalClosure, ""
		}
		// The library closed the connection already (message too big, a
		// protocol error) with its own status; this one is not sent.
		return websocket.StatusPolicyViolation, truncate(err.Error(), 120)
	default:
		return websocket.StatusNormalClosure, ""
	}
}

// readAllInto reads r to its end, appending to buf.
func readAllInto(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 512)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// rejected is a batch answered with err without reaching the store.
func rejected(err error) sessionBatch { return sessionBatch{err: err} }

// enqueue parses one frame and starts its append.
func (ss *session) enqueue(typ websocket.MessageType, data []byte) sessionBatch {
	var opts storage.AppendOptions
	var expected int64
	var recs []storage.Record
	var aerr *apiError
	async, isAsync := ss.s.store.(asyncAppender)
	sc := &ss.sc
	if !isAsync {
		// AppendWith runs on its own goroutine while the reader goes on:
		// the records must not alias the reused buffers.
		sc = new(parseScratch)
		data = slices.Clone(data)
	}
	if typ == websocket.MessageBinary {
		recs, aerr = sc.parse(bodyBinary, data, "", ss.s.opts.MaxRecordBytes)
		if aerr == nil {
			aerr = sc.mergeBinaryOptions(&opts, &expected)
		}
	} else {
		recs, aerr = sc.parseSessionJSON(data, ss.s.opts.MaxRecordBytes, &opts, &expected)
	}
	if aerr != nil {
		return rejected(aerr)
	}
	if opts.ExpectedLastOffset != nil && !isAsync {
		opts.ExpectedLastOffset = new(*opts.ExpectedLastOffset)
	}
	n := 0
	for i := range recs {
		n += storage.RecordSize(&recs[i])
	}
	b := sessionBatch{records: len(recs), recBytes: n}
	if isAsync {
		f, err := async.AppendAsync(ss.stream, opts, recs...)
		if err != nil {
			return rejected(err)
		}
		b.future = f
		return b
	}
	// A Store without AppendAsync: one batch at a time, in the reader's
	// goroutine, so that batches are stored in the order they were sent.
	fb := &sessionResult{done: make(chan struct{})}
	b.fallback = fb
	fb.res, fb.err = ss.s.store.AppendWith(ss.ctx, ss.stream, opts, recs...)
	close(fb.done)
	return b
}

// sessionResult is the result of a batch appended with AppendWith (a
// Store without AppendAsync); done is closed once res and err are set.
type sessionResult struct {
	done chan struct{}
	res  storage.AppendResult
	err  error
}

// result waits for a batch's outcome. ok is false when the session ended
// first.
func (ss *session) result(b *sessionBatch) (res storage.AppendResult, err error, ok bool) {
	switch {
	case b.future != nil:
		res, err = b.future.Wait(ss.ctx)
		if ss.ctx.Err() != nil && errors.Is(err, ss.ctx.Err()) {
			b.future.Release() // the append goes on; the future is recycled
			return res, err, false
		}
		b.future.Release()
		return res, err, true
	case b.fallback != nil:
		select {
		case <-b.fallback.done:
			return b.fallback.res, b.fallback.err, true
		case <-ss.ctx.Done():
			return res, err, false
		}
	default:
		return res, b.err, true
	}
}

// acknowledge answers the queued batches in order until the queue closes
// or an answer cannot be written. Answers written back to back (their
// batches completed together, as group commit makes them) share one write
// deadline.
func (ss *session) acknowledge() {
	defer ss.acks.Done()
	m := &ss.s.metrics.session
	var out []byte
	var dl writeDeadline
	defer dl.end()
	failed := false
	for b := range ss.queue {
		if failed {
			if b.future != nil {
				b.future.Release()
			}
			continue
		}
		if !ss.ready(&b) {
			dl.end() // about to block: the next write gets a fresh deadline
		}
		res, err, ok := ss.result(&b)
		if !ok {
			failed = true
			continue
		}
		out = ss.answer(out[:0], res, err, &b)
		ss.inflight.Add(-b.size)
		m.framesOut.Inc()
		m.bytesOut.Add(float64(len(out)))
		if werr := ss.conn.Write(dl.get(ss.ctx, ss.s.writeTimeout()), websocket.MessageText, out); werr != nil {
			failed = true
			ss.writeErr.Store(true)
			ss.cancel() // stop the reader too
		}
	}
}

// writeDeadline is a write context shared by consecutive writes.
type writeDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// get returns the current write context, or one that ends d from now.
func (w *writeDeadline) get(parent context.Context, d time.Duration) context.Context {
	if w.ctx == nil {
		w.ctx, w.cancel = context.WithTimeout(parent, d)
	}
	return w.ctx
}

// end releases the current write context.
func (w *writeDeadline) end() {
	if w.cancel != nil {
		w.cancel()
	}
	w.ctx, w.cancel = nil, nil
}

// ready reports whether a batch's outcome is known without waiting.
func (ss *session) ready(b *sessionBatch) bool {
	switch {
	case b.future != nil:
		select {
		case <-b.future.Done():
			// The signal is consumed; Wait still returns at once (see
			// storage.AppendFuture).
			return true
		default:
			return false
		}
	case b.fallback != nil:
		select {
		case <-b.fallback.done:
			return true
		default:
			return false
		}
	}
	return true
}

// answer is the text frame for one batch: the POST's 201 fields, or its
// error body and "status".
func (ss *session) answer(dst []byte, res storage.AppendResult, err error, b *sessionBatch) []byte {
	met := ss.s.metrics
	if err == nil {
		met.appendBatch.Observe(float64(b.records))
		if !res.Replayed {
			met.recordsAppended.Add(float64(b.records))
			met.bytesAppended.Add(float64(b.recBytes))
		}
		if out, ok := appendResultJSON(dst, &res); ok {
			return out[:len(out)-1] // no newline
		}
		out, _ := marshalJSON(res)
		return append(dst, out...)
	}
	ae := ss.s.sessionError(err)
	met.errors.WithLabelValues(ae.Code).Inc()
	out, _ := marshalJSON(sessionErrorFrame{Error: ae, Status: ae.Status})
	return append(dst, out...)
}

// sessionErrorFrame is a batch's error answer: the POST's error body and
// the status the POST would have given.
type sessionErrorFrame struct {
	Error  *apiError `json:"error"`
	Status int       `json:"status"`
}

// sessionError maps an append error as the POST handler does. In cluster
// mode a node that lost the lead answers 307 not_leader (nothing was
// stored): the client reconnects, which the follower redirects to the
// leader, and resends.
func (s *Server) sessionError(err error) *apiError {
	if s.opts.Cluster != nil && (errors.Is(err, storage.ErrNotLeader) || errors.Is(err, storage.ErrNotCommitted)) {
		st := s.opts.Cluster.Status()
		return &apiError{Status: http.StatusTemporaryRedirect, Code: CodeNotLeader,
			Message: "node " + strconv.FormatUint(st.NodeID, 10) + " is no longer the leader; reconnect (the leader is node " +
				strconv.FormatUint(st.LeaderID, 10) + ")", cause: err}
	}
	ae := toAPIError(err)
	if ae.Code == CodeInternal {
		ae = &apiError{Status: ae.Status, Code: ae.Code, Message: "internal error; see the server log"}
		s.logger.Error("append session batch failed", "err", err)
	}
	return ae
}

// parseSessionJSON parses a JSON text frame: the body of a JSON POST
// ({"records":[...]}) plus the optional "idempotency_key" and
// "expected_last_offset".
func (sc *parseScratch) parseSessionJSON(data []byte, maxRecord int, opts *storage.AppendOptions, expected *int64) ([]storage.Record, *apiError) {
	s := scanner{data: data}
	if s.peek() != '{' {
		return nil, badRequest(`bad JSON frame: want an object {"records":[...]}`)
	}
	var records []byte
	err := s.object(func(key []byte) (int, error) {
		switch string(key) {
		case "records":
			start := s.pos
			if _, err := s.value(nil, 1); err != nil {
				return 0, err
			}
			records = data[start:s.pos]
			return fieldRecords, nil
		case "idempotency_key":
			if s.null() {
				return fieldKey, nil
			}
			k, err := s.str()
			if err != nil {
				return 0, err
			}
			if len(k) == 0 || len(k) > maxIdempotencyKey {
				return 0, badRequest("idempotency_key of %d bytes: want 1 to %d", len(k), maxIdempotencyKey)
			}
			opts.IdempotencyKey = string(k)
			return fieldKey, nil
		case "expected_last_offset":
			if s.null() {
				return fieldTimestamp, nil
			}
			num, err := s.number(nil)
			if err != nil {
				return 0, err
			}
			n, perr := strconv.ParseInt(string(num), 10, 64)
			if perr != nil || n < -1 {
				return 0, badRequest("expected_last_offset %s: want an integer >= -1", num)
			}
			*expected = n
			opts.ExpectedLastOffset = expected
			return fieldTimestamp, nil
		}
		return 0, badRequest("bad JSON frame: unknown field %q", key)
	})
	if err != nil {
		var aerr *apiError
		if errors.As(err, &aerr) {
			return nil, aerr
		}
		return nil, badRequest("bad JSON frame: %v", err)
	}
	if !s.atEnd() {
		return nil, badRequest("bad JSON frame: data after the top-level value")
	}
	if records == nil {
		return nil, badRequest(`bad JSON frame: no "records"`)
	}
	// The records array as a JSON POST body (one small copy; the binary
	// frame is the fast path).
	body := make([]byte, 0, len(records)+12)
	body = append(append(append(body, `{"records":`...), records...), '}')
	return sc.parseJSONBody(body, maxRecord)
}

// sessionMetrics are the append sessions' Prometheus metrics.
type sessionMetrics struct {
	open                prometheus.Gauge
	framesIn, framesOut prometheus.Counter
	bytesIn, bytesOut   prometheus.Counter
	throttled           prometheus.Counter
}

func newSessionMetrics(r *prometheus.Registry) sessionMetrics {
	frames := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "badbatch_append_session_frames_total", Help: "Append session frames, by direction (in: batches, out: answers)."}, []string{"direction"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "badbatch_append_session_bytes_total", Help: "Append session frame payload bytes, by direction."}, []string{"direction"})
	m := sessionMetrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "badbatch_append_sessions_open", Help: "Open append sessions (WebSocket)."}),
		framesIn: frames.WithLabelValues("in"), framesOut: frames.WithLabelValues("out"),
		bytesIn: bytes.WithLabelValues("in"), bytesOut: bytes.WithLabelValues("out"),
	}
	m.throttled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "badbatch_append_session_frames_throttled_total",
		Help: "Append session frames that waited for the rate limiter (RateLimit) before they were read further."})
	r.MustRegister(m.open, frames, bytes, m.throttled)
	return m
}
