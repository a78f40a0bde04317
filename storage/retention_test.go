package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/badbatch/badbatch/journal"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRetention: byte retention drops the journal's oldest segments, never
// past the durable index; reads below the new start answer ErrGone,
// reads from FirstOffset work, and the state survives a reopen and a
// power loss.
func TestRetention(t *testing.T) {
	fs := vfs.NewCrashableMem()
	o := memOptions(fs)
	o.SegmentSize = 4 << 10
	o.IndexFlushBytes = 2 << 10
	o.RetentionBytes = 16 << 10
	s := mustOpen(t, "db", o)
	ctx := context.Background()
	value := make([]byte, 100)
	start := time.Now()
	appends := 0
	for ; appends < 5000 && s.j.FirstIndex() < 20; appends++ {
		_, err := s.Append(ctx, fmt.Sprintf("r%d", appends%2), Record{Value: value}, Record{Value: value})
		require.NoError(t, err)
		if appends%50 == 0 {
			_, err := s.enforceRetention(time.Now())
			require.NoError(t, err)
		}
	}
	_, err := s.enforceRetention(time.Now()) // also waits for a pass of the retention goroutine
	require.NoError(t, err)
	require.Greater(t, s.j.FirstIndex(), uint64(1), "retention removed nothing after %d appends", appends)
	assert.Less(t, s.j.FirstIndex(), s.durableEntry.Load()+1, "truncated past the durable index")
	assert.LessOrEqual(t, s.j.Stats().Bytes, o.RetentionBytes+2*o.SegmentSize)

	check := func(s *Store) {
		t.Helper()
		for _, stream := range []string{"r0", "r1"} {
			info, err := s.StreamInfo(context.Background(), stream)
			require.NoError(t, err)
			require.Greater(t, info.FirstOffset, uint64(0), stream)
			assert.Equal(t, info.NextOffset-info.FirstOffset, info.Records)
			_, err = s.Read(ctx, stream, info.FirstOffset-1, 1)
			assert.ErrorIs(t, err, ErrGone)
			recs, err := s.Read(ctx, stream, info.FirstOffset, 3)
			require.NoError(t, err)
			require.NotEmpty(t, recs)
			assert.Equal(t, info.FirstOffset, recs[0].Offset)
			old, err := s.ReadFromTime(ctx, stream, start.Add(-time.Hour), 1)
			require.NoError(t, err)
			require.Len(t, old, 1)
			assert.Equal(t, info.FirstOffset, old[0].Offset, "a time before retention starts at the first retained record")
			all := readAll(t, s, stream)
			assert.Len(t, all, int(info.Records))
		}
		g, err := s.ReadGlobal(ctx, 0, 10)
		require.NoError(t, err)
		require.NotEmpty(t, g)
		var firstSeq uint64
		require.NoError(t, s.j.Read(s.j.FirstIndex(), func(e *journal.Entry) error { firstSeq = e.FirstSeq; return nil }))
		assert.GreaterOrEqual(t, g[0].Seq, firstSeq)
	}
	check(s)
	t.Logf("%d appends; journal entries %d..%d, %d bytes", appends, s.j.FirstIndex(), s.j.LastIndex(), s.j.Stats().Bytes)

	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	require.NoError(t, s.Close())
	s = mustOpen(t, "db", o)
	check(s)
	require.NoError(t, s.Close())

	// After a power loss the index may lag, but never behind the journal's
	// start: Open catches up.
	o.FS = crashed
	s = mustOpen(t, "db", o)
	check(s)
	require.NoError(t, s.Close())
}

// TestRetentionAge drops segments written before now-RetentionAge.
func TestRetentionAge(t *testing.T) {
	o := memOptions(vfs.NewMem())
	o.SegmentSize = 4 << 10
	o.IndexFlushBytes = 1 << 10
	o.RetentionAge = time.Hour
	s := mustOpen(t, "db", o)
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		v := make([]byte, 50+rng.IntN(100))
		_, err := s.Append(ctx, "aged", Record{Value: v})
		require.NoError(t, err)
	}
	removed, err := s.enforceRetention(time.Now())
	require.NoError(t, err)
	assert.False(t, removed, "nothing is an hour old")
	removed, err = s.enforceRetention(time.Now().Add(2 * time.Hour))
	require.NoError(t, err)
	assert.True(t, removed)
	info, err := s.StreamInfo(context.Background(), "aged")
	require.NoError(t, err)
	assert.Greater(t, info.FirstOffset, uint64(0))
	assert.Less(t, s.j.FirstIndex(), s.durableEntry.Load()+1)
}

// TestRetentionAtOpen: a store opened with limits its data exceeds
// enforces them before Open returns, not a retention tick later.
func TestRetentionAtOpen(t *testing.T) {
	fs := vfs.NewMem()
	o := memOptions(fs)
	o.SegmentSize = 4 << 10
	s := mustOpen(t, "db", o)
	ctx := context.Background()
	value := make([]byte, 1000)
	for range 40 {
		_, err := s.Append(ctx, "big", Record{Value: value})
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())

	o.RetentionBytes = 8 << 10
	s = mustOpen(t, "db", o)
	defer func() { require.NoError(t, s.Close()) }()
	info, err := s.StreamInfo(ctx, "big")
	require.NoError(t, err)
	assert.Greater(t, info.FirstOffset, uint64(0), "nothing removed at open")
	_, err = s.Read(ctx, "big", 0, 1)
	assert.ErrorIs(t, err, ErrGone)
}
