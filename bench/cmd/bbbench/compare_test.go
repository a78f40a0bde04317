package main

import (
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// capturedResults are the captured outputs of testdata/ as one run: the
// limits, NATS, and the sample package with its failing benchmark.
func capturedResults(t *testing.T) *Results {
	t.Helper()
	var samples []Sample
	var failures []Failure
	for _, f := range []struct{ file, pkg string }{
		{"limits.txt", pkgBench},
		{"nats.txt", pkgPeers},
		{"sample-procs2-fail.txt", "sample"},
	} {
		out := parseFile(t, f.file, f.pkg)
		samples = append(samples, out.Samples...)
		failures = append(failures, out.Failures...)
	}
	return &Results{
		Summaries: SummarizeSamples(samples),
		Failures:  failures,
		Packages: map[string]PackageStatus{
			pkgBench:     {Dir: pkgBench, Present: true, Built: true},
			pkgPeers:     {Dir: pkgPeers, Present: true, Built: true},
			"sample":     {Dir: "sample", Present: true, Built: true},
			"broken":     {Dir: "broken", Present: true, BuildError: "broken/x_test.go:3:1: syntax error\nmore"},
			pkgDisruptor: {Dir: pkgDisruptor},
		},
	}
}

// seriesIndex finds a contender of a group by its label.
func seriesIndex(t *testing.T, g *Group, label string) int {
	t.Helper()
	for i, s := range g.Series {
		if s.Label == label {
			return i
		}
	}
	t.Fatalf("group %s has no contender %q", g.ID, label)
	return -1
}

// comparisonByID finds a comparison by its group's ID.
func comparisonByID(t *testing.T, cs []Comparison, id string) Comparison {
	t.Helper()
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no comparison %q", id)
	return Comparison{}
}

func TestMatchSeries(t *testing.T) {
	s := Series{Package: pkgPeers, Match: "BenchmarkNATSPublish/sync=always"}
	for _, tc := range []struct {
		pkg, name string
		row       string
		ok        bool
	}{
		{pkgPeers, "BenchmarkNATSPublish/sync=always/producers=4/size=100B", "producers=4/size=100B", true},
		{pkgPeers, "BenchmarkNATSPublish/producers=4/sync=always", "producers=4", true}, // fixed elements anywhere
		{pkgPeers, "BenchmarkNATSPublish/sync=always", "", true},
		{pkgPeers, "BenchmarkNATSPublish/sync=default/producers=4/size=100B", "", false},
		{pkgPeers, "BenchmarkNATSPublishX/sync=always", "", false},
		{pkgBench, "BenchmarkNATSPublish/sync=always/producers=4/size=100B", "", false}, // another package
	} {
		t.Run(tc.name, func(t *testing.T) {
			row, ok := matchSeries(s, tc.pkg, tc.name)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.row, row)
		})
	}
}

func TestCompareDurableAppend(t *testing.T) {
	r := capturedResults(t)
	g := Groups()[0]
	require.Equal(t, "durable-append", g.ID)
	c := Compare(g, r)
	require.Len(t, c.Rows, 5, "producers 1, 2, 4, 8, 16")
	require.NotNil(t, c.LimitStat)
	limit := (7251 + 5738) / 2.0
	assert.InDelta(t, limit, c.LimitStat.Median, 1e-9)

	row := c.Rows[4]
	assert.Equal(t, "producers=16/size=100B", row.Key)
	// BadBatch's store benchmark is not in the captured output.
	assert.Equal(t, CellNoSuchBenc, row.Cells[seriesIndex(t, g, "BadBatch (storage.Store)")].Status)
	assert.Equal(t, CellNotInSet, row.Cells[seriesIndex(t, g, "tidwall/wal + group commit")].Status, "the log peers run at 4 producers only")
	assert.Equal(t, CellNoSuchBenc, c.Rows[2].Cells[seriesIndex(t, g, "tidwall/wal + group commit")].Status)
	assert.Equal(t, CellNoSuchBenc, row.Cells[seriesIndex(t, g, "Pebble as a log + group commit")].Status, "Pebble runs at every producer count")
	always := row.Cells[seriesIndex(t, g, "NATS JetStream, one record per publish")]
	require.Equal(t, CellOK, always.Status)
	assert.Equal(t, "BenchmarkNATSPublish/sync=always/producers=16/size=100B", always.Name)
	assert.InDelta(t, (7313+6473)/2.0, always.Stat.Median, 1e-9)
	require.NotNil(t, always.P99)
	assert.InDelta(t, (13123583+14876671)/2.0, always.P99.Median, 1e-9)
	assert.InDelta(t, always.Stat.Median/limit, float64(always.ToLimit), 1e-12)
	assert.True(t, math.IsNaN(float64(always.Adv)), "no advantage without BadBatch's figure")
	assert.Empty(t, Losses([]Comparison{c}))
}

