package disruptor

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The model test checks the disruptor's contract against the obvious model
// of it, on random topologies, producer counts, claim sizes, wait strategies
// and batch caps, on rings of 1 to 8 slots so that every slot is reused
// hundreds of times:
//
//   - every handler sees every published event exactly once, in sequence
//     order (seq == next expected, and each producer's events in its own
//     order, with nothing missing at the end);
//   - the slot a handler reads holds the event published at that sequence
//     (no overwrite by a producer a lap ahead);
//   - a handler never sees a sequence before every upstream handler,
//     transitively, has finished it: each handler stamps the event, and
//     descendants check their ancestors' stamps. The stamps are plain
//     fields, so the race detector also checks that the barriers order
//     these accesses;
//   - batches are well formed: OnBatchStart(n) then n events, endOfBatch on
//     the last, n <= MaxBatchSize.

const maxModelHandlers = 6

type modelEvent struct {
	seq      int64
	producer int
	index    int64
	stamps   [maxModelHandlers]int64 // handler i writes seq+1 to stamps[i]
}

// modelHandler checks one handler's view. Its fields belong to its
// processor goroutine until Shutdown returns.
type modelHandler struct {
	id        int
	ancestors []int
	maxBatch  int64
	next      int64
	nextIndex []int64
	remaining int64 // events left in the current batch
	failure   error // first violation
}

func (h *modelHandler) fail(format string, args ...any) {
	if h.failure == nil {
		h.failure = fmt.Errorf("handler %d: "+format, append([]any{h.id}, args...)...)
	}
}

func (h *modelHandler) OnBatchStart(n int64) {
	if h.remaining != 0 {
		h.fail("batch of %d started with %d events of the previous one left", n, h.remaining)
	}
	if n < 1 || (h.maxBatch > 0 && n > h.maxBatch) {
		h.fail("batch size %d (max %d)", n, h.maxBatch)
	}
	h.remaining = n
}

func (h *modelHandler) OnEvent(ev *modelEvent, seq int64, endOfBatch bool) error {
	h.remaining--
	switch {
	case seq != h.next:
		h.fail("got sequence %d, want %d", seq, h.next)
	case ev.seq != seq:
		h.fail("slot of sequence %d holds sequence %d", seq, ev.seq)
	case ev.producer < 0 || ev.producer >= len(h.nextIndex):
		h.fail("sequence %d: bad producer %d", seq, ev.producer)
	case ev.index != h.nextIndex[ev.producer]:
		h.fail("sequence %d: producer %d event %d, want %d", seq, ev.producer, ev.index, h.nextIndex[ev.producer])
	case endOfBatch != (h.remaining == 0):
		h.fail("sequence %d: endOfBatch=%v with %d left in the batch", seq, endOfBatch, h.remaining)
	}
	for _, a := range h.ancestors {
		if ev.stamps[a] != seq+1 {
			h.fail("sequence %d seen before upstream handler %d finished it", seq, a)
		}
	}
	h.next = seq + 1
	if ev.producer >= 0 && ev.producer < len(h.nextIndex) {
		h.nextIndex[ev.producer] = ev.index + 1
	}
	ev.stamps[h.id] = seq + 1
	return nil
}

type modelScenario struct {
	ringSize     int
	producers    int
	producerType ProducerType
	perProducer  int
	maxClaim     int64
	maxBatch     int
	strategy     string
	steps        []modelStep
}

// modelStep adds handlers: behind the publisher, behind the previous group
// (Then) or behind a chosen set (After).
type modelStep struct {
	kind     string // "publisher", "then", "after"
	upstream []int
	handlers []int
}

func (s modelScenario) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ring=%d producers=%d(%v) events/producer=%d claim<=%d maxBatch=%d wait=%s graph=",
		s.ringSize, s.producers, s.producerType, s.perProducer, s.maxClaim, s.maxBatch, s.strategy)
	for _, st := range s.steps {
		fmt.Fprintf(&b, "[%s %v->%v]", st.kind, st.upstream, st.handlers)
	}
	return b.String()
}

