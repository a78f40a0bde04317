package replay_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/badbatch/badbatch/replay"
	"github.com/badbatch/badbatch/storage"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openStore opens a real store in t.TempDir() and closes it at cleanup.
func openStore(t *testing.T, o *storage.Options) *storage.Store {
	t.Helper()
	if o == nil {
		o = &storage.Options{}
	}
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := storage.Open(t.TempDir(), o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func position(r *storage.StoredRecord) replay.Position {
	return replay.Position{Offset: r.Offset, Seq: r.Seq}
}

func newReader(t *testing.T, s replay.Source[storage.StoredRecord], batch int) *replay.Reader[storage.StoredRecord] {
	t.Helper()
	r, err := replay.New(s, position, &replay.Options{BatchSize: batch})
	require.NoError(t, err)
	return r
}

// fill appends n records to stream in appends of per records; value i is
// "stream/i" for the stream's i-th record of this call.
func fill(t *testing.T, s *storage.Store, stream string, n, per int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i += per {
		recs := make([]storage.Record, min(per, n-i))
		for k := range recs {
			recs[k].Value = fmt.Appendf(nil, "%s/%d", stream, i+k)
		}
		_, err := s.Append(ctx, stream, recs...)
		require.NoError(t, err)
	}
}

// collect drains a history iterator.
func collect(seq func(func(storage.StoredRecord, error) bool)) ([]storage.StoredRecord, error) {
	var out []storage.StoredRecord
	for rec, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// offsets returns the offsets of recs.
func offsets(recs []storage.StoredRecord) []uint64 {
	out := make([]uint64, len(recs))
	for i := range recs {
		out[i] = recs[i].Offset
	}
	return out
}

// span returns [from, to).
func span(from, to uint64) []uint64 {
	out := make([]uint64, 0, to-from)
	for o := from; o < to; o++ {
		out = append(out, o)
	}
	return out
}
