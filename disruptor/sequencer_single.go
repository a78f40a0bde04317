package disruptor

// SingleProducer: the claim cursor (spNext) and the cached gating minimum
// (spGatingCache) are plain fields of the one producer goroutine, so a claim
// touches no shared memory unless the ring looks full; a publish is one
// compare-and-swap of the published cursor. Shutdown cannot read spNext, so
// it drains to the published cursor, then marks it stopped (sequencer.stop):
// a Publish before the mark is drained, one after it fails and publishes
// nothing (see Disruptor.drainAll).

func (s *sequencer) nextSingle(n int64) (int64, error) {
	if s.state.Load() != ringOpen {
		return InitialSequenceValue, ErrHalted
	}
	hi := s.spNext + n
	if wrap := hi - s.size; wrap > s.spGatingCache {
		low, err := s.waitForCapacity(wrap, s.spNext)
		if err != nil {
			return InitialSequenceValue, err
		}
		s.spGatingCache = low
	}
	s.spNext = hi
	return hi, nil
}

func (s *sequencer) tryNextSingle(n int64) (int64, error) {
	if s.state.Load() != ringOpen {
		return InitialSequenceValue, ErrHalted
	}
	hi := s.spNext + n
	if wrap := hi - s.size; wrap > s.spGatingCache {
		low := s.minimumGating(s.spNext)
		s.spGatingCache = low
		if wrap > low {
			return InitialSequenceValue, ErrInsufficientCapacity
		}
	}
	s.spNext = hi
	return hi, nil
}
