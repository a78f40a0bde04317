package replay_test

import (
	"context"
	"errors"
	"github.com/badbatch/badbatch/internal/testenv"
	"sync"
	"testing"
	"time"

	"github.com/badbatch/badbatch/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRetentionWhileReading: retention deletes journal segments (4 KiB
// segments, 16 KiB kept) while readers replay from offset 0 and follow the
// stream. Every reader either gets records, dense from where it started,
// or storage.ErrGone, and then starts again from the stream's first
// retained offset; the process never dies (SIGBUS from a deleted mapping
// would kill it). The test asserts that retention did remove the start.
func TestRetentionWhileReading(t *testing.T) {
	appends, readers := testenv.CrashCycles(t, 1500, 600), 4
	t.Logf("appends=%d (2 records of 100 B) readers=%d+%d subscribers", appends, readers, readers)
	s := openStore(t, &storage.Options{SegmentSize: 4 << 10, RetentionBytes: 16 << 10, IndexFlushBytes: 2 << 10})
	r := newReader(t, s, 8)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	value := make([]byte, 100)
	_, err := s.Append(ctx, "ret", storage.Record{Value: value})
	require.NoError(t, err)

	// stopCtx ends the readers once the producers are done.
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		truncated int
		read      int
	)
	check := func(from uint64, rec storage.StoredRecord, next *uint64) bool {
		if rec.Offset != *next || len(rec.Value) != 100 {
			t.Errorf("reader from %d: got offset %d (value %d B), want %d", from, rec.Offset, len(rec.Value), *next)
			return false
		}
		*next++
		return true
	}
	restart := func(err error) (uint64, bool) {
		if !errors.Is(err, storage.ErrGone) {
			t.Errorf("replay: %v", err)
			return 0, false
		}
		mu.Lock()
		truncated++
		mu.Unlock()
		info, ierr := s.StreamInfo(context.Background(), "ret")
		if ierr != nil {
			t.Error(ierr)
			return 0, false
		}
		return info.FirstOffset, true
	}
	for range readers {
		// History replays, from 0 and then again and again from the
		// first retained offset.
		wg.Go(func() {
			from := uint64(0)
			for stopCtx.Err() == nil {
				next := from
				n := 0
				for rec, err := range r.Records(ctx, "ret", from) {
					if err != nil {
						var ok bool
						if from, ok = restart(err); !ok {
							return
						}
						break
					}
					if !check(from, rec, &next) {
						return
					}
					n++
				}
				mu.Lock()
				read += n
				mu.Unlock()
			}
		})
		// Subscriptions that follow, fall below retention, and resume.
		wg.Go(func() {
			from := uint64(0)
			for stopCtx.Err() == nil {
				next := from
				for rec, err := range r.Subscribe(stopCtx, "ret", from) {
					if err != nil {
						if stopCtx.Err() != nil {
							return
						}
						var ok bool
						if from, ok = restart(err); !ok {
							return
						}
						break
					}
					if !check(from, rec, &next) {
						return
					}
					time.Sleep(50 * time.Microsecond) // slow: let retention pass it
				}
			}
		})
	}
	for i := 0; i < appends; i++ {
		_, err := s.Append(ctx, "ret", storage.Record{Value: value}, storage.Record{Value: value})
		require.NoError(t, err)
	}
	stop()
	wg.Wait()
	info, err := s.StreamInfo(context.Background(), "ret")
	require.NoError(t, err)
	t.Logf("first retained offset %d of %d; %d reads hit ErrGone; %d records replayed", info.FirstOffset, info.NextOffset, truncated, read)
	assert.Greater(t, info.FirstOffset, uint64(0), "retention removed nothing")
	recs, err := collect(r.Records(ctx, "ret", 0))
	assert.ErrorIs(t, err, storage.ErrGone)
	assert.Empty(t, recs)
}
