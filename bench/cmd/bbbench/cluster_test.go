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

// The cluster comparison: NATS R3 (bench/peers's BenchmarkNATSClusterAppend,
// captured in testdata/nats-cluster.txt), BadBatch's single node
// (BenchmarkStoreAppend, testdata/store-append.txt) and BadBatch's own
// cluster, whose benchmark is not written yet: where a test needs its
// figure, it adds samples of its own, named as groups.go's
// clusterAppendMatch expects.

// Medians of the captured rounds, records/s.
const (
	natsR3BatchMedian   = (17469 + 11533) / 2.0
	natsR3PublishMedian = (19125 + 25320) / 2.0
	singleNodeMedian    = (724469 + 523588) / 2.0
)

// clusterSamples are the captured outputs of the cluster comparison's
// contenders as one run of two rounds.
func clusterSamples(t *testing.T) []Sample {
	t.Helper()
	var samples []Sample
	for _, f := range []struct{ file, pkg string }{
		{"nats-cluster.txt", pkgPeers},
		{"store-append.txt", pkgBench},
	} {
		out := parseFile(t, f.file, f.pkg)
		require.Empty(t, out.Failures)
		samples = append(samples, out.Samples...)
	}
	return samples
}

// badBatchClusterSamples are two rounds of the BadBatch cluster benchmark
// that does not exist yet, at the given records/s: invented figures, not a
// measurement.
func badBatchClusterSamples(rates ...float64) []Sample {
	var out []Sample
	for i, r := range rates {
		out = append(out, Sample{
			Package: pkgBench, Name: "BenchmarkClusterAppend/batch=100/producers=4/size=100B", Procs: 2, Round: i + 1, N: 1000,
			Metrics: []Metric{{Unit: "records/s", Value: r}},
		})
	}
	return out
}

func clusterResults(samples []Sample) *Results {
	return &Results{
		Summaries: SummarizeSamples(samples),
		Packages: map[string]PackageStatus{
			pkgBench: {Dir: pkgBench, Present: true, Built: true},
			pkgPeers: {Dir: pkgPeers, Present: true, Built: true},
		},
	}
}

func clusterGroup(t *testing.T) *Group {
	t.Helper()
	for _, g := range Groups() {
		if g.ID == "cluster-append" {
			return g
		}
	}
	t.Fatal("no cluster-append group")
	return nil
}

func TestParseNATSCluster(t *testing.T) {
	out := parseFile(t, "nats-cluster.txt", pkgPeers)
	assert.Equal(t, []string{
		"BenchmarkNATSClusterAppend/mode=atomic-batch100/producers=4/size=100B",
		"BenchmarkNATSClusterAppend/mode=atomic-batch100/producers=4/size=100B",
		"BenchmarkNATSClusterAppend/mode=publish/producers=4/size=100B",
		"BenchmarkNATSClusterAppend/mode=publish/producers=4/size=100B",
	}, names(out.Samples))
	s := out.Samples[3]
	assert.Equal(t, 2, s.Procs)
	assert.Equal(t, []string{"ns/op", "MB/s", "p50-ns", "p99-ns", "records/s", "B/op", "allocs/op"}, units(s))
	rate, ok := s.Value("records/s")
	require.True(t, ok)
	assert.InDelta(t, 25320, rate, 1e-9)
}

// TestCompareClusterWithoutBadBatch is the comparison as it runs until
// BenchmarkClusterAppend exists: NATS R3's figures and the single node's at
// the one matrix point, BadBatch's cluster not run, and no ratio.
func TestCompareClusterWithoutBadBatch(t *testing.T) {
	g := clusterGroup(t)
	c := Compare(g, clusterResults(clusterSamples(t)))
	require.Len(t, c.Rows, 1, "only producers=4/size=100B: the single node's other producer counts stay in the full table")
	row := c.Rows[0]
	assert.Equal(t, "producers=4/size=100B", row.Key)

	cluster := row.Cells[seriesIndex(t, g, "BadBatch 3-node cluster")]
	assert.Equal(t, CellNoSuchBenc, cluster.Status)

	single := row.Cells[seriesIndex(t, g, "BadBatch single node (storage.Store)")]
	require.Equal(t, CellOK, single.Status)
	assert.Equal(t, "BenchmarkStoreAppend/impl=badbatch/producers=4/size=100B", single.Name)
	assert.InDelta(t, singleNodeMedian, single.Stat.Median, 1e-9)
	assert.Nil(t, single.BaseOver, "no ratio without the cluster's figure")

	for label, median := range map[string]float64{
		"NATS JetStream R3, atomic batches of 100":  natsR3BatchMedian,
		"NATS JetStream R3, one record per publish": natsR3PublishMedian,
	} {
		cell := row.Cells[seriesIndex(t, g, label)]
		require.Equal(t, CellOK, cell.Status, label)
		assert.InDelta(t, median, cell.Stat.Median, 1e-9, label)
		require.NotNil(t, cell.P99, label)
		assert.True(t, math.IsNaN(float64(cell.Adv)), "%s: no advantage without BadBatch's figure", label)
	}
	assert.Empty(t, Losses([]Comparison{c}))

	// OnlyRows is what keeps the single node's other points out.
	g.OnlyRows = false
	assert.Len(t, Compare(g, clusterResults(clusterSamples(t))).Rows, 3, "producers=4, 1 and 16")
}