// TestComparePerRowLimit divides each row by the limit benchmark at the same
// matrix point: memcopy's size=1MiB row by seqwrite's size=1MiB row.
func TestComparePerRowLimit(t *testing.T) {
	r := capturedResults(t)
	g := &Group{
		ID: "t", Unit: "MB/s",
		Series: []Series{{Label: "base", Package: pkgBench, Match: "BenchmarkLimit/memcopy", Base: true}},
		Limit:  &Limit{Package: pkgBench, Match: "BenchmarkLimit/seqwrite", Unit: "MB/s", Percent: true},
	}
	c := Compare(g, r)
	require.Len(t, c.Rows, 3)
	assert.Empty(t, c.LimitStatus)
	assert.Equal(t, "size=1KiB", c.Rows[0].Key)
	assert.True(t, math.IsNaN(float64(c.Rows[0].Cells[0].ToLimit)), "seqwrite has no size=1KiB")
	assert.Equal(t, "size=1MiB", c.Rows[2].Key)
	assert.InDelta(t, (20271.07+24201.41)/(440.06+412.59), float64(c.Rows[2].Cells[0].ToLimit), 1e-9)

	g.Limit.Match = "BenchmarkNope"
	assert.Equal(t, CellNoSuchBenc, Compare(g, r).LimitStatus)
}

// TestComparePairsRowsAndRatios pairs two real benchmarks of the captured
// output as if one were BadBatch: seqwrite (size=64KiB, 1MiB) against
// memcopy (size=1KiB, 64KiB, 1MiB), in MB/s.
func TestComparePairsRowsAndRatios(t *testing.T) {
	r := capturedResults(t)
	g := &Group{
		ID: "t", Unit: "MB/s",
		Series: []Series{
			{Label: "base", Package: pkgBench, Match: "BenchmarkLimit/seqwrite", Base: true},
			{Label: "peer", Package: pkgBench, Match: "BenchmarkLimit/memcopy"},
			{Label: "fast but unsafe", Package: pkgBench, Match: "BenchmarkLimit/memcopy", NotDurable: true},
		},
	}
	c := Compare(g, r)
	keys := []string{}
	for _, row := range c.Rows {
		keys = append(keys, row.Key)
	}
	assert.Equal(t, []string{"size=64KiB", "size=1MiB", "size=1KiB"}, keys, "base rows first, then the others in order of appearance")

	row := c.Rows[1] // size=1MiB
	base := (440.06 + 412.59) / 2
	peer := (20271.07 + 24201.41) / 2
	assert.InDelta(t, base, row.Cells[0].Stat.Median, 1e-9)
	assert.InDelta(t, peer, row.Cells[1].Stat.Median, 1e-9)
	assert.InDelta(t, base/peer, float64(row.Cells[1].Adv), 1e-12)
	assert.True(t, math.IsNaN(float64(row.Cells[2].Adv)), "a not-durable contender is never ranked")
	assert.True(t, math.IsNaN(float64(row.Cells[0].Adv)), "the base has no advantage over itself")

	assert.Equal(t, CellNoSuchBenc, c.Rows[2].Cells[0].Status, "seqwrite has no size=1KiB")

	losses := Losses([]Comparison{c})
	require.Len(t, losses, 2, "memcopy beats seqwrite at both sizes both ran; the not-durable twin is not counted")
	assert.Equal(t, "size=64KiB", losses[0].Row)
	assert.Equal(t, "peer", losses[0].Peer)
	assert.InDelta(t, peer/base, losses[1].By, 1e-9)
	assert.False(t, losses[1].Overlap, "412.59-440.06 MB/s against 20271-24201 MB/s")

	// Ranges that overlap: seqwrite 64KiB (218.68-289.31 MB/s) against a
	// peer whose rounds span it.
	c.Rows[0].Cells[1].Stat = Stat{Median: 300, Min: 250, Max: 320, Runs: 2}
	c.Rows[0].Cells[1].Adv = Ratio(Advantage("MB/s", c.Rows[0].Cells[0].Stat.Median, 300))
	losses = Losses([]Comparison{c})
	require.Len(t, losses, 2)
	assert.True(t, losses[0].Overlap)
}

