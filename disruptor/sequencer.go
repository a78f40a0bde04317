package disruptor

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ProducerType selects the claim and publish protocol of a ring. It is an
// immutable value.
type ProducerType int

const (
	// MultiProducer lets any number of goroutines claim and publish
	// concurrently: a claim is one atomic add on the claim cursor, and each
	// slot records the lap number of its last publish.
	MultiProducer ProducerType = iota
	// SingleProducer requires that one goroutine at a time calls Next,
	// TryNext, Publish and RemainingCapacity: a claim touches no shared
	// memory and a publish is one store of the cursor.
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

// Ring states, in the only order they are entered.
const (
	ringOpen     int32 = iota // claims and publishes accepted
	ringSealed                // new claims fail with ErrHalted (Shutdown draining)
	ringStopping              // Publish also reports ErrHalted: it may not be drained
	ringHalted                // producers waiting for capacity fail too
)

const (
	// sealOffset is added to the MultiProducer claim cursor at the seal.
	// Any claim whose atomic add returns a value at or above sealThreshold
	// happened after the seal and fails with ErrHalted, so the one atomic
	// add both claims and tells the claimant whether the drain covers it.
	// Real sequences never get near 2^61 (73 years at 10^9 events/s).
	sealOffset    int64 = 1 << 62
	sealThreshold int64 = 1 << 61
	// notSealed is sealedAt's value before the seal.
	notSealed int64 = math.MinInt64

	// Phases of a producer's wait for capacity on a full ring: polls, then
	// polls with runtime.Gosched (letting consumers on the same core run),
	// then parking until a gating processor signals progress.
	capacitySpins  = 64
	capacityYields = 64
	// capacityRecheck bounds a parked producer's sleep, so that gating
	// sequences advanced by code that does not signal (hand-written
	// consumers) are still noticed. Processors, seal and halt always
	// signal, so it only costs a wake-up per parked producer per period.
	capacityRecheck = 10 * time.Millisecond
)

// sequencer is the claim/publish protocol of a ring: the common parts are
// here, the producer-specific ones in sequencer_single.go and
// sequencer_multi.go. Fields are grouped so that read-mostly ones never share
// a cache line with the counters producers and consumers write.
//
// Invariants:
//   - Claims are contiguous and never reused: the highest claim is spNext
//     (SingleProducer) or claimed, minus sealOffset once sealed
//     (MultiProducer).
//   - A claimed sequence s is handed out only once every gating sequence is
//     >= s - size: the previous lap's event in its slot was consumed.
//   - SingleProducer: published is the highest published sequence, plus
//     sealOffset once stopped (publishedCursor masks it).
//     MultiProducer: s is published iff available[s&mask] == int32(s>>shift).
//   - state only increases; every Publish that returned nil stored its range
//     before state reached ringStopping.
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
	state        atomic.Int32
	sealedAt     atomic.Int64 // MultiProducer claim cursor at the seal, or notSealed
	// drained is the highest sequence a Shutdown drain saw every handler
	// finish (InitialSequenceValue before): Publish reports ErrHalted only
	// for a range above it, i.e. one the stop may have left unhandled.
	drained atomic.Int64
	sealMu  sync.Mutex // serializes seal

	_           cacheLinePad
	claimed     Sequence // MultiProducer claim cursor (+ sealOffset once sealed)
	published   Sequence // SingleProducer publish cursor (+ sealOffset once stopped)
	gatingCache Sequence // MultiProducer: last gating minimum seen by a producer
	capacity    waitSet  // producers parked on a full ring holding a claim (or SingleProducer)
	room        waitSet  // MultiProducer producers parked in awaitRoom, without a claim
	// full is the MultiProducer hint that the ring was full lately: Next
	// then waits for room before its atomic add rather than after it, so
	// that parked producers hold no claim (see awaitRoom).
	full atomic.Bool
	_    cacheLinePad

	// SingleProducer's claim state, touched only by the producer goroutine.
	spNext        int64 // highest claimed sequence
	spGatingCache int64 // last gating minimum seen
	_             cacheLinePad
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
	s.drained.Store(InitialSequenceValue)
	s.claimed.Store(InitialSequenceValue)
	s.published.Store(InitialSequenceValue)
	s.gatingCache.Store(InitialSequenceValue)
	s.spNext = InitialSequenceValue
	s.spGatingCache = InitialSequenceValue
	if !s.single {
		s.available = make([]atomic.Int32, size)
		for i := range s.available {
			s.available[i].Store(-1)
		}
	}
}

