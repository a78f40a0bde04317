package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/badbatch/badbatch/journal"
	"github.com/badbatch/badbatch/storage"
	"github.com/stretchr/testify/require"
)

// rewindBody is a request body that can be replayed without allocating.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// reusedWriter is an http.ResponseWriter that allocates nothing per use.
type reusedWriter struct {
	h    http.Header
	code int
	body bytes.Buffer
}

func (w *reusedWriter) Header() http.Header         { return w.h }
func (w *reusedWriter) WriteHeader(code int)        { w.code = code }
func (w *reusedWriter) Write(b []byte) (int, error) { return w.body.Write(b) }

// TestAppendAllocs bounds the allocations of one single-record JSON append
// in the steady state, through the real middleware chain and handler over
// a real store (fsync included). The bound is what the handler needs with
// pooled body, records and answer memory and the middleware chain built
// once; before that it was 24. What is left: the store's own allocation,
// echo's request ID (2), its Content-Type, X-Request-Id and Vary headers,
// and the handler's answer headers.
func TestAppendAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	a := newAppendLoop(t, serverConfig{}, "allocs")
	w := a.w
	var next uint64
	run := func() {
		a.once(t)
		next++
	}
	for range 20 { // warm the pools, the metrics children and the store
		run()
	}
	allocs := testing.AllocsPerRun(200, run)
	t.Logf("%.1f allocs per append", allocs)

	var got struct {
		Stream     string `json:"stream"`
		LastOffset uint64 `json:"last_offset"`
		Count      int    `json:"count"`
	}
	require.NoError(t, json.Unmarshal(w.body.Bytes(), &got))
	require.Equal(t, "allocs", got.Stream)
	require.Equal(t, next-1, got.LastOffset)
	require.Equal(t, 1, got.Count)
	require.LessOrEqual(t, allocs, float64(maxAppendAllocs))
}

// TestConditionalAppendAllocs: an Expected-Last-Offset costs no
// allocation (the store's AppendOptions points into the pooled request
// scratch), so a conditional append has TestAppendAllocs' bound.
func TestConditionalAppendAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	a := newAppendLoop(t, serverConfig{}, "cond")
	const runs = 20 + 200 + 1 // warm-up, AllocsPerRun's own warm-up run, measured runs
	expected := make([][]string, runs)
	for i := range expected {
		expected[i] = []string{strconv.Itoa(i - 1)}
	}
	next := 0
	run := func() {
		a.req.Header["Expected-Last-Offset"] = expected[next]
		a.once(t)
		next++
	}
	for range 20 {
		run()
	}
	allocs := testing.AllocsPerRun(200, run)
	require.Equal(t, runs, next)

	plainLoop := newAppendLoop(t, serverConfig{}, "plain")
	plainRun := func() { plainLoop.once(t) }
	for range 20 {
		plainRun()
	}
	plain := testing.AllocsPerRun(200, plainRun)
	t.Logf("%.1f allocs per conditional append, %.1f per unconditional one", allocs, plain)
	require.LessOrEqual(t, allocs, plain, "the condition allocates")

	// A stale condition is refused: the header really is applied.
	a.req.Header["Expected-Last-Offset"] = []string{"0"}
	a.body.Reset(a.payload)
	clear(a.w.h)
	a.w.body.Reset()
	a.h.ServeHTTP(a.w, a.req)
	require.Equal(t, http.StatusConflict, a.w.code, a.w.body.String())
}

// maxAppendAllocs is TestAppendAllocs' bound.
const maxAppendAllocs = 7

// BenchmarkAppendHandler is the CPU of one single-record JSON append
// through the middleware chain and the handler, without the network and
// without fsync (SyncNone), one request at a time.
func BenchmarkAppendHandler(b *testing.B) {
	a := newAppendLoop(b, serverConfig{storeOpts: func(o *storage.Options) { o.SyncPolicy = journal.SyncNone }}, "bench")
	b.ReportAllocs()
	for b.Loop() {
		a.once(b)
	}
}

// appendLoop sends one single-record JSON append at a time through the
// real middleware chain and handler, reusing the request, its body and the
// response writer, so that what it allocates is the server's.
type appendLoop struct {
	h       http.Handler
	req     *http.Request
	body    *rewindBody
	w       *reusedWriter
	payload []byte
}

func newAppendLoop(tb testing.TB, cfg serverConfig, stream string) *appendLoop {
	ts := startServer(tb, cfg)
	a := &appendLoop{
		h:       ts.Server.Handler(),
		body:    &rewindBody{},
		w:       &reusedWriter{h: make(http.Header)},
		payload: []byte(`{"value_base64":"MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMA=="}`),
	}
	a.req = httptest.NewRequest(http.MethodPost, "/v1/streams/"+stream+"/records", a.body)
	a.req.Header.Set("Content-Type", "application/json")
	a.req.ContentLength = int64(len(a.payload))
	return a
}

// once sends the append and fails tb unless it got a 201.
func (a *appendLoop) once(tb testing.TB) {
	a.body.Reset(a.payload)
	clear(a.w.h)
	a.w.code = 0
	a.w.body.Reset()
	a.h.ServeHTTP(a.w, a.req)
	if a.w.code != http.StatusCreated {
		tb.Fatalf("status %d: %s", a.w.code, a.w.body.String())
	}
}
