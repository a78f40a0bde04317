package bench_test

// replay's iterators and subscriptions against the obvious alternatives,
// in the same run: Pebble v2 iterating the same records stored as a log
// (key = 8-byte index), hashicorp/raft-wal GetLog in a loop, and a plain
// storage.Store.Read for the time to the first record. The stores are the
// contenders of bench/storage_test.go, filled through their own append
// paths.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/badbatch/badbatch/replay"
	"github.com/badbatch/badbatch/storage"
	"github.com/hashicorp/raft"
)

// replayFill appends n records of storeValueLen bytes to c, in appends of
// 1000 with 8 in flight.
func replayFill(b *testing.B, c storeContender, n int) {
	b.Helper()
	const per, inflight = 1000, 8
	slots := make([]storeSlot, inflight)
	for i := range slots {
		slots[i] = c.newSlot(per, storeValueLen)
	}
	pending := 0
	for i := 0; i < n/per; i++ {
		s := slots[i%inflight]
		if i >= inflight {
			if err := s.wait(); err != nil {
				b.Fatal(err)
			}
			pending--
		}
		if err := s.submit(); err != nil {
			b.Fatal(err)
		}
		pending++
	}
	for i := n/per - pending; i < n/per; i++ {
		if err := slots[i%inflight].wait(); err != nil {
			b.Fatal(err)
		}
	}
}

