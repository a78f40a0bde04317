package disruptor

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSequenceLayout checks the cache-line layout stated on Sequence: for
// every 8-byte-aligned start address, the 64-byte line holding value lies
// inside the struct, so no other variable can share it.
func TestSequenceLayout(t *testing.T) {
	var s Sequence
	size := unsafe.Sizeof(s)
	offset := unsafe.Offsetof(s.value)
	require.Equal(t, uintptr(120), size)
	require.Equal(t, uintptr(56), offset)
	for start := uintptr(0); start < cacheLineSize; start += 8 {
		t.Run("start="+itoa(int64(start)), func(t *testing.T) {
			lineStart := (start + offset) / cacheLineSize * cacheLineSize
			lineEnd := lineStart + cacheLineSize
			assert.GreaterOrEqual(t, lineStart, start, "line begins before the struct")
			assert.LessOrEqual(t, lineEnd, start+size, "line ends after the struct")
		})
	}
}

func TestSequenceOperations(t *testing.T) {
	tests := []struct {
		name    string
		initial int64
		op      func(s *Sequence) bool
		want    int64
		ok      bool
	}{
		{"store", InitialSequenceValue, func(s *Sequence) bool { s.Store(7); return true }, 7, true},
		{"cas hit", 3, func(s *Sequence) bool { return s.CompareAndSwap(3, 9) }, 9, true},
		{"cas miss", 3, func(s *Sequence) bool { return s.CompareAndSwap(4, 9) }, 3, false},
		{"add", 10, func(s *Sequence) bool { return s.add(5) == 15 }, 15, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSequence(tt.initial)
			require.Equal(t, tt.initial, s.Load())
			assert.Equal(t, tt.ok, tt.op(s))
			assert.Equal(t, tt.want, s.Load())
		})
	}
}

func TestMinimumSequence(t *testing.T) {
	tests := []struct {
		name     string
		values   []int64
		fallback int64
		want     int64
	}{
		{"empty uses fallback", nil, 42, 42},
		{"one", []int64{5}, 42, 5},
		{"several", []int64{9, -1, 3}, 42, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seqs []*Sequence
			for _, v := range tt.values {
				seqs = append(seqs, NewSequence(v))
			}
			assert.Equal(t, tt.want, minimumSequence(seqs, tt.fallback))
		})
	}
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	neg := v < 0
	if neg {
		v = -v
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
