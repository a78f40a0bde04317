package main

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The failover table: BenchmarkClusterFailover's captured output
// (testdata/cluster-failover.txt: two rounds of 20 kills each, p99 917.9
// and 893.1 ms, p50 608.5 and 552.1 ms) against the goal "p99 under 2 s,
// aim 1 s".

const (
	failoverP99Median = (917.9 + 893.1) / 2
	failoverP50Median = (608.5 + 552.1) / 2
)

func failoverGroup(t *testing.T) *Group {
	t.Helper()
	for _, g := range Groups() {
		if g.ID == "cluster-failover" {
			return g
		}
	}
	t.Fatal("no cluster-failover group")
	return nil
}

func failoverResults(t *testing.T) *Results {
	t.Helper()
	out := parseFile(t, "cluster-failover.txt", pkgBench)
	require.Empty(t, out.Failures)
	return &Results{
		Summaries: SummarizeSamples(out.Samples),
		Packages:  map[string]PackageStatus{pkgBench: {Dir: pkgBench, Present: true, Built: true}},
	}
}

func TestParseClusterFailover(t *testing.T) {
	out := parseFile(t, "cluster-failover.txt", pkgBench)
	assert.Equal(t, []string{"BenchmarkClusterFailover/nodes=3", "BenchmarkClusterFailover/nodes=3"}, names(out.Samples))
	s := out.Samples[0]
	assert.Equal(t, 2, s.Procs)
	assert.EqualValues(t, 1, s.N, "b.N is 1: the kills make one run")
	assert.Equal(t, []string{"ns/op", "kills", "max-ms", "p50-ms", "p99-ms", "B/op", "allocs/op"}, units(s))
	for unit, want := range map[string]float64{"kills": 20, "p50-ms": 608.5, "p99-ms": 917.9, "max-ms": 917.9} {
		v, ok := s.Value(unit)
		require.True(t, ok, unit)
		assert.InDelta(t, want, v, 1e-9, unit)
	}
}

func TestCompareClusterFailover(t *testing.T) {
	g := failoverGroup(t)
	c := Compare(g, failoverResults(t))
	require.Len(t, c.Rows, 1)
	row := c.Rows[0]
	assert.Equal(t, "nodes=3", row.Key)
	p99 := row.Cells[seriesIndex(t, g, "BadBatch 3-node cluster, p99")]
	require.Equal(t, CellOK, p99.Status)
	assert.InDelta(t, failoverP99Median, p99.Stat.Median, 1e-9)
	assert.InDelta(t, 893.1, p99.Stat.Min, 1e-9)
	assert.InDelta(t, 917.9, p99.Stat.Max, 1e-9)
	p50 := row.Cells[seriesIndex(t, g, "BadBatch 3-node cluster, p50")]
	require.Equal(t, CellOK, p50.Status)
	assert.InDelta(t, failoverP50Median, p50.Stat.Median, 1e-9)
	assert.True(t, math.IsNaN(float64(p50.Adv)), "a variant of BadBatch has no advantage")
	assert.Empty(t, Losses([]Comparison{c}))
	assert.Equal(t, "meets the aim", g.Goal.verdict(g.Unit, p99.Stat))

	missing := Compare(g, &Results{Packages: map[string]PackageStatus{pkgBench: {Dir: pkgBench, Present: true, Built: true}}})
	require.Len(t, missing.Rows, 1)
	assert.Equal(t, CellNoSuchBenc, missing.Rows[0].Cells[0].Status)
}

func TestGoalVerdict(t *testing.T) {
	cost := &Goal{Text: "p99 under 2 s, aim 1 s", Bound: 2000, Aim: 1000}
	rate := &Goal{Text: "at least 10k records/s, aim 20k", Bound: 10000, Aim: 20000}
	for _, tc := range []struct {
		goal   *Goal
		unit   string
		median float64
		want   string
	}{
		{cost, "p99-ms", 700, "meets the aim"},
		{cost, "p99-ms", 1000, "meets the aim"},
		{cost, "p99-ms", 1500, "meets the goal, not the aim"},
		{cost, "p99-ms", 2000.5, "MISSES the goal"},
		{cost, "p99-ms", math.NaN(), "not measured"},
		{rate, "records/s", 25000, "meets the aim"},
		{rate, "records/s", 15000, "meets the goal, not the aim"},
		{rate, "records/s", 9000, "MISSES the goal"},
	} {
		assert.Equal(t, tc.want, tc.goal.verdict(tc.unit, Stat{Median: tc.median}), "%s %v", tc.unit, tc.median)
	}
}

func TestTimeUnits(t *testing.T) {
	assert.Equal(t, "906ms", formatFigure("p99-ms", 905.5))
	assert.Equal(t, "1.5s", formatFigure("p99-ms", 1500))
	assert.Equal(t, "1.5ms", formatFigure("p99-ns", 1.5e6))
	assert.Equal(t, "p99 latency", unitHeader("p99-ms"))
	assert.Equal(t, "906ms p99", unitWords("p99-ms", 905.5))
	assert.Equal(t, "p50 580ms", metricWords("p50-ms", 580.3))
	assert.Equal(t, "20 kills", metricWords("kills", 20))
	assert.False(t, HigherIsBetter("p99-ms"))
}

func TestReportMarkdownClusterFailover(t *testing.T) {
	out := parseFile(t, "cluster-failover.txt", pkgBench)
	rep := &Report{
		Schema: reportSchema, Profile: "quick", Benchtime: "200ms", Rounds: 2,
		Machine:  Machine{CPU: "AMD EPYC", Cores: 2, GOMAXPROCS: 2},
		Suites:   defaultSuites(),
		Packages: failoverResults(t).Packages,
		Samples:  out.Samples,
	}
	rep.Analyze(Groups())
	var buf bytes.Buffer
	require.NoError(t, rep.WriteMarkdown(&buf, nil))
	md := buf.String()
	i := strings.Index(md, "## Cluster failover, 3 nodes on one machine\n")
	require.GreaterOrEqual(t, i, 0, "the report has a failover section")
	end := strings.Index(md[i+1:], "\n## ")
	require.Greater(t, end, 0)
	sec := md[i : i+1+end]
	for _, want := range []string{
		"**All 3 nodes of each cluster share this machine's 2 cores and one disk.**",
		"| matrix point | contender | p99 latency (median) | range (spread) | BadBatch's advantage |",
		"| nodes=3 | **BadBatch 3-node cluster, p99** | 906ms | 893ms-918ms (2.7%) | (base) |",
		"|  | BadBatch 3-node cluster, p50 | 580ms | 552ms-608ms (9.7%) | (BadBatch variant) |",
		"**Goal: p99 under 2 s, aim 1 s.** nodes=3: 906ms (median of the rounds; worst round 918ms): meets the aim.",
	} {
		assert.Contains(t, sec, want)
	}
	assert.Contains(t, md, "- **Cluster failover, 3 nodes on one machine** (nodes=3): BadBatch 3-node cluster, p99 906ms p99; "+
		"goal p99 under 2 s, aim 1 s: meets the aim. All 3 nodes of each cluster share this machine's 2 cores and one disk.\n")
	assert.NotContains(t, md, "NaN")
}
