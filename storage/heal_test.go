package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/badbatch/badbatch/internal/faultfs"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testHealOptions() *HealOptions {
	return &HealOptions{MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, CheckInterval: 2 * time.Millisecond, ReadWait: 5 * time.Second}
}

// TestHealerFaultAtEveryOperation fails the journal's nth write or fsync
// for every n in a range (for some n, several in a row, so that reopens
// fail too), under appends with idempotency keys that are retried until
// acknowledged, and a tailing reader. It checks that the Healer reopens
// the store by itself, that every acknowledged record is stored exactly
// once at the offset it was acknowledged with (the retries of an append
// whose outcome was unknown are deduplicated or stored once), and that
// the tail saw the whole stream in order across the reopens.
func TestHealerFaultAtEveryOperation(t *testing.T) {
	// 30 sequential appends make at least 60 journal writes and fsyncs, so
	// every index up to 40 is hit.
	ops := 40
	if testing.Short() {
		ops = 12
	}
	for n := 1; n <= ops; n++ {
		persist := int64(n % 3 * 2) // 0, 2, 4 further failures
		t.Run(fmt.Sprintf("op=%d/persist=%d", n, persist), func(t *testing.T) {
			healAtOp(t, int64(n), persist)
		})
	}
}

func healAtOp(t *testing.T, n, persist int64) {
	fault := &faultfs.JournalFault{N: n, Persist: persist}
	o := memOptions(errorfs.Wrap(vfs.NewMem(), fault))
	h, err := OpenHealing("db", o, testHealOptions())
	require.NoError(t, err)
	defer func() { require.NoError(t, h.Close()) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The tail: Read then Wait, from offset 0, through the reopens.
	const appends = 30
	var tailed []StoredRecord
	tailDone := make(chan error, 1)
	go func() {
		var next uint64
		for next < appends {
			recs, err := h.Read(ctx, "s", next, 100)
			if errors.Is(err, ErrNotFound) || (err == nil && len(recs) == 0) {
				err = h.Wait(ctx, "s", next)
				if err != nil {
					tailDone <- fmt.Errorf("wait at %d: %w", next, err)
					return
				}
				continue
			}
			if errors.Is(err, ErrUnavailable) {
				continue
			}
			if err != nil {
				tailDone <- fmt.Errorf("read at %d: %w", next, err)
				return
			}
			tailed = append(tailed, recs...)
			next += uint64(len(recs))
		}
		tailDone <- nil
	}()

	fault.Arm()
	acked := make([]AppendResult, appends)
	var sawUnavailable int
	for i := range appends {
		key := fmt.Sprintf("k%d", i)
		for {
			res, err := h.AppendWith(ctx, "s", AppendOptions{IdempotencyKey: key}, Record{Value: []byte(key)})
			if err == nil {
				acked[i] = res
				break
			}
			require.ErrorIs(t, err, ErrUnavailable, "append %s", key)
			sawUnavailable++
			time.Sleep(time.Millisecond)
		}
	}
	require.NoError(t, <-tailDone)
	require.Positive(t, fault.Hits(), "the fault was injected")
	assert.Positive(t, sawUnavailable, "an append saw the failure")

	require.Eventually(t, h.Ready, 10*time.Second, time.Millisecond)
	st := h.Stats()
	assert.Positive(t, st.Failures)
	assert.Equal(t, st.Failures, st.Recoveries, "every failure healed")
	assert.True(t, st.Healthy)

	// Exactly once, at the acknowledged offsets.
	stored := readAll(t, h.Store(), "s")
	require.Len(t, stored, appends, "one record per key")
	for i, r := range stored {
		assert.Equal(t, fmt.Sprintf("k%d", i), string(r.Value), "offset %d", i)
		assert.Equal(t, uint64(i), acked[i].FirstOffset, "k%d acknowledged at its stored offset", i)
	}
	require.Len(t, tailed, appends)
	for i, r := range tailed {
		assert.Equal(t, stored[i].Value, r.Value, "tail offset %d", i)
		assert.Equal(t, uint64(i), r.Offset)
	}

	// The idempotency table survived the reopens: a late retry of every key
	// is answered with its original result and stores nothing.
	for i := range appends {
		res, err := h.AppendWith(ctx, "s", AppendOptions{IdempotencyKey: fmt.Sprintf("k%d", i)}, Record{Value: []byte("again")})
		require.NoError(t, err)
		assert.True(t, res.Replayed, "k%d deduplicated", i)
		assert.Equal(t, acked[i].FirstOffset, res.FirstOffset)
	}
	assert.Len(t, readAll(t, h.Store(), "s"), appends)
}

// TestHealerRetriesWhileTheErrorPersists: while every journal write fails
// the store stays down (not ready, appends unavailable, reopens retried
// with backoff); once the disk works again it comes back by itself.
func TestHealerRetriesWhileTheErrorPersists(t *testing.T) {
	var broken atomic.Bool
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if broken.Load() && strings.Contains(op.Path, "journal") && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errorfs.ErrInjected
		}
		return nil
	}))
	h, err := OpenHealing("db", memOptions(fs), testHealOptions())
	require.NoError(t, err)
	defer func() { require.NoError(t, h.Close()) }()
	ctx := context.Background()
	_, err = h.AppendWith(ctx, "s", AppendOptions{}, Record{Value: []byte("before")})
	require.NoError(t, err)

	broken.Store(true)
	_, err = h.AppendWith(ctx, "s", AppendOptions{}, Record{Value: []byte("lost")})
	require.ErrorIs(t, err, ErrUnavailable)
	require.Eventually(t, func() bool { return h.Stats().ReopenAttempts >= 3 }, 10*time.Second, time.Millisecond)
	assert.False(t, h.Ready())
	assert.Zero(t, h.Stats().Recoveries)
	_, err = h.AppendWith(ctx, "s", AppendOptions{}, Record{Value: []byte("refused")})
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorIs(t, h.Err(), ErrUnavailable)

	broken.Store(false)
	require.Eventually(t, h.Ready, 10*time.Second, time.Millisecond)
	assert.Equal(t, uint64(1), h.Stats().Recoveries)
	res, err := h.AppendWith(ctx, "s", AppendOptions{}, Record{Value: []byte("after")})
	require.NoError(t, err)
	assert.Equal(t, uint64(1), res.FirstOffset, "the unacknowledged append left no record")
}

