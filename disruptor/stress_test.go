package disruptor

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMultiProducerStress: 8 producers on a ring of 8 slots, with the
// storage layer's shape (two parallel handlers, then one behind both), mixed
// claim sizes and Next/TryNext, checked by the model handlers.
func TestMultiProducerStress(t *testing.T) {
	perProducer := 20000
	if testing.Short() {
		perProducer = 600
	}
	t.Logf("8 producers x %d events", perProducer)
	for _, strategy := range []string{"Blocking", "PhasedBackoff", "Yielding"} {
		t.Run("wait="+strategy, func(t *testing.T) {
			runModelScenario(t, modelScenario{
				ringSize: 8, producers: 8, producerType: MultiProducer, perProducer: perProducer,
				maxClaim: 3, strategy: strategy,
				steps: []modelStep{
					{kind: "publisher", handlers: []int{0, 1}},
					{kind: "then", upstream: []int{0, 1}, handlers: []int{2}},
				},
			}, uint64(perProducer))
		})
	}
}

// crashCycles is the number of start/publish/stop cycles: the env var
// BADBATCH_CRASH_CYCLES when set, else long (or short with -short).
func crashCycles(t *testing.T, long, short int) int {
	t.Helper()
	n := long
	if testing.Short() {
		n = short
	}
	if v := os.Getenv("BADBATCH_CRASH_CYCLES"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(t, err, "BADBATCH_CRASH_CYCLES")
	}
	return n
}

// ackHandler reports every sequence it handles on acks.
type ackHandler struct{ acks chan int64 }

func (h *ackHandler) OnEvent(_ *int64, seq int64, _ bool) error {
	h.acks <- seq
	return nil
}

// TestBlockingNoLostWakeups runs many start, publish and stop cycles with
// the Blocking strategy, where every event must wake parked consumers (and
// every consumed slot must wake parked producers). In ping-pong cycles the
// producer publishes one event and waits for the last handler's ack, so
// every publish meets parked consumers; in burst cycles producers race
// each other on a 2-slot ring. A lost wake-up parks someone for ever, which
// the deadlines turn into failures.
func TestBlockingNoLostWakeups(t *testing.T) {
	cycles := crashCycles(t, 2000, 300)
	t.Logf("cycles=%d", cycles)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for cycle := 0; cycle < cycles; cycle++ {
		events := 1 + rng.IntN(20)
		if cycle%2 == 0 {
			pingPongCycle(t, events)
		} else {
			burstCycle(t, events, 1+rng.IntN(3))
		}
		if t.Failed() {
			t.Fatalf("cycle %d failed", cycle)
		}
	}
}

func pingPongCycle(t *testing.T, events int) {
	t.Helper()
	d, err := New[int64](nil, &Options{RingSize: 4, WaitStrategy: NewBlockingWaitStrategy()})
	require.NoError(t, err)
	last := &ackHandler{acks: make(chan int64, events)}
	d.HandleEventsWith(newSeqHandler("first")).Then(last)
	require.NoError(t, d.Start())
	for i := 0; i < events; i++ {
		hi, err := d.Next(1)
		require.NoError(t, err)
		require.NoError(t, d.Publish(hi, hi))
		select {
		case seq := <-last.acks:
			require.Equal(t, hi, seq)
		case <-time.After(hangDeadline):
			d.Halt()
			t.Fatalf("event %d never reached the last handler: lost wake-up", hi)
		}
	}
	shutdown(t, d)
}

func burstCycle(t *testing.T, events, producers int) {
	t.Helper()
	d, err := New[int64](nil, &Options{RingSize: 2, WaitStrategy: NewBlockingWaitStrategy()})
	require.NoError(t, err)
	a, b := newSeqHandler("a"), newSeqHandler("b")
	d.HandleEventsWith(a).Then(b)
	require.NoError(t, d.Start())
	var wg sync.WaitGroup
	for range producers {
		wg.Go(func() {
			for i := 0; i < events; i++ {
				hi, err := d.Next(1)
				if !assert.NoError(t, err) {
					return
				}
				assert.NoError(t, d.Publish(hi, hi))
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(hangDeadline):
		d.Halt()
		<-done
		t.Fatal("producers stuck on a full ring: lost wake-up")
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	require.NoError(t, d.Shutdown(ctx), "drain stuck: lost wake-up")
	assert.Len(t, b.sequences(), events*producers)
}

// TestPublishDuringShutdownIsNotRefused: with MultiProducer, Shutdown
// drains every claim made before its seal, so a Publish of such a claim must
// return nil however late it runs: the drain waits for it, and once the drain
// has seen it handled, the stop that follows must not make Publish report
// ErrHalted. (Publish used to read the ring's state after storing its range
// and report ErrHalted when the whole drain and stop fit between the store
// and that load, which a loaded machine makes likely.) Producers yield a
// random number of times before publishing, so that their publishes land
// before, during and after the drain.
func TestPublishDuringShutdownIsNotRefused(t *testing.T) {
	cycles := crashCycles(t, 1000, 200)
	t.Logf("cycles=%d", cycles)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	for cycle := 0; cycle < cycles; cycle++ {
		d, err := New[int64](nil, &Options{RingSize: 8})
		require.NoError(t, err)
		a, b := newSeqHandler("a"), newSeqHandler("b")
		d.HandleEventsWith(a).Then(b)
		require.NoError(t, d.Start())
		producers := 1 + rng.IntN(3)
		claims := make([]int64, producers)
		yields := make([]int, producers)
		for p := range producers {
			claims[p], err = d.Next(1)
			require.NoError(t, err)
			yields[p] = rng.IntN(50)
		}
		var wg sync.WaitGroup
		errs := make([]error, producers)
		for p := range producers {
			wg.Go(func() {
				for range yields[p] {
					runtimeGosched()
				}
				errs[p] = d.Publish(claims[p], claims[p])
			})
		}
		ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
		err = d.Shutdown(ctx)
		cancel()
		wg.Wait()
		require.NoError(t, err, "cycle %d", cycle)
		for p := range producers {
			require.NoError(t, errs[p], "cycle %d: Publish(%d) of a claim made before the seal", cycle, claims[p])
		}
		assert.Len(t, b.sequences(), producers, "cycle %d", cycle)
	}
}
