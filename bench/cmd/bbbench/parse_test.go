package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// parseFile parses a captured output from testdata/ (see testdata/README.md).
func parseFile(t *testing.T, name, pkg string) Output {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	require.NoError(t, err)
	defer f.Close()
	out, err := ParseOutput(f, pkg, 1)
	require.NoError(t, err)
	return out
}

func names(samples []Sample) []string {
	var out []string
	for _, s := range samples {
		out = append(out, s.Name)
	}
	return out
}

func TestParseLimits(t *testing.T) {
	out := parseFile(t, "limits.txt", pkgBench)
	assert.Equal(t, map[string]string{
		"goos": "linux", "goarch": "amd64", "pkg": "github.com/badbatch/badbatch/bench", "cpu": "AMD EPYC",
	}, out.Header)
	require.Len(t, out.Samples, 12)
	assert.Empty(t, out.Failures)

	first := out.Samples[0]
	assert.Equal(t, Sample{
		Package: pkgBench, Name: "BenchmarkLimit/fsync", Procs: 2, Round: 1, N: 50,
		Metrics: []Metric{
			{"ns/op", 137935}, {"MB/s", 29.70}, {"fsyncs/s", 7251}, {"p50-ns", 134143},
			{"p99-ns", 203775}, {"B/op", 0}, {"allocs/op", 0},
		},
	}, first)
	v, ok := out.Samples[4].Value("fsyncs/s")
	assert.True(t, ok)
	assert.InDelta(t, 419.7, v, 1e-9)
	assert.Equal(t, "BenchmarkLimit/seqwrite/size=1MiB", out.Samples[4].Name)
	_, ok = out.Samples[6].Value("fsyncs/s")
	assert.False(t, ok, "memcopy reports no fsyncs/s")
	assert.Equal(t, "BenchmarkLimit/memcopy/size=1MiB", out.Samples[11].Name)
}

func TestParseNATS(t *testing.T) {
	out := parseFile(t, "nats.txt", pkgPeers)
	require.Len(t, out.Samples, 14)
	s := out.Samples[5]
	assert.Equal(t, "BenchmarkNATSPublish/sync=always/producers=16/size=100B", s.Name)
	assert.Equal(t, pkgPeers, s.Package)
	assert.Equal(t, []string{"ns/op", "MB/s", "p50-ns", "p99-ns", "records/s", "B/op", "allocs/op"}, units(s))
	rate, _ := s.Value("records/s")
	assert.InDelta(t, 6473, rate, 1e-9)
	assert.Equal(t, "BenchmarkNATSReplay/size=100B", out.Samples[13].Name)
}

func units(s Sample) []string {
	var out []string
	for _, m := range s.Metrics {
		out = append(out, m.Unit)
	}
	return out
}

func TestParseLogsAndFailures(t *testing.T) {
	out := parseFile(t, "sample-procs2-fail.txt", "sample")
	assert.Equal(t, []string{
		"BenchmarkCopy/size=64B", "BenchmarkCopy/size=64B",
		"BenchmarkCopy/size=4096B", "BenchmarkCopy/size=4096B",
		"BenchmarkLogs", "BenchmarkLogs",
	}, names(out.Samples), "a benchmark's log lines must not hide or split its result")
	p99, ok := out.Samples[5].Value("p99-ns")
	assert.True(t, ok)
	assert.InDelta(t, 123456, p99, 0)
	// The parent's "--- FAIL: BenchmarkFails" only echoes its child's.
	assert.Equal(t, []Failure{{
		Package: "sample", Name: "BenchmarkFails/impl=broken", Round: 1, Message: "sample_test.go:35: disk on fire",
	}}, out.Failures)
}

func TestParseVerbose(t *testing.T) {
	// -v prints each name alone before its run, and a failure's message
	// before its "--- FAIL" line; bbbench does not use -v, but the results
	// must still come out right.
	out := parseFile(t, "sample-verbose-fail.txt", "sample")
	assert.Equal(t, []string{"BenchmarkCopy/size=64B", "BenchmarkCopy/size=4096B", "BenchmarkLogs"}, names(out.Samples))
	require.Len(t, out.Failures, 1)
	assert.Equal(t, "BenchmarkFails/impl=broken", out.Failures[0].Name)
}

func TestParseProcsSuffix(t *testing.T) {
	out := parseFile(t, "sample-procs1.txt", "sample")
	require.Len(t, out.Samples, 2)
	assert.Equal(t, "BenchmarkCopy/size=64B", out.Samples[0].Name)
	assert.Equal(t, 1, out.Samples[0].Procs)

	for _, tc := range []struct {
		in    string
		name  string
		procs int
	}{
		{"BenchmarkX-2", "BenchmarkX", 2},
		{"BenchmarkX/size=1MiB-16", "BenchmarkX/size=1MiB", 16},
		{"BenchmarkX/size=1MiB", "BenchmarkX/size=1MiB", 1},
		{"BenchmarkX/impl=raft-wal-4", "BenchmarkX/impl=raft-wal", 4},
		{"BenchmarkX-0", "BenchmarkX-0", 1},
	} {
		t.Run(tc.in, func(t *testing.T) {
			name, procs := splitProcs(tc.in)
			assert.Equal(t, tc.name, name)
			assert.Equal(t, tc.procs, procs)
		})
	}
}

func TestParseRejectsMalformedFigures(t *testing.T) {
	p := NewParser("x", 1)
	for _, line := range []string{
		"BenchmarkX-2   100   12 ns/op 7",      // odd number of fields
		"BenchmarkX-2   100   twelve ns/op",    // not a number
		"BenchmarkX-2   lots  12 ns/op",        // iterations not a number
		"ok  	github.com/badbatch/badbatch 1s", // not a result
	} {
		_, ok := p.Line(line)
		assert.False(t, ok, line)
	}
	assert.Empty(t, p.Finish().Samples)
}

func TestParseSkips(t *testing.T) {
	// bench's notRun prints "--- SKIP: name" and the reason below it,
	// which go test does not print for a skipped benchmark without -v.
	out := parseFile(t, "durable-streams-noref.txt", pkgBench)
	assert.Equal(t, []string{
		"BenchmarkDurableStreamsAppend/impl=badbatch/api=protocol/conns=16/size=100B",
		"BenchmarkDurableStreamsAppend/impl=badbatch/api=native/conns=16/size=100B",
	}, names(out.Samples))
	assert.Empty(t, out.Failures)
	assert.Equal(t, []Failure{{
		Package: pkgBench, Name: "BenchmarkDurableStreamsAppend/impl=reference/api=protocol/conns=16/size=100B", Round: 1,
		Message: "node is not installed (no node in PATH)",
	}}, out.Skips)

	// With -v, go test's own "--- SKIP" line follows: one skip, with the
	// reason.
	p := NewParser("x", 2)
	for _, line := range []string{
		"BenchmarkX/impl=ref",
		"--- SKIP: BenchmarkX/impl=ref",
		"    why not",
		"--- SKIP: BenchmarkX/impl=ref",
		"BenchmarkX/impl=a-2   100   12 ns/op",
	} {
		p.Line(line)
	}
	got := p.Finish()
	assert.Equal(t, []Failure{{Package: "x", Name: "BenchmarkX/impl=ref", Round: 2, Message: "why not"}}, got.Skips)
	assert.Len(t, got.Samples, 1)
}
