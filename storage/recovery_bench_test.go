package storage

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// catchUpBytes is the journal size BenchmarkOpenCatchUp writes:
// BADBATCH_CATCHUP_BYTES, default 1 GiB.
func catchUpBytes(b *testing.B) int64 {
	if v := os.Getenv("BADBATCH_CATCHUP_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 1 << 30
}

// BenchmarkOpenCatchUp measures the work Open does after a crash: re-running
// the business logic over journal the index has not applied. Setup writes
// BADBATCH_CATCHUP_BYTES (default 1 GiB) of journal through the store (100-
// byte records, 100 per append, 4 producers) on disk. One op deletes the
// index directory and opens the store, which must re-apply the whole
// journal: the same work as a crash with that much journal written since
// the last index flush (the journal is in the page cache, as it is after a
// process crash; after a power loss the reads would come from the disk).
// Reports journal MB/s and seconds per GiB.
func BenchmarkOpenCatchUp(b *testing.B) {
	size := catchUpBytes(b)
	b.Run(fmt.Sprintf("journal=%dMiB/size=100B/batch=100", size>>20), func(b *testing.B) {
		dir := b.TempDir()
		o := DefaultOptions()
		o.IndexFlushBytes = 1 << 40
		s, err := Open(dir, o)
		if err != nil {
			b.Fatal(err)
		}
		writeJournal(b, s, size)
		written := s.j.Stats().Bytes
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(written)
		b.ReportAllocs()
		b.ResetTimer()
		var took, cpu time.Duration
		for range b.N {
			b.StopTimer()
			if err := vfs.Default.RemoveAll(vfs.Default.PathJoin(dir, "index")); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			t0, c0 := time.Now(), cpuTime()
			s, err := Open(dir, o)
			if err != nil {
				b.Fatal(err)
			}
			took += time.Since(t0)
			cpu += cpuTime() - c0
			b.StopTimer()
			rec := s.Stats().Recovery
			b.Logf("open: replay %v, recover total %v", rec.Replay, rec.Took)
			if rec.Bytes == 0 {
				b.Fatal("nothing re-applied")
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		gib := float64(written) / float64(1<<30)
		perOpen := took / time.Duration(b.N)
		cpuPerOpen := cpu / time.Duration(b.N)
		b.ReportMetric(perOpen.Seconds()/gib, "s/GiB")
		b.ReportMetric(cpuPerOpen.Seconds()/gib, "cpu-s/GiB")
		b.Logf("journal %d bytes; Open re-applied it in %v (%.2f s per GiB; process CPU %.2f s per GiB, all goroutines)",
			written, perOpen, perOpen.Seconds()/gib, cpuPerOpen.Seconds()/gib)
	})
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeJournal appends about size bytes of journal through s.
func writeJournal(b *testing.B, s *Store, size int64) { writeJournalT(b, s, size) }

func writeJournalT(b testing.TB, s *Store, size int64) {
	recs := make([]Record, 100)
	for i := range recs {
		recs[i].Value = make([]byte, 100)
		for j := range recs[i].Value {
			recs[i].Value[j] = byte(i + j)
		}
	}
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			futures := make([]*AppendFuture, 0, 32)
			for s.j.Stats().Bytes < size {
				for range 32 {
					f, err := s.AppendAsync(fmt.Sprintf("catchup-%d", p), AppendOptions{}, recs...)
					if err != nil {
						b.Error(err)
						return
					}
					futures = append(futures, f)
				}
				for _, f := range futures {
					if _, err := f.Wait(context.Background()); err != nil {
						b.Error(err)
						return
					}
					f.Release()
				}
				futures = futures[:0]
			}
		})
	}
	wg.Wait()
}
