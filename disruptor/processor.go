package disruptor

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Processor states.
const (
	stateIdle       int32 = iota // Run not called yet
	stateRunning                 // inside Run
	stateHaltedIdle              // Halt before Run: Run returns at once
	stateFinished                // Run returned
)

// BatchEventProcessor runs one EventHandler on one goroutine (the caller of
// Run): it waits on its barrier for available sequences, calls
// OnBatchStart(size) and then OnEvent for each event of the batch in order,
// with endOfBatch on the last, then advances its Sequence to the end of the
// batch, which releases the batch to dependent processors and (for leaf
// processors) to producers.
//
// Run is called once. Halt, Sequence and IsRunning are safe for concurrent
// use; the setters are for before Run.
type BatchEventProcessor[T any] struct {
	ring     *RingBuffer[T]
	barrier  *SequenceBarrier
	handler  EventHandler[T]
	sequence *Sequence
	state    atomic.Int32
	cause    atomic.Pointer[error] // standalone fatal error, reported by Run

	mu struct {
		sync.Mutex
		config processorConfig[T]
	}
}

// processorConfig is the part of a processor fixed when Run starts.
type processorConfig[T any] struct {
	exceptionHandler ExceptionHandler[T] // nil: fatal, halting this processor
	maxBatch         int64               // 0: no cap
	// gatesProducers: signal producers parked on a full ring after each
	// batch. signalsDownstream: signal the wait strategy after each batch
	// so that parked dependents wake. Both true for standalone processors;
	// a Disruptor clears the one that cannot matter.
	gatesProducers    bool
	signalsDownstream bool
	abort             func(error) // what an unexpected wait error calls
}

// NewBatchEventProcessor returns a processor for handler that waits on
// barrier (from ring.NewBarrier). Its sequence starts at
// InitialSequenceValue; add it to the ring's gating sequences if producers
// must wait for it. Its default exception handler is fatal: it halts this
// processor and Run returns the cause.
func NewBatchEventProcessor[T any](ring *RingBuffer[T], barrier *SequenceBarrier, handler EventHandler[T]) *BatchEventProcessor[T] {
	p := &BatchEventProcessor[T]{
		ring:     ring,
		barrier:  barrier,
		handler:  handler,
		sequence: NewSequence(InitialSequenceValue),
	}
	p.mu.config = processorConfig[T]{gatesProducers: true, signalsDownstream: true}
	return p
}

// Sequence is the last sequence this processor finished.
func (p *BatchEventProcessor[T]) Sequence() *Sequence { return p.sequence }

// IsRunning reports whether Run is executing.
func (p *BatchEventProcessor[T]) IsRunning() bool { return p.state.Load() == stateRunning }

// SetExceptionHandler replaces the exception handler; ErrAlreadyStarted
// once Run was called, ErrNilHandler for nil.
func (p *BatchEventProcessor[T]) SetExceptionHandler(eh ExceptionHandler[T]) error {
	if eh == nil {
		return fmt.Errorf("%w: exception handler", ErrNilHandler)
	}
	return p.update(func(c *processorConfig[T]) { c.exceptionHandler = eh })
}

// SetMaxBatchSize caps the events per batch (0: no cap); ErrAlreadyStarted
// once Run was called.
func (p *BatchEventProcessor[T]) SetMaxBatchSize(n int) error {
	if n < 0 {
		return fmt.Errorf("%w: max batch size %d < 0", ErrInvalidOptions, n)
	}
	return p.update(func(c *processorConfig[T]) { c.maxBatch = int64(n) })
}

func (p *BatchEventProcessor[T]) update(f func(*processorConfig[T])) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.Load() != stateIdle {
		return ErrAlreadyStarted
	}
	f(&p.mu.config)
	return nil
}

// Halt stops the processor: Run returns after the batch in progress (at
// once if Run has not started). It does not wait and is safe to call from
// any goroutine, including the handler's own.
func (p *BatchEventProcessor[T]) Halt() {
	if p.state.CompareAndSwap(stateIdle, stateHaltedIdle) {
		return
	}
	p.barrier.Alert()
}

// abortSelf is the standalone processor's fatal path.
func (p *BatchEventProcessor[T]) abortSelf(cause error) {
	p.cause.CompareAndSwap(nil, &cause)
	p.Halt()
}

