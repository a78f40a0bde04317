package httpapi

import (
	"errors"
	"net/http"

	"github.com/badbatch/badbatch/storage"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// healReporter is what a self-healing store (storage.Healer) adds to Store:
// its failure and recovery counters.
type healReporter interface {
	Stats() storage.HealStats
}

var _ healReporter = (*storage.Healer)(nil)

// registerStoreMetrics adds the store's health to the server's registry,
// read at scrape time: badbatch_store_healthy for every store, and the
// failure and recovery counters of a healing one.
func (s *Server) registerStoreMetrics() {
	st := s.store
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "badbatch", Subsystem: "store", Name: "healthy",
			Help: "1 while the store is open and healthy (appends are accepted), 0 while it is failed or being reopened."},
			func() float64 {
				if st.Ready() {
					return 1
				}
				return 0
			}),
	}
	if h, ok := st.(healReporter); ok {
		counter := func(name, help string, f func(storage.HealStats) uint64) prometheus.Collector {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "badbatch", Subsystem: "store", Name: name, Help: help},
				func() float64 { return float64(f(h.Stats())) })
		}
		cs = append(cs,
			counter("failures_total", "Store failures (a journal write or fsync, or an index error) that took the store down to repair and reopen it.",
				func(st storage.HealStats) uint64 { return st.Failures }),
			counter("recoveries_total", "Successful reopens after a store failure.",
				func(st storage.HealStats) uint64 { return st.Recoveries }),
			counter("reopen_attempts_total", "Reopens tried after a store failure, failed ones included.",
				func(st storage.HealStats) uint64 { return st.ReopenAttempts }),
			counter("dropped_entries_total", "Journal entries past the last successful fsync that repairs dropped (none was acknowledged).",
				func(st storage.HealStats) uint64 { return st.DroppedEntries }),
		)
	}
	for _, c := range cs {
		if err := s.metrics.registry.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				s.logger.Warn("metrics: cannot register a store collector", "err", err)
			}
		}
	}
}

// retryAfterUnavailable sets Retry-After on a 503 for a failed, closed or
// reopening store (a self-healing store is back within seconds), unless the
// handler set its own.
func retryAfterUnavailable(c echo.Context, ae *apiError) {
	if ae.Status == http.StatusServiceUnavailable && ae.Code == CodeUnavailable && c.Response().Header().Get("Retry-After") == "" {
		c.Response().Header().Set("Retry-After", "1")
	}
}