func TestCompareExplainsMissing(t *testing.T) {
	r := capturedResults(t)
	g := &Group{
		ID: "t", Unit: "records/s", Rows: []string{"size=64B"},
		Series: []Series{
			{Label: "ok", Package: "sample", Match: "BenchmarkCopy", Base: true},
			{Label: "failed", Package: "sample", Match: "BenchmarkFails/impl=broken"},
			{Label: "no such", Package: "sample", Match: "BenchmarkNope"},
			{Label: "no build", Package: "broken", Match: "BenchmarkX"},
			{Label: "absent", Package: pkgDisruptor, Match: "BenchmarkRing"},
			{Label: "unknown package", Package: "nowhere", Match: "BenchmarkRing"},
			{Label: "not in the matrix", Package: "sample", Match: "BenchmarkNope", Rows: []string{"size=1B"}},
		},
		Limit: &Limit{Package: "sample", Name: "BenchmarkLimitThatIsNot", Unit: "fsyncs/s"},
	}
	c := Compare(g, r)
	require.Len(t, c.Rows, 2)
	cells := c.Rows[0].Cells
	assert.Equal(t, CellOK, cells[0].Status)
	assert.Equal(t, CellFailed, cells[1].Status)
	assert.Equal(t, "BenchmarkFails/impl=broken", cells[1].Name)
	assert.Equal(t, "sample_test.go:35: disk on fire", cells[1].Message)
	assert.Equal(t, CellNoSuchBenc, cells[2].Status)
	assert.Equal(t, CellNoBuild, cells[3].Status)
	assert.Equal(t, "broken/x_test.go:3:1: syntax error", cells[3].Message)
	assert.Equal(t, CellNoPackage, cells[4].Status)
	assert.Equal(t, CellNoPackage, cells[5].Status)
	assert.Equal(t, CellNotInSet, cells[6].Status)
	assert.Nil(t, c.LimitStat)
	assert.Equal(t, CellNoSuchBenc, c.LimitStatus)
	assert.Equal(t, "size=4096B", c.Rows[1].Key)
}

func TestCompareWithNothingRun(t *testing.T) {
	r := &Results{Packages: map[string]PackageStatus{pkgBench: {Dir: pkgBench, Present: true, Built: true}}}
	g := &Group{ID: "t", Unit: "records/s", Series: []Series{{Label: "b", Package: pkgBench, Match: "BenchmarkJournalAppend", Base: true}}}
	c := Compare(g, r)
	require.Len(t, c.Rows, 1, "a group with no rows still gets one, to say why")
	assert.Equal(t, CellNoSuchBenc, c.Rows[0].Cells[0].Status)
}

// TestCompareSeriesUnit reads two contenders from one benchmark, each from
// its own metric, as BenchmarkJournalAppendInterleaved reports them.
func TestCompareSeriesUnit(t *testing.T) {
	r := capturedResults(t)
	g := &Group{
		ID: "t", Unit: "MB/s",
		Series: []Series{
			{Label: "mb", Package: pkgBench, Match: "BenchmarkLimit/fsync", Base: true},
			{Label: "syncs", Package: pkgBench, Match: "BenchmarkLimit/fsync", Unit: "fsyncs/s"},
		},
	}
	c := Compare(g, r)
	require.Len(t, c.Rows, 1)
	assert.InDelta(t, (29.70+23.50)/2, c.Rows[0].Cells[0].Stat.Median, 1e-9)
	assert.InDelta(t, (7251+5738)/2.0, c.Rows[0].Cells[1].Stat.Median, 1e-9)
}

// journalResults are the captured journal comparisons as one run: bench's
// interleaved contenders and etcd's WAL from bench/peers, interleaved there
// with the journal and also run alone.
func journalResults(t *testing.T) *Results {
	t.Helper()
	var samples []Sample
	for _, f := range []struct{ file, pkg string }{
		{"journal-interleaved.txt", pkgBench},
		{"etcdwal.txt", pkgPeers},
	} {
		out := parseFile(t, f.file, f.pkg)
		require.Empty(t, out.Failures)
		samples = append(samples, out.Samples...)
	}
	return &Results{
		Summaries: SummarizeSamples(samples),
		Packages: map[string]PackageStatus{
			pkgBench: {Dir: pkgBench, Present: true, Built: true},
			pkgPeers: {Dir: pkgPeers, Present: true, Built: true},
		},
	}
}