// TestCompareClusterRatios adds BadBatch's cluster at 18k and 22k records/s:
// its advantage over each NATS R3 mode is its median over NATS's, its ratio
// to the single node is its median over the single node's, and only NATS,
// a peer, can be a loss.
func TestCompareClusterRatios(t *testing.T) {
	g := clusterGroup(t)
	c := Compare(g, clusterResults(append(clusterSamples(t), badBatchClusterSamples(18000, 22000)...)))
	require.Len(t, c.Rows, 1)
	row := c.Rows[0]
	const clusterMedian = 20000.0

	cluster := row.Cells[seriesIndex(t, g, "BadBatch 3-node cluster")]
	require.Equal(t, CellOK, cluster.Status)
	assert.InDelta(t, clusterMedian, cluster.Stat.Median, 1e-9)
	assert.True(t, math.IsNaN(float64(cluster.Adv)), "the base has no advantage over itself")
	assert.Nil(t, cluster.BaseOver)

	batch := row.Cells[seriesIndex(t, g, "NATS JetStream R3, atomic batches of 100")]
	assert.InDelta(t, clusterMedian/natsR3BatchMedian, float64(batch.Adv), 1e-12, "BadBatch cluster / NATS R3")
	publish := row.Cells[seriesIndex(t, g, "NATS JetStream R3, one record per publish")]
	assert.InDelta(t, clusterMedian/natsR3PublishMedian, float64(publish.Adv), 1e-12, "BadBatch cluster / NATS R3")
	assert.Nil(t, batch.BaseOver)

	single := row.Cells[seriesIndex(t, g, "BadBatch single node (storage.Store)")]
	require.NotNil(t, single.BaseOver)
	assert.InDelta(t, clusterMedian/singleNodeMedian, *single.BaseOver, 1e-12, "BadBatch cluster / BadBatch single node")
	assert.True(t, math.IsNaN(float64(single.Adv)), "the single node is BadBatch, not a peer")

	losses := Losses([]Comparison{c})
	require.Len(t, losses, 1, "NATS R3 publish beats 20k; the single node's 624k is no loss")
	assert.Equal(t, "NATS JetStream R3, one record per publish", losses[0].Peer)
	assert.InDelta(t, natsR3PublishMedian/clusterMedian, losses[0].By, 1e-9)
	assert.True(t, losses[0].Overlap, "18k-22k against 19.1k-25.3k")
}

func TestBesideWords(t *testing.T) {
	g := clusterGroup(t)
	assert.Equal(t, "All 3 nodes of each cluster share this machine's 2 cores and one disk.", besideWords(g, Machine{Cores: 2}))
	assert.Equal(t, "All 3 nodes of each cluster share this machine's cores and one disk.", besideWords(g, Machine{}))
	assert.Empty(t, besideWords(&Group{}, Machine{Cores: 2}), "not a cluster")
}

// clusterReport is a report of the cluster comparison's captured outputs
// on a 2-core machine, with BadBatch's cluster's samples when given.
func clusterReport(t *testing.T, extra []Sample) *Report {
	t.Helper()
	rep := &Report{
		Schema: reportSchema, Profile: "quick", Benchtime: "2000x", Rounds: 2,
		Machine:  Machine{CPU: "AMD EPYC", Cores: 2, GOMAXPROCS: 2},
		Suites:   defaultSuites(),
		Packages: clusterResults(nil).Packages,
		Samples:  append(clusterSamples(t), extra...),
	}
	rep.Analyze(Groups())
	return rep
}