// next claims n slots, waiting for capacity, and returns the highest one.
// Both producer types' fast paths are written out here so that a claim is
// one call.
func (s *sequencer) next(n int64) (int64, error) {
	if n < 1 || n > s.size {
		return InitialSequenceValue, s.claimError(n)
	}
	if s.single {
		if hi := s.spNext + n; hi-s.size <= s.spGatingCache && s.state.Load() == ringOpen {
			s.spNext = hi
			return hi, nil
		}
		return s.nextSingle(n)
	}
	if s.full.Load() {
		if err := s.awaitRoom(n); err != nil {
			return InitialSequenceValue, err
		}
	}
	hi := s.claimed.add(n)
	if hi >= sealThreshold {
		return InitialSequenceValue, ErrHalted
	}
	if wrap := hi - s.size; wrap > s.gatingCache.Load() {
		return s.nextMultiWait(wrap, hi)
	}
	if s.room.waiting.Load() != 0 {
		s.passRoomOn()
	}
	return hi, nil
}

// tryNext claims n slots only if they are free now.
func (s *sequencer) tryNext(n int64) (int64, error) {
	if n < 1 || n > s.size {
		return InitialSequenceValue, s.claimError(n)
	}
	if s.single {
		return s.tryNextSingle(n)
	}
	return s.tryNextMulti(n)
}

// publish makes the claimed range [lo, hi] visible to consumers and wakes
// the parked ones.
func (s *sequencer) publish(lo, hi int64) error {
	if s.single {
		cur := s.published.Load()
		if cur >= sealThreshold {
			return ErrHalted // stopped: not published, so no handler sees it
		}
		if lo < 0 || lo > hi || hi-lo >= s.size || hi > s.spNext || lo <= cur {
			return s.unclaimedError(lo, hi)
		}
		// A CAS, not a store: stop is the only other writer, and once it has
		// marked the cursor the range must not become visible.
		if !s.published.CompareAndSwap(cur, hi) {
			return ErrHalted
		}
	} else {
		if lo < 0 || lo > hi || hi-lo >= s.size || hi > s.claimCursor() {
			return s.unclaimedError(lo, hi)
		}
		s.publishMulti(lo, hi)
	}
	if set := s.signalSet; set != nil {
		set.signal()
	} else if s.signalCustom {
		s.strategy.SignalAllWhenBlocking()
	}
	// Read the state after the range is stored: a stop that this load does
	// not see comes after the store, so its drain covers the range. One it
	// sees may have drained the range already (the drain only ends once the
	// range is published, and it records how far it got before stopping):
	// then the range was handled by every handler and Publish succeeded.
	if s.state.Load() >= ringStopping && hi > s.drained.Load() {
		return ErrHalted
	}
	return nil
}

// highestPublished returns the highest sequence >= seq such that all of
// [seq, it] are published, or a value below seq when seq is not.
func (s *sequencer) highestPublished(seq int64) int64 {
	if s.single {
		return s.publishedCursor()
	}
	return s.highestPublishedMulti(seq)
}

// claimCursor is the highest claimed sequence. For SingleProducer it must be
// called on the producer goroutine.
func (s *sequencer) claimCursor() int64 {
	if s.single {
		return s.spNext
	}
	return s.claimCursorMulti()
}

// cursor is the highest claimed sequence (MultiProducer, frozen at the
// seal) or the highest published one (SingleProducer). Any goroutine.
func (s *sequencer) cursor() int64 {
	if s.single {
		return s.publishedCursor()
	}
	if at := s.sealedAt.Load(); at != notSealed {
		return at
	}
	return s.claimCursorMulti()
}

// remainingCapacity is the number of slots a producer could claim now.
func (s *sequencer) remainingCapacity() int64 {
	claimed := s.claimCursor()
	used := claimed - s.minimumGating(claimed)
	return max(s.size-used, 0)
}

