package httpapi

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/badbatch/badbatch/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is the Prometheus metrics set of a server, on its own registry
// (never the global one). It also implements storage.MetricsHook: hand it
// to storage.Options.Metrics to get the pipeline's fsync, batch and ring
// figures. Safe for concurrent use.
type Metrics struct {
	registry *prometheus.Registry

	httpAppendLatency  prometheus.Histogram
	storeAppendLatency prometheus.Histogram
	appendBatch        prometheus.Histogram
	ringBatch          prometheus.Histogram
	fsyncLatency       prometheus.Histogram
	ringOccupancy      prometheus.Gauge
	recordsAppended    prometheus.Counter
	bytesAppended      prometheus.Counter
	recordsRead        prometheus.Counter
	bytesRead          prometheus.Counter
	subscribers        *prometheus.GaugeVec
	errors             *prometheus.CounterVec
	requests           *prometheus.CounterVec
	appendOutcomes     *prometheus.CounterVec
	session            sessionMetrics // append sessions (session.go)

	// requestCounters caches the children of requests, so that counting a
	// request neither formats its status nor hashes its labels.
	requestCounters struct {
		sync.RWMutex
		m map[requestKey]prometheus.Counter
	}
}

type requestKey struct {
	route, method string
	status        int
}

// maxCachedRequestCounters bounds requestCounters (methods are chosen by
// clients); past it, requests are counted through the vector directly.
const maxCachedRequestCounters = 1024

// countRequest increments badbatch_http_requests_total{route, method, status}.
func (m *Metrics) countRequest(route, method string, status int) {
	k := requestKey{route, method, status}
	m.requestCounters.RLock()
	ctr, ok := m.requestCounters.m[k]
	m.requestCounters.RUnlock()
	if !ok {
		ctr = m.requests.WithLabelValues(route, method, strconv.Itoa(status))
		m.requestCounters.Lock()
		if m.requestCounters.m == nil {
			m.requestCounters.m = make(map[requestKey]prometheus.Counter)
		}
		if len(m.requestCounters.m) < maxCachedRequestCounters {
			// Clone the strings: req.Method shares the request's memory.
			k.route, k.method = strings.Clone(route), strings.Clone(method)
			m.requestCounters.m[k] = ctr
		}
		m.requestCounters.Unlock()
	}
	ctr.Inc()
}

var _ storage.MetricsHook = (*Metrics)(nil)

// NewMetrics returns a metrics set on a new registry, with the Go runtime
// and process collectors.
func NewMetrics() *Metrics {
	latencyBuckets := prometheus.ExponentialBuckets(50e-6, 2, 18) // 50µs .. ~6.5s
	sizeBuckets := prometheus.ExponentialBuckets(1, 4, 10)        // 1 .. 262144 records
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		httpAppendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "badbatch_http_append_duration_seconds", Help: "Time of an HTTP append, from the parsed body to the store's acknowledgement.",
			Buckets: latencyBuckets}),
		storeAppendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "badbatch_append_duration_seconds", Help: "Time of a store append, from the producer's call to completion (pipeline hook).",
			Buckets: latencyBuckets}),
		appendBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "badbatch_append_batch_records", Help: "Records per append request.", Buckets: sizeBuckets}),
		ringBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "badbatch_ring_batch_records", Help: "Records per business-logic batch (one journal entry, one fsync).", Buckets: sizeBuckets}),
		fsyncLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "badbatch_journal_fsync_duration_seconds", Help: "Duration of one journal fsync.", Buckets: latencyBuckets}),
		ringOccupancy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "badbatch_ring_occupancy_slots", Help: "Ring slots occupied when the last business-logic batch began."}),
		recordsAppended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "badbatch_records_appended_total", Help: "Records acknowledged over HTTP (idempotent replays excluded)."}),
		bytesAppended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "badbatch_bytes_appended_total", Help: "Key, value and header bytes acknowledged over HTTP."}),
		recordsRead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "badbatch_records_read_total", Help: "Records sent to HTTP readers (pages, NDJSON, SSE, WebSocket)."}),
		bytesRead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "badbatch_bytes_read_total", Help: "Key, value and header bytes sent to HTTP readers."}),
		subscribers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "badbatch_live_subscribers", Help: "Open tailing connections by transport."}, []string{"transport"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "badbatch_http_errors_total", Help: "Error answers by API error code."}, []string{"code"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "badbatch_http_requests_total", Help: "HTTP requests by route, method and status."}, []string{"route", "method", "status"}),
		appendOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "badbatch_append_outcomes_total", Help: "Store appends by outcome (pipeline hook)."}, []string{"outcome"}),
	}
	for _, transport := range []string{"sse", "websocket", "longpoll"} {
		m.subscribers.WithLabelValues(transport)
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpAppendLatency, m.storeAppendLatency, m.appendBatch, m.ringBatch, m.fsyncLatency,
		m.ringOccupancy, m.recordsAppended, m.bytesAppended, m.recordsRead, m.bytesRead,
		m.subscribers, m.errors, m.requests, m.appendOutcomes,
	)
	m.session = newSessionMetrics(m.registry)
	return m
}

// Registry is the registry /metrics serves. Register your own collectors on
// it to serve them too.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// ObserveAppend implements storage.MetricsHook.
func (m *Metrics) ObserveAppend(latency time.Duration, records int, err error) {
	m.storeAppendLatency.Observe(latency.Seconds())
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrOffsetMismatch):
		outcome = "offset_mismatch"
	case errors.Is(err, storage.ErrUnavailable):
		outcome = "unavailable"
	default:
		outcome = "error"
	}
	m.appendOutcomes.WithLabelValues(outcome).Inc()
}

// ObserveBatch implements storage.MetricsHook.
func (m *Metrics) ObserveBatch(appends, records int, ringOccupancy int64) {
	m.ringBatch.Observe(float64(records))
	m.ringOccupancy.Set(float64(ringOccupancy))
}

// ObserveFsync implements storage.MetricsHook.
func (m *Metrics) ObserveFsync(d time.Duration) {
	m.fsyncLatency.Observe(d.Seconds())
}

func (m *Metrics) observeRead(recs []storage.StoredRecord) {
	if len(recs) == 0 {
		return
	}
	n := 0
	for i := range recs {
		n += storage.RecordSize(&recs[i].Record)
	}
	m.recordsRead.Add(float64(len(recs)))
	m.bytesRead.Add(float64(n))
}
