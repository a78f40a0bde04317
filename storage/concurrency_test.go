package storage

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConcurrentProducers: 8 producers append to a mix of streams; every
// stream's offsets come out dense and unique, each producer's own appends
// to a stream are in order, and tailing waiters wake.
func TestConcurrentProducers(t *testing.T) {
	per := 300
	if testing.Short() {
		per = 100
	}
	s := mustOpen(t, t.TempDir(), &Options{RingSize: 64})
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	streams := []string{"c0", "c1", "c2"}

	// One waiter per stream, waiting for the last offset the producers
	// will reach.
	var total [3]atomic.Int64
	waitDone := make(chan error, len(streams))
	var waitersUp sync.WaitGroup
	for i := range streams {
		waitersUp.Add(1)
		go func() {
			waitersUp.Done()
			// 8 producers each append per/len(streams) records here at least.
			waitDone <- s.Wait(ctx, streams[i], uint64(8*per/len(streams)/2))
		}()
	}
	waitersUp.Wait()

	type ack struct {
		producer, n int
		res         AppendResult
	}
	acks := make(chan ack, 8*per)
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Go(func() {
			for n := range per {
				stream := streams[(p+n)%len(streams)]
				recs := []Record{{Value: []byte(fmt.Sprintf("p%d-n%d-0", p, n))}, {Value: []byte(fmt.Sprintf("p%d-n%d-1", p, n))}}
				var res AppendResult
				var err error
				if n%2 == 0 {
					res, err = s.Append(ctx, stream, recs...)
				} else {
					var f *AppendFuture
					f, err = s.AppendAsync(stream, AppendOptions{}, recs...)
					if err == nil {
						res, err = f.Wait(ctx)
						f.Release()
					}
				}
				if !assert.NoError(t, err) {
					return
				}
				total[(p+n)%len(streams)].Add(2)
				acks <- ack{p, n, res}
			}
		})
	}
	wg.Wait()
	close(acks)
	for range streams {
		require.NoError(t, <-waitDone)
	}
	seen := map[string]map[uint64]string{}
	last := map[string]uint64{} // producer+stream -> last offset
	for a := range acks {
		st := a.res.Stream
		if seen[st] == nil {
			seen[st] = map[uint64]string{}
		}
		require.Equal(t, uint64(1), a.res.LastOffset-a.res.FirstOffset)
		for o := a.res.FirstOffset; o <= a.res.LastOffset; o++ {
			_, dup := seen[st][o]
			require.False(t, dup, "offset %d of %s acknowledged twice", o, st)
			seen[st][o] = fmt.Sprintf("p%d-n%d-%d", a.producer, a.n, o-a.res.FirstOffset)
		}
		key := fmt.Sprintf("%d/%s", a.producer, st)
		if prev, ok := last[key]; ok {
			assert.Greater(t, a.res.FirstOffset, prev, "producer order")
		}
		last[key] = a.res.LastOffset
	}
	for i, st := range streams {
		info, err := s.StreamInfo(context.Background(), st)
		require.NoError(t, err)
		assert.Equal(t, uint64(total[i].Load()), info.NextOffset)
		assert.Len(t, seen[st], int(info.NextOffset), "dense")
		for _, r := range readAll(t, s, st) {
			assert.Equal(t, seen[st][r.Offset], string(r.Value))
		}
	}
	t.Logf("8 producers x %d appends of 2 records; stats %+v", per, s.Stats())
}

// TestWait covers the tailing wait: it returns at once for a committed
// offset, wakes on a later commit, honours ctx and ends with ErrClosed.
func TestWait(t *testing.T) {
	s := mustOpen(t, "db", memOptions(vfs.NewMem()))
	ctx := context.Background()
	_, err := s.Append(ctx, "w", Record{Value: []byte("0")})
	require.NoError(t, err)

	require.NoError(t, s.Wait(ctx, "w", 0), "committed already")

	woke := make(chan error, 1)
	go func() { woke <- s.Wait(ctx, "w", 1) }()
	go func() { woke <- s.Wait(ctx, "never-written-yet", 0) }()
	_, err = s.Append(ctx, "w", Record{Value: []byte("1")})
	require.NoError(t, err)
	_, err = s.Append(ctx, "never-written-yet", Record{Value: []byte("x")})
	require.NoError(t, err)
	require.NoError(t, <-woke)
	require.NoError(t, <-woke)

	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, s.Wait(short, "w", 5), context.DeadlineExceeded)

	closed := make(chan error, 1)
	go func() { closed <- s.Wait(ctx, "w", 100) }()
	for s.waiters.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, s.Close())
	assert.ErrorIs(t, <-closed, ErrClosed)
	assert.ErrorIs(t, s.Wait(ctx, "w", 0), ErrClosed)
}