// Run processes events on the calling goroutine until Halt (or a fatal
// exception) and returns nil, or the fatal cause for a standalone processor.
// It calls OnStart first and OnShutdown last when the handler has them.
// ErrAlreadyStarted if Run was called before.
func (p *BatchEventProcessor[T]) Run() error {
	if !p.state.CompareAndSwap(stateIdle, stateRunning) {
		if p.state.CompareAndSwap(stateHaltedIdle, stateFinished) {
			return nil
		}
		return ErrAlreadyStarted
	}
	defer p.state.Store(stateFinished)
	p.mu.Lock()
	cfg := p.mu.config
	p.mu.Unlock()
	if cfg.abort == nil {
		cfg.abort = p.abortSelf
	}
	if cfg.exceptionHandler == nil {
		cfg.exceptionHandler = NewFatalExceptionHandler[T](nil, cfg.abort)
	}

	switch h := p.handler.(type) {
	case StartHandler:
		h.OnStart()
	case StartErrorHandler:
		if err := h.OnStart(); err != nil {
			cfg.exceptionHandler.HandleOnStartException(err)
		}
	}
	p.processEvents(&cfg)
	switch h := p.handler.(type) {
	case ShutdownHandler:
		h.OnShutdown()
	case ShutdownErrorHandler:
		if err := h.OnShutdown(); err != nil {
			cfg.exceptionHandler.HandleOnShutdownException(err)
		}
	}
	if c := p.cause.Load(); c != nil {
		return *c
	}
	return nil
}

// processEvents is the hot loop. It allocates nothing.
func (p *BatchEventProcessor[T]) processEvents(cfg *processorConfig[T]) {
	var (
		ring          = p.ring
		barrier       = p.barrier
		handler       = p.handler
		sequence      = p.sequence
		seqr          = &ring.seq
		eh            = cfg.exceptionHandler
		maxBatch      = cfg.maxBatch
		gates         = cfg.gatesProducers
		downstream    = cfg.signalsDownstream
		batchStart, _ = handler.(BatchStartHandler)
		onTimeout, _  = handler.(TimeoutHandler)
		slices, _     = handler.(SliceHandler[T])
		next          = sequence.Load() + 1
		entries       = ring.entries // hoisted: the handler call hides them from the compiler
		mask          = ring.mask
	)
	release := func(done int64) {
		sequence.Store(done)
		if gates {
			seqr.signalProgress()
		}
		if downstream {
			seqr.signalConsumers()
		}
	}
	for {
		available, err := barrier.WaitFor(next)
		if err != nil {
			switch {
			case errors.Is(err, ErrTimeout):
				if onTimeout != nil {
					onTimeout.OnTimeout(next - 1)
				}
				continue
			case errors.Is(err, ErrHalted):
				return
			default:
				cfg.abort(fmt.Errorf("disruptor: wait strategy failed: %w", err))
				return
			}
		}
		if available < next {
			continue // a custom strategy returned early: nothing to do
		}
		if maxBatch > 0 && available-next >= maxBatch {
			available = next + maxBatch - 1
		}
		if batchStart != nil {
			batchStart.OnBatchStart(available - next + 1)
		}
		if slices != nil {
			if done, ok := p.runSlices(slices, eh, next, available); !ok {
				release(done)
				return
			}
			release(available)
			next = available + 1
			continue
		}
		for seq := next; seq <= available; seq++ {
			ev := &entries[seq&mask]
			if err := handler.OnEvent(ev, seq, seq == available); err != nil {
				eh.HandleEventException(err, seq, ev)
				if barrier.IsAlerted() {
					// Halted by the exception handler (or meanwhile): the
					// failed event is not released to dependents.
					release(seq - 1)
					return
				}
			}
		}
		release(available)
		next = available + 1
	}
}

// runSlices hands [lo, hi] to a SliceHandler as at most two contiguous runs
// of the ring (two when the batch wraps). When an exception handler halted
// the processor it returns the last sequence finished and false.
func (p *BatchEventProcessor[T]) runSlices(h SliceHandler[T], eh ExceptionHandler[T], lo, hi int64) (int64, bool) {
	entries, mask := p.ring.entries, p.ring.mask
	for lo <= hi {
		start, end := lo&mask, hi&mask
		if end < start {
			end = int64(len(entries)) - 1 // the batch wraps: this run ends at the ring's end
		}
		run := entries[start : end+1]
		last := lo + int64(len(run)) - 1
		if err := h.OnEvents(lo, run, last == hi); err != nil {
			eh.HandleEventException(err, lo, &run[0])
			if p.barrier.IsAlerted() {
				return lo - 1, false // the failed run is not released to dependents
			}
		}
		lo = last + 1
	}
	return hi, true
}
