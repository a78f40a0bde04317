package disruptor

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Benchmarks: one op is one event end to end, from the producer's claim
// (or channel send) until the last stage has seen it: the timer covers
// b.N events produced, handled by every stage, and the shutdown that waits
// for the last of them. ns/op is therefore total time / events. Each ring
// topology has a channel twin in its best idiomatic form: buffered channels
// with the ring's capacity (benchRingSize, 4096, inside the storage layer's
// 4096-16384 range), elements of a small struct (benchEvent, 8 bytes) sent by
// value, one goroutine per stage, the same per-event handler work (a sum).
// The ring uses the default options (Blocking wait strategy), SingleProducer
// where there is one producer.
//
//	spsc      1 producer -> 1 consumer
//	mpsc4     4 producers -> 1 consumer
//	mpsc64    64 producers -> 1 consumer (the storage layer's many HTTP handlers)
//	pipeline3 1 producer -> stage 1 -> stage 2 -> stage 3
//	diamond   1 producer -> {A, B} in parallel -> C after both
//
// The fair baseline for the ring's claim 16 is the channel sending the same
// 16 events one at a time (BenchmarkChannel topology=spsc, which is also
// the baseline for claim 1): claiming a batch is the ring's feature, and
// the question is what it buys a producer that has 16 events in hand. A
// channel of 16-event arrays (topology=spsc/batch=16) is reported beside
// it, for reference only: it is batching done by the caller, which the
// storage layer's producers (one append each) cannot do.
//
// Run them together so that the ratios compare like with like, and on a
// shared machine interleave whole runs (each run puts every ring row next
// to its channel row) rather than using -count, which repeats one row
// before the next:
//
//	for i in 1 2 3 4 5 6 7 8; do
//	  go test -run '^$' -bench '^Benchmark(Ring|Channel)$' -benchtime=200ms -count=1 ./disruptor/
//	done
//
// BenchmarkProcessorFloor and BenchmarkRingWaitStrategy explain the
// results (docs/benchmarks-disruptor.md).

const benchRingSize = 4096

// sliceHandlers makes benchRing's single consumer a SliceHandler. Set only
// by BenchmarkRing around one sub-benchmark (benchmarks run sequentially).
var sliceHandlers bool

type benchEvent struct{ value int64 }

// sumHandler is the per-event work of every stage.
type sumHandler struct{ sum int64 }

func (h *sumHandler) OnEvent(ev *benchEvent, _ int64, _ bool) error {
	h.sum += ev.value
	return nil
}

// sliceSumHandler does the same work as a SliceHandler: one call per
// contiguous run of a batch instead of one per event.
type sliceSumHandler struct{ sumHandler }

func (h *sliceSumHandler) OnEvents(_ int64, events []benchEvent, _ bool) error {
	for i := range events {
		h.sum += events[i].value
	}
	return nil
}

func BenchmarkRing(b *testing.B) {
	cases := []struct {
		topology  string
		claim     int64
		producers int
		slice     bool // the consumer is a SliceHandler (one call per run, not per event)
	}{
		{"spsc", 1, 1, false},
		{"spsc", 16, 1, false},
		{"spsc", 1, 1, true},
		{"spsc", 16, 1, true},
		{"mpsc4", 1, 4, false},
		{"mpsc64", 1, 64, false},
		{"pipeline3", 1, 1, false},
		{"diamond", 1, 1, false},
	}
	for _, c := range cases {
		name := fmt.Sprintf("topology=%s/claim=%d", c.topology, c.claim)
		if c.slice {
			name += "/handler=slice"
		}
		b.Run(name, func(b *testing.B) {
			sliceHandlers = c.slice
			defer func() { sliceHandlers = false }()
			benchRing(b, c.topology, c.claim, c.producers)
		})
	}
}

func benchRing(b *testing.B, topology string, claim int64, producers int) {
	benchRingWith(b, topology, claim, producers, nil)
}

