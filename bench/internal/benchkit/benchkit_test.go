package benchkit

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSizeName(t *testing.T) {
	for n, want := range map[int]string{16: "16B", 100: "100B", 1000: "1000B", 1 << 10: "1KiB", 64 << 10: "64KiB",
		1 << 20: "1MiB", 100 << 20: "100MiB", 1 << 30: "1GiB", 4 << 30: "4GiB"} {
		assert.Equal(t, want, SizeName(n), "%d", n)
	}
}

func TestMedian(t *testing.T) {
	assert.Zero(t, Median(nil))
	assert.Equal(t, 2.0, Median([]float64{3, 1, 2}))
	in := []float64{4, 1, 3, 2}
	assert.Equal(t, 2.5, Median(in))
	assert.Equal(t, []float64{4, 1, 3, 2}, in, "the input is not sorted in place")
}

func TestRecord(t *testing.T) {
	a, b := Record(100, 1), Record(100, 2)
	assert.Len(t, a, 100)
	assert.False(t, bytes.Equal(a, b), "records differ")
	assert.Equal(t, a, Record(100, 1), "and are deterministic")
	assert.Greater(t, len(bytes.Split(a, []byte{0})), 0)
	distinct := map[byte]bool{}
	for _, c := range Record(4096, 7) {
		distinct[c] = true
	}
	assert.Greater(t, len(distinct), 200, "incompressible-looking bytes")
}