func replayReader(b *testing.B, s *storage.Store, batch int) *replay.Reader[storage.StoredRecord] {
	r, err := replay.New(replay.Source[storage.StoredRecord](s), func(rec *storage.StoredRecord) replay.Position {
		return replay.Position{Offset: rec.Offset, Seq: rec.Seq}
	}, &replay.Options{BatchSize: batch})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

const replaySeqRecords = 200_000

// BenchmarkReplaySequential: one op is one 100-byte record read back in
// order from a log of 200,000 records written just before (so it is in the
// page cache); each reader wraps around at the end. impl=badbatch is
// replay.Reader.Records over storage.Store (batches of 1000; every record
// is copied out, its bytes owned by the caller); impl=pebble is one Pebble
// v2 iterator over the same records stored as a log (key = 8-byte index),
// copying each value into a reused buffer; impl=raftwal is
// hashicorp/raft-wal GetLog(i) in a loop. Reports records/s and MB/s.
func BenchmarkReplaySequential(b *testing.B) {
	ctx := context.Background()
	run := func(name string, open func(b *testing.B) storeContender, read func(b *testing.B, c storeContender)) {
		c := open(b)
		replayFill(b, c, replaySeqRecords)
		b.Run(fmt.Sprintf("impl=%s/size=%dB", name, storeValueLen), func(b *testing.B) {
			b.SetBytes(storeValueLen)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			read(b, c)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
		if err := c.close(); err != nil {
			b.Error(err)
		}
	}
	run("badbatch", openBadBatchContender, func(b *testing.B, c storeContender) {
		r := replayReader(b, c.(*badbatchContender).s, 1000)
		for read := 0; read < b.N; {
			for rec, err := range r.Records(ctx, "bench", 0) {
				if err != nil {
					b.Fatal(err)
				}
				if len(rec.Value) != storeValueLen {
					b.Fatalf("value of %d bytes", len(rec.Value))
				}
				if read++; read == b.N {
					break
				}
			}
		}
	})
	run("pebble", openPebbleContender, func(b *testing.B, c storeContender) {
		db := c.(*pebbleContender).db
		buf := make([]byte, 0, storeValueLen)
		for read := 0; read < b.N; {
			it, err := db.NewIter(nil)
			if err != nil {
				b.Fatal(err)
			}
			for ok := it.First(); ok && read < b.N; ok = it.Next() {
				v, err := it.ValueAndErr()
				if err != nil {
					b.Fatal(err)
				}
				buf = append(buf[:0], v...)
				if len(buf) != storeValueLen || len(it.Key()) != 8 {
					b.Fatalf("bad record at %x", it.Key())
				}
				read++
			}
			if err := it.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	run("raftwal", openRaftWALContender, func(b *testing.B, c storeContender) {
		w := c.(*raftWALContender).w
		var log raft.Log
		for i := 0; i < b.N; i++ {
			if err := w.GetLog(uint64(i%replaySeqRecords)+1, &log); err != nil {
				b.Fatal(err)
			}
			if len(log.Data) != storeValueLen {
				b.Fatalf("log %d: %d bytes", i, len(log.Data))
			}
		}
	})
}

// replayFirstSizes is the log sizes of BenchmarkReplayFirstRecord:
// 100,000 and 1,000,000 records, and 10,000,000 with
// BADBATCH_BENCH_REPLAY_10M=1 (about 1 GiB of journal).
func replayFirstSizes() []int {
	sizes := []int{100_000, 1_000_000}
	if os.Getenv("BADBATCH_BENCH_REPLAY_10M") != "" {
		sizes = append(sizes, 10_000_000)
	}
	return sizes
}

// BenchmarkReplayFirstRecord: one op is opening a subscription at a random
// offset of a log of records=N 100-byte records and receiving its first
// record. impl=replay is replay.Reader.Subscribe with batches of 1000 (its
// first read asks for 16 records, later ones double up to the batch);
// impl=read1 is a plain storage.Store.Read of one record, the floor. Reports p50-ns and p99-ns (HdrHistogram).
func BenchmarkReplayFirstRecord(b *testing.B) {
	ctx := context.Background()
	for _, n := range replayFirstSizes() {
		c := openBadBatchContender(b)
		replayFill(b, c, n)
		s := c.(*badbatchContender).s
		first := func(name string, get func(from uint64) error) {
			b.Run(fmt.Sprintf("records=%d/impl=%s", n, name), func(b *testing.B) {
				hist := hdrhistogram.New(1, int64(10*time.Second), 3)
				rng := rand.New(rand.NewPCG(uint64(n), 3))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					from := rng.Uint64N(uint64(n))
					start := time.Now()
					if err := get(from); err != nil {
						b.Fatal(err)
					}
					_ = hist.RecordValue(time.Since(start).Nanoseconds())
				}
				b.ReportMetric(float64(hist.ValueAtQuantile(50)), "p50-ns")
				b.ReportMetric(float64(hist.ValueAtQuantile(99)), "p99-ns")
			})
		}
		subscribeFirst := func(r *replay.Reader[storage.StoredRecord]) func(uint64) error {
			return func(from uint64) error {
				for rec, err := range r.Subscribe(ctx, "bench", from) {
					if err != nil {
						return err
					}
					if rec.Offset != from {
						return fmt.Errorf("first record %d, want %d", rec.Offset, from)
					}
					break
				}
				return nil
			}
		}
		first("replay", subscribeFirst(replayReader(b, s, 1000)))
		first("read1", func(from uint64) error {
			recs, err := s.Read(ctx, "bench", from, 1)
			if err == nil && (len(recs) != 1 || recs[0].Offset != from) {
				err = fmt.Errorf("read %d: got %d records", from, len(recs))
			}
			return err
		})
		if err := c.close(); err != nil {
			b.Error(err)
		}
	}
}

// replayFanOutRate is the steady append load of BenchmarkReplayFanOut:
// appends of replayFanOutPer records every millisecond.
const replayFanOutPer = 20

// BenchmarkReplayFanOut: subscribers=S live replay subscriptions follow
// one stream while one producer appends replayFanOutPer (20) 100-byte
// records every millisecond (20,000 records/s offered, durable appends).
// One op is one appended record; every subscriber receives every record.
// Reports delivered records/s (all subscribers together) and the lag
// p50-ns/p99-ns: from the record's timestamp, stamped by the store when
// Append is called, to its delivery to a subscriber. subscribers=1 is the
// baseline the fan-out is compared with.
func BenchmarkReplayFanOut(b *testing.B) {
	for _, subs := range []int{1, 100} {
		b.Run(fmt.Sprintf("subscribers=%d/size=%dB", subs, storeValueLen), func(b *testing.B) {
			c := openBadBatchContender(b)
			s := c.(*badbatchContender).s
			defer func() {
				if err := c.close(); err != nil {
					b.Error(err)
				}
			}()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := replayReader(b, s, 1000)
			// Offset 0 creates the stream; the measured records are 1..N.
			if _, err := s.Append(ctx, "fan", storage.Record{}); err != nil {
				b.Fatal(err)
			}
			total := uint64(b.N)
			hists := make([]*hdrhistogram.Histogram, subs)
			var wg sync.WaitGroup
			for i := range subs {
				hists[i] = hdrhistogram.New(1, int64(time.Minute), 3)
				wg.Go(func() {
					for rec, err := range r.Subscribe(ctx, "fan", 1) {
						if err != nil {
							b.Error(err)
							return
						}
						_ = hists[i].RecordValue(time.Since(rec.Timestamp).Nanoseconds())
						if rec.Offset == total {
							return
						}
					}
				})
			}
			recs := make([]storage.Record, replayFanOutPer)
			for i := range recs {
				recs[i].Value = storePayload(storeValueLen, i)
			}
			b.SetBytes(storeValueLen)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			tick := time.NewTicker(time.Millisecond)
			for sent := 0; sent < b.N; sent += replayFanOutPer {
				<-tick.C
				if _, err := s.Append(ctx, "fan", recs[:min(replayFanOutPer, b.N-sent)]...); err != nil {
					b.Fatal(err)
				}
			}
			tick.Stop()
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			all := hdrhistogram.New(1, int64(time.Minute), 3)
			for _, h := range hists {
				all.Merge(h)
			}
			b.ReportMetric(float64(all.TotalCount())/elapsed.Seconds(), "delivered-records/s")
			b.ReportMetric(float64(all.ValueAtQuantile(50)), "p50-ns")
			b.ReportMetric(float64(all.ValueAtQuantile(99)), "p99-ns")
		})
	}
}