func benchRingWith(b *testing.B, topology string, claim int64, producers int, ws WaitStrategy) {
	opts := DefaultOptions()
	if ws != nil {
		opts.WaitStrategy = ws
	}
	opts.RingSize = benchRingSize
	if producers == 1 {
		opts.Producer = SingleProducer
	}
	d, err := New(func() benchEvent { return benchEvent{} }, opts)
	if err != nil {
		b.Fatal(err)
	}
	handlers := []*sumHandler{{}, {}, {}}
	switch topology {
	case "spsc", "mpsc4", "mpsc64":
		if sliceHandlers {
			d.HandleEventsWith(&sliceSumHandler{})
			break
		}
		d.HandleEventsWith(handlers[0])
	case "pipeline3":
		d.HandleEventsWith(handlers[0]).Then(handlers[1]).Then(handlers[2])
	case "diamond":
		d.HandleEventsWith(handlers[0], handlers[1]).Then(handlers[2])
	}
	if err := d.Start(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for p := range producers {
		n := int64(b.N / producers)
		if p == 0 {
			n += int64(b.N % producers)
		}
		wg.Go(func() {
			for done := int64(0); done < n; {
				k := min(claim, n-done)
				hi, err := d.Next(k)
				if err != nil {
					b.Error(err)
					return
				}
				for seq := hi - k + 1; seq <= hi; seq++ {
					d.Get(seq).value = seq
				}
				if err := d.Publish(hi-k+1, hi); err != nil {
					b.Error(err)
					return
				}
				done += k
			}
		})
	}
	wg.Wait()
	if err := d.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}

func BenchmarkChannel(b *testing.B) {
	for _, topology := range []string{"spsc", "mpsc4", "mpsc64", "pipeline3", "diamond"} {
		b.Run("topology="+topology, func(b *testing.B) {
			benchChannel(b, topology)
		})
	}
	b.Run("topology=spsc/batch=16", benchChannelBatches)
}

// benchChannelBatches is spsc over a channel of 16-event arrays (a quarter
// of benchRingSize elements, so the same number of events fit in flight).
// One op is still one event. Reference only: see the comment at the top.
func benchChannelBatches(b *testing.B) {
	const batch = 16
	b.ReportAllocs()
	b.ResetTimer()
	ch := make(chan [batch]benchEvent, benchRingSize/batch)
	var consumer sync.WaitGroup
	consumer.Go(func() {
		h := sumHandler{}
		for evs := range ch {
			for i := range evs {
				h.sum += evs[i].value
			}
		}
	})
	for done := 0; done < b.N; done += batch {
		var evs [batch]benchEvent
		for i := range min(batch, b.N-done) {
			evs[i].value = int64(done + i)
		}
		ch <- evs
	}
	close(ch)
	consumer.Wait()
	b.StopTimer()
}

func benchChannel(b *testing.B, topology string) {
	b.ReportAllocs()
	b.ResetTimer()
	var stages sync.WaitGroup
	produce := func(out []chan benchEvent, producers int) {
		var wg sync.WaitGroup
		for p := range producers {
			n := b.N / producers
			if p == 0 {
				n += b.N % producers
			}
			wg.Go(func() {
				for i := range n {
					for _, ch := range out {
						ch <- benchEvent{value: int64(i)}
					}
				}
			})
		}
		wg.Wait()
		for _, ch := range out {
			close(ch)
		}
	}
	stage := func(in <-chan benchEvent, out chan<- benchEvent) {
		stages.Go(func() {
			h := sumHandler{}
			for ev := range in {
				h.sum += ev.value
				if out != nil {
					out <- ev
				}
			}
			if out != nil {
				close(out)
			}
		})
	}
	newChan := func() chan benchEvent { return make(chan benchEvent, benchRingSize) }
	switch topology {
	case "spsc", "mpsc4", "mpsc64":
		in := newChan()
		stage(in, nil)
		producers := map[string]int{"spsc": 1, "mpsc4": 4, "mpsc64": 64}[topology]
		produce([]chan benchEvent{in}, producers)
	case "pipeline3":
		c1, c2, c3 := newChan(), newChan(), newChan()
		stage(c1, c2)
		stage(c2, c3)
		stage(c3, nil)
		produce([]chan benchEvent{c1}, 1)
	case "diamond":
		inA, inB, outA, outB := newChan(), newChan(), newChan(), newChan()
		stage(inA, outA)
		stage(inB, outB)
		stages.Go(func() {
			h := sumHandler{}
			for ev := range outA {
				h.sum += ev.value + (<-outB).value
			}
		})
		produce([]chan benchEvent{inA, inB}, 1)
	}
	stages.Wait()
	b.StopTimer()
}

// BenchmarkProcessorFloor measures a processor alone on a prefilled ring: the
// per-event cost of the batch loop and one EventHandler call, with no
// producer and no waiting. No topology can go below it per event on one core.
func BenchmarkProcessorFloor(b *testing.B) {
	const size = 1 << 16
	r, err := NewRingBuffer[benchEvent](size, nil, SingleProducer)
	if err != nil {
		b.Fatal(err)
	}
	hi, err := r.Next(size)
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Publish(0, hi); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += size {
		b.StopTimer()
		h := &haltingSumHandler{last: size - 1}
		h.p = NewBatchEventProcessor(r, r.NewBarrier(), EventHandler[benchEvent](h))
		b.StartTimer()
		if err := h.p.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// haltingSumHandler sums and halts its processor at last.
type haltingSumHandler struct {
	sum  int64
	last int64
	p    *BatchEventProcessor[benchEvent]
}

func (h *haltingSumHandler) OnEvent(ev *benchEvent, seq int64, _ bool) error {
	h.sum += ev.value
	if seq == h.last {
		h.p.Halt()
	}
	return nil
}

// BenchmarkRingWaitStrategy compares consumer wait strategies on the spsc
// and diamond topologies (the evidence for DefaultWaitStrategy).
func BenchmarkRingWaitStrategy(b *testing.B) {
	strategies := []struct {
		name string
		new  func() WaitStrategy
	}{
		{"Blocking", NewBlockingWaitStrategy},
		{"PhasedBackoff-1us-50us", func() WaitStrategy {
			return NewPhasedBackoffWaitStrategy(time.Microsecond, 50*time.Microsecond, NewBlockingWaitStrategy())
		}},
		{"Yielding", NewYieldingWaitStrategy},
		{"BusySpin", NewBusySpinWaitStrategy},
	}
	for _, topology := range []string{"spsc", "diamond"} {
		for _, ws := range strategies {
			b.Run("topology="+topology+"/wait="+ws.name, func(b *testing.B) {
				benchRingWith(b, topology, 1, 1, ws.new())
			})
		}
	}
}