// TestCloseDuringAppends closes the store while producers are appending:
// Close returns, every append either commits (and is then readable after a
// reopen at its acknowledged offsets) or fails with ErrClosed, and no
// goroutine is left behind (goleak in TestMain).
func TestCloseDuringAppends(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, &Options{RingSize: 32})
	ctx := context.Background()
	var mu sync.Mutex
	var acked []AppendResult
	var wg sync.WaitGroup
	var started atomic.Int64
	for p := range 8 {
		wg.Go(func() {
			for n := 0; ; n++ {
				res, err := s.Append(ctx, fmt.Sprintf("x%d", p%2), Record{Value: []byte(fmt.Sprintf("%d-%d", p, n))})
				started.Add(1)
				if err != nil {
					assert.ErrorIs(t, err, ErrClosed)
					return
				}
				mu.Lock()
				acked = append(acked, res)
				mu.Unlock()
			}
		})
	}
	for started.Load() < 200 {
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, s.Close())
	wg.Wait()
	_, err := s.Append(ctx, "x0", Record{})
	assert.ErrorIs(t, err, ErrClosed)
	_, err = s.Read(ctx, "x0", 0, 1)
	assert.ErrorIs(t, err, ErrClosed)
	assert.NoError(t, s.Close(), "second Close")

	s = mustOpen(t, dir, nil)
	defer func() { require.NoError(t, s.Close()) }()
	for _, a := range acked {
		recs, err := s.Read(ctx, a.Stream, a.FirstOffset, 1)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		assert.Equal(t, a.FirstSeq, recs[0].Seq)
	}
	t.Logf("%d appends acknowledged before Close", len(acked))
}

// TestCancelledAppendStillCommits: a ctx that ends after the append entered
// the ring makes Append return ctx.Err(), and the batch still commits as a
// whole; a retry with the same idempotency key resolves the outcome.
func TestCancelledAppendStillCommits(t *testing.T) {
	s := mustOpen(t, "db", memOptions(vfs.NewMem()))
	defer func() { require.NoError(t, s.Close()) }()
	ctx, cancel := context.WithCancel(context.Background())
	f, err := s.AppendAsync("cx", AppendOptions{IdempotencyKey: "once"}, Record{Value: []byte("a")}, Record{Value: []byte("b")})
	require.NoError(t, err)
	cancel()
	_, err = f.Wait(ctx)
	if err != nil { // it may have completed first
		assert.ErrorIs(t, err, context.Canceled)
	}
	f.Release()
	res, err := s.AppendWith(context.Background(), "cx", AppendOptions{IdempotencyKey: "once"}, Record{Value: []byte("a")}, Record{Value: []byte("b")})
	require.NoError(t, err)
	assert.True(t, res.Replayed)
	assert.Equal(t, uint64(0), res.FirstOffset)
	assert.Equal(t, 2, res.Count)
	recs, err := s.Read(context.Background(), "cx", 0, 10)
	require.NoError(t, err)
	assert.Len(t, recs, 2, "committed once, as a whole")

	_, err = s.Append(ctx, "cx", Record{Value: []byte("c")})
	assert.ErrorIs(t, err, context.Canceled, "a ctx that is already done enqueues nothing")
	info, err := s.StreamInfo(context.Background(), "cx")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), info.NextOffset)
	assert.False(t, errors.Is(err, ErrClosed))
}

// TestFutureReuseRace hammers the pooled futures: waits that return on the
// fast path, releases racing the completion signal, and concurrent waiters.
// A stale completion signal would hand a later append a wrong result or
// block the business-logic processor.
func TestFutureReuseRace(t *testing.T) {
	s := mustOpen(t, "db", memOptions(vfs.NewMem()))
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	n := 2000
	if testing.Short() {
		n = 500
	}
	var wg sync.WaitGroup
	for p := range 6 {
		wg.Go(func() {
			stream := fmt.Sprintf("fr%d", p)
			for i := range n {
				f, err := s.AppendAsync(stream, AppendOptions{}, Record{Value: []byte(fmt.Sprint(i))})
				if !assert.NoError(t, err) {
					return
				}
				switch i % 4 {
				case 3: // poll with a done context, release the moment it settles
					cancelled, cancel := context.WithCancel(ctx)
					cancel()
					var res AppendResult
					for {
						res, err = f.Wait(cancelled)
						if err == nil {
							break
						}
						runtime.Gosched()
					}
					f.Release()
					if !assert.Equal(t, uint64(i), res.FirstOffset) {
						return
					}
				case 0: // release without waiting
					f.Release()
					continue
				case 1: // two waiters, then release
					var w sync.WaitGroup
					w.Go(func() { _, _ = f.Wait(ctx) })
					res, err := f.Wait(ctx)
					w.Wait()
					f.Release()
					if !assert.NoError(t, err) || !assert.Equal(t, stream, res.Stream) || !assert.Equal(t, uint64(i), res.FirstOffset) {
						return
					}
				default: // Done, then Wait
					<-f.Done()
					res, err := f.Wait(ctx)
					f.Release()
					if !assert.NoError(t, err) || !assert.Equal(t, uint64(i), res.FirstOffset) {
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
