package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi"
	"github.com/badbatch/badbatch/httpapi/client"
	"github.com/badbatch/badbatch/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server is a real server over a real store; restart keeps dir and address.
type server struct {
	t       *testing.T
	dir     string
	addr    string
	store   *storage.Store
	srv     *httpapi.Server
	served  chan error
	up      bool
	opts    func(*httpapi.Options)
	accepts atomic.Int64 // connections accepted, over restarts
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func startServer(t *testing.T, opts func(*httpapi.Options)) *server {
	s := &server{t: t, dir: t.TempDir(), addr: "127.0.0.1:0", opts: opts}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) URL() string { return "http://" + s.addr }

func (s *server) start() {
	t := s.t
	so := storage.DefaultOptions()
	so.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := storage.Open(s.dir, so)
	require.NoError(t, err)
	o := httpapi.DefaultOptions()
	o.Addr = "127.0.0.1:0"
	o.Logger = so.Logger
	o.HeartbeatInterval = 100 * time.Millisecond
	if s.opts != nil {
		s.opts(o)
	}
	srv, err := httpapi.New(st, o)
	require.NoError(t, err)
	l, err := net.Listen("tcp", s.addr)
	require.NoError(t, err)
	s.addr = l.Addr().String()
	s.store, s.srv, s.served, s.up = st, srv, make(chan error, 1), true
	go func() { s.served <- srv.Serve(countingListener{l, &s.accepts}) }()
}

func (s *server) stop() {
	if !s.up {
		return
	}
	s.up = false
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(s.t, s.srv.Shutdown(ctx))
	<-s.served
	require.NoError(s.t, s.store.Close())
}

func newClient(t *testing.T, url string, mutate func(*client.Options)) *client.Client {
	o := client.DefaultOptions()
	o.RetryBackoff, o.MaxBackoff = time.Millisecond, 20*time.Millisecond
	if mutate != nil {
		mutate(o)
	}
	c, err := client.New(url, o)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func TestAppendAndRead(t *testing.T) {
	s := startServer(t, nil)
	c := newClient(t, s.URL(), nil)
	ctx := context.Background()

	jr, err := client.JSONRecord("k1", map[string]any{"a": 1, "s": "<&>"})
	require.NoError(t, err)
	res, err := c.Append(ctx, "cl", jr, nil)
	require.NoError(t, err)
	assert.Equal(t, client.AppendResult{Stream: "cl", Count: 1, Durability: "fsynced", FirstSeq: res.FirstSeq, LastSeq: res.LastSeq}, res)

	ts := time.Date(2024, 3, 4, 5, 6, 7, 8, time.UTC)
	res, err = c.AppendBatch(ctx, "cl", []client.Record{
		{Key: "raw", Value: []byte{0, 1, 2, 255}, Headers: map[string]string{"h": "v"}, Timestamp: ts},
		{Value: nil},
	}, nil)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), res.FirstOffset)
	assert.Equal(t, uint64(2), res.LastOffset)

	page, err := c.Read(ctx, "cl", client.ReadRequest{})
	require.NoError(t, err)
	require.Len(t, page.Records, 3)
	assert.Equal(t, uint64(3), page.NextOffset)
	assert.True(t, page.Records[0].JSON)
	assert.JSONEq(t, `{"a":1,"s":"<&>"}`, string(page.Records[0].Value))
	assert.Equal(t, "k1", page.Records[0].Key)
	assert.False(t, page.Records[1].JSON)
	assert.Equal(t, []byte{0, 1, 2, 255}, page.Records[1].Value)
	assert.Equal(t, map[string]string{"h": "v"}, page.Records[1].Headers)
	assert.True(t, ts.Equal(page.Records[1].Timestamp))
	assert.Empty(t, page.Records[2].Value)

	page, err = c.Read(ctx, "cl", client.ReadRequest{From: client.Offset(1), Limit: 1})
	require.NoError(t, err)
	require.Len(t, page.Records, 1)
	assert.Equal(t, uint64(1), page.Records[0].Offset)

	g, err := c.ReadGlobal(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, g.Records, 3)
	assert.Equal(t, "cl", g.Records[0].Stream)

	infos, err := c.Streams(ctx)
	require.NoError(t, err)
	require.Len(t, infos, 1)
	assert.Equal(t, uint64(3), infos[0].NextOffset)
	info, err := c.StreamInfo(ctx, "cl")
	require.NoError(t, err)
	assert.Equal(t, infos[0], info)

	require.NoError(t, c.SetCursor(ctx, "cl", "me", 2))
	off, err := c.Cursor(ctx, "cl", "me")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), off)
}

