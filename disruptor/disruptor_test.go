package disruptor

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seqHandler records the sequences it sees; it can fail at one sequence
// and can hold every event until release is closed.
type seqHandler struct {
	name    string
	failAt  int64
	release chan struct{} // nil: never hold
	entered atomic.Int64  // events entered (for tests waiting on a held handler)
	mu      sync.Mutex
	seen    []int64
}

func newSeqHandler(name string) *seqHandler { return &seqHandler{name: name, failAt: -1} }

func (h *seqHandler) OnEvent(ev *int64, seq int64, _ bool) error {
	h.entered.Add(1)
	if h.release != nil {
		<-h.release
	}
	h.mu.Lock()
	h.seen = append(h.seen, seq)
	h.mu.Unlock()
	if seq == h.failAt {
		return errFail
	}
	return nil
}

func (h *seqHandler) sequences() []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int64(nil), h.seen...)
}

func newTestDisruptor(t *testing.T, opts *Options) *Disruptor[int64] {
	t.Helper()
	d, err := New[int64](nil, opts)
	require.NoError(t, err)
	return d
}

func publishN(t *testing.T, d *Disruptor[int64], n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		hi, err := d.Next(1)
		require.NoError(t, err)
		*d.Get(hi) = hi
		require.NoError(t, d.Publish(hi, hi))
	}
}

func shutdown(t *testing.T, d *Disruptor[int64]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
	defer cancel()
	require.NoError(t, d.Shutdown(ctx))
}

