package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/badbatch/badbatch/replay"
	"github.com/badbatch/badbatch/storage"
	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"
)

// nextBatch is the one place tailing reads the store (long-poll, SSE and
// WebSocket all go through it). It is replay's pull-based step: it returns
// up to limit records of stream from offset from; when there are none yet
// it waits up to maxWait for the first, and returns an empty slice and no
// error if none came. It returns ctx's error when ctx ends. The caller
// advances from by what it received, so there is no gap and no duplicate.
func (s *Server) nextBatch(ctx context.Context, stream string, from uint64, limit int, maxWait time.Duration) ([]storage.StoredRecord, error) {
	r, err := replay.New(replay.Source[storage.StoredRecord](s.store), storedPosition, &replay.Options{BatchSize: limit})
	if err != nil {
		return nil, err
	}
	return r.Poll(ctx, stream, from, limit, maxWait)
}

// storedPosition is replay's view of a stored record.
func storedPosition(r *storage.StoredRecord) replay.Position {
	return replay.Position{Offset: r.Offset, Seq: r.Seq}
}

// liftDeadlines replaces the server's whole-request deadlines for a
// streaming answer: no read deadline (there is no body to read and the
// background read watches for the client going away), and a write deadline
// of d from now, which the streaming loops push forward before each write.
func liftDeadlines(c echo.Context, d time.Duration) {
	rc := http.NewResponseController(c.Response())
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(d))
}

// startOffsetForTail resolves where a tail starts: Last-Event-ID (SSE
// resume: N means continue at N+1) wins over the query.
func (s *Server) startOffsetForTail(c echo.Context, stream string, q readQuery) (uint64, error) {
	if v := c.Request().Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, badRequest("Last-Event-ID %q: want an offset", v)
		}
		if _, err := s.store.StreamInfo(c.Request().Context(), stream); err != nil {
			return 0, storeError(err)
		}
		return n + 1, nil
	}
	from, err := s.resolveStart(c, stream, q)
	if err != nil {
		return 0, storeError(err)
	}
	return from, nil
}

// serveSSE tails a stream as Server-Sent Events. Each record is one event
// whose id is its offset and whose data is the record's JSON. An idle tail
// sends a comment every HeartbeatInterval. A tail that falls below
// retention gets an "error" event and ends.
func (s *Server) serveSSE(c echo.Context, stream string, q readQuery) error {
	from, err := s.startOffsetForTail(c, stream, q)
	if err != nil {
		return err
	}
	// Probe once so that 404 and 410 are plain HTTP answers.
	if _, err := s.store.Read(c.Request().Context(), stream, from, 1); err != nil {
		return storeError(err)
	}
	ctx, done, ok := s.beginTail(c.Request())
	if !ok {
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "shutting down")
	}
	defer done()
	s.metrics.subscribers.WithLabelValues("sse").Inc()
	defer s.metrics.subscribers.WithLabelValues("sse").Dec()

	res := c.Response()
	h := res.Header()
	h.Set(echo.HeaderContentType, mediaSSE)
	h.Set(echo.HeaderCacheControl, "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Set(headerStreamNextOffset, strconv.FormatUint(from, 10))
	rc := http.NewResponseController(res)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	res.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(res, "retry: 1000\n\n"); err != nil {
		return nil
	}
	res.Flush()

	var buf []byte
	for {
		recs, err := s.nextBatch(ctx, stream, from, s.opts.TailBatch, s.opts.HeartbeatInterval)
		if ctx.Err() != nil {
			return nil
		}
		buf = buf[:0]
		switch {
		case errors.Is(err, storage.ErrStreamClosed):
			buf = append(buf, "event: closed\ndata: {}\n\n"...)
		case err != nil:
			buf = appendSSEError(buf, storeError(err))
		case len(recs) == 0:
			buf = append(buf, ": keep-alive\n\n"...)
		default:
			for i := range recs {
				data, merr := marshalJSON(toOutRecord(&recs[i], false))
				if merr != nil {
					return nil
				}
				buf = append(buf, "id: "...)
				buf = strconv.AppendUint(buf, recs[i].Offset, 10)
				buf = append(buf, "\ndata: "...)
				buf = append(buf, data...)
				buf = append(buf, "\n\n"...)
			}
			from = recs[len(recs)-1].Offset + 1
			s.metrics.observeRead(recs)
		}
		if s.opts.WriteTimeout > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		}
		if _, werr := res.Write(buf); werr != nil {
			return nil // the client went away
		}
		res.Flush()
		if err != nil {
			return nil
		}
	}
}

