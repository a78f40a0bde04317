package journal

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// BenchmarkRoll measures what a segment roll costs the writer: each
// iteration appends (Write + Sync) one 4 KiB entry to each of three
// journals, in a shuffled order, with 256 KiB segments (a roll every 60
// entries), on the real file system (sizing and the preparer on):
//
//	roll=create    the roll creates the next segment itself: create,
//	               header, fallocate, fsync, rename (the preparer is
//	               kept idle; no recycling). The behaviour before the
//	               preparer.
//	roll=prepared  the preparer has a new file ready (sized, fsynced, its
//	               directory entry fsynced): the roll writes the header,
//	               fdatasyncs it and renames.
//	roll=removed   as prepared, with retention keeping 2 segments: each
//	               roll also removes the oldest segment (unlink).
//	roll=recycled  as removed, with RecycleSegments 1: the oldest segment
//	               is renamed to a spare, and the ready file is a retired
//	               segment (written blocks).
//
// It reports, per variant, the p50 and p99 of the appends that rolled and
// the p50 of those that did not (µs), and how many appends rolled.
// The trim and fsync of the sealed segment are in every variant's roll.
//
//	go test ./journal/ -run '^$' -bench '^BenchmarkRoll$' -benchtime 3000x
func BenchmarkRoll(b *testing.B) {
	type variant struct {
		name  string
		j     *Journal
		rolls []time.Duration
		plain []time.Duration
	}
	const segSize = 256 << 10
	open := func(name string, recycle int, retain int64, idle bool) *variant {
		o := DefaultOptions()
		o.SegmentSize = segSize
		o.RecycleSegments = recycle
		o.RetentionBytes = retain
		j, err := Open(b.TempDir(), o)
		if err != nil {
			b.Fatal(err)
		}
		if !j.sizeSegments {
			b.Skip("this file system does not size segments; rolls are synchronous")
		}
		if idle {
			j.spares.Lock()
			j.spares.closed = true // the preparer makes nothing ready
			j.spares.Unlock()
		}
		return &variant{name: name, j: j}
	}
	vs := []*variant{
		open("create", -1, 0, true),
		open("prepared", -1, 0, false),
		open("removed", -1, 2*segSize, false),
		open("recycled", 1, 2*segSize, false),
	}
	groups := entryGroups(0, 4000) // one group of one record: about 4 KiB
	rng := rand.New(rand.NewPCG(1, 2))
	order := []int{0, 1, 2, 3}
	b.SetBytes(int64(len(vs) * len(groups[0])))
	b.ResetTimer()
	for range b.N {
		rng.Shuffle(len(order), func(x, y int) { order[x], order[y] = order[y], order[x] })
		for _, k := range order {
			v := vs[k]
			rolls := v.j.stats.rolls.Load()
			start := time.Now()
			if _, err := v.j.Write(groups); err != nil {
				b.Fatal(err)
			}
			if err := v.j.Sync(); err != nil {
				b.Fatal(err)
			}
			d := time.Since(start)
			if v.j.stats.rolls.Load() != rolls {
				v.rolls = append(v.rolls, d)
			} else {
				v.plain = append(v.plain, d)
			}
		}
	}
	b.StopTimer()
	pct := func(ds []time.Duration, p float64) float64 {
		if len(ds) == 0 {
			return 0
		}
		slices.Sort(ds)
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds())
	}
	for _, v := range vs {
		b.ReportMetric(pct(v.rolls, 0.5), fmt.Sprintf("roll-p50-µs-%s", v.name))
		b.ReportMetric(pct(v.rolls, 0.99), fmt.Sprintf("roll-p99-µs-%s", v.name))
		b.ReportMetric(pct(v.plain, 0.5), fmt.Sprintf("append-p50-µs-%s", v.name))
		b.ReportMetric(float64(len(v.rolls)), fmt.Sprintf("rolls-%s", v.name))
		st := v.j.Stats()
		if v.name != "create" && st.RollsPrepared == 0 && len(v.rolls) > 4 {
			b.Errorf("%s: no roll took a prepared spare (%+v)", v.name, st)
		}
		if v.name == "recycled" && st.RollsRecycled == 0 && len(v.rolls) > 4 {
			b.Errorf("recycled: no roll reused a file")
		}
		if err := v.j.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