var modelStrategies = map[string]func() WaitStrategy{
	"BusySpin": NewBusySpinWaitStrategy,
	"Yielding": NewYieldingWaitStrategy,
	"Sleeping": func() WaitStrategy { return NewSleepingWaitStrategy(20 * time.Microsecond) },
	"Blocking": NewBlockingWaitStrategy,
	"TimeoutBlocking": func() WaitStrategy {
		return NewTimeoutBlockingWaitStrategy(200 * time.Microsecond)
	},
	"PhasedBackoff": func() WaitStrategy {
		return NewPhasedBackoffWaitStrategy(time.Microsecond, 5*time.Microsecond, NewBlockingWaitStrategy())
	},
}

func randomScenario(rng *rand.Rand, perProducer int) modelScenario {
	s := modelScenario{
		ringSize:    1 << rng.IntN(4), // 1..8
		producers:   1 + rng.IntN(4),
		perProducer: perProducer,
		maxBatch:    []int{0, 0, 1, 3}[rng.IntN(4)],
	}
	s.producerType = MultiProducer
	if s.producers == 1 && rng.IntN(2) == 0 {
		s.producerType = SingleProducer
	}
	s.maxClaim = int64(1 + rng.IntN(min(s.ringSize, 3)))

	n := 1 + rng.IntN(maxModelHandlers)
	var last []int
	for created := 0; created < n; {
		k := 1 + rng.IntN(min(2, n-created))
		st := modelStep{}
		for i := 0; i < k; i++ {
			st.handlers = append(st.handlers, created+i)
		}
		switch r := rng.IntN(3); {
		case created == 0 || r == 0:
			st.kind = "publisher"
		case r == 1:
			st.kind, st.upstream = "then", last
		default:
			st.kind = "after"
			st.upstream = append(st.upstream, rng.Perm(created)[:1+rng.IntN(created)]...)
		}
		s.steps = append(s.steps, st)
		last = st.handlers
		created += k
	}

	names := []string{"Yielding", "Sleeping", "Blocking", "TimeoutBlocking", "PhasedBackoff"}
	if s.producers == 1 && n == 1 {
		names = append(names, "BusySpin") // spinning needs a core per goroutine
	}
	s.strategy = names[rng.IntN(len(names))]
	if s.strategy == "Sleeping" {
		// A sleeping consumer costs a timer sleep per lap of a tiny ring.
		s.perProducer = max(perProducer/4, 1)
	}
	return s
}

