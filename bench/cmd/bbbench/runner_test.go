package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunnerBuildsAndRuns builds and runs real test binaries: the sample
// module of testdata/ (results, a log, a failure), a module that does not
// compile, and a directory that does not exist.
func TestRunnerBuildsAndRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles and runs test binaries")
	}
	root, err := filepath.Abs(".")
	require.NoError(t, err)
	var progress, log bytes.Buffer
	r := &Runner{
		Root:      root,
		WorkDir:   t.TempDir(),
		BenchDir:  t.TempDir(),
		Benchtime: "20x",
		Timeout:   2 * time.Minute,
		Log:       &log,
		Progress:  NewProgress(&progress, false, 2),
	}
	suites := []Suite{
		{Module: "testdata/samplemod", Dir: "testdata/samplemod", Bench: "."},
		{Module: "testdata/brokenmod", Dir: "testdata/brokenmod", Bench: "."},
		{Module: ".", Dir: "testdata/absent", Bench: "."},
	}
	ctx := context.Background()
	status := r.Build(ctx, suites)
	assert.Equal(t, PackageStatus{Dir: "testdata/samplemod", Present: true, Built: true}, status["testdata/samplemod"])
	broken := status["testdata/brokenmod"]
	assert.True(t, broken.Present)
	assert.False(t, broken.Built)
	assert.Contains(t, broken.BuildError, "forty-two")
	assert.Equal(t, PackageStatus{Dir: "testdata/absent"}, status["testdata/absent"])

	var samples []Sample
	var failures []Failure
	for round := 1; round <= 2; round++ {
		out, err := r.Round(ctx, suites, round)
		require.NoError(t, err, "a failing benchmark is a result, not an error")
		require.Len(t, out.Timings, 1, "one timing per package that ran")
		assert.Equal(t, "testdata/samplemod", out.Timings[0].Dir)
		assert.Equal(t, round, out.Timings[0].Round)
		assert.Greater(t, out.Timings[0].Seconds, 0.0)
		samples = append(samples, out.Samples...)
		failures = append(failures, out.Failures...)
	}
	assert.Equal(t, []string{
		"BenchmarkCopy/size=64B", "BenchmarkCopy/size=4096B", "BenchmarkLogs",
		"BenchmarkCopy/size=64B", "BenchmarkCopy/size=4096B", "BenchmarkLogs",
	}, names(samples))
	assert.Equal(t, 2, samples[3].Round)
	assert.EqualValues(t, 20, samples[0].N, "-benchtime reaches the binary")
	assert.Equal(t, "testdata/samplemod", samples[0].Package)
	require.Len(t, failures, 2)
	assert.Equal(t, Failure{Package: "testdata/samplemod", Name: "BenchmarkFails/impl=broken", Round: 2, Message: "sample_test.go:35: disk on fire"}, failures[1])

	assert.Contains(t, progress.String(), "build testdata/brokenmod: FAILED")
	assert.Contains(t, progress.String(), "bbbench: round 2/2\n")
	assert.Contains(t, progress.String(), "round 1/2 testdata/samplemod BenchmarkCopy/size=64B: ")
	assert.Contains(t, progress.String(), "build testdata/brokenmod: FAILED (./broken_test.go:8:20: cannot use")
	assert.Contains(t, progress.String(), "FAIL testdata/samplemod BenchmarkFails/impl=broken: sample_test.go:35: disk on fire")
	assert.Contains(t, log.String(), "-test.benchtime 20x")

	// A filter replaces every suite's expression.
	r.Filter = "^BenchmarkLogs$"
	out, err := r.Round(ctx, suites, 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"BenchmarkLogs"}, names(out.Samples))
	assert.Empty(t, out.Failures)

	// An interruption is an error.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = r.Round(cancelled, suites, 4)
	assert.Error(t, err)
}

func TestCrashLine(t *testing.T) {
	assert.Equal(t, "panic: test timed out after 20m0s", crashLine("\npanic: test timed out after 20m0s\n\tstack...\ngoroutine 1 [running]:\n"))
	assert.Equal(t, "SIGQUIT: quit", crashLine("SIGQUIT: quit\nPC=0x47b1e1 m=0 sigcode=0\n\ngoroutine 0 [idle]:\nrcx    0x0\ncs     0x33\n"))
	assert.Equal(t, "exit status 3", crashLine("some output\nexit status 3\n"))
}

func TestGoTestCommand(t *testing.T) {
	s := defaultSuites()
	assert.Equal(t, "go test -run '^$' -bench '.' -benchtime 1s -count 5 -benchmem ./bench", s[0].GoTestCommand("1s", 5))
	assert.Equal(t, "(cd bench/peers && go test -run '^$' -bench '.' -benchtime 1s -count 5 -benchmem .)", s[2].GoTestCommand("1s", 5))
	assert.True(t, strings.HasPrefix(s[1].GoTestCommand("1s", 5), "go test -run '^$' -bench '^Benchmark(Ring|Channel)$'"))
}
