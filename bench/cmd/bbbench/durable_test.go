package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Durable Streams comparison: bench's BenchmarkDurableStreams*, captured
// with the reference server (testdata/durable-streams.txt, two rounds) and
// without node (testdata/durable-streams-noref.txt, one round).

// Medians of the captured rounds.
const (
	dsProtocolAppends = (13070 + 15774) / 2.0
	dsNativeAppends   = (13541 + 13195) / 2.0
	dsRefAppends      = (573.1 + 628.7) / 2.0
)

// dsReport is a report of the captured outputs, as a run would make it.
func dsReport(t *testing.T, file string) *Report {
	t.Helper()
	out := parseFile(t, file, pkgBench)
	require.Empty(t, out.Failures)
	rep := &Report{
		Schema: reportSchema, Profile: "quick", Benchtime: "200ms", Rounds: 2,
		Machine:  Machine{CPU: "AMD EPYC", Cores: 2, GOMAXPROCS: 2},
		Suites:   defaultSuites(),
		Packages: map[string]PackageStatus{pkgBench: {Dir: pkgBench, Present: true, Built: true}},
		Samples:  out.Samples,
		Skips:    out.Skips,
	}
	rep.Analyze(Groups())
	return rep
}

func TestCompareDurableStreams(t *testing.T) {
	rep := dsReport(t, "durable-streams.txt")
	c := comparisonByID(t, rep.Comparisons, "ds-append")
	g := c.Group
	require.Len(t, c.Rows, 1)
	row := c.Rows[0]
	assert.Equal(t, "conns=16/size=100B", row.Key)
	proto := row.Cells[seriesIndex(t, g, dsProtocolLabel)]
	native := row.Cells[seriesIndex(t, g, dsNativeLabel)]
	ref := row.Cells[seriesIndex(t, g, dsRefLabel)]
	require.Equal(t, CellOK, proto.Status)
	assert.InDelta(t, dsProtocolAppends, proto.Stat.Median, 1e-9)
	require.NotNil(t, proto.P99, "the append reports its latency")

	// The native API is BadBatch: a ratio (protocol over native), never an
	// advantage or a loss.
	require.Equal(t, CellOK, native.Status)
	assert.True(t, math.IsNaN(float64(native.Adv)))
	require.NotNil(t, native.BaseOver)
	assert.InDelta(t, dsProtocolAppends/dsNativeAppends, *native.BaseOver, 1e-9)
	assert.Empty(t, Losses([]Comparison{c}))

	// The reference is a peer, and the goal is on the advantage over it.
	require.Equal(t, CellOK, ref.Status)
	assert.InDelta(t, dsProtocolAppends/dsRefAppends, float64(ref.Adv), 1e-9)
	v, w, _, ok := c.goalFigure(row)
	require.True(t, ok)
	assert.InDelta(t, dsProtocolAppends/dsRefAppends, v, 1e-9)
	assert.InDelta(t, 13070/628.7, w, 1e-9, "BadBatch's worst round over the reference's best")
	assert.Equal(t, "MISSES the goal", c.goalVerdict(row), "about 24x, not 100x")

	for _, id := range []string{"ds-read", "ds-fanout"} {
		c := comparisonByID(t, rep.Comparisons, id)
		require.Len(t, c.Rows, 1, id)
		for i, cell := range c.Rows[0].Cells {
			assert.Equal(t, CellOK, cell.Status, "%s %s", id, c.Group.Series[i].Label)
		}
	}
}

func TestGoalOverAContender(t *testing.T) {
	g := &Goal{Text: "at least 100x", Bound: 100, Aim: 100, Over: "peer"}
	assert.Equal(t, "meets the goal", g.judge(true, 100))
	assert.Equal(t, "MISSES the goal", g.judge(true, 99.9))
	assert.Equal(t, "not measured", g.judge(true, math.NaN()))
	// A cost: the advantage is the peer's figure over the base's.
	grp := &Group{Unit: "p99-ns", Goal: g, Series: []Series{{Label: "bb", Base: true}, {Label: "peer"}}}
	c := Comparison{Group: grp}
	row := Row{Cells: []Cell{
		{Status: CellOK, Stat: Stat{Median: 10, Min: 9, Max: 20}},
		{Status: CellOK, Stat: Stat{Median: 2000, Min: 1500, Max: 3000}},
	}}
	v, w, _, ok := c.goalFigure(row)
	require.True(t, ok)
	assert.InDelta(t, 200, v, 1e-9)
	assert.InDelta(t, 75, w, 1e-9, "the peer's best (lowest) over BadBatch's worst (highest)")
	assert.Equal(t, "meets the goal", c.goalVerdict(row))
}

