package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOptionsFillDefaults: a caller sets only what it wants; New fills the
// rest and never writes to the caller's struct.
func TestOptionsFillDefaults(t *testing.T) {
	s := startServer(t, nil)
	opts := &client.Options{UserAgent: "mine/1"}
	before := *opts
	c, err := client.New(s.URL(), opts)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, before, *opts, "New changed the caller's options")
	_, err = c.Append(context.Background(), "defaults", client.Record{Value: []byte("x")}, nil)
	require.NoError(t, err, "zero RequestTimeout, backoff and tail idle time took the defaults")

	c, err = client.New(s.URL(), nil)
	require.NoError(t, err)
	c.Close()

	d := client.DefaultOptions()
	assert.Equal(t, 5, *d.MaxRetries)
	assert.True(t, *d.GenerateIdempotencyKeys)
	assert.Equal(t, 30*time.Second, d.RequestTimeout)
	assert.Equal(t, 5*time.Second, d.ConnectTimeout)
	d2 := client.DefaultOptions()
	*d2.MaxRetries = 1
	assert.Equal(t, 5, *d.MaxRetries, "DefaultOptions returns fresh pointers")
}

func TestOptionsValidated(t *testing.T) {
	cases := map[string]*client.Options{
		"negative retries":        {MaxRetries: new(-1)},
		"negative backoff":        {RetryBackoff: -time.Second},
		"backoff above the cap":   {RetryBackoff: time.Minute, MaxBackoff: time.Second},
		"negative request time":   {RequestTimeout: -1},
		"negative connect time":   {ConnectTimeout: -1},
		"negative tail idle time": {TailIdleTimeout: -1},
		"negative retry-after":    {MaxRetryAfter: -1},
		"token with a newline":    {Token: "abc\ndef"},
		"user agent with a NUL":   {UserAgent: "a\x00"},
	}
	for name, o := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := client.New("http://127.0.0.1:8080", o)
			require.ErrorIs(t, err, client.ErrInvalidOptions)
			var apiErr *client.Error
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, client.CodeInvalidOptions, apiErr.Code)
			assert.Zero(t, apiErr.Status)
		})
	}
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://host", "http://"} {
		_, err := client.New(u, nil)
		assert.ErrorIs(t, err, client.ErrInvalidOptions, "URL %q", u)
	}
}

// TestAppendWithoutKeyIsNotRetriedAfterALostAnswer: with generated keys
// off and no caller's key, an append whose answer was lost may have been
// stored, so it is not retried; the error is a connection error.
func TestAppendWithoutKeyIsNotRetriedAfterALostAnswer(t *testing.T) {
	s := startServer(t, nil)
	ft := &flakyTransport{next: http.DefaultTransport.(*http.Transport).Clone(), keys: make(chan string, 10)}
	defer ft.next.(*http.Transport).CloseIdleConnections()
	ft.drop.Store(1)
	c := newClient(t, s.URL(), func(o *client.Options) {
		o.HTTPClient, o.GenerateIdempotencyKeys = &http.Client{Transport: ft}, new(false)
	})
	_, err := c.Append(context.Background(), "nokey", client.Record{Value: []byte("a")}, nil)
	require.ErrorIs(t, err, client.ErrConnection)
	assert.Empty(t, <-ft.keys, "no Idempotency-Key sent")
	assert.Empty(t, ft.keys, "one attempt only")
	info, err := s.store.StreamInfo(context.Background(), "nokey")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), info.NextOffset, "the lost answer's append was stored, once")

	// 503 no_leader stores nothing: retried even without a key.
	ft.noLeader.Store(true)
	ft.unavail.Store(2)
	res, err := c.Append(context.Background(), "nokey", client.Record{Value: []byte("b")}, nil)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), res.FirstOffset)

	// 503 unavailable leaves an append's outcome unknown (a journal that
	// failed mid-write): not retried without a key.
	ft.noLeader.Store(false)
	ft.unavail.Store(2)
	_, err = c.Append(context.Background(), "nokey", client.Record{Value: []byte("x")}, nil)
	require.ErrorIs(t, err, client.ErrUnavailable)
	assert.Equal(t, int32(1), ft.unavail.Load(), "one attempt only")
	ft.unavail.Store(0)

	// A caller's key makes the lost answer retryable again.
	ft.drop.Store(1)
	res, err = c.Append(context.Background(), "nokey", client.Record{Value: []byte("c")}, &client.AppendOptions{IdempotencyKey: "mine"})
	require.NoError(t, err)
	assert.True(t, res.Replayed)
	assert.Equal(t, uint64(2), res.FirstOffset)
}

func TestRefusedConnectionIsRetriedAndReported(t *testing.T) {
	l := httptest.NewServer(http.NotFoundHandler())
	url := l.URL
	l.Close() // nothing listens there now
	c := newClient(t, url, func(o *client.Options) { o.MaxRetries, o.GenerateIdempotencyKeys = new(2), new(false) })
	start := time.Now()
	_, err := c.Append(context.Background(), "x", client.Record{}, nil)
	require.ErrorIs(t, err, client.ErrConnection)
	var apiErr *client.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Zero(t, apiErr.Status)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)

	c := newClient(t, slow.URL, func(o *client.Options) { o.RequestTimeout, o.MaxRetries = 50*time.Millisecond, new(1) })
	start := time.Now()
	_, err := c.Streams(context.Background())
	require.ErrorIs(t, err, client.ErrTimeout)
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "two attempts of 50 ms")

	// The caller's deadline is a timeout too, and still a DeadlineExceeded.
	c = newClient(t, slow.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c.Streams(ctx)
	require.ErrorIs(t, err, client.ErrTimeout)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	// The caller's cancellation is not an error kind: context.Canceled.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = c.Streams(ctx)
	require.ErrorIs(t, err, context.Canceled)
	var apiErr *client.Error
	assert.False(t, errors.As(err, &apiErr))
}

// limitedOnce answers the first request 429 with Retry-After: 1, then
// forwards.
type limitedOnce struct {
	next  http.RoundTripper
	calls atomic.Int32
}

func (l *limitedOnce) RoundTrip(req *http.Request) (*http.Response, error) {
	if l.calls.Add(1) == 1 {
		return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}},
			Body: io.NopCloser(stringsReader(`{"error":{"code":"rate_limited","message":"injected"}}`)), Request: req}, nil
	}
	return l.next.RoundTrip(req)
}

// TestRateLimitedWaitsForRetryAfter: a 429 stores nothing, so even an
// append without a key is retried, after the server's Retry-After (not
// the shorter backoff).
func TestRateLimitedWaitsForRetryAfter(t *testing.T) {
	s := startServer(t, nil)
	lt := &limitedOnce{next: http.DefaultTransport.(*http.Transport).Clone()}
	defer lt.next.(*http.Transport).CloseIdleConnections()
	c := newClient(t, s.URL(), func(o *client.Options) {
		o.HTTPClient, o.GenerateIdempotencyKeys = &http.Client{Transport: lt}, new(false)
	})
	start := time.Now()
	res, err := c.Append(context.Background(), "limited", client.Record{Value: []byte("x")}, nil)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "Retry-After: 1 was not waited for")
	assert.Equal(t, int32(2), lt.calls.Load())
	assert.Equal(t, uint64(0), res.FirstOffset)
}
