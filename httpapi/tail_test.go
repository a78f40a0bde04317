package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"github.com/badbatch/badbatch/httpapi"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	id, event, data string
}

// sseConn is an open SSE response.
type sseConn struct {
	resp   *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
}

func openSSE(t *testing.T, ts *testServer, path string, headers ...string) *sseConn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Accept-Encoding", "gzip")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	require.Empty(t, resp.Header.Get("Content-Encoding"), "SSE must not be compressed")
	c := &sseConn{resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}
	t.Cleanup(c.Close)
	return c
}

func (c *sseConn) Close() {
	c.cancel()
	_ = c.resp.Body.Close()
}

// next returns the next event with data (comments and retry lines are
// skipped).
func (c *sseConn) next(t *testing.T) sseEvent {
	t.Helper()
	var ev sseEvent
	for {
		line, err := c.r.ReadString('\n')
		require.NoError(t, err)
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if ev.data != "" {
				return ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			ev.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		}
	}
}

func (c *sseConn) nextRecord(t *testing.T) record {
	t.Helper()
	ev := c.next(t)
	require.Empty(t, ev.event, "event %+v", ev)
	var r record
	require.NoError(t, json.Unmarshal([]byte(ev.data), &r))
	require.Equal(t, strconv.FormatUint(r.Offset, 10), ev.id, "the event id is the offset")
	return r
}

// TestSSEResume reads part of a stream over SSE, disconnects, appends more
// and resumes with Last-Event-ID: every offset arrives once, in order.
func TestSSEResume(t *testing.T) {
	ts := startServer(t, serverConfig{})
	appendN(t, ts, "sse", 0, 5)

	c := openSSE(t, ts, "/v1/streams/sse/records?from=0")
	var seen []uint64
	for i := 0; i < 3; i++ {
		seen = append(seen, c.nextRecord(t).Offset)
	}
	c.Close()
	appendN(t, ts, "sse", 5, 5)

	last := seen[len(seen)-1]
	c = openSSE(t, ts, "/v1/streams/sse/records?from=0", "Last-Event-ID", strconv.FormatUint(last, 10))
	for len(seen) < 10 {
		r := c.nextRecord(t)
		assert.JSONEq(t, `{"n":`+strconv.FormatUint(r.Offset, 10)+`}`, string(r.Value))
		seen = append(seen, r.Offset)
	}
	// Live records after the catch-up arrive too.
	appendN(t, ts, "sse", 10, 1)
	seen = append(seen, c.nextRecord(t).Offset)
	want := make([]uint64, 11)
	for i := range want {
		want[i] = uint64(i)
	}
	assert.Equal(t, want, seen, "no gap, no duplicate")
}

func TestSSEFromLatest(t *testing.T) {
	ts := startServer(t, serverConfig{})
	appendN(t, ts, "late", 0, 3)
	c := openSSE(t, ts, "/v1/streams/late/records?from=latest")
	assert.Equal(t, "3", c.resp.Header.Get("Stream-Next-Offset"))
	appendN(t, ts, "late", 3, 1)
	assert.Equal(t, uint64(3), c.nextRecord(t).Offset)
}

func TestSSENotFound(t *testing.T) {
	ts := startServer(t, serverConfig{})
	resp, body := ts.do(http.MethodGet, "/v1/streams/none/records", nil, "Accept", "text/event-stream")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "not_found", decodeErr(t, body).Error.Code)
}

func dialWS(t *testing.T, ts *testServer, path string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+path, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	t.Cleanup(func() { conn.CloseNow() })
	return conn
}

func readWS(t *testing.T, conn *websocket.Conn) record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, data, err := conn.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, websocket.MessageText, typ)
	var r record
	require.NoError(t, json.Unmarshal(data, &r))
	return r
}

// TestWebSocketOutlivesRequestTimeouts: a WebSocket tail lives past the
// server's whole-request read and write deadlines (net/http clears a
// hijacked connection's deadlines; this holds the server to that).
func TestWebSocketOutlivesRequestTimeouts(t *testing.T) {
	ts := startServer(t, serverConfig{opts: func(o *httpapi.Options) {
		// Pings must be answered within WriteTimeout: 1 s leaves a loaded
		// race run room.
		o.ReadTimeout, o.WriteTimeout, o.HeartbeatInterval = time.Second, time.Second, 200*time.Millisecond
	}})
	appendN(t, ts, "long", 0, 1)
	conn := dialWS(t, ts, "/v1/streams/long/ws?from=0")
	assert.Equal(t, uint64(0), readWS(t, conn).Offset)
	// The next record comes after 2.5 times both deadlines; meanwhile
	// the client reads, answering the heartbeat pings.
	appended := make(chan struct{})
	time.AfterFunc(2500*time.Millisecond, func() {
		defer close(appended)
		appendN(t, ts, "long", 1, 1)
	})
	assert.Equal(t, uint64(1), readWS(t, conn).Offset)
	<-appended
}

