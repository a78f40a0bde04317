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

// capturedReport is a Report of the captured outputs, as a run would make it.
func capturedReport(t *testing.T) *Report {
	t.Helper()
	res := capturedResults(t)
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
	rep := &Report{
		Schema:    reportSchema,
		Command:   "go run ./bench/cmd/bbbench --quick",
		Profile:   "quick",
		Benchtime: "100x",
		Rounds:    2,
		Machine: Machine{
			CPU: "AMD EPYC", Cores: 2, GOMAXPROCS: 2, OS: "linux/amd64", Kernel: "6.18.44",
			BenchDir: "/tmp/x", FileSystem: "ext4", MountInfo: "/dev/vda on / (rw)", GoVersion: "go1.26.8",
			LoadBefore: "6.28 3.13 1.45 6/155 27747", LoadAfter: "1 2 3 1/1 1", Started: "2026-11-25T21:00:00Z",
		},
		Suites:   defaultSuites(),
		Packages: res.Packages,
		Samples:  samples,
		Failures: failures,
		Timings:  []Timing{{Dir: pkgBench, Round: 1, Seconds: 61.5}, {Dir: pkgPeers, Round: 2, Seconds: 0.25}},
		Docs:     []BenchDoc{{Package: pkgPeers, Func: "BenchmarkNATSReplay", File: "bench/peers/nats_test.go", Doc: "Replays.\nAll of it."}},
	}
	rep.Analyze(Groups())
	return rep
}

func TestReportMarkdown(t *testing.T) {
	rep := capturedReport(t)
	var buf bytes.Buffer
	require.NoError(t, rep.WriteMarkdown(&buf, map[string]string{"durable-append": "img/durable-append.svg"}))
	md := buf.String()
	for _, want := range []string{
		"- Command: `go run ./bench/cmd/bbbench --quick`",
		"| CPU | AMD EPYC, 2 logical CPUs (GOMAXPROCS 2)",
		"file system **ext4**",
		"| Go | go1.26.8 |",
		"before: 6.28 3.13 1.45; after: 1 2 3",
		"![Durable append, 100-byte records](img/durable-append.svg)",
		"| producers=1/size=100B | **BadBatch (storage.Store)** | not run (no such benchmark) |",
		"NATS JetStream, sync=default (NOT DURABLE)",
		"not comparable (not durable)",
		"| fsync | 6494 fsyncs/s | 5738-7251 (23.3%) |",
		"Limit: `BenchmarkLimit/fsync` = 6494 fsyncs/s",
		"- BadBatch journal: `BenchmarkJournalAppend/impl=journal` in `bench`: not run (no such benchmark)",
		"- ring, claim 1: `BenchmarkRing/claim=1` in `disruptor`: not run (package not present)",
		"The package `broken` did not build:",
		"## Failures\n",
		"- round 1, `sample` `BenchmarkFails/impl=broken`: sample_test.go:35: disk on fire",
		"**`BenchmarkNATSReplay`** (`bench/peers/nats_test.go`)\n\n> Replays.\n> All of it.",
		"(cd bench/peers && go test -run '^$' -bench '.' -benchtime 100x -count 2 -benchmem .)",
		"| package | round 1 | round 2 |\n|---|---|---|\n| `bench` | 61.5s | - |\n| `disruptor` | - | - |\n| `bench/peers` | - | 250ms |\n",
	} {
		assert.True(t, strings.Contains(md, want), "the report lacks %q", want)
	}
	// The NATS sync=always row at 16 producers: the median of 7313 and 6473
	// records/s, its p99, and its ratio to the fsync limit.
	row := "|  | NATS JetStream, one record per publish | 6893 | 6473-7313 (12.2%) | 14ms | - | 1.06 |"
	assert.True(t, strings.Contains(md, row), "the report lacks %q", row)
	assert.NotContains(t, md, "NaN")
	assert.False(t, strings.Contains(md, "|---|---|---|---|---|\n\n"), "a table is never empty")
}

