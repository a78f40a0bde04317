package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi"
	"github.com/badbatch/badbatch/httpapi/client"
	"github.com/badbatch/badbatch/httpapi/wire"
	"github.com/badbatch/badbatch/storage"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sessionAnswer is one answer frame: the 201 fields or an error and status.
type sessionAnswer struct {
	appendResult
	Error *struct {
		Code              string `json:"code"`
		Message           string `json:"message"`
		CurrentLastOffset *int64 `json:"current_last_offset"`
	} `json:"error"`
	Status int `json:"status"`
}

func dialSession(t *testing.T, ts *testServer, stream, query string, headers ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(headers); i += 2 {
		h.Set(headers[i], headers[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(ts.URL, "http") + "/v1/streams/" + stream + "/append" + query
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
	if conn != nil {
		conn.SetReadLimit(1 << 20)
		t.Cleanup(func() { conn.CloseNow() })
	}
	return conn, resp, err
}

func mustSession(t *testing.T, ts *testServer, stream, query string, headers ...string) *websocket.Conn {
	t.Helper()
	conn, _, err := dialSession(t, ts, stream, query, headers...)
	require.NoError(t, err)
	return conn
}

func sendBinary(t *testing.T, conn *websocket.Conn, b *wire.Batch) {
	t.Helper()
	require.NoError(t, conn.Write(context.Background(), websocket.MessageBinary, wire.AppendBatch(nil, b)))
}

func sendText(t *testing.T, conn *websocket.Conn, s string) {
	t.Helper()
	require.NoError(t, conn.Write(context.Background(), websocket.MessageText, []byte(s)))
}

func readAnswer(t *testing.T, conn *websocket.Conn) sessionAnswer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, data, err := conn.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, websocket.MessageText, typ)
	var a sessionAnswer
	require.NoError(t, json.Unmarshal(data, &a), "%s", data)
	if a.Error != nil {
		require.NotZero(t, a.Status, "an error frame carries its status: %s", data)
	}
	return a
}

func oneRecord(v string) *wire.Batch {
	return &wire.Batch{Records: []wire.Record{{Value: []byte(v)}}}
}

// TestSessionOrdering: many batches sent without waiting, binary and JSON
// mixed, are answered in order with consecutive offsets.
func TestSessionOrdering(t *testing.T) {
	ts := startServer(t, serverConfig{})
	conn := mustSession(t, ts, "ord", "")
	const n = 300
	go func() {
		for i := range n {
			if i%3 == 0 {
				_ = conn.Write(context.Background(), websocket.MessageText,
					fmt.Appendf(nil, `{"records":[{"value":%d},{"value":"x"}]}`, i))
			} else {
				_ = conn.Write(context.Background(), websocket.MessageBinary, wire.AppendBatch(nil, oneRecord(fmt.Sprint(i))))
			}
		}
	}()
	next := uint64(0)
	for i := range n {
		a := readAnswer(t, conn)
		require.Nil(t, a.Error)
		want := 1
		if i%3 == 0 {
			want = 2
		}
		require.Equal(t, want, a.Count, "batch %d", i)
		require.Equal(t, next, a.FirstOffset, "batch %d", i)
		require.Equal(t, "ord", a.Stream)
		next = a.LastOffset + 1
	}
	require.NoError(t, conn.Close(websocket.StatusNormalClosure, ""))
	recs, err := ts.Store.Read(context.Background(), "ord", 0, 10000)
	require.NoError(t, err)
	require.Len(t, recs, int(next))
	assert.JSONEq(t, "0", string(recs[0].Value))
	assert.Equal(t, "1", string(recs[2].Value))
}

// TestSessionErrorFrames: a bad batch is answered with the POST's error
// body plus its status, stores nothing, and the session goes on.
func TestSessionErrorFrames(t *testing.T) {
	ts := startServer(t, serverConfig{opts: func(o *httpapi.Options) { o.MaxRecordBytes = 64 }})
	conn := mustSession(t, ts, "errs", "")
	sendBinary(t, conn, oneRecord("first"))
	require.Nil(t, readAnswer(t, conn).Error)
	before := ts.snapshot()
	for _, tc := range []struct {
		name   string
		typ    websocket.MessageType
		frame  []byte
		status int
		code   string
	}{
		{"malformed binary", websocket.MessageBinary, []byte("BBR1\x00\x05"), 400, httpapi.CodeBadRequest},
		{"bad magic", websocket.MessageBinary, []byte("nope"), 400, httpapi.CodeBadRequest},
		{"bad JSON", websocket.MessageText, []byte(`{"records":[{]}`), 400, httpapi.CodeBadRequest},
		{"unknown field", websocket.MessageText, []byte(`{"records":[{"value":1}],"x":1}`), 400, httpapi.CodeBadRequest},
		{"no records", websocket.MessageText, []byte(`{"idempotency_key":"a"}`), 400, httpapi.CodeBadRequest},
		{"empty batch", websocket.MessageText, []byte(`{"records":[]}`), 400, httpapi.CodeBadRequest},
		{"both value and base64", websocket.MessageText, []byte(`{"records":[{"value":1,"value_base64":"AA=="}]}`), 400, httpapi.CodeBadRequest},
		{"record too large", websocket.MessageBinary, wire.AppendBatch(nil, oneRecord(strings.Repeat("x", 65))), 413, httpapi.CodeTooLarge},
		{"bad expected", websocket.MessageText, []byte(`{"records":[{"value":1}],"expected_last_offset":-2}`), 400, httpapi.CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, conn.Write(context.Background(), tc.typ, tc.frame))
			a := readAnswer(t, conn)
			require.NotNil(t, a.Error)
			assert.Equal(t, tc.status, a.Status)
			assert.Equal(t, tc.code, a.Error.Code)
			assert.NotEmpty(t, a.Error.Message)
		})
	}
	assert.Equal(t, before, ts.snapshot(), "bad frames store nothing")
	sendBinary(t, conn, oneRecord("after"))
	a := readAnswer(t, conn)
	require.Nil(t, a.Error)
	assert.Equal(t, uint64(1), a.FirstOffset)

	// A closed stream answers 409 stream_closed, as POST does.
	_, err := ts.Store.CloseStream(context.Background(), "errs", storage.AppendOptions{})
	require.NoError(t, err)
	sendBinary(t, conn, oneRecord("late"))
	a = readAnswer(t, conn)
	require.NotNil(t, a.Error)
	assert.Equal(t, http.StatusConflict, a.Status)
	assert.Equal(t, httpapi.CodeStreamClosed, a.Error.Code)
}

