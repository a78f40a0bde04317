package disruptor

import "runtime"

// MultiProducer: a claim is one atomic add on the shared claim cursor.
// While the ring has room, nothing else is shared. A producer whose claim
// lands on slots still in use waits for them holding the claim, which
// consumers must wait for in turn; so once that happens the ring is flagged
// full, and later producers wait for room before their add (awaitRoom),
// parking without a claim. Consumers then never wait for a parked producer,
// only for running ones, which matters with many producer goroutines (a
// convoy of parked claim holders, each to be woken in order, otherwise
// follows every full ring). Availability is one int32 per slot holding
// the lap number (seq >> shift) of the last publish into that slot, -1
// before the first. Sequence s is published iff
// available[s&mask] == int32(s>>shift); a lap number would have to fall 2^32
// laps behind to confuse two laps, which gating rules out. Producers publish
// out of order; consumers see only the contiguous published prefix.

// nextMultiWait finishes a claim of hi whose slots were not known to be
// free: it waits for the gating sequences to pass wrap.
func (s *sequencer) nextMultiWait(wrap, hi int64) (int64, error) {
	if s.minimumGating(hi) < wrap && !s.full.Load() {
		s.full.Store(true)
	}
	low, err := s.waitForCapacity(wrap, hi)
	if err != nil {
		return InitialSequenceValue, err
	}
	s.gatingCache.Store(low)
	return hi, nil
}

// awaitRoom waits, without claiming, until a claim of n would find its
// slots free, and clears the full hint if it found room at once. It returns
// nil early once the ring is sealed, so that the add fails as it should, and
// ErrHalted once halted. Producers parked here are woken one at a time
// (signalProgress); each one that gets its claim passes the wake-up on while
// room is left (passRoomOn), like a channel handing a freed buffer slot to
// one blocked sender at a time.
func (s *sequencer) awaitRoom(n int64) error {
	room := func() bool { return s.hasRoom(n) }
	ready := func() bool { return s.state.Load() == ringHalted || room() }
	for i := 0; ; i++ {
		if room() {
			if i == 0 {
				s.full.Store(false)
			}
			return nil
		}
		if s.state.Load() == ringHalted {
			return ErrHalted
		}
		switch {
		case i < capacitySpins:
		case i < capacitySpins+capacityYields:
			runtime.Gosched()
		default:
			s.room.wait(ready, capacityRecheck)
		}
	}
}

// hasRoom reports whether a claim of n would find its slots free now (or the
// ring is sealed, so that a claim would fail at once).
func (s *sequencer) hasRoom(n int64) bool {
	cur := s.claimed.Load()
	return cur >= sealThreshold || cur+n-s.size <= s.minimumGating(cur)
}

// passRoomOn wakes the next producer waiting for room if there is room for
// at least one more slot. Called after a claim that needed no wait.
func (s *sequencer) passRoomOn() {
	if s.hasRoom(1) {
		s.room.signalOne()
	}
}

func (s *sequencer) tryNextMulti(n int64) (int64, error) {
	for {
		cur := s.claimed.Load()
		if cur >= sealThreshold {
			return InitialSequenceValue, ErrHalted
		}
		hi := cur + n
		if wrap := hi - s.size; wrap > s.gatingCache.Load() {
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

// claimCursorMulti is the highest claimed sequence. After the seal it may
// exceed the last real claim by the sizes of claims that failed, which only
// makes Publish's check more lenient, never wrongly strict.
func (s *sequencer) claimCursorMulti() int64 {
	c := s.claimed.Load()
	if c >= sealThreshold {
		c -= sealOffset
	}
	return c
}

// publishMulti marks [lo, hi] published, in ascending order.
func (s *sequencer) publishMulti(lo, hi int64) {
	avail, mask, shift := s.available, s.mask, s.shift
	for seq := lo; seq <= hi; seq++ {
		avail[seq&mask].Store(int32(seq >> shift))
	}
}

// highestPublishedMulti scans forward from seq for the end of the contiguous
// published run, at most one ring ahead. It reads no shared counter: slots
// past the claim cursor still hold an older lap and end the scan.
func (s *sequencer) highestPublishedMulti(seq int64) int64 {
	avail, mask, shift := s.available, s.mask, s.shift
	limit := seq + s.size
	hi := seq
	for hi < limit && avail[hi&mask].Load() == int32(hi>>shift) {
		hi++
	}
	return hi - 1
}
