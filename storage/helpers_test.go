package storage

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a settable producer clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// open opens a store whose producers' clock is c.
func (c *fakeClock) open(t testing.TB, dir string, o *Options) *Store {
	t.Helper()
	s, err := openWithClock(dir, o, c.now)
	require.NoError(t, err)
	return s
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// memOptions returns options for an in-memory store.
func memOptions(fs vfs.FS) *Options {
	o := DefaultOptions()
	o.FS = fs
	o.RingSize = 256
	return o
}

func mustOpen(t testing.TB, dir string, o *Options) *Store {
	t.Helper()
	s, err := Open(dir, o)
	require.NoError(t, err)
	return s
}

// readAll reads a whole stream.
func readAll(t testing.TB, s *Store, stream string) []StoredRecord {
	t.Helper()
	info, err := s.StreamInfo(context.Background(), stream)
	require.NoError(t, err)
	var out []StoredRecord
	for from := info.FirstOffset; from < info.NextOffset; {
		recs, err := s.Read(context.Background(), stream, from, 1000)
		require.NoError(t, err)
		require.NotEmpty(t, recs)
		out = append(out, recs...)
		from = recs[len(recs)-1].Offset + 1
	}
	return out
}

// readGlobalAll reads the whole global log.
func readGlobalAll(t testing.TB, s *Store) []StoredRecord {
	t.Helper()
	var out []StoredRecord
	from := uint64(0)
	for {
		recs, err := s.ReadGlobal(context.Background(), from, 500)
		require.NoError(t, err)
		if len(recs) == 0 {
			return out
		}
		out = append(out, recs...)
		from = recs[len(recs)-1].Seq + 1
	}
}
