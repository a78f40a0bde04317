package httpapi_test

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi"
	"github.com/badbatch/badbatch/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGzip(t *testing.T) {
	ts := startServer(t, serverConfig{})
	appendN(t, ts, "gz", 0, 200)
	cases := []struct {
		name, accept string
		gzipped      bool
	}{
		{"json page", "application/json", true},
		{"ndjson page", "application/x-ndjson", true},
		{"sse", "text/event-stream", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, ts.URL+"/v1/streams/gz/records?from=0&limit=150", nil)
			require.NoError(t, err)
			req.Header.Set("Accept", tc.accept)
			req.Header.Set("Accept-Encoding", "gzip")
			// An explicit Accept-Encoding turns off the transport's
			// transparent decompression, so the header is visible.
			resp, err := http.DefaultTransport.RoundTrip(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			if !tc.gzipped {
				assert.Empty(t, resp.Header.Get("Content-Encoding"))
				return
			}
			require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
			zr, err := gzip.NewReader(resp.Body)
			require.NoError(t, err)
			data, err := io.ReadAll(zr)
			require.NoError(t, err)
			assert.Contains(t, string(data), `"offset":149`)
		})
	}
	t.Run("small answers stay plain", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, ts.URL+"/v1/streams/gz", nil)
		require.NoError(t, err)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := http.DefaultTransport.RoundTrip(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Empty(t, resp.Header.Get("Content-Encoding"))
	})
}

func TestMetricsEndpoint(t *testing.T) {
	ts := startServer(t, serverConfig{})
	appendN(t, ts, "m", 0, 3)
	appendN(t, ts, "m", 3, 2)
	_, _ = ts.do(http.MethodGet, "/v1/streams/m/records", nil)
	_, _ = ts.do(http.MethodGet, "/v1/streams/nope/records", nil)

	assert.Equal(t, 5.0, metricValue(t, ts, "badbatch_records_appended_total"))
	assert.Equal(t, 2.0, metricValue(t, ts, "badbatch_append_batch_records"), "two append requests observed")
	assert.Equal(t, 2.0, metricValue(t, ts, "badbatch_http_append_duration_seconds"))
	assert.GreaterOrEqual(t, metricValue(t, ts, "badbatch_journal_fsync_duration_seconds"), 1.0, "the store's fsync hook")
	assert.GreaterOrEqual(t, metricValue(t, ts, "badbatch_ring_batch_records"), 1.0)
	assert.Equal(t, 5.0, metricValue(t, ts, "badbatch_records_read_total"))
	assert.Equal(t, 1.0, metricValue(t, ts, "badbatch_http_errors_total"))

	resp, body := ts.do(http.MethodGet, "/metrics", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	text := string(body)
	for _, name := range []string{
		"badbatch_http_append_duration_seconds_bucket", "badbatch_journal_fsync_duration_seconds_bucket",
		"badbatch_append_batch_records_bucket", "badbatch_ring_occupancy_slots", "badbatch_records_appended_total",
		"badbatch_bytes_appended_total", "badbatch_records_read_total", "badbatch_bytes_read_total",
		`badbatch_live_subscribers{transport="sse"}`, `badbatch_http_errors_total{code="not_found"} 1`,
		"go_goroutines",
	} {
		assert.True(t, strings.Contains(text, name), "missing %s", name)
	}
}

func TestNewRejects(t *testing.T) {
	st := openStore(t, t.TempDir(), nil, nil)
	defer st.Close()
	cases := map[string]func(*httpapi.Options){
		"open address without auth": func(o *httpapi.Options) { o.Addr = "0.0.0.0:8080" },
		"zero request limit":        func(o *httpapi.Options) { o.MaxRequestBytes = 0 },
		"read limit above store's":  func(o *httpapi.Options) { o.MaxReadLimit = 1 << 20 },
		"negative rate":             func(o *httpapi.Options) { o.RateLimit = -1 },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			o := httpapi.DefaultOptions()
			mutate(o)
			_, err := httpapi.New(st, o)
			assert.Error(t, err)
		})
	}
	t.Run("insecure flag allows an open address", func(t *testing.T) {
		o := httpapi.DefaultOptions()
		o.Addr, o.AllowInsecureNoAuth = "0.0.0.0:0", true
		before := *o
		_, err := httpapi.New(st, o)
		assert.NoError(t, err)
		assert.Equal(t, before, *o, "New must not modify the caller's options")
	})
}

// TestSlowClientsAreCut checks that a client that stalls while sending its
// headers or its body does not hold a connection forever.
func TestSlowClientsAreCut(t *testing.T) {
	ts := startServer(t, serverConfig{opts: func(o *httpapi.Options) {
		o.ReadHeaderTimeout = 100 * time.Millisecond
		o.ReadTimeout = 200 * time.Millisecond
	}})
	addr := strings.TrimPrefix(ts.URL, "http://")
	cases := []struct {
		name, send string
	}{
		{"stalled headers", "POST /v1/streams/slow/records HTTP/1.1\r\nHost: x\r\n"},
		{"stalled body", "POST /v1/streams/slow/records HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly ten.."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer conn.Close()
			_, err = conn.Write([]byte(tc.send))
			require.NoError(t, err)
			// The server must end the exchange by itself; the deadline here
			// only keeps a broken server from hanging the test.
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
			data, err := io.ReadAll(conn)
			require.NoError(t, err, "the server closed the connection (EOF), not our deadline")
			if len(data) > 0 {
				assert.NotContains(t, string(data), "201 Created")
			}
		})
	}
	_, err := ts.Store.StreamInfo(context.Background(), "slow")
	assert.ErrorIs(t, err, storage.ErrNotFound, "nothing was appended")
}

// panicStore panics in StreamInfo, as a bug would.
type panicStore struct{ httpapi.Store }

func (panicStore) StreamInfo(context.Context, string) (storage.StreamInfo, error) {
	panic("injected bug")
}

func TestInternalErrors(t *testing.T) {
	t.Run("store error", func(t *testing.T) {
		ts := startServer(t, serverConfig{wrap: func(s httpapi.Store) httpapi.Store {
			return &faultStore{Store: s, appendErr: errors.New("injected: disk on fire")}
		}})
		resp, body := ts.postJSON("s", `{"value":1}`)
		require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
		e := decodeErr(t, body)
		assert.Equal(t, "internal", e.Error.Code)
		assert.NotContains(t, e.Error.Message, "disk on fire", "details stay in the log")
		assert.Contains(t, e.Error.Message, resp.Header.Get("X-Request-Id"))
	})
	t.Run("panic", func(t *testing.T) {
		ts := startServer(t, serverConfig{wrap: func(s httpapi.Store) httpapi.Store { return panicStore{s} }})
		resp, body := ts.do(http.MethodGet, "/v1/streams/s", nil)
		require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
		assert.Equal(t, "internal", decodeErr(t, body).Error.Code)
		resp, _ = ts.do(http.MethodGet, "/healthz", nil)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "the server survives")
	})
}
