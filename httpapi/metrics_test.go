package httpapi_test

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// subscribers sums the live-subscriber gauge over transports.
func subscribers(t *testing.T, ts *testServer) int {
	t.Helper()
	mfs, err := ts.Metrics.Registry().Gather()
	require.NoError(t, err)
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "badbatch_live_subscribers" {
			for _, m := range mf.GetMetric() {
				total += m.GetGauge().GetValue()
			}
		}
	}
	return int(total)
}

// metricValue returns a counter's, gauge's or histogram's (sample count)
// value, summed over label sets.
func metricValue(t *testing.T, ts *testServer, name string) float64 {
	t.Helper()
	mfs, err := ts.Metrics.Registry().Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		total := 0.0
		for _, m := range mf.GetMetric() {
			total += value(m)
		}
		return total
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}
