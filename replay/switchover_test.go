package replay_test

import (
	"context"
	"fmt"
	"github.com/badbatch/badbatch/internal/testenv"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/badbatch/badbatch/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSubscribeSwitchOver: subscribers start at random offsets (below,
// at and past the current end) while several producers append; each sees
// exactly the stream's records from its offset on, in order, once each,
// across the switch from history to live.
func TestSubscribeSwitchOver(t *testing.T) {
	producers, appends, subscribers := 4, testenv.CrashCycles(t, 200, 60), testenv.CrashCycles(t, 40, 16)
	t.Logf("producers=%d appends/producer=%d subscribers=%d", producers, appends, subscribers)
	for _, batch := range []int{1, 7, 1000} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			s := openStore(t, nil)
			r := newReader(t, s, batch)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			total := uint64(producers * appends * 3)

			var prod sync.WaitGroup
			for p := range producers {
				prod.Go(func() {
					for i := range appends {
						recs := make([]storage.Record, 3)
						for k := range recs {
							recs[k].Value = fmt.Appendf(nil, "p%d/%d/%d", p, i, k)
						}
						if _, err := s.Append(ctx, "sw", recs...); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			fill(t, s, "other", 5, 5) // the stream exists before anyone subscribes

			type result struct {
				from uint64
				got  []storage.StoredRecord
				err  error
			}
			results := make([]result, subscribers)
			var subs sync.WaitGroup
			live := 0 // subscribers that started before the producers were done
			rng := rand.New(rand.NewPCG(uint64(batch), 1))
			for i := range subscribers {
				// Wait until the stream exists, then pick an offset around
				// its current end: behind it, at it or ahead of it.
				require.NoError(t, s.Wait(ctx, "sw", 0))
				info, err := s.StreamInfo(context.Background(), "sw")
				require.NoError(t, err)
				from := uint64(rng.IntN(int(info.NextOffset) + 20))
				from = min(from, total)
				results[i].from = from
				if info.NextOffset < total {
					live++
				}
				subs.Go(func() {
					res := &results[i]
					if from == total {
						return
					}
					for rec, err := range r.Subscribe(ctx, "sw", from) {
						if err != nil {
							res.err = err
							return
						}
						res.got = append(res.got, rec)
						if rec.Offset == total-1 {
							return
						}
					}
				})
				time.Sleep(time.Millisecond)
			}
			prod.Wait()
			subs.Wait()
			t.Logf("%d of %d subscribers started while the producers were appending", live, subscribers)

			want, err := collect(newReader(t, s, 1000).Records(ctx, "sw", 0))
			require.NoError(t, err)
			require.Len(t, want, int(total))
			for i, res := range results {
				require.NoError(t, res.err, "subscriber %d from %d", i, res.from)
				require.Equal(t, span(res.from, total), offsets(res.got), "subscriber %d from %d", i, res.from)
				for k, rec := range res.got {
					if !assert.Equal(t, want[res.from+uint64(k)].Value, rec.Value, "subscriber %d offset %d", i, rec.Offset) {
						break
					}
				}
			}
		})
	}
}
