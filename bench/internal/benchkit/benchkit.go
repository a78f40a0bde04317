// Package benchkit holds the few helpers that BadBatch's benchmark suites in
// ./bench and in the separate module ./bench/peers must share so that they
// measure exactly the same work: the records they write, the names of their
// matrix points and the median of paired per-round ratios. It is internal
// to bench/ and depends only on the standard library and the journal.
package benchkit

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/badbatch/badbatch/journal"
)

// The journal comparison's matrix, the same in ./bench and bench/peers:
// records per batch and record sizes in bytes.
var (
	JournalBatches = []int{1, 16, 256}
	JournalSizes   = []int{100, 1 << 10, 64 << 10}
)

// Record returns record i of the given size: distinct and incompressible
// (xorshift bytes), the same in every suite.
func Record(size, i int) []byte {
	v := make([]byte, size)
	x := uint32(2463534242 + i)
	for k := range v {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		v[k] = byte(x)
	}
	return v
}

// SizeName spells a byte count as the benchmarks' matrices do: 16B, 1000B,
// 4KiB, 100MiB, 1GiB.
func SizeName(n int) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// Median returns the median of v (the mean of the middle two for an even
// count; 0 for none). v is not modified.
func Median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	switch {
	case len(s) == 0:
		return 0
	case len(s)%2 == 1:
		return s[len(s)/2]
	default:
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
}

// PerSlice is how many batches of batch records of size bytes a contender
// makes durable in its slice of an interleaved round: about 256 KiB, at
// least 1 and at most 8 batches.
func PerSlice(batch, size int) int { return min(max((256<<10)/(batch*size), 1), 8) }

// Interleave runs b.N rounds over n contenders. In each round every
// contender, in an order shuffled anew (seeded, so reruns shuffle alike),
// gets one slice: perSlice calls of step(i). It returns rounds[i][r], the
// time contender i's slice took in round r, and fails b on step's first
// error. The caller sets b.SetBytes and reports; the timer runs only
// around the rounds.
func Interleave(b *testing.B, n, perSlice int, seed1, seed2 uint64, step func(i int) error) [][]time.Duration {
	rounds := make([][]time.Duration, n)
	rng := rand.New(rand.NewPCG(seed1, seed2))
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	b.ResetTimer()
	for range b.N {
		rng.Shuffle(len(order), func(i, k int) { order[i], order[k] = order[k], order[i] })
		for _, i := range order {
			start := time.Now()
			for range perSlice {
				if err := step(i); err != nil {
					b.Fatal(err)
				}
			}
			rounds[i] = append(rounds[i], time.Since(start))
		}
	}
	b.StopTimer()
	return rounds
}

// PairedRatio is the median over rounds of contender i's slice time over
// contender ours's in the same round: > 1 means ours was faster.
func PairedRatio(rounds [][]time.Duration, i, ours int) float64 {
	r := make([]float64, len(rounds[i]))
	for k := range r {
		r[k] = float64(rounds[i][k]) / float64(rounds[ours][k])
	}
	return Median(r)
}

// Busy is the total time of one contender's slices.
func Busy(slices []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range slices {
		t += d
	}
	return t
}

// JournalGroups encodes each record as one group of one record on stream
// "bench", as the journal benchmarks write them: the batch of groups one
// journal.Write makes into one entry.
func JournalGroups(recs [][]byte) [][]byte {
	groups := make([][]byte, len(recs))
	for i, r := range recs {
		groups[i] = journal.AppendGroup(nil,
			&journal.Group{Stream: []byte("bench"), Timestamp: int64(i)},
			[]journal.Record{{Timestamp: int64(i), Value: r}})
	}
	return groups
}