func runModelScenario(t *testing.T, s modelScenario, seed uint64) {
	t.Helper()
	d, err := New(func() modelEvent { return modelEvent{seq: -1} }, &Options{
		RingSize:     s.ringSize,
		Producer:     s.producerType,
		WaitStrategy: modelStrategies[s.strategy](),
		MaxBatchSize: s.maxBatch,
	})
	require.NoError(t, err)

	var handlers []*modelHandler
	ancestors := map[int]map[int]bool{}
	var last *HandlerGroup[modelEvent]
	for _, st := range s.steps {
		var hs []EventHandler[modelEvent]
		for _, id := range st.handlers {
			anc := map[int]bool{}
			for _, u := range st.upstream {
				anc[u] = true
				for a := range ancestors[u] {
					anc[a] = true
				}
			}
			ancestors[id] = anc
			h := &modelHandler{id: id, maxBatch: int64(s.maxBatch), nextIndex: make([]int64, s.producers)}
			for a := range anc {
				h.ancestors = append(h.ancestors, a)
			}
			handlers = append(handlers, h)
			hs = append(hs, h)
		}
		switch st.kind {
		case "publisher":
			last = d.HandleEventsWith(hs...)
		case "then":
			last = last.Then(hs...)
		case "after":
			var ups []EventHandler[modelEvent]
			for _, u := range st.upstream {
				ups = append(ups, handlers[u])
			}
			last = d.After(ups...).HandleEventsWith(hs...)
		}
		require.NoError(t, last.Err())
	}
	require.NoError(t, d.Start())

	var wg sync.WaitGroup
	for p := range s.producers {
		rng := rand.New(rand.NewPCG(seed, uint64(p)))
		wg.Go(func() {
			for index := int64(0); index < int64(s.perProducer); {
				n := min(1+rng.Int64N(s.maxClaim), int64(s.perProducer)-index)
				var hi int64
				var err error
				if rng.IntN(4) == 0 {
					for hi, err = d.TryNext(n); errors.Is(err, ErrInsufficientCapacity); hi, err = d.TryNext(n) {
						runtime.Gosched()
					}
				} else {
					hi, err = d.Next(n)
				}
				if !assert.NoError(t, err) {
					return
				}
				for seq := hi - n + 1; seq <= hi; seq++ {
					*d.Get(seq) = modelEvent{seq: seq, producer: p, index: index}
					index++
				}
				if !assert.NoError(t, d.Publish(hi-n+1, hi)) {
					return
				}
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, d.Shutdown(ctx), "shutdown did not drain: a hang")

	total := int64(s.producers * s.perProducer)
	for _, h := range handlers {
		require.NoError(t, h.failure)
		assert.Equal(t, total, h.next, "handler %d saw %d of %d events", h.id, h.next, total)
		for p, n := range h.nextIndex {
			assert.Equal(t, int64(s.perProducer), n, "handler %d, producer %d", h.id, p)
		}
	}
}

func TestModelRandomTopologies(t *testing.T) {
	scenarios, perProducer := 100, 1000
	if testing.Short() {
		scenarios, perProducer = 40, 300
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("BADBATCH_DISRUPTOR_SEED"); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed=%d scenarios=%d events/producer=%d (rerun with BADBATCH_DISRUPTOR_SEED=%d)",
		seed, scenarios, perProducer, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for i := range scenarios {
		s := randomScenario(rng, perProducer)
		caseSeed := rng.Uint64()
		t.Run(fmt.Sprintf("case=%d", i), func(t *testing.T) {
			t.Log(s)
			runModelScenario(t, s, caseSeed)
		})
	}
}

// TestModelFixedTopologies runs the shapes the storage layer and the
// benchmarks use, with every wait strategy.
func TestModelFixedTopologies(t *testing.T) {
	perProducer := 5000
	if testing.Short() {
		perProducer = 500
	}
	t.Logf("events/producer=%d", perProducer)
	shapes := map[string][]modelStep{
		"journal+replicate->business": {
			{kind: "publisher", handlers: []int{0, 1}},
			{kind: "then", upstream: []int{0, 1}, handlers: []int{2}},
		},
		"pipeline3": {
			{kind: "publisher", handlers: []int{0}},
			{kind: "then", upstream: []int{0}, handlers: []int{1}},
			{kind: "then", upstream: []int{1}, handlers: []int{2}},
		},
		"after a,b -> c; after c,a -> d": {
			{kind: "publisher", handlers: []int{0, 1}},
			{kind: "after", upstream: []int{0, 1}, handlers: []int{2}},
			{kind: "after", upstream: []int{2, 0}, handlers: []int{3}},
		},
	}
	for name, steps := range shapes {
		for _, strategy := range []string{"Yielding", "Sleeping", "Blocking", "TimeoutBlocking", "PhasedBackoff"} {
			t.Run(name+"/"+strategy, func(t *testing.T) {
				runModelScenario(t, modelScenario{
					ringSize: 4, producers: 3, producerType: MultiProducer, perProducer: perProducer,
					maxClaim: 2, strategy: strategy, steps: steps,
				}, 1)
			})
		}
	}
}
