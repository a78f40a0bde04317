package httpapi_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi"
	"github.com/badbatch/badbatch/storage"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// metricValue returns the value of an unlabelled metric in a /metrics
// answer ("" if absent).
func healMetric(body, name string) string {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestServerHealsAfterJournalFailure: a server over a storage.Healer whose
// journal fails answers 503 with Retry-After, is not ready and reports the
// failure in /metrics while the disk fails; once it works again the store
// is back by itself, a long-poll started before the failure carries on,
// and an idempotent retry of the failed append is stored once.
func TestServerHealsAfterJournalFailure(t *testing.T) {
	var broken atomic.Bool
	fs := errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if broken.Load() && strings.Contains(op.Path, "journal") && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errorfs.ErrInjected
		}
		return nil
	}))
	m := httpapi.NewMetrics()
	so := storage.DefaultOptions()
	so.FS, so.Logger, so.Metrics = fs, quietLogger(), m
	h, err := storage.OpenHealing(t.TempDir(), so, &storage.HealOptions{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, CheckInterval: time.Millisecond})
	require.NoError(t, err)
	opts := httpapi.DefaultOptions()
	opts.Addr, opts.Logger, opts.Metrics = "127.0.0.1:0", quietLogger(), m
	srv, err := httpapi.New(h, opts)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ts := &testServer{t: t, URL: "http://" + l.Addr().String(), Server: srv, Metrics: m, served: make(chan error, 1)}
	go func() { ts.served <- srv.Serve(l) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.ErrorIs(t, <-ts.served, httpapi.ErrServerClosed)
		require.NoError(t, h.Close())
	}()
	metrics := func() string {
		_, body := ts.do(http.MethodGet, "/metrics", nil)
		return string(body)
	}

	resp, body := ts.postJSON("s", `{"value":"k0"}`, "Idempotency-Key", "k0")
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	assert.Equal(t, "1", healMetric(metrics(), "badbatch_store_healthy"))
	assert.Equal(t, "0", healMetric(metrics(), "badbatch_store_failures_total"))

	// A long-poll for offset 1, begun before the failure.
	polled := make(chan []byte, 1)
	go func() {
		resp, err := http.Get(ts.URL + "/v1/streams/s/records?from=1&wait=20s")
		if err != nil {
			polled <- []byte(err.Error())
			return
		}
		defer resp.Body.Close()
		var out struct {
			Records []json.RawMessage `json:"records"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if len(out.Records) == 0 {
			polled <- nil
			return
		}
		polled <- out.Records[0]
	}()
	time.Sleep(50 * time.Millisecond)

	broken.Store(true)
	resp, body = ts.postJSON("s", `{"value":"k1"}`, "Idempotency-Key", "k1")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", body)
	assert.Equal(t, "unavailable", decodeErr(t, body).Error.Code)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	resp, body = ts.do(http.MethodGet, "/readyz", nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", body)
	require.Eventually(t, func() bool { return healMetric(metrics(), "badbatch_store_failures_total") == "1" }, 10*time.Second, time.Millisecond)
	assert.Equal(t, "0", healMetric(metrics(), "badbatch_store_healthy"))
	// Reads of what was acknowledged go on (from the failed store, or from
	// the reopened one once it is back).
	resp, body = ts.do(http.MethodGet, "/v1/streams/s/records?from=0", nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	}

	broken.Store(false)
	require.Eventually(t, func() bool {
		resp, _ := ts.do(http.MethodGet, "/readyz", nil)
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, time.Millisecond)
	mt := metrics()
	assert.Equal(t, "1", healMetric(mt, "badbatch_store_recoveries_total"))
	assert.Equal(t, "1", healMetric(mt, "badbatch_store_healthy"))

	resp, body = ts.postJSON("s", `{"value":"k1"}`, "Idempotency-Key", "k1")
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	resp, body = ts.postJSON("s", `{"value":"k1"}`, "Idempotency-Key", "k1")
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	assert.Equal(t, "true", resp.Header.Get("Idempotent-Replayed"))
	select {
	case rec := <-polled:
		assert.Contains(t, string(rec), `"k1"`, "the long-poll carried on across the reopen")
	case <-time.After(20 * time.Second):
		t.Fatal("the long-poll did not answer")
	}
	_, body = ts.do(http.MethodGet, "/v1/streams/s/records?from=0", nil)
	assert.Equal(t, 1, strings.Count(string(body), `"k1"`), "%s", body)
	assert.Equal(t, 1, strings.Count(string(body), `"k0"`), "%s", body)
}
