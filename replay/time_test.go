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

// modelFromTime is the documented rule on a naive model: the lowest
// offset whose own timestamp is >= t, then everything after it in offset
// order (later records below t included); nothing if there is none.
func modelFromTime(ts []time.Time, t time.Time) []uint64 {
	for i := range ts {
		if !ts[i].Before(t) {
			return span(uint64(i), uint64(len(ts)))
		}
	}
	return span(0, 0)
}

// TestFromTime: fixed cases of equal and non-monotonic timestamps.
func TestFromTime(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	// offsets:      0  1  2  3  4  5  6  7
	secs := []int{10, 20, 20, 15, 30, 20, 25, 30}
	s := openStore(t, nil)
	var ts []time.Time
	for i, sec := range secs {
		ts = append(ts, at(sec))
		_, err := s.Append(context.Background(), "t", storage.Record{Value: fmt.Appendf(nil, "%d", i), Timestamp: at(sec)})
		require.NoError(t, err)
	}
	tests := []struct {
		name string
		t    time.Time
		want []uint64
	}{
		{"before everything", at(0), span(0, 8)},
		{"equal to the first", at(10), span(0, 8)},
		{"between: first at or after is 1", at(11), span(1, 8)},
		{"equal timestamps start at the lowest offset", at(20), span(1, 8)},
		{"a later, smaller timestamp does not move the start back", at(16), span(1, 8)},
		{"first >= 21 is offset 4 (offset 5 = 20 follows it)", at(21), span(4, 8)},
		{"30 twice: the first", at(30), span(4, 8)},
		{"after everything", at(31), span(0, 0)},
	}
	for _, batch := range []int{1, 3, 100} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("batch=%d/%s", batch, tt.name), func(t *testing.T) {
				require.Equal(t, tt.want, modelFromTime(ts, tt.t), "the model disagrees with the case")
				got, err := collect(newReader(t, s, batch).FromTime(context.Background(), "t", tt.t))
				require.NoError(t, err)
				assert.Equal(t, tt.want, offsets(got))
			})
		}
	}
	t.Run("unknown stream", func(t *testing.T) {
		_, err := collect(newReader(t, s, 10).FromTime(context.Background(), "nope", at(0)))
		assert.ErrorIs(t, err, storage.ErrNotFound)
	})
}

// TestFromTimeConcurrentProducers: producers append with their own
// clocks, skewed and coarse (so timestamps repeat and go backwards along
// the stream); FromTime agrees with the model for every probe time.
func TestFromTimeConcurrentProducers(t *testing.T) {
	producers, appends := 4, testenv.CrashCycles(t, 100, 30)
	t.Logf("producers=%d appends/producer=%d", producers, appends)
	s := openStore(t, nil)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), 7))
			for i := range appends {
				// Each producer's clock is skewed by p seconds and ticks in
				// whole seconds, with jitter backwards.
				sec := i/3 + p - rng.IntN(3)
				recs := make([]storage.Record, 1+rng.IntN(3))
				for k := range recs {
					recs[k] = storage.Record{Value: []byte{byte(p)}, Timestamp: base.Add(time.Duration(sec) * time.Second)}
				}
				if _, err := s.Append(context.Background(), "clk", recs...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	all, err := collect(newReader(t, s, 1000).Records(context.Background(), "clk", 0))
	require.NoError(t, err)
	ts := make([]time.Time, len(all))
	equal, backwards := 0, 0
	for i := range all {
		ts[i] = all[i].Timestamp
		if i > 0 && ts[i].Equal(ts[i-1]) {
			equal++
		}
		if i > 0 && ts[i].Before(ts[i-1]) {
			backwards++
		}
	}
	t.Logf("%d records, %d equal to the previous, %d going backwards", len(all), equal, backwards)
	require.Positive(t, equal)
	require.Positive(t, backwards)
	r := newReader(t, s, 5)
	for sec := -4; sec <= appends/3+producers+2; sec++ {
		for _, frac := range []time.Duration{0, 500 * time.Millisecond} {
			probe := base.Add(time.Duration(sec)*time.Second + frac)
			got, err := collect(r.FromTime(context.Background(), "clk", probe))
			require.NoError(t, err)
			require.Equal(t, modelFromTime(ts, probe), offsets(got), "probe %s", probe)
		}
	}
}
