package replay_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/badbatch/badbatch/replay"
	"github.com/badbatch/badbatch/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewOptions(t *testing.T) {
	s := openStore(t, nil)
	tests := []struct {
		name  string
		src   replay.Source[storage.StoredRecord]
		pos   func(*storage.StoredRecord) replay.Position
		opts  *replay.Options
		batch int
		err   error
	}{
		{"defaults", s, position, nil, replay.DefaultBatchSize, nil},
		{"zero batch means default", s, position, &replay.Options{}, replay.DefaultBatchSize, nil},
		{"batch 7", s, position, &replay.Options{BatchSize: 7}, 7, nil},
		{"negative batch", s, position, &replay.Options{BatchSize: -1}, 0, replay.ErrInvalidOptions},
		{"nil source", nil, position, nil, 0, replay.ErrInvalidOptions},
		{"nil position", s, nil, nil, 0, replay.ErrInvalidOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := replay.New(tt.src, tt.pos, tt.opts)
			if tt.err != nil {
				assert.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.batch, r.BatchSize())
		})
	}
}

// TestRecords: history replay from any offset, in batches that do and do
// not divide the stream, and the bad positions.
func TestRecords(t *testing.T) {
	s := openStore(t, nil)
	fill(t, s, "a", 25, 4)
	fill(t, s, "b", 3, 3)
	tests := []struct {
		name   string
		stream string
		from   uint64
		batch  int
		want   []uint64
		err    error
	}{
		{"from 0, batch 1", "a", 0, 1, span(0, 25), nil},
		{"from 0, batch 5", "a", 0, 5, span(0, 25), nil},
		{"from 7, batch 4", "a", 7, 4, span(7, 25), nil},
		{"from 24 (last)", "a", 24, 10, span(24, 25), nil},
		{"at the end", "a", 25, 10, span(0, 0), nil},
		{"far past the end", "a", 1 << 40, 10, span(0, 0), nil},
		{"other stream", "b", 1, 1000, span(1, 3), nil},
		{"unknown stream", "nope", 0, 10, nil, storage.ErrNotFound},
		{"invalid stream", "-x", 0, 10, nil, storage.ErrInvalidStream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReader(t, s, tt.batch)
			got, err := collect(r.Records(context.Background(), tt.stream, tt.from))
			if tt.err != nil {
				assert.ErrorIs(t, err, tt.err)
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, offsets(got))
			for _, rec := range got {
				assert.Equal(t, fmt.Sprintf("%s/%d", tt.stream, rec.Offset), string(rec.Value))
				assert.Equal(t, tt.stream, rec.Stream)
			}
		})
	}
}

// TestBreakStops: breaking out of an iterator stops it; nothing keeps
// running (goleak checks at exit) and Subscribe returns.
func TestBreakStops(t *testing.T) {
	s := openStore(t, nil)
	fill(t, s, "a", 10, 10)
	r := newReader(t, s, 3)
	n := 0
	for _, err := range r.Subscribe(context.Background(), "a", 2) {
		require.NoError(t, err)
		if n++; n == 5 {
			break
		}
	}
	assert.Equal(t, 5, n)
}

// TestSubscribeErrors: the ends of a subscription.
func TestSubscribeErrors(t *testing.T) {
	s := openStore(t, nil)
	fill(t, s, "a", 3, 3)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		stream string
		from   uint64
		got    int
		err    error
	}{
		{"unknown stream", context.Background(), "nope", 0, 0, storage.ErrNotFound},
		{"cancelled context", cancelled, "a", 0, 0, context.Canceled},
		{"waits past the end until the deadline", nil, "a", 10, 0, context.DeadlineExceeded},
		{"delivers then waits", nil, "a", 1, 2, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				c, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				ctx = c
			}
			r := newReader(t, s, 2)
			got := 0
			var last error
			for _, err := range r.Subscribe(ctx, tt.stream, tt.from) {
				if err != nil {
					last = err
					continue
				}
				got++
			}
			assert.Equal(t, tt.got, got)
			assert.ErrorIs(t, last, tt.err)
		})
	}
}

