package replay_test

import (
	"context"
	"github.com/badbatch/badbatch/internal/testenv"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/badbatch/badbatch/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fanOutHeapBound is the allowed live-heap growth with all subscribers
// running and the slow one stopped holding its first batch. 1,000
// subscribers x one batch of fanOutBatch (16) records of about 250 bytes
// each (record struct + 100-byte value) is about 4 MiB, plus iterator
// state; the bound is ten times that, generous on purpose (the GC and the
// store's own caches move too). The test also checks that producers finish
// while the slow one is stopped: there is no queue for them to wait on.
const fanOutHeapBound = 40 << 20

const fanOutBatch = 16

// TestFanOutSlowSubscriber: 1,000 subscribers on one stream plus one that
// stops after its first record. Every append completes while the slow one
// is stopped (producers never wait for subscribers), the heap stays within
// fanOutHeapBound, every fast subscriber sees every record, and the slow
// one, once released, catches up from the journal with no gap.
func TestFanOutSlowSubscriber(t *testing.T) {
	subscribers, appends := 1000, testenv.CrashCycles(t, 200, 40)
	const per = 5
	total := uint64(appends * per)
	t.Logf("subscribers=%d+1 slow appends=%d records=%d batch=%d heap bound=%d MiB", subscribers, appends, total, fanOutBatch, fanOutHeapBound>>20)
	s := openStore(t, nil)
	r := newReader(t, s, fanOutBatch)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	fill(t, s, "fan", 1, 1)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	var (
		subs      sync.WaitGroup
		delivered atomic.Uint64
		bad       atomic.Int64
	)
	for range subscribers {
		subs.Go(func() {
			next := uint64(0)
			for rec, err := range r.Subscribe(ctx, "fan", 0) {
				if err != nil || rec.Offset != next {
					bad.Add(1)
					return
				}
				next++
				delivered.Add(1)
				if next == total+1 {
					return
				}
			}
		})
	}
	release := make(chan struct{})
	firstSeen := make(chan struct{})
	slowDone := make(chan []uint64, 1)
	subs.Go(func() {
		var got []uint64
		for rec, err := range r.Subscribe(ctx, "fan", 0) {
			if err != nil {
				break
			}
			got = append(got, rec.Offset)
			if len(got) == 1 {
				close(firstSeen)
				<-release // stopped mid-batch, holding it
			}
			if rec.Offset == total {
				break
			}
		}
		slowDone <- got
	})
	<-firstSeen

	// Producers: every append must complete while the slow subscriber is
	// stopped.
	for i := 0; i < appends; i++ {
		recs := make([]storage.Record, per)
		for k := range recs {
			recs[k].Value = make([]byte, 100)
		}
		_, err := s.Append(ctx, "fan", recs...)
		require.NoError(t, err, "append %d of %d with a stopped subscriber", i, appends)
	}

	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	growth := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap before %d KiB, with subscribers running and one stopped %d KiB, growth %d KiB", before.HeapAlloc>>10, during.HeapAlloc>>10, growth>>10)
	assert.Less(t, growth, int64(fanOutHeapBound))

	close(release)
	got := <-slowDone
	subs.Wait()
	assert.Zero(t, bad.Load(), "subscribers that saw a gap, a duplicate or an error")
	assert.Equal(t, uint64(subscribers)*(total+1), delivered.Load())
	assert.Equal(t, span(0, total+1), got, "the slow subscriber catches up with no gap")
}
