package disruptor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Disruptor states.
const (
	disruptorConfiguring = iota // DSL calls allowed
	disruptorRunning            // processors started
	disruptorHalted             // terminal
)

// Disruptor owns a ring, the processors of a handler graph and their
// goroutines. Build the graph with the DSL (HandleEventsWith, After, Then),
// then Start; producers use Next/TryNext, Get and Publish; Shutdown drains
// and stops, Halt stops at once.
//
// A Disruptor is safe for concurrent use by any number of producers
// (MultiProducer) and by concurrent Start, Shutdown, Halt, Abort and Err
// calls. DSL and exception-handler calls are for before Start.
type Disruptor[T any] struct {
	ring   *RingBuffer[T]
	opts   Options
	logger *slog.Logger
	cause  atomic.Pointer[error] // first fatal cause, sticky
	wg     sync.WaitGroup        // one per processor goroutine

	mu struct {
		sync.Mutex
		state      int
		entries    []*handlerEntry[T] // in registration order
		dslErr     error              // DSL misuse, returned by Start
		defaultEH  ExceptionHandler[T]
		leafCount  int
		leafSeqs   []*Sequence // set by Start
		processors []*BatchEventProcessor[T]
		// placeholder gates producers until the first handler is
		// registered, so that nothing published before can be overwritten.
		placeholder *Sequence
	}
}

// handlerEntry is one registered handler and its processor.
type handlerEntry[T any] struct {
	handler          EventHandler[T]
	processor        *BatchEventProcessor[T]
	exceptionHandler ExceptionHandler[T] // nil: the default
	leaf             bool                // nothing depends on it: gates producers
}

// New returns a disruptor with a ring of opts.RingSize slots, each
// initialised by factory (the zero T when nil). nil opts means
// DefaultOptions(); opts is copied, never modified.
func New[T any](factory func() T, opts *Options) (*Disruptor[T], error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	ring, err := newRingBuffer(o.RingSize, factory, o.Producer, o.WaitStrategy)
	if err != nil {
		return nil, err
	}
	d := &Disruptor[T]{ring: ring, opts: o, logger: o.Logger}
	d.mu.placeholder = NewSequence(InitialSequenceValue)
	ring.AddGatingSequences(d.mu.placeholder)
	return d, nil
}

// RingBuffer is the disruptor's ring.
func (d *Disruptor[T]) RingBuffer() *RingBuffer[T] { return d.ring }

// Next claims n slots; see RingBuffer.Next.
func (d *Disruptor[T]) Next(n int64) (hi int64, err error) { return d.ring.seq.next(n) }

// TryNext claims n slots without waiting; see RingBuffer.TryNext.
func (d *Disruptor[T]) TryNext(n int64) (hi int64, err error) { return d.ring.seq.tryNext(n) }

// Publish publishes a claimed range; see RingBuffer.Publish.
func (d *Disruptor[T]) Publish(lo, hi int64) error { return d.ring.seq.publish(lo, hi) }

// Get returns the slot of seq; see RingBuffer.Get.
func (d *Disruptor[T]) Get(seq int64) *T { return d.ring.Get(seq) }

// Start launches one goroutine per handler. It returns the DSL misuse
// recorded before (ErrHandlerReused, ErrUnknownHandler, ErrNilHandler,
// ErrNoHandlers, ErrStarted, joined), ErrAlreadyStarted on a second call and
// ErrHalted after Halt, Shutdown or Abort.
func (d *Disruptor[T]) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch d.mu.state {
	case disruptorRunning:
		return ErrAlreadyStarted
	case disruptorHalted:
		return ErrHalted
	}
	if d.mu.dslErr != nil {
		return d.mu.dslErr
	}
	if len(d.mu.entries) == 0 {
		return ErrNoHandlers
	}
	defaultEH := d.mu.defaultEH
	if defaultEH == nil {
		defaultEH = NewFatalExceptionHandler[T](d.logger, d.Abort)
	}
	for _, e := range d.mu.entries {
		eh := e.exceptionHandler
		if eh == nil {
			eh = defaultEH
		}
		p := e.processor
		p.mu.Lock()
		p.mu.config = processorConfig[T]{
			exceptionHandler:  eh,
			maxBatch:          int64(d.opts.MaxBatchSize),
			gatesProducers:    e.leaf,
			signalsDownstream: !e.leaf,
			abort:             d.Abort,
		}
		p.mu.Unlock()
		if e.leaf {
			d.mu.leafSeqs = append(d.mu.leafSeqs, p.sequence)
		}
		d.mu.processors = append(d.mu.processors, p)
	}
	d.mu.state = disruptorRunning
	for _, p := range d.mu.processors {
		d.wg.Go(func() { _ = p.Run() })
	}
	return nil
}