func TestTypedErrors(t *testing.T) {
	s := startServer(t, func(o *httpapi.Options) { o.MaxRecordBytes = 100 })
	c := newClient(t, s.URL(), nil)
	ctx := context.Background()
	_, err := c.Append(ctx, "e", client.Record{Value: []byte("x")}, nil)
	require.NoError(t, err)

	_, err = c.Read(ctx, "never", client.ReadRequest{})
	assert.ErrorIs(t, err, client.ErrNotFound)

	_, err = c.Append(ctx, "-bad", client.Record{Value: []byte("x")}, nil)
	assert.ErrorIs(t, err, client.ErrInvalidStream)
	assert.NotErrorIs(t, err, client.ErrBadRequest, "one kind per error")

	_, err = c.Append(ctx, "e", client.Record{Value: make([]byte, 200)}, nil)
	assert.ErrorIs(t, err, client.ErrTooLarge)

	five := int64(5)
	_, err = c.Append(ctx, "e", client.Record{Value: []byte("x")}, &client.AppendOptions{ExpectedLastOffset: &five})
	require.ErrorIs(t, err, client.ErrOffsetMismatch)
	var apiErr *client.Error
	require.ErrorAs(t, err, &apiErr)
	require.NotNil(t, apiErr.CurrentLastOffset)
	assert.Equal(t, int64(0), *apiErr.CurrentLastOffset)
	assert.NotEmpty(t, apiErr.RequestID)

	_, err = c.Cursor(ctx, "e", "nobody")
	assert.ErrorIs(t, err, client.ErrNotFound)
}

func TestAuthErrors(t *testing.T) {
	tokens, err := httpapi.ParseTokens(stringsReader("reader-token-0123456789 read\n"))
	require.NoError(t, err)
	s := startServer(t, func(o *httpapi.Options) { o.Tokens = tokens })
	ctx := context.Background()

	_, err = newClient(t, s.URL(), nil).Streams(ctx)
	assert.ErrorIs(t, err, client.ErrUnauthorized)
	reader := newClient(t, s.URL(), func(o *client.Options) { o.Token = "reader-token-0123456789" })
	_, err = reader.Streams(ctx)
	assert.NoError(t, err)
	_, err = reader.Append(ctx, "s", client.Record{}, nil)
	assert.ErrorIs(t, err, client.ErrForbidden)
}

func TestRateLimitedIsNotRetriedPastMaxRetryAfter(t *testing.T) {
	s := startServer(t, func(o *httpapi.Options) { o.RateLimit, o.RateBurst = 0.001, 1 })
	c := newClient(t, s.URL(), nil)
	ctx := context.Background()
	_, err := c.Streams(ctx)
	require.NoError(t, err)
	_, err = c.Streams(ctx)
	require.ErrorIs(t, err, client.ErrRateLimited)
	var apiErr *client.Error
	require.ErrorAs(t, err, &apiErr)
	assert.GreaterOrEqual(t, apiErr.RetryAfter, time.Second)
}

// flakyTransport forwards requests to the server but loses the answer of
// the first n appends, as a dropped connection would after the server
// committed them.
type flakyTransport struct {
	next    http.RoundTripper
	drop    atomic.Int32
	keys    chan string
	unavail atomic.Int32 // answer this many requests 503 without forwarding
	// noLeader makes those answers 503 no_leader instead of unavailable.
	noLeader atomic.Bool
}

func (f *flakyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.unavail.Add(-1) >= 0 {
		code := "unavailable"
		if f.noLeader.Load() {
			code = "no_leader"
		}
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{},
			Body: io.NopCloser(stringsReader(`{"error":{"code":"` + code + `","message":"injected"}}`)), Request: req}, nil
	}
	if req.Method == http.MethodPost {
		select {
		case f.keys <- req.Header.Get("Idempotency-Key"):
		default:
		}
	}
	resp, err := f.next.RoundTrip(req)
	if err == nil && req.Method == http.MethodPost && f.drop.Add(-1) >= 0 {
		resp.Body.Close()
		return nil, errors.New("injected: connection lost after the request")
	}
	return resp, err
}

func TestRetryNeverDuplicates(t *testing.T) {
	s := startServer(t, nil)
	ft := &flakyTransport{next: http.DefaultTransport.(*http.Transport).Clone(), keys: make(chan string, 10)}
	ft.drop.Store(2)
	c := newClient(t, s.URL(), func(o *client.Options) { o.HTTPClient = &http.Client{Transport: ft} })
	defer ft.next.(*http.Transport).CloseIdleConnections()

	res, err := c.AppendBatch(context.Background(), "retry", []client.Record{{Value: []byte("a")}, {Value: []byte("b")}}, nil)
	require.NoError(t, err)
	assert.True(t, res.Replayed, "the third attempt is answered from the first's result")
	assert.Equal(t, uint64(0), res.FirstOffset)
	k1, k2, k3 := <-ft.keys, <-ft.keys, <-ft.keys
	assert.NotEmpty(t, k1)
	assert.Equal(t, k1, k2)
	assert.Equal(t, k1, k3)

	info, err := s.store.StreamInfo(context.Background(), "retry")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), info.NextOffset, "two records stored once")
}

