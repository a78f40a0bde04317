package main

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want float64
	}{
		{"one", []float64{7}, 7},
		{"odd, unsorted", []float64{9, 1, 5}, 5},
		{"even: mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"outlier does not move it", []float64{100, 101, 99, 1e9, 100}, 100},
		{"duplicates", []float64{3, 3, 1, 3}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.in...)
			assert.InDelta(t, tc.want, Median(in), 1e-12)
			assert.Equal(t, tc.in, in, "Median must not reorder its argument")
		})
	}
	assert.True(t, math.IsNaN(Median(nil)))
}

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{120, 80, 100})
	assert.Equal(t, Stat{Median: 100, Min: 80, Max: 120, Runs: 3}, s)
	assert.InDelta(t, 0.4, s.Spread(), 1e-12)
	assert.InDelta(t, 0, Summarize([]float64{5}).Spread(), 0)
	assert.True(t, math.IsNaN(Stat{}.Spread()))
	assert.Zero(t, Summarize(nil).Runs)
}

func TestAdvantage(t *testing.T) {
	// A rate: more is better, so a/b.
	assert.InDelta(t, 2.0, Advantage("records/s", 200, 100), 1e-12)
	assert.InDelta(t, 0.5, Advantage("MB/s", 100, 200), 1e-12)
	assert.InDelta(t, 2.0, Advantage("MB/s-journal", 200, 100), 1e-12, "a rate named after its contender")
	// A cost: less is better, so b/a.
	assert.InDelta(t, 2.0, Advantage("ns/op", 50, 100), 1e-12)
	assert.InDelta(t, 4.0, Advantage("p99-ns", 1e6, 4e6), 1e-12)
	assert.InDelta(t, 0.25, Advantage("allocs/op", 4, 1), 1e-12)
	assert.True(t, math.IsNaN(Advantage("records/s", 0, 1)))
	assert.True(t, math.IsNaN(Advantage("records/s", 1, math.NaN())))
}

func TestSummarizeSamplesFromCapturedOutput(t *testing.T) {
	out := parseFile(t, "limits.txt", pkgBench)
	sums := SummarizeSamples(out.Samples)
	require.Len(t, sums, 6, "two runs of six benchmarks make six summaries")
	fsync := sums[0]
	assert.Equal(t, "BenchmarkLimit/fsync", fsync.Name)
	assert.Equal(t, 2, fsync.Runs)
	assert.Equal(t, []string{"ns/op", "MB/s", "fsyncs/s", "p50-ns", "p99-ns", "B/op", "allocs/op"}, fsync.Units)
	// The lines say 7251 and 5738 fsyncs/s.
	assert.Equal(t, Stat{Median: (7251 + 5738) / 2.0, Min: 5738, Max: 7251, Runs: 2}, fsync.Metrics["fsyncs/s"])
	assert.Equal(t, "BenchmarkLimit/memcopy/size=1MiB", sums[5].Name)
	assert.InDelta(t, (20271.07+24201.41)/2, sums[5].Metrics["MB/s"].Median, 1e-9)

	// The same name in two packages stays two benchmarks.
	other := out.Samples[0]
	other.Package = "elsewhere"
	sums = SummarizeSamples(append(out.Samples, other))
	require.Len(t, sums, 7)
	assert.Equal(t, 1, sums[6].Runs)
}
