package disruptor

import "sync/atomic"

// SequenceBarrier is what a consumer waits on: the published cursor, or the
// sequences of the processors it depends on, whichever gates it. Alert ends
// every current and future WaitFor with ErrHalted until ClearAlert; it is
// how processors are halted.
//
// Alert, ClearAlert, IsAlerted and Poll are safe for concurrent use. WaitFor
// is meant for the one consumer that owns the barrier, though concurrent
// calls are safe.
type SequenceBarrier struct {
	seq        *sequencer
	dependents []*Sequence // empty: gate on the published cursor
	strategy   WaitStrategy
	_          cacheLinePad
	alerted    atomic.Bool
	_          cacheLinePad
}

func newSequenceBarrier(seq *sequencer, dependents []*Sequence) *SequenceBarrier {
	return &SequenceBarrier{
		seq:        seq,
		dependents: append([]*Sequence(nil), dependents...),
		strategy:   seq.strategy,
	}
}

// WaitFor waits, with the ring's wait strategy, until seq can be consumed
// and returns the highest sequence that can (>= seq), so the caller may
// handle the whole range as one batch. It returns ErrHalted when the barrier
// is alerted and ErrTimeout from a timeout strategy; available is then
// meaningless.
func (b *SequenceBarrier) WaitFor(seq int64) (available int64, err error) {
	if b.alerted.Load() {
		return seq - 1, ErrHalted
	}
	if v := b.Poll(seq); v >= seq {
		return v, nil
	}
	return b.strategy.WaitFor(seq, b)
}

// Poll returns, without waiting, the highest sequence that can be consumed
// now; a value below seq means seq cannot yet. Wait strategies are built on
// it.
func (b *SequenceBarrier) Poll(seq int64) int64 {
	if len(b.dependents) == 0 {
		return b.seq.highestPublished(seq)
	}
	return minimumSequence(b.dependents, 0)
}

// Alert makes WaitFor return ErrHalted and wakes blocked waiters.
func (b *SequenceBarrier) Alert() {
	b.alerted.Store(true)
	b.strategy.SignalAllWhenBlocking()
}

// ClearAlert re-arms the barrier after Alert.
func (b *SequenceBarrier) ClearAlert() { b.alerted.Store(false) }

// IsAlerted reports whether Alert was called (and not cleared).
func (b *SequenceBarrier) IsAlerted() bool { return b.alerted.Load() }
