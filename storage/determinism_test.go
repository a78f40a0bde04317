package storage

import (
	"github.com/badbatch/badbatch"

	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type idemID struct{ stream, key string }

// decisionLog is what concurrent producers were told.
type decisionLog struct {
	mu       sync.Mutex
	accepted map[idemID]AppendResult // first acceptance of each key
	replays  []AppendResult          // every Replayed result
	rejects  int
}

// TestDeterminismRebuild appends concurrently with expected offsets and
// idempotency keys, deletes the index directory, reopens, and checks that
// the rebuilt store makes exactly the same decisions: every stream, offset
// and global record equal, every remembered idempotency key replaying the
// original result, and a 409 where the original run gave one.
func TestDeterminismRebuild(t *testing.T) {
	tests := []struct {
		name string
		fs   func(t *testing.T) (vfs.FS, string)
	}{
		{"fs=disk", func(t *testing.T) (vfs.FS, string) { return vfs.Default, t.TempDir() }},
		{"fs=mem", func(t *testing.T) (vfs.FS, string) { return vfs.NewMem(), "db" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, dir := tc.fs(t)
			o := memOptions(fs)
			o.IndexFlushBytes = 8 << 10
			s := mustOpen(t, dir, o)
			appends := 150
			if testing.Short() {
				appends = 60
			}
			log := &decisionLog{accepted: map[idemID]AppendResult{}}
			var wg sync.WaitGroup
			for p := range 4 {
				wg.Go(func() { determinismProducer(t, s, p, appends, log) })
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			before := snapshotState(t, s)
			require.NoError(t, s.Close())

			require.NoError(t, fs.RemoveAll(fs.PathJoin(dir, "index")))
			s = mustOpen(t, dir, o)
			defer func() { require.NoError(t, s.Close()) }()
			assert.Greater(t, s.Stats().Recovery.Entries, int64(0), "the index was rebuilt from the journal")
			assert.Equal(t, before, snapshotState(t, s))

			// Idempotency decisions survive the rebuild.
			ctx := context.Background()
			for id, first := range log.accepted {
				key := id.key
				res, err := s.AppendWith(ctx, id.stream, AppendOptions{IdempotencyKey: key}, Record{Value: []byte("again")})
				require.NoError(t, err)
				assert.True(t, res.Replayed, "key %s", key)
				first.Replayed = true
				assert.Equal(t, first, res, "key %s", key)
			}
			// Every replay the producers saw named an original acceptance.
			for _, r := range log.replays {
				var found bool
				for _, a := range log.accepted {
					if a.Stream == r.Stream && a.FirstOffset == r.FirstOffset && a.FirstSeq == r.FirstSeq && a.Count == r.Count {
						found = true
					}
				}
				assert.True(t, found, "replay %+v has no original", r)
			}
			// An expected-offset check against the rebuilt state.
			for _, info := range before.Streams {
				_, err := s.AppendWith(ctx, info.Stream, AppendOptions{ExpectedLastOffset: badbatch.ExpectLastOffset(int64(info.NextOffset) - 2)})
				assert.ErrorIs(t, err, ErrEmptyBatch)
				_, err = s.AppendWith(ctx, info.Stream, AppendOptions{ExpectedLastOffset: badbatch.ExpectLastOffset(int64(info.NextOffset) - 2)}, Record{Value: []byte("late")})
				var mm *OffsetMismatchError
				require.ErrorAs(t, err, &mm)
				assert.Equal(t, int64(info.NextOffset)-1, mm.Current)
			}
			t.Logf("%d producers x %d appends: %d idempotency keys, %d replays, %d rejections; %d entries re-applied",
				4, appends, len(log.accepted), len(log.replays), log.rejects, s.Stats().Recovery.Entries)
		})
	}
}

func determinismProducer(t *testing.T, s *Store, p, appends int, log *decisionLog) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(p)))
	ctx := context.Background()
	for i := range appends {
		stream := fmt.Sprintf("d%d", rng.IntN(3))
		var opts AppendOptions
		if rng.IntN(3) == 0 {
			info, err := s.StreamInfo(context.Background(), stream)
			expected := int64(-1)
			if err == nil {
				expected = int64(info.NextOffset) - 1
			}
			opts.ExpectedLastOffset = &expected
		}
		if rng.IntN(3) == 0 {
			opts.IdempotencyKey = fmt.Sprintf("key-%d", rng.IntN(20))
		}
		recs := []Record{{Value: []byte(fmt.Sprintf("p%d-%d", p, i))}, {Key: []byte("k"), Value: []byte("second")}}
		res, err := s.AppendWith(ctx, stream, opts, recs...)
		log.mu.Lock()
		switch {
		case err != nil:
			if !assert.ErrorIs(t, err, ErrOffsetMismatch) {
				log.mu.Unlock()
				return
			}
			log.rejects++
		case res.Replayed:
			log.replays = append(log.replays, res)
		case opts.IdempotencyKey != "":
			id := idemID{stream, opts.IdempotencyKey}
			if _, ok := log.accepted[id]; ok {
				assert.Fail(t, "idempotency key accepted twice", "%s on %s", opts.IdempotencyKey, stream)
			}
			log.accepted[id] = res
		}
		log.mu.Unlock()
	}
}