func appendSSEError(buf []byte, e *apiError) []byte {
	data, _ := json.Marshal(errorBody{Error: e})
	buf = append(buf, "event: error\ndata: "...)
	buf = append(buf, data...)
	return append(buf, "\n\n"...)
}

// handleWebSocket tails a stream over WebSocket: one JSON record per text
// message, from ?from= (an offset, earliest or latest). A client resumes
// after a disconnect with from = last offset + 1.
func (s *Server) handleWebSocket(c echo.Context) error {
	stream := c.Param("stream")
	if err := storage.ValidateStreamName(stream); err != nil {
		return storeError(err)
	}
	if err := s.authorize(c, PermRead, stream); err != nil {
		return err
	}
	q, err := s.parseReadQuery(c)
	if err != nil {
		return err
	}
	from, err := s.resolveStart(c, stream, q)
	if err != nil {
		return storeError(err)
	}
	if _, err := s.store.Read(c.Request().Context(), stream, from, 1); err != nil {
		return storeError(err)
	}
	ctx, done, ok := s.beginTail(c.Request())
	if !ok {
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "shutting down")
	}
	defer done()
	conn, err := websocket.Accept(c.Response(), c.Request(), &websocket.AcceptOptions{
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil // Accept already answered the handshake error
	}
	defer conn.CloseNow()
	s.metrics.subscribers.WithLabelValues("websocket").Inc()
	defer s.metrics.subscribers.WithLabelValues("websocket").Dec()
	// The client sends nothing; CloseRead handles its pings and close, and
	// its context ends when the client goes away. It gets a context of its
	// own: cancelling a websocket read closes the connection at once, and
	// on shutdown the server sends a going-away close frame first.
	peerCtx := conn.CloseRead(context.Background())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(peerCtx, cancel)()

	status, reason := s.wsLoop(ctx, conn, stream, from)
	if s.stopCtx.Err() != nil {
		status, reason = websocket.StatusGoingAway, "server shutting down"
	}
	// Close waits a bounded time (the library's own timeouts) for the
	// client's half of the closing handshake.
	_ = conn.Close(status, reason)
	return nil
}

// wsLoop sends records until ctx ends or an error; it returns the close
// status to send.
func (s *Server) wsLoop(ctx context.Context, conn *websocket.Conn, stream string, from uint64) (websocket.StatusCode, string) {
	for {
		recs, err := s.nextBatch(ctx, stream, from, s.opts.TailBatch, s.opts.HeartbeatInterval)
		if ctx.Err() != nil {
			return websocket.StatusNormalClosure, ""
		}
		if errors.Is(err, storage.ErrStreamClosed) {
			return websocket.StatusNormalClosure, "stream closed"
		}
		if err != nil {
			e := storeError(err)
			return websocket.StatusPolicyViolation, e.Code + ": " + truncate(e.Message, 100)
		}
		wctx, cancel := context.WithTimeout(ctx, s.writeTimeout())
		if len(recs) == 0 {
			err = conn.Ping(wctx)
		}
		for i := 0; i < len(recs) && err == nil; i++ {
			var data []byte
			data, err = marshalJSON(toOutRecord(&recs[i], false))
			if err == nil {
				err = conn.Write(wctx, websocket.MessageText, data)
			}
		}
		cancel()
		if err != nil {
			return websocket.StatusInternalError, ""
		}
		if len(recs) > 0 {
			from = recs[len(recs)-1].Offset + 1
			s.metrics.observeRead(recs)
		}
	}
}

func (s *Server) writeTimeout() time.Duration {
	if s.opts.WriteTimeout > 0 {
		return s.opts.WriteTimeout
	}
	return time.Minute
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
