package disruptor

import "sync/atomic"

// InitialSequenceValue is the value of a sequence before anything was
// claimed, published or processed: the first event has sequence 0.
const InitialSequenceValue int64 = -1

// cacheLineSize is the coherence unit on amd64 and arm64 (64 bytes).
const cacheLineSize = 64

// cacheLinePad fills the rest of a cache line after an 8-byte value.
type cacheLinePad [cacheLineSize - 8]byte

// Sequence is a monotonically increasing int64 counter shared between
// goroutines: a claim cursor, a published cursor, or the last sequence a
// processor finished.
//
// Cache-line layout (120 bytes, 8-byte aligned):
//
//	offset   0 ..  55   padding (56 bytes)
//	offset  56 ..  63   value   (atomic.Int64)
//	offset  64 .. 119   padding (56 bytes)
//
// Wherever the struct starts (any multiple of 8), the 64-byte line that
// holds value lies entirely inside the struct, so no other variable shares
// it and writes to neighbours never invalidate it (no false sharing). The
// layout is checked by TestSequenceLayout.
//
// A Sequence is safe for concurrent use. Its zero value holds 0; use
// NewSequence(InitialSequenceValue) for a fresh cursor.
type Sequence struct {
	_     cacheLinePad
	value atomic.Int64
	_     cacheLinePad
}

// NewSequence returns a padded sequence holding initial.
func NewSequence(initial int64) *Sequence {
	s := &Sequence{}
	s.value.Store(initial)
	return s
}

// Load atomically reads the sequence.
func (s *Sequence) Load() int64 { return s.value.Load() }

// Store atomically writes v. The store is sequentially consistent, which
// the wake-up protocol of the blocking strategies relies on.
func (s *Sequence) Store(v int64) { s.value.Store(v) }

// CompareAndSwap atomically replaces old with new and reports whether it
// did.
func (s *Sequence) CompareAndSwap(old, new int64) bool {
	return s.value.CompareAndSwap(old, new)
}

// add atomically adds delta and returns the new value.
func (s *Sequence) add(delta int64) int64 { return s.value.Add(delta) }

// minimumSequence returns the smallest value in seqs, or fallback when seqs
// is empty.
func minimumSequence(seqs []*Sequence, fallback int64) int64 {
	if len(seqs) == 0 {
		return fallback
	}
	m := seqs[0].Load()
	for _, s := range seqs[1:] {
		if v := s.Load(); v < m {
			m = v
		}
	}
	return m
}