// TestSessionExpectedLastOffset: expected_last_offset is checked per
// batch, in the binary and the JSON frame.
func TestSessionExpectedLastOffset(t *testing.T) {
	ts := startServer(t, serverConfig{})
	conn := mustSession(t, ts, "exp", "")
	empty, zero := int64(-1), int64(0)
	sendBinary(t, conn, &wire.Batch{ExpectedLastOffset: &empty, Records: []wire.Record{{Value: []byte("a")}}})
	sendText(t, conn, `{"records":[{"value":"b"}],"expected_last_offset":0}`)
	sendBinary(t, conn, &wire.Batch{ExpectedLastOffset: &zero, Records: []wire.Record{{Value: []byte("c")}}})
	sendText(t, conn, `{"records":[{"value":"d"}],"expected_last_offset":-1}`)
	a := readAnswer(t, conn)
	require.Nil(t, a.Error)
	assert.Equal(t, uint64(0), a.FirstOffset)
	a = readAnswer(t, conn)
	require.Nil(t, a.Error)
	assert.Equal(t, uint64(1), a.FirstOffset)
	for range 2 {
		a = readAnswer(t, conn)
		require.NotNil(t, a.Error)
		assert.Equal(t, http.StatusConflict, a.Status)
		assert.Equal(t, httpapi.CodeOffsetMismatch, a.Error.Code)
		require.NotNil(t, a.Error.CurrentLastOffset)
		assert.Equal(t, int64(1), *a.Error.CurrentLastOffset)
	}
}

// TestSessionIdempotentResend: batches sent under keys, a connection
// dropped before their answers, and the same batches resent on a new
// session: every record is stored once.
func TestSessionIdempotentResend(t *testing.T) {
	ts := startServer(t, serverConfig{})
	const n = 50
	batch := func(i int) *wire.Batch {
		return &wire.Batch{IdempotencyKey: fmt.Sprintf("key-%d", i), Records: []wire.Record{{Value: fmt.Append(nil, i)}}}
	}
	conn := mustSession(t, ts, "resend", "")
	for i := range n {
		sendBinary(t, conn, batch(i))
	}
	for range n / 2 {
		require.Nil(t, readAnswer(t, conn).Error)
	}
	conn.CloseNow() // drop the connection with answers unread
	conn = mustSession(t, ts, "resend", "")
	for i := range n {
		if i%2 == 0 {
			sendText(t, conn, fmt.Sprintf(`{"records":[{"value_base64":"%s"}],"idempotency_key":"key-%d"}`,
				b64(fmt.Append(nil, i)), i))
		} else {
			sendBinary(t, conn, batch(i))
		}
	}
	for i := range n {
		a := readAnswer(t, conn)
		require.Nil(t, a.Error)
		assert.True(t, a.Replayed, "batch %d was stored by the first session", i)
		assert.Equal(t, uint64(i), a.FirstOffset)
	}
	recs, err := ts.Store.Read(context.Background(), "resend", 0, 1000)
	require.NoError(t, err)
	require.Len(t, recs, n)
	for i, r := range recs {
		assert.Equal(t, fmt.Sprint(i), string(r.Value))
	}
}