// TestSubscribeStoreClosed: a subscription waiting for records ends with
// storage.ErrClosed when the store closes.
func TestSubscribeStoreClosed(t *testing.T) {
	s, err := storage.Open(t.TempDir(), nil)
	require.NoError(t, err)
	fill(t, s, "a", 1, 1)
	r := newReader(t, s, 10)
	done := make(chan error, 1)
	go func() {
		var last error
		for _, err := range r.Subscribe(context.Background(), "a", 0) {
			last = err
		}
		done <- last
	}()
	require.NoError(t, s.Wait(context.Background(), "a", 0))
	require.NoError(t, s.Close())
	assert.ErrorIs(t, <-done, storage.ErrClosed)
}

// TestPoll: the timed step httpapi's tailing uses.
func TestPoll(t *testing.T) {
	s := openStore(t, nil)
	fill(t, s, "a", 5, 5)
	r := newReader(t, s, 100)
	ctx := context.Background()

	recs, err := r.Poll(ctx, "a", 2, 2, time.Second)
	require.NoError(t, err)
	assert.Equal(t, span(2, 4), offsets(recs))

	recs, err = r.Poll(ctx, "a", 5, 0, 0)
	require.NoError(t, err)
	assert.Empty(t, recs, "no wait at the end")

	recs, err = r.Poll(ctx, "a", 5, 0, 20*time.Millisecond)
	require.NoError(t, err, "a timeout is an empty answer, not an error")
	assert.Empty(t, recs)

	done := make(chan []storage.StoredRecord, 1)
	go func() {
		recs, err := r.Poll(ctx, "a", 5, 0, time.Minute)
		assert.NoError(t, err)
		done <- recs
	}()
	fill(t, s, "a", 2, 2)
	assert.Equal(t, span(5, 7), offsets(<-done))

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = r.Poll(cctx, "a", 7, 0, time.Minute)
	assert.ErrorIs(t, err, context.Canceled)

	_, err = r.Poll(ctx, "nope", 0, 0, time.Minute)
	assert.ErrorIs(t, err, storage.ErrNotFound)
}

// TestGlobal: commit order across streams from any seq.
func TestGlobal(t *testing.T) {
	s := openStore(t, nil)
	for i := range 12 {
		fill(t, s, fmt.Sprintf("s%d", i%3), 2, 2)
	}
	all, err := s.ReadGlobal(context.Background(), 0, 1000)
	require.NoError(t, err)
	require.Len(t, all, 24)
	for _, batch := range []int{1, 5, 1000} {
		for _, from := range []int{0, 7, 23} {
			t.Run(fmt.Sprintf("batch=%d/from=%d", batch, from), func(t *testing.T) {
				r := newReader(t, s, batch)
				got, err := collect(r.Global(context.Background(), all[from].Seq))
				require.NoError(t, err)
				require.Len(t, got, len(all)-from)
				for i := range got {
					assert.Equal(t, all[from+i].Seq, got[i].Seq)
					assert.Equal(t, all[from+i].Stream, got[i].Stream)
					assert.Equal(t, all[from+i].Value, got[i].Value)
				}
			})
		}
	}
	r := newReader(t, s, 10)
	got, err := collect(r.Global(context.Background(), all[23].Seq+1))
	require.NoError(t, err)
	assert.Empty(t, got)
}

// badSource returns batches that skip a record.
type badSource struct {
	replay.Source[storage.StoredRecord]
}

func (b badSource) Read(ctx context.Context, stream string, from uint64, limit int) ([]storage.StoredRecord, error) {
	recs, err := b.Source.Read(ctx, stream, from+1, limit)
	return recs, err
}

// TestOutOfOrderSource: a Source that skips records is caught, never
// passed on as a gap.
func TestOutOfOrderSource(t *testing.T) {
	s := openStore(t, nil)
	fill(t, s, "a", 5, 5)
	r := newReader(t, badSource{s}, 10)
	got, err := collect(r.Records(context.Background(), "a", 0))
	assert.Empty(t, got)
	assert.ErrorIs(t, err, replay.ErrOutOfOrder)
	assert.False(t, errors.Is(err, storage.ErrNotFound))
}
