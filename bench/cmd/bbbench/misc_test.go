package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0"}, {0.0723, "0.0723"}, {1.5, "1.5"}, {12.34, "12.3"}, {419.7, "420"},
		{5836, "5836"}, {64862, "64.9k"}, {1234567, "1.23M"}, {2.5e9, "2.5G"},
	} {
		assert.Equal(t, tc.want, formatValue(tc.in), "%v", tc.in)
	}
	assert.Equal(t, "148µs", formatDuration(148479))
	assert.Equal(t, "21.3ns", formatFigure("ns/op", 21.3))
	assert.Equal(t, "1.5ms", formatFigure("p99-ns", 1.5e6))
	assert.Equal(t, "21.3", formatFigure("records/s", 21.3))
	assert.Equal(t, "1.5s", formatDuration(1.5e9))
	assert.Equal(t, "2.31x", formatRatio(2.3141))
	assert.Equal(t, "-", formatRatio(float64(nan)))
	assert.Equal(t, "one run", formatRange("MB/s", Stat{Median: 1, Min: 1, Max: 1, Runs: 1}))
	assert.Equal(t, "80-120 (40.0%)", formatRange("MB/s", Stat{Median: 100, Min: 80, Max: 120, Runs: 3}))
	assert.Equal(t, "1ms-2ms (66.7%)", formatRange("ns/op", Stat{Median: 1.5e6, Min: 1e6, Max: 2e6, Runs: 2}))
}

func TestMountFor(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "mounts.txt"))
	require.NoError(t, err)
	mounts := string(b)
	fsType, desc := mountFor(mounts, "/tmp/bbbench-run-1")
	assert.Equal(t, "ext4", fsType)
	assert.Equal(t, "/dev/vda on / (rw,relatime,discard,resv_strict,resuid=65534,resgid=65534)", desc)
	fsType, _ = mountFor(mounts, "/dev/shm/x")
	assert.Equal(t, "tmpfs", fsType, "the longest mount point wins")
	fsType, _ = mountFor(mounts, "/dev/shmem")
	assert.Equal(t, "devtmpfs", fsType, "a mount point matches whole path elements only")
	fsType, _ = mountFor(mounts+"tmpfs /mnt/a\\040b tmpfs rw 0 0\n", "/mnt/a b/c")
	assert.Equal(t, "tmpfs", fsType, "octal escapes in mount points")
	fsType, _ = mountFor("", "/x")
	assert.Equal(t, unknown, fsType)
}

func TestProgressPlain(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf, false, 2)
	p.StartRound(1)
	p.Sample(Sample{Package: pkgBench, Name: "BenchmarkLimit/fsync", Metrics: []Metric{{"ns/op", 1}, {"MB/s", 2}, {"fsyncs/s", 5836}}})
	p.SetTotal(4)
	p.Sample(Sample{Package: pkgBench, Name: "BenchmarkLimit/memcopy/size=1KiB", Metrics: []Metric{{"ns/op", 15}, {"MB/s", 67479}}})
	p.Note("hello")
	p.Finish()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 5)
	assert.Equal(t, "bbbench: round 1/2", lines[0])
	assert.Equal(t, "bbbench: [1] round 1/2 bench BenchmarkLimit/fsync: 5836 fsyncs/s", lines[1])
	assert.Equal(t, "bbbench: [2/4] round 1/2 bench BenchmarkLimit/memcopy/size=1KiB: 67.5k MB/s", lines[2])
	assert.Equal(t, "bbbench: hello", lines[3])
	assert.NotContains(t, buf.String(), "\r", "no control characters outside a terminal")
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf, true, 3)
	now := p.start
	p.now = func() time.Time { return now }
	p.SetTotal(10)
	p.mu.Lock()
	assert.Equal(t, "[..........]   0% 0/10 building 0s", p.barLocked(10))
	p.mu.Unlock()
	now = now.Add(20 * time.Second) // building: not counted in the ETA
	p.StartRound(1)
	for range 5 {
		p.Sample(Sample{Package: "p", Name: "BenchmarkX", Metrics: []Metric{{"ns/op", 10}}})
	}
	now = now.Add(50 * time.Second)
	p.mu.Lock()
	bar := p.barLocked(10)
	p.mu.Unlock()
	assert.Equal(t, "[#####.....]  50% 5/10 eta 50s round 1/3 1m10s", bar)
	assert.Contains(t, buf.String(), "\r\x1b[K")

	n := strings.Count(buf.String(), "\r")
	stop := p.Tick(time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	stop()
	after := strings.Count(buf.String(), "\r")
	assert.Greater(t, after, n, "the ticker redraws the bar")
	time.Sleep(5 * time.Millisecond)
	assert.Equal(t, after, strings.Count(buf.String(), "\r"), "and stops when told")
}

func TestBenchmarkDocs(t *testing.T) {
	root, err := repoRoot()
	require.NoError(t, err)
	docs := BenchmarkDocs(root, []string{pkgBench, pkgPeers, "no/such/dir"})
	byFunc := map[string]BenchDoc{}
	for _, d := range docs {
		byFunc[d.Func] = d
	}
	require.Contains(t, byFunc, "BenchmarkLimit")
	assert.Equal(t, "bench/limits_test.go", byFunc["BenchmarkLimit"].File)
	assert.Contains(t, byFunc["BenchmarkNATSPublish"].Doc, "SyncAlways")
}

func TestCommandArgs(t *testing.T) {
	assert.Equal(t, []string{"--quick", "--big", "--rounds", "5"},
		commandArgs([]string{"--quick", "--log", "/tmp/x.log", "--big", "--log=/tmp/y", "--rounds", "5", "-log", "z"}))
	assert.Empty(t, commandArgs(nil))
}
