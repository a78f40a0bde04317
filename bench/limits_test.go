//go:build linux

package bench_test

// The physical limits of the machine the comparison runs on, measured in the
// same run as the contenders (bbbench pairs each contender's figure with the
// matching limit):
//
//	BenchmarkLimit/fsync                  append 4 KiB + fdatasync per op: fsyncs/s, p50/p99 of the sync
//	BenchmarkLimit/seqwrite/size=64KiB    append size bytes + fdatasync per op: MB/s
//	BenchmarkLimit/seqwrite/size=1MiB
//	BenchmarkLimit/memcopy/size=1KiB      copy(dst, src) of size bytes: MB/s
//	BenchmarkLimit/memcopy/size=64KiB
//	BenchmarkLimit/memcopy/size=1MiB
//
// The disk limits write into b.TempDir(), so they measure the file system of
// $TMPDIR (bbbench sets it to its --tmpdir and names that file system in the
// report). Appends grow the file, so each fdatasync also persists the new
// size: that is what a log pays, and it is the honest ceiling for a durable
// append. A preallocated file overwritten in place could sync faster; no
// contender in this suite does that, so it is not the limit shown.
//
// The file is linux-only because it calls fdatasync(2) directly; os.File.Sync
// is fsync(2), which would also flush the timestamps.

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/badbatch/badbatch/bench/internal/benchkit"
)

// limitFsyncSize is the write that BenchmarkLimit/fsync syncs: one page, the
// smallest write a durable append can cost.
const limitFsyncSize = 4 << 10

// limitSizes are the sizes of the seqwrite and memcopy matrices.
var (
	limitSeqWriteSizes = []int{64 << 10, 1 << 20}
	limitMemCopySizes  = []int{1 << 10, 64 << 10, 1 << 20}
)

// limitSizeName spells a byte count the way benchmark names do: 64KiB, 1MiB.
func limitSizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	default:
		return fmt.Sprintf("%dB", n)
	}
}

// limitAppendFile creates an empty file in a fresh temporary directory and
// fsyncs the directory, so that the benchmark's syncs pay only for data and
// size, not for the file's creation.
func limitAppendFile(b *testing.B) *os.File {
	b.Helper()
	dir := b.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, "limit.data"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(b, err)
	b.Cleanup(func() { _ = f.Close() })
	d, err := os.Open(dir)
	require.NoError(b, err)
	require.NoError(b, d.Sync())
	require.NoError(b, d.Close())
	return f
}

// limitWriteSync appends buf to f and fdatasyncs it.
func limitWriteSync(f *os.File, buf []byte) error {
	if _, err := f.Write(buf); err != nil {
		return err
	}
	return syscall.Fdatasync(int(f.Fd()))
}

// BenchmarkLimit measures the machine's ceilings in the same run as the
// contenders: fsync (append 4 KiB + fdatasync per op: fsyncs/s and the sync
// latency), seqwrite (append 64 KiB or 1 MiB + fdatasync per op: MB/s) and
// memcopy (copy of 1 KiB, 64 KiB or 1 MiB: MB/s). The disk ones write into
// $TMPDIR and measure its file system.
func BenchmarkLimit(b *testing.B) {
	b.Run("fsync", benchmarkLimitFsync)
	b.Run("seqwrite", func(b *testing.B) {
		for _, size := range limitSeqWriteSizes {
			b.Run("size="+limitSizeName(size), func(b *testing.B) { benchmarkLimitSeqWrite(b, size) })
		}
	})
	b.Run("memcopy", func(b *testing.B) {
		for _, size := range limitMemCopySizes {
			b.Run("size="+limitSizeName(size), func(b *testing.B) { benchmarkLimitMemCopy(b, size) })
		}
	})
}

// benchmarkLimitFsync is the durable-append ceiling of one writer: every op
// appends one 4 KiB page and waits for fdatasync. A store that syncs once per
// record cannot exceed this many records/s; group commit is how a store goes
// past it.
func benchmarkLimitFsync(b *testing.B) {
	f := limitAppendFile(b)
	buf := benchkit.Record(limitFsyncSize, 0)
	// Sync latencies from 1µs to 10s, 3 significant figures.
	hist := hdrhistogram.New(1_000, 10_000_000_000, 3)
	b.ReportAllocs()
	b.SetBytes(limitFsyncSize)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		t0 := time.Now()
		if err := limitWriteSync(f, buf); err != nil {
			b.Fatal(err)
		}
		_ = hist.RecordValue(time.Since(t0).Nanoseconds())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "fsyncs/s")
	b.ReportMetric(float64(hist.ValueAtQuantile(50)), "p50-ns")
	b.ReportMetric(float64(hist.ValueAtQuantile(99)), "p99-ns")
}

// benchmarkLimitSeqWrite is the durable bandwidth ceiling: append size bytes
// and fdatasync, one op at a time.
func benchmarkLimitSeqWrite(b *testing.B, size int) {
	f := limitAppendFile(b)
	buf := benchkit.Record(size, 0)
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := limitWriteSync(f, buf); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "fsyncs/s")
}

// limitSink keeps the compiler from proving a copy dead.
var limitSink byte

// benchmarkLimitMemCopy is the memory bandwidth ceiling for moving a record's
// bytes once (what copying into a ring slot or out of an mmap costs at best).
func benchmarkLimitMemCopy(b *testing.B, size int) {
	src := benchkit.Record(size, 0)
	dst := make([]byte, size)
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := range b.N {
		src[i%size]++ // a store the copy must see, so no iteration is skippable
		copy(dst, src)
	}
	b.StopTimer()
	limitSink = dst[size-1]
}

// TestLimitHelpers checks what the limit benchmarks rely on: the size names
// bbbench parses, a pattern with no zero page to shortcut, and that a write +
// fdatasync really lands in the file.
func TestLimitHelpers(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{100, "100B"},
		{1 << 10, "1KiB"},
		{64 << 10, "64KiB"},
		{1 << 20, "1MiB"},
		{1<<20 + 1, "1048577B"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			assert.Equal(t, tc.want, limitSizeName(tc.n))
		})
	}

	page := benchkit.Record(limitFsyncSize, 0)
	zeros := 0
	for _, c := range page {
		if c == 0 {
			zeros++
		}
	}
	assert.Less(t, zeros, limitFsyncSize/64, "the pattern must not be mostly zero")
	assert.NotEqual(t, page[:2048], page[2048:], "the pattern must not repeat within a page")

	dir := t.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, "f"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	require.NoError(t, limitWriteSync(f, page))
	require.NoError(t, limitWriteSync(f, page))
	require.NoError(t, f.Close())
	got, err := os.ReadFile(filepath.Join(dir, "f"))
	require.NoError(t, err)
	assert.Equal(t, append(append([]byte{}, page...), page...), got)
}