func (s *sequencer) claimError(n int64) error {
	return fmt.Errorf("%w: n=%d, ring size %d", ErrClaimTooLarge, n, s.size)
}

func (s *sequencer) unclaimedError(lo, hi int64) error {
	return fmt.Errorf("%w: [%d, %d] with claim cursor %d and cursor %d",
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

// signalProgress wakes producers after a gating sequence advanced by
// freed slots: every claim holder (few, each waiting for its own slots) and
// one producer waiting for room, which passes the wake-up on while room is
// left (passRoomOn), so that a freed batch does not wake a herd.
func (s *sequencer) signalProgress() {
	s.capacity.signal()
	s.room.signalOne()
}

func (s *sequencer) minimumGating(fallback int64) int64 {
	return minimumSequence(*s.gating.Load(), fallback)
}

// waitForCapacity waits until every gating sequence is >= wrap and returns
// their minimum (fallback without gating sequences), or ErrHalted once the
// ring is halted.
func (s *sequencer) waitForCapacity(wrap, fallback int64) (int64, error) {
	ready := func() bool {
		return s.state.Load() == ringHalted || s.minimumGating(fallback) >= wrap
	}
	for i := 0; ; i++ {
		if low := s.minimumGating(fallback); low >= wrap {
			return low, nil
		}
		if s.state.Load() == ringHalted {
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

// advanceState moves state up to to (never down).
func (s *sequencer) advanceState(to int32) {
	for {
		cur := s.state.Load()
		if cur >= to || s.state.CompareAndSwap(cur, to) {
			return
		}
	}
}

// seal makes every later claim fail with ErrHalted and returns the drain
// target: the last MultiProducer claim made before the seal, or the
// SingleProducer published cursor (which a claim made before the seal may
// still raise; see drainTarget). Claims made before the seal are unaffected.
// Idempotent.
func (s *sequencer) seal() int64 {
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	s.advanceState(ringSealed)
	if s.single {
		return s.publishedCursor()
	}
	if at := s.sealedAt.Load(); at != notSealed {
		return at
	}
	at := s.claimed.add(sealOffset) - sealOffset
	s.sealedAt.Store(at)
	// Producers parked in awaitRoom must now fail their add.
	s.room.signal()
	return at
}

// drainTarget returns the sequence a drain must reach, given the one it
// reached: fixed at the seal for MultiProducer; for SingleProducer the
// published cursor, which the single producer may still advance with a claim
// it made before the seal.
func (s *sequencer) drainTarget(reached int64) int64 {
	if s.single {
		return max(reached, s.publishedCursor())
	}
	return reached
}

// markDrained records that every handler finished every sequence up to
// seq. Called by a Shutdown drain before stop.
func (s *sequencer) markDrained(seq int64) {
	for {
		cur := s.drained.Load()
		if seq <= cur || s.drained.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// stop makes Publish report ErrHalted: what is published from now on may
// not be drained. A Publish that still returned nil stored its range before
// stop, so a drainTarget read after stop covers it. For SingleProducer, stop
// also marks the published cursor (adds sealOffset) so that a later Publish
// fails its compare-and-swap and publishes nothing: no handler, upstream or
// downstream, ever sees an event whose Publish failed. Idempotent.
func (s *sequencer) stop() {
	s.advanceState(ringStopping)
	if !s.single {
		return
	}
	for {
		cur := s.published.Load()
		if cur >= sealThreshold || s.published.CompareAndSwap(cur, cur+sealOffset) {
			return
		}
	}
}

// publishedCursor is the SingleProducer published cursor without the stop
// mark.
func (s *sequencer) publishedCursor() int64 {
	c := s.published.Load()
	if c >= sealThreshold {
		c -= sealOffset
	}
	return c
}

// halt seals the ring and wakes every producer waiting for capacity; they
// return ErrHalted. Idempotent.
func (s *sequencer) halt() {
	s.seal()
	s.stop()
	s.advanceState(ringHalted)
	s.capacity.signal()
	s.room.signal()
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
			s.room.signal()
			return true
		}
	}
}