func TestRetryOnUnavailable(t *testing.T) {
	s := startServer(t, nil)
	ft := &flakyTransport{next: http.DefaultTransport.(*http.Transport).Clone(), keys: make(chan string, 10)}
	defer ft.next.(*http.Transport).CloseIdleConnections()
	ft.unavail.Store(2)
	c := newClient(t, s.URL(), func(o *client.Options) { o.HTTPClient = &http.Client{Transport: ft} })
	_, err := c.Append(context.Background(), "u", client.Record{Value: []byte("a")}, nil)
	require.NoError(t, err)

	ft.unavail.Store(10)
	few := newClient(t, s.URL(), func(o *client.Options) {
		o.HTTPClient = &http.Client{Transport: ft}
		o.MaxRetries = new(2)
	})
	_, err = few.Append(context.Background(), "u", client.Record{Value: []byte("a")}, nil)
	assert.ErrorIs(t, err, client.ErrUnavailable)
}

func TestErrorIsByCode(t *testing.T) {
	kinds := map[string]error{
		"bad_request": client.ErrBadRequest, "invalid_stream": client.ErrInvalidStream,
		"unauthorized": client.ErrUnauthorized, "forbidden": client.ErrForbidden, "not_found": client.ErrNotFound,
		"method_not_allowed": client.ErrMethodNotAllowed, "offset_mismatch": client.ErrOffsetMismatch,
		"membership_conflict": client.ErrMembershipConflict, "gone": client.ErrGone, "too_large": client.ErrTooLarge,
		"unsupported_type": client.ErrUnsupportedType, "rate_limited": client.ErrRateLimited,
		"internal": client.ErrInternal, "unavailable": client.ErrUnavailable, "no_leader": client.ErrNoLeader,
		"not_leader": client.ErrNotLeader, "not_cluster": client.ErrNotCluster,
		"invalid_options": client.ErrInvalidOptions, "connection": client.ErrConnection, "timeout": client.ErrTimeout,
	}
	for code, want := range kinds {
		t.Run(code, func(t *testing.T) {
			err := error(&client.Error{Code: code, Status: 499})
			for other, sentinel := range kinds {
				if other == code {
					assert.ErrorIs(t, err, sentinel)
				} else {
					assert.NotErrorIs(t, err, sentinel, "matches %s too", other)
				}
			}
			assert.Contains(t, want.Error(), code, "the sentinel names its kind")
		})
	}
}

// answerTransport answers every request with one canned answer.
type answerTransport struct {
	status int
	body   string
	calls  atomic.Int32
}

func (a *answerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	a.calls.Add(1)
	return &http.Response{StatusCode: a.status, Header: http.Header{}, Body: io.NopCloser(stringsReader(a.body)), Request: req}, nil
}

func TestAnswersWithoutTheAPIShape(t *testing.T) {
	cases := []struct {
		status  int
		body    string
		want    error
		retried bool // a read is retried
	}{
		{http.StatusBadGateway, "proxy: upstream down", client.ErrUnavailable, true},
		{http.StatusNotFound, "", client.ErrNotFound, false},
		{http.StatusInternalServerError, "panic", client.ErrInternal, true},
		{http.StatusOK, "not json", client.ErrInternal, false},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			at := &answerTransport{status: tc.status, body: tc.body}
			c := newClient(t, "http://127.0.0.1:1", func(o *client.Options) {
				o.HTTPClient, o.MaxRetries = &http.Client{Transport: at}, new(2)
			})
			_, err := c.Streams(context.Background())
			require.ErrorIs(t, err, tc.want)
			var apiErr *client.Error
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, tc.status, apiErr.Status)
			want := int32(1)
			if tc.retried {
				want = 3
			}
			assert.Equal(t, want, at.calls.Load())
		})
	}
}

func TestConnectionReuse(t *testing.T) {
	s := startServer(t, nil)
	c := newClient(t, s.URL(), nil)
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		_, err := c.Append(ctx, "reuse", client.Record{Value: []byte("x")}, nil)
		require.NoError(t, err)
		_, err = c.Read(ctx, "reuse", client.ReadRequest{Limit: 1})
		require.NoError(t, err)
	}
	assert.Equal(t, int64(1), s.accepts.Load(), "40 sequential requests over one keep-alive connection")
}