// TestCompareEtcdWAL places etcd's WAL, measured in bench/peers, beside
// bench's journal contenders at each matrix point: its MB/s from
// BenchmarkEtcdWALAppendInterleaved, its advantage against the journal
// interleaved with it in that process (not against the base, which ran in
// another), its share of the plain file's rate from bench; and its
// records/s from BenchmarkEtcdWALAppend in the non-interleaved table.
func TestCompareEtcdWAL(t *testing.T) {
	r := journalResults(t)
	groups := Groups()
	var interleaved, alone *Group
	for _, g := range groups {
		switch g.ID {
		case "journal-interleaved":
			interleaved = g
		case "journal-append":
			alone = g
		}
	}
	require.NotNil(t, interleaved)
	require.NotNil(t, alone)

	c := Compare(interleaved, r)
	require.Len(t, c.Rows, 9, "etcd's rows are the journal's: batch={1,16,256} x size={100B,1KiB,64KiB}")
	etcd, beside, base := seriesIndex(t, interleaved, etcdWALLabel), seriesIndex(t, interleaved, etcdWALJournalBeside), seriesIndex(t, interleaved, "BadBatch journal")
	for _, row := range c.Rows {
		assert.Equal(t, CellOK, row.Cells[etcd].Status, row.Key)
		assert.Equal(t, CellOK, row.Cells[beside].Status, row.Key)
		assert.Equal(t, CellOK, row.Cells[base].Status, row.Key)
		assert.Equal(t, "BenchmarkEtcdWALAppendInterleaved/"+row.Key, row.Cells[etcd].Name)
	}
	row := c.Rows[slices.IndexFunc(c.Rows, func(r Row) bool { return r.Key == "batch=16/size=1KiB" })]
	etcdMBs, besideMBs, fileMBs := (24.54+22.13)/2, (27.96+31.28)/2, (54.33+55.57)/2
	assert.InDelta(t, etcdMBs, row.Cells[etcd].Stat.Median, 1e-9)
	assert.InDelta(t, besideMBs, row.Cells[beside].Stat.Median, 1e-9)
	assert.InDelta(t, (65.17+59.63)/2, row.Cells[base].Stat.Median, 1e-9)
	assert.InDelta(t, besideMBs/etcdMBs, float64(row.Cells[etcd].Adv), 1e-12, "against the journal of the same process")
	assert.True(t, math.IsNaN(float64(row.Cells[beside].Adv)), "the journal beside etcd is BadBatch: no advantage")
	assert.True(t, math.IsNaN(float64(row.Cells[etcd].ToLimit)), "the plain file ran in another process")
	assert.True(t, math.IsNaN(float64(row.Cells[beside].ToLimit)), "the plain file ran in another process")
	assert.InDelta(t, row.Cells[base].Stat.Median/fileMBs, float64(row.Cells[base].ToLimit), 1e-12)

	// batch=1/size=100B: etcd (0.3452, 0.4384 MB/s) beat the journal beside
	// it (0.2668, 0.3533) but not bench's journal (0.4811, 0.5685): a loss,
	// judged against the journal of its own process.
	row = c.Rows[slices.IndexFunc(c.Rows, func(r Row) bool { return r.Key == "batch=1/size=100B" })]
	assert.Greater(t, row.Cells[base].Stat.Median, row.Cells[etcd].Stat.Median)
	losses := Losses([]Comparison{c})
	i := slices.IndexFunc(losses, func(l Loss) bool { return l.Peer == etcdWALLabel && l.Row == row.Key })
	require.GreaterOrEqual(t, i, 0, "etcd's win is listed where BadBatch loses")
	assert.InDelta(t, (0.3452+0.4384)/(0.2668+0.3533), losses[i].By, 1e-9)
	assert.True(t, losses[i].Overlap, "0.2668-0.3533 against 0.3452-0.4384 MB/s")

	c = Compare(alone, r)
	require.Len(t, c.Rows, 9)
	etcd = seriesIndex(t, alone, etcdWALLabel)
	row = c.Rows[slices.IndexFunc(c.Rows, func(r Row) bool { return r.Key == "batch=16/size=1KiB" })]
	require.Equal(t, CellOK, row.Cells[etcd].Status)
	assert.Equal(t, "BenchmarkEtcdWALAppend/batch=16/size=1KiB", row.Cells[etcd].Name)
	assert.InDelta(t, (14776+45639)/2.0, row.Cells[etcd].Stat.Median, 1e-9)
	assert.Equal(t, CellNoSuchBenc, row.Cells[seriesIndex(t, alone, "BadBatch journal")].Status, "not in the captured output")

	// With a base figure from ./bench's binary, etcd's (from bench/peers's)
	// is still not ranked against it: another process.
	r.Summaries = append(r.Summaries, SummarizeSamples([]Sample{{Package: pkgBench, Name: "BenchmarkJournalAppend/impl=journal/batch=16/size=1KiB",
		Procs: 2, Round: 1, N: 1, Metrics: []Metric{{Unit: "records/s", Value: 1000}}}})...)
	c = Compare(alone, r)
	row = c.Rows[slices.IndexFunc(c.Rows, func(r Row) bool { return r.Key == "batch=16/size=1KiB" })]
	require.Equal(t, CellOK, row.Cells[seriesIndex(t, alone, "BadBatch journal")].Status)
	assert.True(t, math.IsNaN(float64(row.Cells[etcd].Adv)), "no advantage across processes")
	assert.True(t, math.IsNaN(float64(row.Cells[etcd].ToLimit)), "nor a share of the other process's plain file")
	assert.Empty(t, Losses([]Comparison{c}), "and no loss listed, though etcd's figure is higher")
}
