package storage

import (
	"bytes"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKeyRoundTrips: every value encoding decodes to what was encoded.
func TestKeyRoundTrips(t *testing.T) {
	t.Run("applied", func(t *testing.T) {
		p := position{Entry: 7, Ordinal: 3, Seq: 1 << 40, Clock: math.MinInt64}
		got, err := decodeApplied(encodeApplied(nil, p))
		require.NoError(t, err)
		assert.Equal(t, p, got)
	})
	t.Run("stream", func(t *testing.T) {
		m := streamMeta{NextOffset: 9, Bytes: 100, LastTime: -5, MaxTime: 1 << 62}
		got, err := decodeStreamMeta(encodeStreamMeta(nil, &m))
		require.NoError(t, err)
		assert.Equal(t, m, got)
	})
	t.Run("run", func(t *testing.T) {
		r := run{Entry: 1, Ordinal: 2, Offset: 3, Count: 4, FirstSeq: 5}
		got, err := decodeRun(encodeRun(nil, r))
		require.NoError(t, err)
		assert.Equal(t, r, got)
	})
	t.Run("idem", func(t *testing.T) {
		r := idemRecord{Time: -1, FirstOffset: 2, Count: 3, FirstSeq: 4}
		got, err := decodeIdem(encodeIdem(nil, r))
		require.NoError(t, err)
		assert.Equal(t, r, got)
	})
	t.Run("chunk", func(t *testing.T) {
		groups := []chunkGroup{{Records: 3, Accepted: true, Offset: 0}, {Records: 1}, {Records: 2, Accepted: true, Offset: 1 << 50}}
		v := appendChunkHeader(nil, 12, 4, 999, len(groups))
		for _, g := range groups {
			v = appendChunkGroup(v, g)
		}
		var d chunkDecoder
		require.NoError(t, d.reset(v))
		assert.Equal(t, uint64(12), d.Entry)
		assert.Equal(t, uint32(4), d.Ordinal)
		assert.Equal(t, uint32(999), d.Offset)
		for _, want := range groups {
			got, err := d.next()
			require.NoError(t, err)
			assert.Equal(t, want, got)
		}
	})
}

// TestKeyOrder: a stream's composite keys are contiguous and ordered by
// offset and time, whatever other stream names exist.
func TestKeyOrder(t *testing.T) {
	tests := []struct {
		name string
		a, b []byte // a must sort before b
	}{
		{"run offsets", runKey(nil, []byte("s"), 1), runKey(nil, []byte("s"), 256)},
		{"stream extends another", runKey(nil, []byte("a"), math.MaxUint64), runKey(nil, []byte("a.b"), 0)},
		{"negative before positive time", timeKey(nil, []byte("s"), -1), timeKey(nil, []byte("s"), 0)},
		{"times", timeKey(nil, []byte("s"), 100), timeKey(nil, []byte("s"), 101)},
		{"chunks", chunkKey(nil, 255), chunkKey(nil, 256)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Negative(t, bytes.Compare(tc.a, tc.b))
		})
	}
	assert.Equal(t, []byte{0x03, 'a', 0x01}, keyUpperBound(streamPrefix(nil, tagRun, []byte("a"))))
}

// FuzzIndexDecoders: no decoder panics or accepts a value of the wrong
// length; whatever decodes re-encodes to the same bytes.
func FuzzIndexDecoders(f *testing.F) {
	f.Add(encodeApplied(nil, position{Entry: 1}))
	f.Add(encodeRun(nil, run{Entry: 1, Count: 1}))
	f.Add(appendChunkGroup(appendChunkHeader(nil, 1, 0, 0, 1), chunkGroup{Records: 1, Accepted: true}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		if p, err := decodeApplied(v); err == nil {
			assert.Equal(t, v, encodeApplied(nil, p))
		}
		if m, err := decodeStreamMeta(v); err == nil {
			assert.Equal(t, v, encodeStreamMeta(nil, &m))
		}
		if r, err := decodeRun(v); err == nil {
			assert.Equal(t, v, encodeRun(nil, r))
		}
		if r, err := decodeIdem(v); err == nil {
			assert.Equal(t, v, encodeIdem(nil, r))
		}
		var d chunkDecoder
		if d.reset(v) == nil {
			for range min(d.Groups, 1<<16) {
				if _, err := d.next(); err != nil {
					break
				}
			}
		}
		_, _ = decodeUint64(v)
	})
}
