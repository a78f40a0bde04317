package disruptor

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ProducerType selects the claim and publish protocol of a ring.
type ProducerType int

const (
	// MultiProducer lets any number of goroutines claim and publish
	// concurrently: a claim is one atomic add on the claim cursor, and each
	// slot records the lap number of its last publish.
	MultiProducer ProducerType = iota
	// SingleProducer requires that one goroutine at a time calls Next,
	// TryNext and Publish: publishing is one store of the cursor.
	SingleProducer
)

// String names the producer type.
func (p ProducerType) String() string {
	switch p {
	case MultiProducer:
		return "MultiProducer"
	case SingleProducer:
		return "SingleProducer"
	default:
		return fmt.Sprintf("ProducerType(%d)", int(p))
	}
}

const (
	// sealOffset is added to the claim cursor to seal the ring (Shutdown,
	// Halt). Any claim whose atomic add returns a value at or above
	// sealThreshold happened after the seal and fails with ErrHalted, so the
	// same atomic add both claims and tells the claimant whether the drain
	// covers it. Real sequences never get near 2^61 (73 years at 10^9 events
	// per second).
	sealOffset    int64 = 1 << 62
	sealThreshold int64 = 1 << 61
	// notSealed is sealedAt's value before the seal.
	notSealed int64 = math.MinInt64

	// Phases of a producer's wait for capacity on a full ring: polls,
	// then polls with runtime.Gosched (letting consumers on the same core
	// run), then parking until a gating processor signals progress.
	capacitySpins  = 64
	capacityYields = 64
	// capacityRecheck bounds a parked producer's sleep, so that gating
	// sequences advanced by code that does not signal (hand-written
	// consumers) are still noticed.
	capacityRecheck = time.Millisecond
)

// sequencer is the claim/publish protocol shared by both producer types;
// the multi-producer parts are in sequencer_multi.go. Fields are grouped so
// that the read-mostly ones never share a cache line with the counters that
// producers and consumers write.
//
// Invariants:
//   - claimed (minus sealOffset once sealed) is the highest sequence handed
//     out by Next or TryNext; claims are contiguous and never reused.
//   - A claimed sequence s may be written only after every gating sequence
//     is >= s - size (the previous lap's event in that slot was consumed).
//   - SingleProducer: published is the highest published sequence.
//     MultiProducer: s is published iff available[s&mask] == int32(s>>shift).
//   - Once halted is true it stays true; halted implies sealed.
type sequencer struct {
	_ cacheLinePad

	// Read-mostly: set at construction or written once.
	size     int64
	mask     int64
	shift    uint
	single   bool
	strategy WaitStrategy
	// signalSet is the strategy's waitSet when it has one; signalCustom
	// is true for strategies from outside this package.
	signalSet    *waitSet
	signalCustom bool
	available    []atomic.Int32 // MultiProducer only: lap number per slot
	gating       atomic.Pointer[[]*Sequence]
	halted       atomic.Bool
	sealedAt     atomic.Int64 // claim cursor at the seal, or notSealed
	sealMu       sync.Mutex   // serializes seal

	_           cacheLinePad
	claimed     Sequence // claim cursor (+ sealOffset once sealed)
	published   Sequence // SingleProducer's publish cursor
	gatingCache Sequence // last minimum of the gating sequences seen by a producer
	capacity    waitSet  // producers parked on a full ring
}

func (s *sequencer) init(size int64, producer ProducerType, strategy WaitStrategy) {
	s.size = size
	s.mask = size - 1
	for 1<<s.shift < size {
		s.shift++
	}
	s.single = producer == SingleProducer
	s.strategy = strategy
	s.signalSet, s.signalCustom = signalTarget(strategy)
	empty := []*Sequence{}
	s.gating.Store(&empty)
	s.sealedAt.Store(notSealed)
	s.claimed.Store(InitialSequenceValue)
	s.published.Store(InitialSequenceValue)
	s.gatingCache.Store(InitialSequenceValue)
	if !s.single {
		s.available = make([]atomic.Int32, size)
		for i := range s.available {
			s.available[i].Store(-1)
		}
	}
}

// claimCursor is the highest claimed sequence. After the seal it may exceed
// the last real claim by the sizes of claims that failed, which only makes
// Publish's check more lenient, never wrongly strict.
func (s *sequencer) claimCursor() int64 {
	c := s.claimed.Load()
	if c >= sealThreshold {
		c -= sealOffset
	}
	return c
}

// cursor is the highest claimed sequence (MultiProducer) or the highest
// published one (SingleProducer), frozen at the seal for MultiProducer.
func (s *sequencer) cursor() int64 {
	if s.single {
		return s.published.Load()
	}
	if at := s.sealedAt.Load(); at != notSealed {
		return at
	}
	return s.claimCursor()
}

func (s *sequencer) claimError(n int64) error {
	return fmt.Errorf("%w: n=%d, ring size %d", ErrClaimTooLarge, n, s.size)
}

func (s *sequencer) minimumGating(fallback int64) int64 {
	return minimumSequence(*s.gating.Load(), fallback)
}

