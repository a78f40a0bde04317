package storage

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadInto: ReadInto returns exactly what Read returns, page by page,
// including records with keys, headers and large values; its errors are
// Read's and leave the buffer empty; and a steady replay through one
// ReadBuffer allocates nothing per page once the buffer has grown.
func TestReadInto(t *testing.T) {
	s := mustOpen(t, "/db", memOptions(vfs.NewMem()))
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	for a := range 40 {
		recs := make([]Record, 50)
		for i := range recs {
			recs[i].Value = bytes.Repeat([]byte{byte(a), byte(i)}, 40+(a*7+i)%60)
			if i%9 == 0 {
				recs[i].Key = fmt.Appendf(nil, "k-%d-%d", a, i)
			}
			if i%17 == 0 {
				recs[i].Headers = map[string]string{"h": fmt.Sprint(i)}
			}
			if a == 7 && i == 3 {
				recs[i].Value = bytes.Repeat([]byte{'L'}, 40<<10) // larger than an arena chunk's quarter
			}
		}
		_, err := s.Append(ctx, "s", recs...)
		require.NoError(t, err)
	}

	var buf ReadBuffer
	for _, page := range []int{1, 7, 64, 333, 2000} {
		for from := uint64(0); from < 2000; from += uint64(page) {
			want, err := s.Read(ctx, "s", from, page)
			require.NoError(t, err)
			require.NoError(t, s.ReadInto(ctx, "s", from, page, &buf))
			require.Equal(t, want, buf.Records, "page %d from %d", page, from)
		}
	}
	require.NoError(t, s.ReadInto(ctx, "s", 2000, 10, &buf))
	assert.Empty(t, buf.Records, "at the end")

	require.NoError(t, s.ReadInto(ctx, "s", 0, 10, &buf))
	require.ErrorIs(t, s.ReadInto(ctx, "nope", 0, 10, &buf), ErrNotFound)
	assert.Empty(t, buf.Records, "an error leaves the buffer empty")
	require.ErrorIs(t, s.ReadInto(ctx, "s", 0, 0, &buf), ErrInvalidArgument)
	assert.Empty(t, buf.Records)

	// Steady state, records without headers (headers come back as fresh
	// maps, as from Read): the same page shape again and again.
	for a := range 20 {
		recs := make([]Record, 100)
		for i := range recs {
			recs[i].Value = bytes.Repeat([]byte{byte(a)}, 100)
		}
		_, err := s.Append(ctx, "plain", recs...)
		require.NoError(t, err)
	}
	page := func() {
		if err := s.ReadInto(ctx, "plain", 100, 1000, &buf); err != nil || len(buf.Records) != 1000 {
			t.Fatalf("ReadInto: %d records, %v", len(buf.Records), err)
		}
	}
	read := func() {
		if _, err := s.Read(ctx, "plain", 100, 1000); err != nil {
			t.Fatal(err)
		}
	}
	page()
	if raceEnabled {
		t.Log("allocation figures skipped under the race detector")
		return
	}
	into, intoN := allocatedPerRun(50, page)
	plain, plainN := allocatedPerRun(50, read)
	t.Logf("per 1000-record page: ReadInto %d B in %.1f allocations, Read %d B in %.1f", into, intoN, plain, plainN)
	// What is left is the index lookups' few small allocations per run
	// (here 10 runs of 100 records): nothing per record.
	assert.Less(t, into, int64(16<<10), "ReadInto allocates nothing per record")
	assert.Greater(t, plain, int64(1000*100), "Read allocates every record's memory (the check can fail)")
}

// allocatedPerRun is testing.AllocsPerRun with the bytes as well.
func allocatedPerRun(runs int, f func()) (bytesPerRun int64, allocsPerRun float64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return int64(after.TotalAlloc-before.TotalAlloc) / int64(runs), float64(after.Mallocs-before.Mallocs) / float64(runs)
}