func TestReportMarkdownDurableStreams(t *testing.T) {
	section := func(t *testing.T, md, title string) string {
		t.Helper()
		i := strings.Index(md, "## "+title+"\n")
		require.GreaterOrEqual(t, i, 0, "the report has a section %q", title)
		end := strings.Index(md[i+1:], "\n## ")
		require.Greater(t, end, 0)
		return md[i : i+1+end]
	}
	const appendTitle = "Durable Streams append, one 100-byte message per request"

	t.Run("with the reference", func(t *testing.T) {
		var buf bytes.Buffer
		require.NoError(t, dsReport(t, "durable-streams.txt").WriteMarkdown(&buf, map[string]string{"ds-append": "img/ds-append.svg"}))
		md := buf.String()
		sec := section(t, md, appendTitle)
		for _, want := range []string{
			"![" + appendTitle + "](img/ds-append.svg)",
			"| conns=16/size=100B | **BadBatch, Durable Streams protocol** | 14.4k | 13.1k-15.8k (18.7%) | 3.1ms | (base) |",
			"|  | BadBatch, native API | 13.4k | 13.2k-13.5k (2.6%) | 3.22ms | (BadBatch variant) BadBatch, Durable Streams protocol / this: 1.08x |",
			"|  | reference server (@durable-streams/server 0.3.7, file store) | 601 | 573-629 (9.3%) | 38.1ms | 24.0x better |",
			"**Goal: BadBatch's protocol at least 100x the reference's appends/s (issue 14).** conns=16/size=100B: 24.0x better than " +
				"reference server (@durable-streams/server 0.3.7, file store) (median over median; BadBatch's worst round over its best: 20.8x): MISSES the goal.",
			"- **reference server (@durable-streams/server 0.3.7, file store)**: `@durable-streams/server` 0.3.7",
			"- **BadBatch, native API**: The benchmark process's own server",
		} {
			assert.Contains(t, sec, want)
		}
		assert.Contains(t, md, "- **"+appendTitle+"** (conns=16/size=100B): BadBatch, Durable Streams protocol 14.4k appends/s; "+
			"BadBatch, native API 13.4k appends/s (BadBatch, Durable Streams protocol / this: 1.08x); "+
			"reference server (@durable-streams/server 0.3.7, file store) 601 appends/s (BadBatch 24.0x better); "+
			"goal BadBatch's protocol at least 100x the reference's appends/s (issue 14): MISSES the goal.\n")
		assert.Contains(t, md, "## Durable Streams catch-up read, 100,000 messages of 100 bytes\n")
		assert.Contains(t, md, "## Durable Streams SSE fan-out, 100 subscribers\n")
		assert.NotContains(t, md, "NaN")
	})

	t.Run("without node", func(t *testing.T) {
		var buf bytes.Buffer
		require.NoError(t, dsReport(t, "durable-streams-noref.txt").WriteMarkdown(&buf, nil))
		md := buf.String()
		sec := section(t, md, appendTitle)
		for _, want := range []string{
			"|  | reference server (@durable-streams/server 0.3.7, file store) | not run: node is not installed (no node in PATH) | |",
			"conns=16/size=100B: not measured in this run (reference server (@durable-streams/server 0.3.7, file store): not run: node is not installed (no node in PATH)).",
		} {
			assert.Contains(t, sec, want)
		}
		assert.Contains(t, md, "- reference server (@durable-streams/server 0.3.7, file store): "+
			"`BenchmarkDurableStreamsAppend/impl=reference/api=protocol` in `bench`: not run: node is not installed (no node in PATH)\n")
	})
}

func TestPlotDurableStreams(t *testing.T) {
	rep := dsReport(t, "durable-streams.txt")
	for _, id := range []string{"ds-append", "ds-read", "ds-fanout"} {
		path := filepath.Join(t.TempDir(), id+".svg")
		ok, err := PlotComparison(comparisonByID(t, rep.Comparisons, id), path)
		require.NoError(t, err)
		require.True(t, ok, id)
		svg, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Contains(t, string(svg), "reference server", id)
	}
}