// Halt stops every processor after its batch in progress, makes producers'
// claims (including those waiting on a full ring) fail with ErrHalted, and
// waits for every goroutine of the disruptor. Events published and not yet
// handled are dropped. Idempotent and safe from any goroutine except a
// handler's own (it would wait for itself; use Abort there).
func (d *Disruptor[T]) Halt() {
	d.haltAsync()
	d.wg.Wait()
}

// Abort is Halt without the wait, recording cause (the first wins) as
// Err. It is safe from handlers and exception handlers; the default
// exception handler calls it. Call Halt or Shutdown afterwards to join the
// goroutines.
func (d *Disruptor[T]) Abort(cause error) {
	if cause == nil {
		cause = ErrHalted
	}
	d.cause.CompareAndSwap(nil, &cause)
	d.haltAsync()
}

func (d *Disruptor[T]) haltAsync() {
	d.mu.Lock()
	d.mu.state = disruptorHalted
	processors := d.mu.processors
	d.mu.Unlock()
	d.ring.seq.halt()
	for _, p := range processors {
		p.Halt()
	}
}

// Err is the cause of a fatal handler error (or of Abort), nil otherwise.
func (d *Disruptor[T]) Err() error {
	if c := d.cause.Load(); c != nil {
		return *c
	}
	return nil
}

// Shutdown seals the ring (later claims fail with ErrHalted), waits until
// every handler has processed every event claimed before the seal, then stops
// the processors and waits for their goroutines. Producers need not stop
// first: every Publish that returned nil is handled by every handler, and
// every event is handled by all handlers or by none.
//
// If ctx ends first, Shutdown halts and returns an error wrapping ctx.Err()
// at once, without waiting: a processor stops as soon as its handler returns
// from the event in progress, and Halt waits for that. If the disruptor is
// halted or fails meanwhile, Shutdown returns Err() or ErrHalted. Before
// Start it only marks the disruptor halted. Safe to call more than once and
// concurrently with Halt.
func (d *Disruptor[T]) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	state := d.mu.state
	leaves := d.mu.leafSeqs
	if state == disruptorConfiguring {
		d.mu.state = disruptorHalted
	}
	d.mu.Unlock()

	if state == disruptorRunning {
		if err := d.drainAll(ctx, leaves); err != nil {
			if ctx.Err() != nil {
				d.haltAsync()
			} else {
				d.Halt()
			}
			return err
		}
	}
	d.Halt()
	return d.Err()
}

// drainAll seals the ring and drains it. A MultiProducer drain target is
// fixed at the seal. A SingleProducer's may still rise (its producer may
// publish a claim made before the seal), so drainAll drains to the published
// cursor, then stops the ring (which marks that cursor: later publishes fail
// and are not published), then drains once more to the cursor as marked.
// Either way the processors are halted only with nothing visible left
// unhandled, so Shutdown never leaves an event handled by some handlers and
// not others.
func (d *Disruptor[T]) drainAll(ctx context.Context, leaves []*Sequence) error {
	seq := &d.ring.seq
	target := seq.seal()
	stopped := false
	for {
		if err := d.drain(ctx, leaves, target); err != nil {
			return err
		}
		seq.markDrained(target)
		if next := seq.drainTarget(target); next > target {
			target = next
			continue
		}
		if stopped {
			return nil
		}
		seq.stop()
		stopped = true
	}
}

// drain waits until every leaf sequence reaches target. Leaves are the last
// handlers of every path, so every handler is then done with target.
func (d *Disruptor[T]) drain(ctx context.Context, leaves []*Sequence, target int64) error {
	const maxBackoff = time.Millisecond
	backoff := 10 * time.Microsecond
	timer := time.NewTimer(backoff)
	defer timer.Stop()
	for {
		if minimumSequence(leaves, target) >= target {
			return nil
		}
		if d.ring.seq.state.Load() == ringHalted {
			if cause := d.Err(); cause != nil {
				return cause
			}
			return ErrHalted
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("disruptor: shutdown did not drain (sequence %d of %d): %w",
				minimumSequence(leaves, target), target, ctx.Err())
		case <-timer.C:
		}
		backoff = min(2*backoff, maxBackoff)
		timer.Reset(backoff)
	}
}