// next claims n slots, waiting for capacity, and returns the highest one.
// The fast path (one atomic add, one load of the cached gating minimum) is
// small enough to inline into Next.
func (s *sequencer) next(n int64) (int64, error) {
	if n < 1 || n > s.size {
		return InitialSequenceValue, s.claimError(n)
	}
	hi := s.claimed.add(n)
	if hi >= sealThreshold {
		return InitialSequenceValue, ErrHalted
	}
	if wrap := hi - s.size; wrap > s.gatingCache.Load() {
		return s.nextSlow(wrap, hi)
	}
	return hi, nil
}

// nextSlow waits for the slots of a claim to be free.
func (s *sequencer) nextSlow(wrap, hi int64) (int64, error) {
	low, err := s.waitForCapacity(wrap, hi)
	if err != nil {
		return InitialSequenceValue, err
	}
	s.gatingCache.Store(low)
	return hi, nil
}

// tryNext claims n slots only if they are free now.
func (s *sequencer) tryNext(n int64) (int64, error) {
	if n < 1 || n > s.size {
		return InitialSequenceValue, s.claimError(n)
	}
	for {
		cur := s.claimed.Load()
		if cur >= sealThreshold {
			return InitialSequenceValue, ErrHalted
		}
		hi := cur + n
		wrap := hi - s.size
		if wrap > s.gatingCache.Load() {
			low := s.minimumGating(cur)
			s.gatingCache.Store(low)
			if wrap > low {
				return InitialSequenceValue, ErrInsufficientCapacity
			}
		}
		if s.claimed.CompareAndSwap(cur, hi) {
			return hi, nil
		}
	}
}

// waitForCapacity waits until every gating sequence is >= wrap and returns
// their minimum, or ErrHalted once the ring is halted.
func (s *sequencer) waitForCapacity(wrap, hi int64) (int64, error) {
	ready := func() bool { return s.halted.Load() || s.minimumGating(hi) >= wrap }
	for i := 0; ; i++ {
		if low := s.minimumGating(hi); low >= wrap {
			return low, nil
		}
		if s.halted.Load() {
			return InitialSequenceValue, ErrHalted
		}
		switch {
		case i < capacitySpins:
		case i < capacitySpins+capacityYields:
			runtime.Gosched()
		default:
			s.capacity.wait(ready, capacityRecheck)
		}
	}
}

// remainingCapacity is the number of slots a producer could claim now.
func (s *sequencer) remainingCapacity() int64 {
	claimed := s.claimCursor()
	used := claimed - s.minimumGating(claimed)
	return max(s.size-used, 0)
}

// publish makes [lo, hi] visible to consumers.
func (s *sequencer) publish(lo, hi int64) error {
	if lo < 0 || lo > hi || hi-lo >= s.size || hi > s.claimCursor() {
		return s.unclaimedError(lo, hi)
	}
	if s.single {
		if lo <= s.published.Load() {
			return s.unclaimedError(lo, hi)
		}
		s.published.Store(hi)
	} else {
		s.publishMulti(lo, hi)
	}
	s.signalConsumers()
	if s.halted.Load() {
		return ErrHalted
	}
	return nil
}

func (s *sequencer) unclaimedError(lo, hi int64) error {
	return fmt.Errorf("%w: [%d, %d], claim cursor %d, published cursor %d",
		ErrPublishUnclaimed, lo, hi, s.claimCursor(), s.cursor())
}

// signalConsumers wakes consumers parked by the wait strategy, without an
// interface call for the strategies of this package.
func (s *sequencer) signalConsumers() {
	if set := s.signalSet; set != nil {
		set.signal()
	} else if s.signalCustom {
		s.strategy.SignalAllWhenBlocking()
	}
}

// highestPublished returns the highest sequence >= seq such that all of
// [seq, it] are published, or seq-1 when seq is not published.
func (s *sequencer) highestPublished(seq int64) int64 {
	if s.single {
		return s.published.Load()
	}
	return s.highestPublishedMulti(seq)
}

// seal makes every later claim fail with ErrHalted and returns the last
// sequence claimed before it. Claims made before the seal are unaffected:
// their producers publish them, and Shutdown drains them. Idempotent.
func (s *sequencer) seal() int64 {
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	if at := s.sealedAt.Load(); at != notSealed {
		return at
	}
	at := s.claimed.add(sealOffset) - sealOffset
	s.sealedAt.Store(at)
	return at
}

// halt seals the ring and wakes every producer waiting for capacity; they
// return ErrHalted. Idempotent.
func (s *sequencer) halt() {
	s.seal()
	s.halted.Store(true)
	s.capacity.signal()
	s.signalConsumers()
}

func (s *sequencer) addGating(seqs ...*Sequence) {
	for {
		old := s.gating.Load()
		next := make([]*Sequence, 0, len(*old)+len(seqs))
		next = append(next, *old...)
		next = append(next, seqs...)
		if s.gating.CompareAndSwap(old, &next) {
			return
		}
	}
}

func (s *sequencer) removeGating(seq *Sequence) bool {
	for {
		old := s.gating.Load()
		next := make([]*Sequence, 0, len(*old))
		found := false
		for _, g := range *old {
			if g == seq && !found {
				found = true
				continue
			}
			next = append(next, g)
		}
		if !found {
			return false
		}
		if s.gating.CompareAndSwap(old, &next) {
			// A producer may be parked on the removed sequence.
			s.capacity.signal()
			return true
		}
	}
}