// gateStore holds every append until its gate opens (a store without
// AppendAsync: the session's goroutine-per-batch path).
type gateStore struct {
	httpapi.Store
	gate chan struct{}
}

func (g *gateStore) AppendWith(ctx context.Context, stream string, o storage.AppendOptions, recs ...storage.Record) (storage.AppendResult, error) {
	<-g.gate
	return g.Store.AppendWith(ctx, stream, o, recs...)
}

// TestSessionWindow: the server grants the window asked for, capped, and
// closes a session that sends past it with 1008, after answering what it
// admitted.
func TestSessionWindow(t *testing.T) {
	gate := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	ts := startServer(t, serverConfig{wrap: func(s httpapi.Store) httpapi.Store { return &gateStore{Store: s, gate: gate} }})
	t.Cleanup(open)

	_, resp, err := dialSession(t, ts, "win", "?window=99999999999")
	require.NoError(t, err)
	assert.Equal(t, "67108864", resp.Header.Get("Session-Window"), "capped")
	resp, body := ts.do(http.MethodGet, "/v1/streams/win/append?window=0", nil)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", body)

	conn, resp, err := dialSession(t, ts, "win", "?window=100")
	require.NoError(t, err)
	assert.Equal(t, "100", resp.Header.Get("Session-Window"))
	big := oneRecord(strings.Repeat("x", 150)) // larger than the window: admitted alone
	sendBinary(t, conn, big)
	sendBinary(t, conn, oneRecord("over")) // 150 bytes unanswered: past the window
	time.Sleep(50 * time.Millisecond)
	open()
	a := readAnswer(t, conn)
	require.Nil(t, a.Error)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err = conn.Read(ctx)
	require.Error(t, err)
	assert.Equal(t, websocket.StatusPolicyViolation, websocket.CloseStatus(err), "%v", err)
	assert.Contains(t, err.Error(), "window exceeded")
	recs, err := ts.Store.Read(context.Background(), "win", 0, 10)
	require.NoError(t, err)
	assert.Len(t, recs, 1, "the frame past the window is not stored")

	// Within the window: answered one by one, never closed.
	conn = mustSession(t, ts, "win", "?window=100")
	for range 5 {
		sendBinary(t, conn, big)
		require.Nil(t, readAnswer(t, conn).Error)
	}
}

