package disruptor

import "fmt"

// RingBuffer is a preallocated ring of size (a power of two) slots of T and
// its sequencer. Slots are created once by the factory and reused for ever:
// a producer claims sequences, writes into the slots in place through Get,
// and publishes them; consumers read the same slots. Nothing is allocated
// after construction.
//
// A RingBuffer is safe for concurrent use by producers (one at a time for
// SingleProducer) and consumers, under the sequence protocol: a slot may be
// written only between its claim and its publish, and read only after its
// publish and before the consumer's sequence passes it.
type RingBuffer[T any] struct {
	_       cacheLinePad
	entries []T
	mask    int64
	seq     sequencer
}

// NewRingBuffer returns a ring of size slots, each initialised by factory
// (the zero T when factory is nil), using DefaultWaitStrategy for consumers.
// It is usable on its own with hand-built barriers and processors.
func NewRingBuffer[T any](size int, factory func() T, producer ProducerType) (*RingBuffer[T], error) {
	return newRingBuffer(size, factory, producer, nil)
}

// NewRingBufferWithOptions is NewRingBuffer taking RingSize, Producer and
// WaitStrategy from opts (nil means DefaultOptions). opts is not modified.
func NewRingBufferWithOptions[T any](factory func() T, opts *Options) (*RingBuffer[T], error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	return newRingBuffer(o.RingSize, factory, o.Producer, o.WaitStrategy)
}

func newRingBuffer[T any](size int, factory func() T, producer ProducerType, strategy WaitStrategy) (*RingBuffer[T], error) {
	if size < 1 || size&(size-1) != 0 {
		return nil, fmt.Errorf("%w: %d", ErrNotPowerOfTwo, size)
	}
	if producer != MultiProducer && producer != SingleProducer {
		return nil, fmt.Errorf("%w: producer type %v", ErrInvalidOptions, producer)
	}
	if strategy == nil {
		strategy = DefaultWaitStrategy()
	}
	r := &RingBuffer[T]{entries: make([]T, size), mask: int64(size - 1)}
	if factory != nil {
		for i := range r.entries {
			r.entries[i] = factory()
		}
	}
	r.seq.init(int64(size), producer, strategy)
	return r, nil
}

// Get returns the slot for seq, for in-place reads and writes. It does not
// check the claim: the caller must own seq (claimed and not yet published,
// or published and not yet passed by its consumer sequence).
func (r *RingBuffer[T]) Get(seq int64) *T { return &r.entries[seq&r.mask] }

// Size is the number of slots.
func (r *RingBuffer[T]) Size() int64 { return r.seq.size }

// Next claims n consecutive slots and returns the highest, hi: the claim is
// [hi-n+1, hi]. It waits (spin, yield, then park) while the ring is full.
// Errors: ErrClaimTooLarge for n < 1 or n > Size; ErrHalted when the ring
// was sealed (Shutdown, Halt) before the claim, or halted while waiting.
// A MultiProducer claim is a single atomic add.
func (r *RingBuffer[T]) Next(n int64) (hi int64, err error) { return r.seq.next(n) }

// TryNext is Next without waiting: ErrInsufficientCapacity when fewer than n
// slots are free.
func (r *RingBuffer[T]) TryNext(n int64) (hi int64, err error) { return r.seq.tryNext(n) }

// Publish makes the claimed slots [lo, hi] visible to consumers and wakes
// blocked ones. ErrPublishUnclaimed for a range that was never claimed.
// ErrHalted once the ring is stopping or halted, unless a Shutdown drain
// had already seen every handler finish the range (then it is nil, whenever
// the Publish call was scheduled): the range was then handled by every
// handler or by none if the stop is a Shutdown (SingleProducer: by none
// when it was not published), and possibly by some if it is a Halt. A
// SingleProducer publish of hi also publishes every claimed sequence below
// it. A publish is one atomic store per slot (MultiProducer) or one
// compare-and-swap (SingleProducer).
func (r *RingBuffer[T]) Publish(lo, hi int64) error { return r.seq.publish(lo, hi) }

// RemainingCapacity is the number of slots that could be claimed without
// waiting, at the instant of the call.
func (r *RingBuffer[T]) RemainingCapacity() int64 { return r.seq.remainingCapacity() }

// Cursor is the highest claimed sequence for MultiProducer (some below it
// may be unpublished) and the highest published one for SingleProducer.
func (r *RingBuffer[T]) Cursor() int64 { return r.seq.cursor() }

// AddGatingSequences makes producers wait for seqs: no slot is reclaimed
// before every gating sequence has passed its previous lap. Add a consumer's
// sequence before it can fall a lap behind (before producers start).
func (r *RingBuffer[T]) AddGatingSequences(seqs ...*Sequence) { r.seq.addGating(seqs...) }

// RemoveGatingSequence stops producers waiting for seq and reports whether
// it was gating.
func (r *RingBuffer[T]) RemoveGatingSequence(seq *Sequence) bool { return r.seq.removeGating(seq) }

// NewBarrier returns a barrier for a consumer that must not pass the
// published cursor nor any of dependents (the sequences of upstream
// processors). With no dependents it gates on the published cursor alone.
func (r *RingBuffer[T]) NewBarrier(dependents ...*Sequence) *SequenceBarrier {
	return newSequenceBarrier(&r.seq, dependents)
}

// WaitStrategy is the consumers' wait strategy.
func (r *RingBuffer[T]) WaitStrategy() WaitStrategy { return r.seq.strategy }