func TestReportMarkdownCluster(t *testing.T) {
	const beside = "All 3 nodes of each cluster share this machine's 2 cores and one disk."
	section := func(t *testing.T, md string) string {
		t.Helper()
		i := strings.Index(md, "## Cluster append, 3 nodes on one machine, 100-byte records\n")
		require.GreaterOrEqual(t, i, 0, "the report has a cluster section")
		end := strings.Index(md[i+1:], "\n## ")
		require.Greater(t, end, 0)
		return md[i : i+1+end]
	}

	t.Run("NATS alone", func(t *testing.T) {
		var buf bytes.Buffer
		require.NoError(t, clusterReport(t, nil).WriteMarkdown(&buf, map[string]string{"cluster-append": "img/cluster-append.svg"}))
		md := buf.String()
		sec := section(t, md)
		for _, want := range []string{
			"**" + beside + "**\n\n![Cluster append, 3 nodes on one machine, 100-byte records](img/cluster-append.svg)",
			"| producers=4/size=100B | **BadBatch 3-node cluster** | not run (no such benchmark) |",
			"|  | NATS JetStream R3, atomic batches of 100 | 14.5k | 11.5k-17.5k (40.9%) |",
			"|  | NATS JetStream R3, one record per publish | 22.2k | 19.1k-25.3k (27.9%) |",
			"|  | BadBatch single node (storage.Store) | 624k | 524k-724k (32.2%) | 2.63ms | (BadBatch variant) |",
			"- **NATS JetStream R3, one record per publish**: nats-server v2.15.2, three servers",
		} {
			assert.Contains(t, sec, want)
		}
		assert.Contains(t, md, "- BadBatch 3-node cluster: `BenchmarkClusterAppend/batch=100` in `bench`: not run (no such benchmark)")
		assert.NotContains(t, sec, "producers=1/", "the single node's other points are not rows here")
		assert.NotContains(t, md, "NaN")
	})

	t.Run("with BadBatch's cluster", func(t *testing.T) {
		var buf bytes.Buffer
		require.NoError(t, clusterReport(t, badBatchClusterSamples(18000, 22000)).WriteMarkdown(&buf, nil))
		md := buf.String()
		sec := section(t, md)
		for _, want := range []string{
			"**" + beside + "**\n\n| matrix point |",
			"| producers=4/size=100B | **BadBatch 3-node cluster** | 20k | 18k-22k (20.0%) | - | (base) |",
			"|  | BadBatch single node (storage.Store) | 624k | 524k-724k (32.2%) | 2.63ms | (BadBatch variant) BadBatch 3-node cluster / this: 0.032x |",
			"|  | NATS JetStream R3, atomic batches of 100 | 14.5k | 11.5k-17.5k (40.9%) | 118ms | 1.38x better |",
			"|  | NATS JetStream R3, one record per publish | 22.2k | 19.1k-25.3k (27.9%) | 52.7ms | 1.11x worse |",
		} {
			assert.Contains(t, sec, want)
		}
		assert.Contains(t, md, "- **Cluster append, 3 nodes on one machine, 100-byte records** (producers=4/size=100B): "+
			"BadBatch 3-node cluster 20k records/s; "+
			"BadBatch single node (storage.Store) 624k records/s (BadBatch 3-node cluster / this: 0.032x); "+
			"NATS JetStream R3, atomic batches of 100 14.5k records/s (BadBatch 1.38x better); "+
			"NATS JetStream R3, one record per publish 22.2k records/s (BadBatch 1.11x worse). "+beside+"\n",
			"the headline says it beside the figure")
		assert.Contains(t, md, "- producers=4/size=100B: NATS JetStream R3, one record per publish is 1.11x better (ranges overlap).")
		assert.NotContains(t, md, "single node (storage.Store) is", "the single node is never a loss")
		assert.NotContains(t, md, "NaN")
	})
}

func TestPlotCluster(t *testing.T) {
	rep := clusterReport(t, nil)
	path := filepath.Join(t.TempDir(), "cluster-append.svg")
	ok, err := PlotComparison(comparisonByID(t, rep.Comparisons, "cluster-append"), path)
	require.NoError(t, err)
	require.True(t, ok)
	svg, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(svg), "share this machine")
	assert.Contains(t, string(svg), "NATS JetStream R3")
}