func TestReportJSONRoundTrip(t *testing.T) {
	rep := capturedReport(t)
	path := filepath.Join(t.TempDir(), "r.json")
	require.NoError(t, rep.WriteJSON(path))
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"advantage": null`, "NaN is written as null")

	back, err := ReadReport(path)
	require.NoError(t, err)
	assert.Equal(t, rep.Samples, back.Samples)
	assert.Equal(t, rep.Failures, back.Failures)
	assert.Equal(t, rep.Machine, back.Machine)
	assert.True(t, math.IsNaN(float64(back.Comparisons[0].Rows[0].Cells[1].Adv)), "null reads back as NaN")
	back.Analyze(Groups())
	assert.Equal(t, rep.Summaries, back.Summaries)

	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(raw), `"schema": 1`, `"schema": 99`, 1)), 0o644))
	_, err = ReadReport(path)
	assert.ErrorContains(t, err, "schema 99")
}

func TestPlotComparison(t *testing.T) {
	rep := capturedReport(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "durable-append.svg")
	ok, err := PlotComparison(comparisonByID(t, rep.Comparisons, "durable-append"), path)
	require.NoError(t, err)
	require.True(t, ok)
	svg, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(svg), "<svg")
	assert.Contains(t, string(svg), "Durable append")

	// The journal group has no result at all: no plot, no file.
	ok, err = PlotComparison(comparisonByID(t, rep.Comparisons, "journal-append"), filepath.Join(dir, "journal.svg"))
	require.NoError(t, err)
	assert.False(t, ok)
	assert.NoFileExists(t, filepath.Join(dir, "journal.svg"))
}

func TestRunFromJSON(t *testing.T) {
	rep := capturedReport(t)
	in := filepath.Join(t.TempDir(), "in.json")
	require.NoError(t, rep.WriteJSON(in))
	out := t.TempDir()
	var stderr bytes.Buffer
	require.NoError(t, run([]string{"--from-json", in, "--out", out}, &stderr))
	md, err := os.ReadFile(filepath.Join(out, "benchmarks.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "![Durable append, 100-byte records](img/durable-append.svg)")
	assert.FileExists(t, filepath.Join(out, "img", "durable-append.svg"))
	assert.FileExists(t, filepath.Join(out, "img", "replay.svg"))
	assert.NoFileExists(t, filepath.Join(out, "img", "ring.svg"), "nothing of the ring ran")
	assert.FileExists(t, filepath.Join(out, "bench-results.json"))

	assert.Error(t, run([]string{"--quick", "--full"}, &stderr))
}

// TestReportMarkdownEtcdWAL renders the captured journal comparisons: etcd's
// WAL has a row at each matrix point of both journal tables, its advantage
// says which journal it is taken against, and the journal plot draws it.
func TestReportMarkdownEtcdWAL(t *testing.T) {
	var samples []Sample
	for _, f := range []struct{ file, pkg string }{
		{"journal-interleaved.txt", pkgBench},
		{"etcdwal.txt", pkgPeers},
	} {
		samples = append(samples, parseFile(t, f.file, f.pkg).Samples...)
	}
	rep := &Report{
		Schema: reportSchema, Profile: "quick", Benchtime: "20x", Rounds: 1,
		Suites:   defaultSuites(),
		Packages: journalResults(t).Packages,
		Samples:  samples,
	}
	rep.Analyze(Groups())
	var buf bytes.Buffer
	require.NoError(t, rep.WriteMarkdown(&buf, nil))
	md := buf.String()
	// batch=16/size=1KiB: etcd 24.54 and 22.13 MB/s, the journal beside it
	// 27.96 and 31.28; no share of bench's plain file.
	for _, want := range []string{
		"|  | etcd wal | 23.3 | 22.1-24.5 (10.3%) | 1.27x better, against BadBatch journal, beside etcd wal | - |",
		"|  | BadBatch journal, beside etcd wal | 29.6 | 28-31.3 (11.2%) | (BadBatch variant) | - |",
		"- **etcd wal**: go.etcd.io/etcd/server/v3 v3.7.3",
	} {
		assert.Contains(t, md, want)
	}
	assert.Equal(t, 9+9, strings.Count(md, "| etcd wal |"), "one row per matrix point in each journal table")
	assert.NotContains(t, md, "NaN")

	path := filepath.Join(t.TempDir(), "journal-interleaved.svg")
	ok, err := PlotComparison(comparisonByID(t, rep.Comparisons, "journal-interleaved"), path)
	require.NoError(t, err)
	require.True(t, ok)
	svg, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(svg), "etcd wal")
}

// TestReportMarkdownEnv: a run with the large scaling points says so in
// its profile line and in every reproduce command.
func TestReportMarkdownEnv(t *testing.T) {
	rep := capturedReport(t)
	rep.Env = bigEnv
	var buf bytes.Buffer
	require.NoError(t, rep.WriteMarkdown(&buf, nil))
	md := buf.String()
	assert.Contains(t, md, "with `BADBATCH_BENCH_BIG=1 BADBATCH_BENCH_REPLAY_10M=1` (the largest scaling points)")
	assert.Contains(t, md, "```sh\nexport BADBATCH_BENCH_BIG=1 BADBATCH_BENCH_REPLAY_10M=1\ngo test -run '^$' -bench '.'")
}
