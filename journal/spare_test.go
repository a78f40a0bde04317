package journal

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRecyclingUnderReaders: readers iterate and Read (zero copy, from the
// sealed segments' mappings) while retention retires segments and rolls
// recycle them, on the real file system with the preparer. A segment a
// reader holds must never be reused (it goes to *.dead), so every entry a
// reader sees is the one written at its index, never bytes of a later life
// of its file; reads below the first index fail with ErrTruncated.
func TestRecyclingUnderReaders(t *testing.T) {
	o := DefaultOptions()
	o.SegmentSize = 32 << 10
	o.RetentionBytes = 3 * o.SegmentSize
	o.RecycleSegments = 2
	j := mustOpen(t, t.TempDir(), o)
	payload := func(i uint64) []byte { return bytes.Join(entryGroups(int(i), 500), nil) }

	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				it := j.NewIterator(0)
				for k := 0; k < 20 && it.Next(); k++ {
					e := it.Entry()
					if !assert.Equal(t, payload(e.Index), e.Payload, "entry %d read while its segment may be retired", e.Index) {
						stop.Store(true)
					}
					reads.Add(1)
				}
				if err := it.Err(); err != nil && !errors.Is(err, ErrTruncated) {
					assert.NoError(t, err)
					stop.Store(true)
				}
				it.Close()
				first := j.FirstIndex()
				err := j.Read(first, func(e *Entry) error {
					assert.Equal(t, payload(first), e.Payload)
					return nil
				})
				if err != nil && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrOutOfRange) {
					assert.NoError(t, err)
				}
			}
		}()
	}
	for i := uint64(1); i <= 600 && !stop.Load(); i++ {
		info, err := j.Write(entryGroups(int(i), 500))
		require.NoError(t, err)
		require.Equal(t, i, info.Index)
		if i%8 == 0 {
			require.NoError(t, j.Sync())
		}
	}
	stop.Store(true)
	wg.Wait()
	st := j.Stats()
	t.Logf("%d reads; %d rolls, %d recycled, %d prepared", reads.Load(), st.Rolls, st.RollsRecycled, st.RollsPrepared)
	assert.Positive(t, st.RollsRecycled)
	require.NoError(t, j.Close())
}
