package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi"
	"github.com/badbatch/badbatch/httpapi/client"
	"github.com/badbatch/badbatch/journal"
	"github.com/badbatch/badbatch/storage"
	"github.com/stretchr/testify/require"
)

// testServer is a real server on 127.0.0.1 over a real store in a
// temporary directory.
type testServer struct {
	t       testing.TB
	URL     string
	Dir     string
	Store   *storage.Store
	Server  *httpapi.Server
	Metrics *httpapi.Metrics
	served  chan error
	closed  bool
}

type serverConfig struct {
	opts      func(*httpapi.Options)
	storeOpts func(*storage.Options)
	wrap      func(httpapi.Store) httpapi.Store
	dir       string
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
}

func openStore(t testing.TB, dir string, metrics *httpapi.Metrics, mutate func(*storage.Options)) *storage.Store {
	t.Helper()
	so := storage.DefaultOptions()
	so.SyncPolicy = journal.SyncAlways
	so.Logger = quietLogger()
	if metrics != nil {
		so.Metrics = metrics
	}
	if mutate != nil {
		mutate(so)
	}
	st, err := storage.Open(dir, so)
	require.NoError(t, err)
	return st
}

func startServer(t testing.TB, cfg serverConfig) *testServer {
	t.Helper()
	dir := cfg.dir
	if dir == "" {
		dir = t.TempDir()
	}
	m := httpapi.NewMetrics()
	st := openStore(t, dir, m, cfg.storeOpts)
	opts := httpapi.DefaultOptions()
	opts.Addr = "127.0.0.1:0"
	opts.Logger = quietLogger()
	opts.Metrics = m
	opts.HeartbeatInterval = 200 * time.Millisecond
	if cfg.opts != nil {
		cfg.opts(opts)
	}
	var backend httpapi.Store = st
	if cfg.wrap != nil {
		backend = cfg.wrap(st)
	}
	srv, err := httpapi.New(backend, opts)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ts := &testServer{t: t, URL: "http://" + l.Addr().String(), Dir: dir, Store: st, Server: srv, Metrics: m, served: make(chan error, 1)}
	go func() { ts.served <- srv.Serve(l) }()
	t.Cleanup(ts.Close)
	return ts
}

// Close shuts the server down and closes the store (idempotent).
func (ts *testServer) Close() {
	if ts.closed {
		return
	}
	ts.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(ts.t, ts.Server.Shutdown(ctx))
	require.ErrorIs(ts.t, <-ts.served, httpapi.ErrServerClosed)
	require.NoError(ts.t, ts.Store.Close())
}

// do sends a request and returns the response with its body read.
func (ts *testServer) do(method, path string, body []byte, headers ...string) (*http.Response, []byte) {
	ts.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	require.NoError(ts.t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(ts.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(ts.t, err)
	return resp, data
}

func (ts *testServer) postJSON(stream, body string, headers ...string) (*http.Response, []byte) {
	ts.t.Helper()
	return ts.do(http.MethodPost, "/v1/streams/"+stream+"/records", []byte(body),
		append([]string{"Content-Type", "application/json"}, headers...)...)
}

type apiErr struct {
	Error struct {
		Code              string `json:"code"`
		Message           string `json:"message"`
		CurrentLastOffset *int64 `json:"current_last_offset"`
	} `json:"error"`
}

func decodeErr(t testing.TB, body []byte) apiErr {
	t.Helper()
	var e apiErr
	require.NoError(t, json.Unmarshal(body, &e), "error body %q", body)
	require.NotEmpty(t, e.Error.Code, "error body %q", body)
	require.NotEmpty(t, e.Error.Message, "error body %q", body)
	return e
}

// appendResult is the 201 body of an append, as the Go client decodes it.
type appendResult = client.AppendResult

type record struct {
	Stream      string            `json:"stream"`
	Offset      uint64            `json:"offset"`
	Seq         uint64            `json:"seq"`
	Timestamp   time.Time         `json:"timestamp"`
	Key         *string           `json:"key"`
	Headers     map[string]string `json:"headers"`
	Value       json.RawMessage   `json:"value"`
	ValueBase64 *string           `json:"value_base64"`
}

type page struct {
	Records    []record `json:"records"`
	NextOffset uint64   `json:"next_offset"`
}

// snapshot is everything the store holds, to prove bad input changed nothing.
type snapshot struct {
	Streams []storage.StreamInfo
	Records []storage.StoredRecord
}

func (ts *testServer) snapshot() snapshot {
	ts.t.Helper()
	infos, err := ts.Store.Streams(context.Background())
	require.NoError(ts.t, err)
	recs, err := ts.Store.ReadGlobal(context.Background(), 0, 100000)
	require.NoError(ts.t, err)
	return snapshot{Streams: infos, Records: recs}
}

// faultStore wraps a store to inject the failures a healthy store does not
// produce on demand (a failed journal, retention).
type faultStore struct {
	httpapi.Store
	appendErr error
	readErr   error
	notReady  bool
}

func (f *faultStore) AppendWith(ctx context.Context, stream string, o storage.AppendOptions, recs ...storage.Record) (storage.AppendResult, error) {
	if f.appendErr != nil {
		return storage.AppendResult{}, f.appendErr
	}
	return f.Store.AppendWith(ctx, stream, o, recs...)
}

func (f *faultStore) Read(ctx context.Context, stream string, from uint64, limit int) ([]storage.StoredRecord, error) {
	if f.readErr != nil {
		return nil, f.readErr
	}
	return f.Store.Read(ctx, stream, from, limit)
}

func (f *faultStore) Ready() bool { return !f.notReady && f.Store.Ready() }

func (f *faultStore) Err() error {
	if f.notReady {
		return errors.New("injected: journal write failed")
	}
	return f.Store.Err()
}

func ndjson(lines ...string) string { return strings.Join(lines, "\n") + "\n" }