// TestSessionOversizeFrame: a frame over MaxRequestBytes closes the session
// with 1009 (message too big), storing nothing.
func TestSessionOversizeFrame(t *testing.T) {
	ts := startServer(t, serverConfig{opts: func(o *httpapi.Options) { o.MaxRequestBytes = 1000 }})
	conn := mustSession(t, ts, "huge", "")
	sendBinary(t, conn, oneRecord(strings.Repeat("x", 2000)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := conn.Read(ctx)
	require.Error(t, err)
	assert.Equal(t, websocket.StatusMessageTooBig, websocket.CloseStatus(err), "%v", err)
	assert.Empty(t, ts.snapshot().Streams)
}

// TestSessionAuthAndNames: the upgrade is refused as POST refuses: bad
// names 400, no token 401, a read-only token or a foreign prefix 403.
func TestSessionAuthAndNames(t *testing.T) {
	ts := authServer(t, nil)
	for _, tc := range []struct {
		stream, token string
		status        int
	}{
		{"bad$name", tokWriter, http.StatusBadRequest},
		{"s", "", http.StatusUnauthorized},
		{"s", "wrong-token-000000000000", http.StatusUnauthorized},
		{"s", tokReader, http.StatusForbidden},
		{"team-b.x", tokPrefixed, http.StatusForbidden},
	} {
		headers := []string{}
		if tc.token != "" {
			headers = append(headers, "Authorization", "Bearer "+tc.token)
		}
		_, resp, err := dialSession(t, ts, tc.stream, "", headers...)
		require.Error(t, err)
		require.NotNil(t, resp)
		assert.Equal(t, tc.status, resp.StatusCode, "%s %s", tc.stream, tc.token)
		body, _ := io.ReadAll(resp.Body)
		if len(body) > 0 {
			decodeErr(t, body)
		}
	}
	conn := mustSession(t, ts, "team-a.x", "", "Authorization", "Bearer "+tokPrefixed)
	sendBinary(t, conn, oneRecord("ok"))
	require.Nil(t, readAnswer(t, conn).Error)
}

// TestSessionMetrics: open sessions, frames and bytes are exported.
func TestSessionMetrics(t *testing.T) {
	ts := startServer(t, serverConfig{})
	conn := mustSession(t, ts, "met", "")
	sendBinary(t, conn, oneRecord("m"))
	require.Nil(t, readAnswer(t, conn).Error)
	_, body := ts.do(http.MethodGet, "/metrics", nil)
	text := string(body)
	assert.Contains(t, text, "badbatch_append_sessions_open 1")
	assert.Contains(t, text, `badbatch_append_session_frames_total{direction="in"} 1`)
	assert.Contains(t, text, `badbatch_append_session_frames_total{direction="out"} 1`)
	assert.Contains(t, text, `badbatch_append_session_bytes_total{direction="in"}`)
}

// TestSessionRateLimited: with RateLimit on, each batch of a session takes
// a token as a POST would; a session past its rate is slowed (its next
// frame is read later), not refused, so every batch is stored, in order.
func TestSessionRateLimited(t *testing.T) {
	const perSecond, frames = 40, 13
	ts := startServer(t, serverConfig{opts: func(o *httpapi.Options) { o.RateLimit, o.RateBurst = perSecond, 2 }})
	// The clock starts before the upgrade: from a full bucket of 2, the
	// upgrade and the 13 frames take 14 tokens, so the last frame is read
	// no sooner than 12 refills (of 1/40 s) after it, whatever the
	// machine's speed (a slow machine only adds to it).
	start := time.Now()
	conn := mustSession(t, ts, "slow", "")
	for i := range frames {
		sendBinary(t, conn, oneRecord(strconv.Itoa(i)))
	}
	for i := range frames {
		a := readAnswer(t, conn)
		require.Nil(t, a.Error, "batch %d", i)
		assert.Equal(t, uint64(i), a.FirstOffset)
	}
	assert.GreaterOrEqual(t, time.Since(start), (frames+1-2)*time.Second/perSecond)
	require.Eventually(t, func() bool { // /metrics is rate limited too
		resp, body := ts.do(http.MethodGet, "/metrics", nil)
		return resp.StatusCode == http.StatusOK && regexp.MustCompile(`badbatch_append_session_frames_throttled_total [1-9]`).Match(body)
	}, 5*time.Second, 30*time.Millisecond)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestSessionCluster: a follower answers the upgrade with 307 to the
// leader, as it answers a POST, and the Go client's session follows it and
// appends on the leader.
func TestSessionCluster(t *testing.T) {
	nodes := startCluster(t, 3)
	ld, f := leaderOf(nodes), followerOf(nodes)
	require.Eventually(t, func() bool {
		_, url := f.node.Leader()
		return url == ld.url
	}, 10*time.Second, 10*time.Millisecond, "the follower learned the leader's URL")

	req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/streams/cs/append?window=1000", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := noRedirect().Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	assert.Equal(t, ld.url+"/v1/streams/cs/append?window=1000", resp.Header.Get("Location"))

	c, err := client.New(f.url, nil)
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	sess, err := c.OpenSession(ctx, "cs", nil)
	require.NoError(t, err)
	defer sess.Close()
	for i := range 20 {
		res, err := sess.Append(ctx, []client.Record{{Value: []byte(strconv.Itoa(i))}}, nil)
		require.NoError(t, err)
		assert.Equal(t, uint64(i), res.FirstOffset)
	}
}

// TestSessionShutdown: Shutdown ends an open session with 1001 (going
// away) after answering what it admitted, and waits for it.
func TestSessionShutdown(t *testing.T) {
	ts := startServer(t, serverConfig{})
	conn := mustSession(t, ts, "bye", "")
	sendBinary(t, conn, oneRecord("before"))
	require.Nil(t, readAnswer(t, conn).Error)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, ts.Server.Shutdown(ctx))
	_, _, err := conn.Read(ctx)
	require.Error(t, err)
	assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "%v", err)
}