func TestNewOptions(t *testing.T) {
	t.Run("nil options take the defaults", func(t *testing.T) {
		d := newTestDisruptor(t, nil)
		assert.Equal(t, int64(DefaultRingSize), d.RingBuffer().Size())
		assert.False(t, d.ring.seq.single, "MultiProducer by default")
		assert.IsType(t, &blockingWaitStrategy{}, d.RingBuffer().WaitStrategy())
	})
	t.Run("options are not modified", func(t *testing.T) {
		opts := &Options{RingSize: 16, Producer: SingleProducer}
		before := *opts
		d := newTestDisruptor(t, opts)
		assert.Equal(t, before, *opts)
		assert.Equal(t, int64(16), d.RingBuffer().Size())
		assert.True(t, d.ring.seq.single)
	})
	t.Run("defaults are fresh values", func(t *testing.T) {
		a, b := DefaultOptions(), DefaultOptions()
		assert.NotSame(t, a, b)
		a.RingSize = 2
		assert.Equal(t, DefaultRingSize, b.RingSize)
	})
	tests := []struct {
		name string
		opts Options
		want error
	}{
		{"ring size not a power of two", Options{RingSize: 100}, ErrNotPowerOfTwo},
		{"negative ring size", Options{RingSize: -8}, ErrNotPowerOfTwo},
		{"negative max batch", Options{MaxBatchSize: -1}, ErrInvalidOptions},
		{"unknown producer type", Options{Producer: 9}, ErrInvalidOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New[int64](nil, &tt.opts)
			assert.ErrorIs(t, err, tt.want)
			_, err = NewRingBufferWithOptions[int64](nil, &tt.opts)
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

// TestDSLMisuse: every misuse of the DSL is a clear error from Start (or
// from the call, after Start), never a hang.
func TestDSLMisuse(t *testing.T) {
	a, b := newSeqHandler("a"), newSeqHandler("b")
	tests := []struct {
		name  string
		build func(d *Disruptor[int64]) error // error of the call itself, if any
		want  error
	}{
		{"no handlers", func(d *Disruptor[int64]) error { return nil }, ErrNoHandlers},
		{"empty HandleEventsWith", func(d *Disruptor[int64]) error { return d.HandleEventsWith().Err() }, ErrNoHandlers},
		{"nil handler", func(d *Disruptor[int64]) error { return d.HandleEventsWith(a, nil).Err() }, ErrNilHandler},
		{"same handler twice in one call", func(d *Disruptor[int64]) error { return d.HandleEventsWith(a, a).Err() }, ErrHandlerReused},
		{"same handler in two calls", func(d *Disruptor[int64]) error {
			d.HandleEventsWith(a)
			return d.HandleEventsWith(a).Err()
		}, ErrHandlerReused},
		{"same handler downstream", func(d *Disruptor[int64]) error { return d.HandleEventsWith(a).Then(a).Err() }, ErrHandlerReused},
		{"After an unknown handler", func(d *Disruptor[int64]) error {
			d.HandleEventsWith(a)
			return d.After(b).HandleEventsWith(newSeqHandler("c")).Err()
		}, ErrUnknownHandler},
		{"exception handler for an unknown handler", func(d *Disruptor[int64]) error {
			d.HandleEventsWith(a)
			err := d.SetExceptionHandler(b, NewLoggingExceptionHandler[int64](nil))
			if !errors.Is(err, ErrUnknownHandler) {
				return errors.New("SetExceptionHandler accepted an unknown handler")
			}
			return err
		}, nil},
		{"nil exception handler", func(d *Disruptor[int64]) error {
			d.HandleEventsWith(a)
			if !errors.Is(d.SetExceptionHandler(a, nil), ErrNilHandler) ||
				!errors.Is(d.SetDefaultExceptionHandler(nil), ErrNilHandler) {
				return errors.New("nil exception handler accepted")
			}
			return ErrNilHandler
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDisruptor(t, &Options{RingSize: 8})
			callErr := tt.build(d)
			startErr := d.Start()
			defer d.Halt()
			if tt.want != nil {
				if tt.name != "no handlers" {
					assert.ErrorIs(t, callErr, tt.want, "the group's Err")
				}
				assert.ErrorIs(t, startErr, tt.want, "Start returns the recorded misuse")
			} else {
				assert.Error(t, callErr)
				assert.NoError(t, startErr)
			}
		})
	}
}

func TestLifecycleMisuse(t *testing.T) {
	t.Run("start twice", func(t *testing.T) {
		d := newTestDisruptor(t, &Options{RingSize: 8})
		d.HandleEventsWith(newSeqHandler("a"))
		require.NoError(t, d.Start())
		assert.ErrorIs(t, d.Start(), ErrAlreadyStarted)
		shutdown(t, d)
		assert.ErrorIs(t, d.Start(), ErrHalted)
	})
	t.Run("changes after start", func(t *testing.T) {
		d := newTestDisruptor(t, &Options{RingSize: 8})
		a := newSeqHandler("a")
		d.HandleEventsWith(a)
		require.NoError(t, d.Start())
		defer d.Halt()
		assert.ErrorIs(t, d.HandleEventsWith(newSeqHandler("b")).Err(), ErrStarted)
		assert.ErrorIs(t, d.After(a).Err(), ErrStarted)
		assert.ErrorIs(t, d.SetExceptionHandler(a, NewLoggingExceptionHandler[int64](nil)), ErrStarted)
		assert.ErrorIs(t, d.SetDefaultExceptionHandler(NewLoggingExceptionHandler[int64](nil)), ErrStarted)
		assert.Len(t, d.mu.entries, 1, "nothing was added")
	})
	t.Run("halt before start", func(t *testing.T) {
		d := newTestDisruptor(t, &Options{RingSize: 8})
		d.HandleEventsWith(newSeqHandler("a"))
		d.Halt()
		d.Halt()
		assert.ErrorIs(t, d.Start(), ErrHalted)
		_, err := d.Next(1)
		assert.ErrorIs(t, err, ErrHalted)
	})
	t.Run("shutdown before start", func(t *testing.T) {
		d := newTestDisruptor(t, &Options{RingSize: 8})
		d.HandleEventsWith(newSeqHandler("a"))
		assert.NoError(t, d.Shutdown(context.Background()))
		assert.ErrorIs(t, d.Start(), ErrHalted)
	})
}

// TestOnlyLeavesGate checks that producers wait only for the last handlers
// of each path: a then b, c -> gating {b, c}; then a diamond.
func TestOnlyLeavesGate(t *testing.T) {
	d := newTestDisruptor(t, &Options{RingSize: 8})
	a, b, c, e := newSeqHandler("a"), newSeqHandler("b"), newSeqHandler("c"), newSeqHandler("e")
	g := d.HandleEventsWith(a)
	g.Then(b)
	d.HandleEventsWith(c)
	gating := func() []*Sequence { return *d.ring.seq.gating.Load() }
	seqOf := func(h *seqHandler) *Sequence { return d.findLocked(h).processor.Sequence() }
	assert.ElementsMatch(t, []*Sequence{seqOf(b), seqOf(c)}, gating())
	d.After(b, c).HandleEventsWith(e)
	assert.ElementsMatch(t, []*Sequence{seqOf(e)}, gating())
	require.NoError(t, d.Start())
	publishN(t, d, 20)
	shutdown(t, d)
	for _, h := range []*seqHandler{a, b, c, e} {
		assert.Len(t, h.sequences(), 20, h.name)
	}
}

// TestPublishBeforeHandlers: events published before any handler is
// registered are held (the ring fills and then refuses), never overwritten,
// and the handlers added later see them all.
func TestPublishBeforeHandlers(t *testing.T) {
	for _, pt := range producerTypes {
		t.Run(pt.String(), func(t *testing.T) {
			d := newTestDisruptor(t, &Options{RingSize: 4, Producer: pt})
			hi, err := d.TryNext(4)
			require.NoError(t, err)
			for seq := hi - 3; seq <= hi; seq++ {
				*d.Get(seq) = seq * 10
			}
			require.NoError(t, d.Publish(hi-3, hi))
			_, err = d.TryNext(1)
			require.ErrorIs(t, err, ErrInsufficientCapacity, "a full ring, not an overwrite")
			h := &valueHandler{}
			d.HandleEventsWith(h)
			require.NoError(t, d.Start())
			publishN(t, d, 4)
			shutdown(t, d)
			assert.Equal(t, []int64{0, 10, 20, 30, 4, 5, 6, 7}, h.values)
		})
	}
}

// valueHandler records event values.
type valueHandler struct{ values []int64 }

func (h *valueHandler) OnEvent(ev *int64, _ int64, _ bool) error {
	h.values = append(h.values, *ev)
	return nil
}

// TestShutdownDrains: everything published before Shutdown is handled by
// every handler, and claims after it fail.
func TestShutdownDrains(t *testing.T) {
	for _, pt := range producerTypes {
		t.Run(pt.String(), func(t *testing.T) {
			d := newTestDisruptor(t, &Options{RingSize: 4, Producer: pt})
			a, b, c := newSeqHandler("a"), newSeqHandler("b"), newSeqHandler("c")
			d.HandleEventsWith(a, b).Then(c)
			require.NoError(t, d.Start())
			publishN(t, d, 50)
			shutdown(t, d)
			for _, h := range []*seqHandler{a, b, c} {
				assert.Len(t, h.sequences(), 50, h.name)
			}
			_, err := d.Next(1)
			assert.ErrorIs(t, err, ErrHalted)
			_, err = d.TryNext(1)
			assert.ErrorIs(t, err, ErrHalted)
			assert.NoError(t, d.Shutdown(context.Background()), "idempotent")
		})
	}
}

// TestShutdownHonoursContext: a handler that does not finish makes
// Shutdown return the context's error promptly; Halt then joins the
// goroutines once the handler returns.
func TestShutdownHonoursContext(t *testing.T) {
	d := newTestDisruptor(t, &Options{RingSize: 4})
	h := newSeqHandler("stuck")
	h.release = make(chan struct{})
	d.HandleEventsWith(h)
	require.NoError(t, d.Start())
	publishN(t, d, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := d.Shutdown(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	_, err = d.Next(1)
	assert.ErrorIs(t, err, ErrHalted, "halted after the context expired")
	close(h.release)
	d.Halt() // joins; goleak checks that nothing is left
	assert.LessOrEqual(t, len(h.sequences()), 2)
}

// TestHaltWakesProducerOnFullRing: the storage layer relies on a producer
// blocked on a full ring waking with ErrHalted.
func TestHaltWakesProducerOnFullRing(t *testing.T) {
	for _, stop := range []string{"Halt", "Shutdown"} {
		t.Run(stop, func(t *testing.T) {
			d := newTestDisruptor(t, &Options{RingSize: 4})
			h := newSeqHandler("stuck")
			h.release = make(chan struct{})
			d.HandleEventsWith(h)
			require.NoError(t, d.Start())
			publishN(t, d, 4)
			errc := make(chan error, 1)
			go func() {
				_, err := d.Next(1)
				errc <- err
			}()
			waitUntil(t, func() bool { return d.ring.seq.capacity.waiting.Load() > 0 })
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				if stop == "Halt" {
					d.Halt()
				} else {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
					defer cancel()
					_ = d.Shutdown(ctx)
				}
			}()
			select {
			case err := <-errc:
				assert.ErrorIs(t, err, ErrHalted)
			case <-time.After(hangDeadline):
				t.Fatal("producer blocked on a full ring did not wake")
			}
			close(h.release)
			<-stopped
			d.Halt()
		})
	}
}

// TestFatalByDefault: the default exception policy logs, halts the whole
// disruptor, fails producers with ErrHalted and reports the cause; the
// failed event never reaches dependent handlers.
func TestFatalByDefault(t *testing.T) {
	var logs bytes.Buffer
	d := newTestDisruptor(t, &Options{RingSize: 8, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	journal, replicate, business := newSeqHandler("journal"), newSeqHandler("replicate"), newSeqHandler("business")
	journal.failAt = 5
	d.HandleEventsWith(journal, replicate).Then(business)
	require.NoError(t, d.Start())

	var producerErr error
	for i := 0; i < 1000; i++ {
		hi, err := d.Next(1)
		if err != nil {
			producerErr = err
			break
		}
		if err := d.Publish(hi, hi); err != nil {
			producerErr = err
			break
		}
	}
	require.ErrorIs(t, producerErr, ErrHalted, "producers are stopped")
	err := d.Shutdown(context.Background())
	require.ErrorIs(t, err, errFail)
	require.ErrorIs(t, d.Err(), errFail)
	assert.Contains(t, d.Err().Error(), "sequence 5")
	for _, seq := range business.sequences() {
		assert.Less(t, seq, int64(5), "business saw an event the journal failed")
	}
	assert.Contains(t, logs.String(), "handler failure")
	assert.Contains(t, logs.String(), "level=ERROR")
}

func TestExceptionPolicies(t *testing.T) {
	type report struct {
		handler string
		seq     int64
	}
	tests := []struct {
		name     string
		setup    func(d *Disruptor[int64], a, b *seqHandler, reports *[]report, mu *sync.Mutex) error
		wantLogs bool
	}{
		{"default log and continue", func(d *Disruptor[int64], a, b *seqHandler, _ *[]report, _ *sync.Mutex) error {
			return d.SetDefaultExceptionHandler(NewLoggingExceptionHandler[int64](d.logger))
		}, true},
		{"custom per handler", func(d *Disruptor[int64], a, b *seqHandler, reports *[]report, mu *sync.Mutex) error {
			for _, h := range []*seqHandler{a, b} {
				err := d.SetExceptionHandler(h, ExceptionHandlerFuncs[int64]{Event: func(err error, seq int64, _ *int64) {
					mu.Lock()
					*reports = append(*reports, report{h.name, seq})
					mu.Unlock()
				}})
				if err != nil {
					return err
				}
			}
			return nil
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			d := newTestDisruptor(t, &Options{RingSize: 8, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			a, b := newSeqHandler("a"), newSeqHandler("b")
			a.failAt, b.failAt = 3, 7
			d.HandleEventsWith(a).Then(b)
			var reports []report
			var mu sync.Mutex
			require.NoError(t, tt.setup(d, a, b, &reports, &mu))
			require.NoError(t, d.Start())
			publishN(t, d, 20)
			shutdown(t, d)
			assert.NoError(t, d.Err())
			assert.Len(t, a.sequences(), 20)
			assert.Len(t, b.sequences(), 20, "the failed event still reaches dependents")
			if tt.wantLogs {
				assert.Equal(t, 2, bytes.Count(logs.Bytes(), []byte("handler failure")))
			} else {
				assert.ElementsMatch(t, []report{{"a", 3}, {"b", 7}}, reports)
			}
		})
	}
}

// TestConcurrentStartAndHalt: Start and Halt from many goroutines at once.
// At most one Start succeeds, the others fail cleanly, nothing leaks.
func TestConcurrentStartAndHalt(t *testing.T) {
	rounds := 200
	if testing.Short() {
		rounds = 50
	}
	t.Logf("rounds=%d", rounds)
	for range rounds {
		d := newTestDisruptor(t, &Options{RingSize: 8})
		d.HandleEventsWith(newSeqHandler("a")).Then(newSeqHandler("b"))
		var wg sync.WaitGroup
		var started atomic.Int32
		startErrs := make(chan error, 4)
		for i := range 8 {
			wg.Go(func() {
				if i%2 == 0 {
					err := d.Start()
					if err == nil {
						started.Add(1)
					} else {
						startErrs <- err
					}
				} else {
					d.Halt()
				}
			})
		}
		wg.Wait()
		close(startErrs)
		assert.LessOrEqual(t, started.Load(), int32(1))
		for err := range startErrs {
			assert.True(t, errors.Is(err, ErrAlreadyStarted) || errors.Is(err, ErrHalted), "unexpected %v", err)
		}
		_, err := d.Next(1)
		assert.ErrorIs(t, err, ErrHalted)
	}
}

// TestHaltAndShutdownWithActiveProducers stops the disruptor while
// producers publish as fast as they can. Every producer ends with ErrHalted,
// nothing hangs, and with Shutdown every event whose Publish returned nil
// was handled by every handler.
func TestHaltAndShutdownWithActiveProducers(t *testing.T) {
	for _, pt := range producerTypes {
		for _, stop := range []string{"Halt", "Shutdown"} {
			t.Run(pt.String()+"/"+stop, func(t *testing.T) {
				producers := 4
				if pt == SingleProducer {
					producers = 1
				}
				d := newTestDisruptor(t, &Options{RingSize: 8, Producer: pt})
				a, b := newSeqHandler("a"), newSeqHandler("b")
				d.HandleEventsWith(a).Then(b)
				require.NoError(t, d.Start())
				var wg sync.WaitGroup
				published := make([][]int64, producers)
				for p := range producers {
					wg.Go(func() {
						for {
							hi, err := d.Next(1)
							if err != nil {
								assert.ErrorIs(t, err, ErrHalted)
								return
							}
							*d.Get(hi) = hi
							if err := d.Publish(hi, hi); err != nil {
								assert.ErrorIs(t, err, ErrHalted)
								return
							}
							published[p] = append(published[p], hi)
						}
					})
				}
				waitUntil(t, func() bool { return len(b.sequences()) >= 100 })
				if stop == "Halt" {
					d.Halt()
				} else {
					shutdown(t, d)
				}
				done := make(chan struct{})
				go func() { wg.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(hangDeadline):
					t.Fatal("producers did not stop")
				}
				if stop == "Shutdown" {
					handled := map[int64]bool{}
					for _, seq := range b.sequences() {
						handled[seq] = true
					}
					for _, seqs := range published {
						for _, seq := range seqs {
							require.True(t, handled[seq], "published %d not handled", seq)
						}
					}
					assert.Equal(t, a.sequences(), b.sequences())
				}
			})
		}
	}
}

// TestClaimBeforeShutdownPublishAfter pins down the two producer types'
// drain rules for a claim made before Shutdown and published after it began:
// MultiProducer drains it (Shutdown waits for the publish), SingleProducer
// refuses it (Publish fails and no handler ever sees it). Either way no event
// is handled by some handlers and not others.
func TestClaimBeforeShutdownPublishAfter(t *testing.T) {
	tests := []struct {
		producer   ProducerType
		wantErr    error
		wantHandle bool
	}{
		{MultiProducer, nil, true},
		{SingleProducer, ErrHalted, false},
	}
	for _, tt := range tests {
		t.Run(tt.producer.String(), func(t *testing.T) {
			d := newTestDisruptor(t, &Options{RingSize: 8, Producer: tt.producer})
			a, b := newSeqHandler("a"), newSeqHandler("b")
			d.HandleEventsWith(a).Then(b)
			require.NoError(t, d.Start())
			publishN(t, d, 3)
			hi, err := d.Next(1)
			require.NoError(t, err)

			done := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), hangDeadline)
				defer cancel()
				done <- d.Shutdown(ctx)
			}()
			if tt.producer == SingleProducer {
				require.NoError(t, <-done, "nothing published is pending")
			} else {
				waitUntil(t, func() bool { return d.ring.seq.state.Load() >= ringSealed })
			}
			err = d.Publish(hi, hi)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			} else {
				assert.NoError(t, err)
				require.NoError(t, <-done)
			}
			want := []int64{0, 1, 2}
			if tt.wantHandle {
				want = append(want, hi)
			}
			assert.Equal(t, want, a.sequences())
			assert.Equal(t, want, b.sequences())
		})
	}
}
