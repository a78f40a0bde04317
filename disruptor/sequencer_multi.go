package disruptor

// Multi-producer availability: one int32 per slot holding the lap number
// (seq >> shift) of the last publish into that slot, -1 before the first.
// Sequence s is published iff available[s&mask] == int32(s>>shift). A lap
// number would have to wrap 2^32 laps behind for this to confuse two laps,
// which the gating invariant rules out. Producers publish out of order;
// consumers see only the contiguous published prefix.

// publishMulti marks [lo, hi] published, in ascending order so that a
// concurrent scan never sees a gap it would have to revisit.
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