func TestWebSocketResume(t *testing.T) {
	ts := startServer(t, serverConfig{})
	appendN(t, ts, "ws", 0, 4)
	conn := dialWS(t, ts, "/v1/streams/ws/ws?from=0")
	var seen []uint64
	for i := 0; i < 2; i++ {
		seen = append(seen, readWS(t, conn).Offset)
	}
	require.NoError(t, conn.Close(websocket.StatusNormalClosure, ""))
	appendN(t, ts, "ws", 4, 4)

	conn = dialWS(t, ts, "/v1/streams/ws/ws?from="+strconv.FormatUint(seen[len(seen)-1]+1, 10))
	for len(seen) < 8 {
		r := readWS(t, conn)
		assert.JSONEq(t, `{"n":`+strconv.FormatUint(r.Offset, 10)+`}`, string(r.Value))
		seen = append(seen, r.Offset)
	}
	appendN(t, ts, "ws", 8, 1)
	seen = append(seen, readWS(t, conn).Offset)
	assert.Equal(t, []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8}, seen, "no gap, no duplicate")
}

func TestWebSocketErrorsBeforeUpgrade(t *testing.T) {
	ts := startServer(t, serverConfig{})
	cases := []struct {
		name, path string
		status     int
	}{
		{"never written", "/v1/streams/none/ws", http.StatusNotFound},
		{"bad from", "/v1/streams/none/ws?from=x", http.StatusBadRequest},
		{"bad stream", "/v1/streams/-x/ws", http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+tc.path, nil)
			require.Error(t, err)
			require.NotNil(t, resp)
			assert.Equal(t, tc.status, resp.StatusCode)
		})
	}
}

// TestShutdownEndsTails checks that Shutdown ends open SSE, WebSocket and
// long-poll requests instead of waiting for them.
func TestShutdownEndsTails(t *testing.T) {
	ts := startServer(t, serverConfig{})
	appendN(t, ts, "t", 0, 1)
	sse := openSSE(t, ts, "/v1/streams/t/records?from=latest")
	ws := dialWS(t, ts, "/v1/streams/t/ws?from=latest")
	poll := make(chan int, 1)
	go func() {
		resp, _ := ts.do(http.MethodGet, "/v1/streams/t/records?from=latest&wait=60s", nil)
		poll <- resp.StatusCode
	}()
	// Wait until all three are registered as subscribers.
	require.Eventually(t, func() bool {
		return subscribers(t, ts) == 3
	}, 10*time.Second, 5*time.Millisecond)

	// Read concurrently, as real clients do: the WebSocket close handshake
	// needs the client to answer.
	wsClosed := make(chan websocket.StatusCode, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _, err := ws.Read(ctx)
		wsClosed <- websocket.CloseStatus(err)
	}()
	sseEnded := make(chan struct{})
	go func() {
		defer close(sseEnded)
		for {
			if _, err := sse.r.ReadString('\n'); err != nil {
				return
			}
		}
	}()
	ts.Close()
	<-sseEnded
	assert.Equal(t, websocket.StatusGoingAway, <-wsClosed)
	assert.Equal(t, http.StatusOK, <-poll)
}

// TestTailsEndWhenClientsLeave checks that SSE, WebSocket and long-poll
// handlers end when their clients disconnect (the live-subscriber gauge
// returns to zero, and goleak checks the goroutines at the end).
func TestTailsEndWhenClientsLeave(t *testing.T) {
	ts := startServer(t, serverConfig{})
	appendN(t, ts, "gone", 0, 1)
	sse := openSSE(t, ts, "/v1/streams/gone/records?from=latest")
	ws := dialWS(t, ts, "/v1/streams/gone/ws?from=latest")
	pollCtx, cancelPoll := context.WithCancel(context.Background())
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		req, _ := http.NewRequestWithContext(pollCtx, http.MethodGet, ts.URL+"/v1/streams/gone/records?from=latest&wait=60s", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	require.Eventually(t, func() bool { return subscribers(t, ts) == 3 }, 10*time.Second, 5*time.Millisecond)

	sse.Close()
	ws.CloseNow()
	cancelPoll()
	<-pollDone
	require.Eventually(t, func() bool { return subscribers(t, ts) == 0 }, 10*time.Second, 5*time.Millisecond)
}