// TestHealerConcurrentCallsDuringSwap hammers every kind of call while the
// store fails and is reopened again and again: nothing panics, every error
// is ErrUnavailable (or a clean not-found), and Close ends it all.
func TestHealerConcurrentCallsDuringSwap(t *testing.T) {
	var failNext atomic.Int64
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFileSyncData && strings.Contains(op.Path, "journal") && failNext.CompareAndSwap(1, 0) {
			return errorfs.ErrInjected
		}
		return nil
	}))
	h, err := OpenHealing("db", memOptions(fs), testHealOptions())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	ok := func(err error) bool {
		return err == nil || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) ||
			errors.Is(err, context.Canceled) || errors.Is(err, ErrClosed)
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				_, err := h.AppendWith(ctx, "s", AppendOptions{IdempotencyKey: fmt.Sprintf("w%d-%d", w, i)}, Record{Value: []byte("v")})
				_, err2 := h.Read(ctx, "s", 0, 10)
				_, err3 := h.Streams(ctx)
				wctx, wcancel := context.WithTimeout(ctx, time.Millisecond)
				err4 := h.Wait(wctx, "s", 1<<40)
				wcancel()
				if errors.Is(err4, context.DeadlineExceeded) {
					err4 = nil
				}
				for _, e := range []error{err, err2, err3, err4} {
					if !ok(e) {
						errc <- e
						return
					}
				}
			}
		}()
	}
	for range 5 {
		failNext.Store(1)
		require.Eventually(t, func() bool { return failNext.Load() == 0 }, 10*time.Second, time.Millisecond)
		require.Eventually(t, h.Ready, 10*time.Second, time.Millisecond)
	}
	cancel()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("unexpected error: %v", err)
	}
	assert.GreaterOrEqual(t, h.Stats().Recoveries, uint64(5))
	require.NoError(t, h.Close())
	assert.ErrorIs(t, h.Err(), ErrClosed)
	_, err = h.AppendWith(context.Background(), "s", AppendOptions{}, Record{Value: []byte("x")})
	assert.ErrorIs(t, err, ErrClosed)
}

// TestHealBackoff: the waits between reopens double from MinBackoff up to
// MaxBackoff and stay there (retrying forever), each jittered into
// [b/2, b].
func TestHealBackoff(t *testing.T) {
	o, err := (&HealOptions{MinBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second}).withDefaults()
	require.NoError(t, err)
	b := o.MinBackoff
	var seq []time.Duration
	for range 12 {
		seq = append(seq, b)
		for range 50 {
			w := jittered(b)
			assert.GreaterOrEqual(t, w, b/2)
			assert.LessOrEqual(t, w, b)
		}
		b = nextBackoff(b, o.MaxBackoff)
	}
	assert.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 10 * time.Second, 10 * time.Second,
		10 * time.Second, 10 * time.Second, 10 * time.Second}, seq)

	for _, bad := range []HealOptions{{MinBackoff: -1}, {MinBackoff: time.Second, MaxBackoff: time.Millisecond}, {ReadWait: -1}} {
		_, err := bad.withDefaults()
		assert.ErrorIs(t, err, ErrInvalidArgument, "%+v", bad)
	}
	_, err = OpenHealing("db", &Options{Replication: &Replication{}}, nil)
	assert.ErrorIs(t, err, ErrInvalidArgument, "cluster mode does not heal")
}
