package storage

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// model is the naive reference: every stream a slice, every decision
// spelled out. It mirrors the documented semantics, not the store's code.
type model struct {
	window  time.Duration
	streams map[string][]StoredRecord
	idem    map[string]modelIdem // stream + "/" + key
	cursors map[string]uint64    // stream + "/" + name
	global  []StoredRecord
	clock   time.Time // the largest group time so far
	nextSeq uint64
}

type modelIdem struct {
	at  time.Time
	res AppendResult
}

func newModel(window time.Duration) *model {
	return &model{
		window:  window,
		streams: map[string][]StoredRecord{},
		idem:    map[string]modelIdem{},
		cursors: map[string]uint64{},
	}
}

// append applies one append journaled at group time now.
func (m *model) append(stream string, opts AppendOptions, now time.Time, recs []Record) (AppendResult, error) {
	if now.After(m.clock) {
		m.clock = now
	}
	firstSeq := m.nextSeq
	m.nextSeq += uint64(len(recs))
	ik := stream + "/" + opts.IdempotencyKey
	if opts.IdempotencyKey != "" {
		if e, ok := m.idem[ik]; ok && m.clock.Sub(e.at) <= m.window {
			r := e.res
			r.Replayed = true
			return r, nil
		}
	}
	cur := m.streams[stream]
	last := int64(len(cur)) - 1
	if opts.ExpectedLastOffset != nil && *opts.ExpectedLastOffset != last {
		return AppendResult{}, &OffsetMismatchError{Stream: stream, Expected: *opts.ExpectedLastOffset, Current: last}
	}
	first := uint64(len(cur))
	for i, r := range recs {
		sr := StoredRecord{Record: cloneRecord(r), Stream: stream, Offset: first + uint64(i), Seq: firstSeq + uint64(i)}
		if sr.Timestamp.IsZero() {
			sr.Timestamp = now
		}
		m.streams[stream] = append(m.streams[stream], sr)
		m.global = append(m.global, sr)
	}
	res := AppendResult{Stream: stream, FirstOffset: first, LastOffset: first + uint64(len(recs)) - 1, Count: len(recs),
		FirstSeq: firstSeq, LastSeq: firstSeq + uint64(len(recs)) - 1, Durability: DurabilityFsynced}
	if opts.IdempotencyKey != "" {
		m.idem[ik] = modelIdem{at: now, res: res}
	}
	return res, nil
}

func (m *model) setCursor(stream, name string, offset uint64, now time.Time) {
	if now.After(m.clock) {
		m.clock = now
	}
	m.nextSeq++
	m.cursors[stream+"/"+name] = offset
}

func (m *model) read(stream string, from uint64, limit int) ([]StoredRecord, error) {
	cur, ok := m.streams[stream]
	if !ok {
		return nil, ErrNotFound
	}
	if from >= uint64(len(cur)) {
		return nil, nil
	}
	return cur[from:min(uint64(len(cur)), from+uint64(limit))], nil
}

func (m *model) readFromTime(stream string, t time.Time, limit int) ([]StoredRecord, error) {
	cur, ok := m.streams[stream]
	if !ok {
		return nil, ErrNotFound
	}
	for i, r := range cur {
		if !r.Timestamp.Before(t) {
			return cur[i:min(len(cur), i+limit)], nil
		}
	}
	return nil, nil
}

func (m *model) readGlobal(from uint64, limit int) []StoredRecord {
	for i, r := range m.global {
		if r.Seq >= from {
			return m.global[i:min(len(m.global), i+limit)]
		}
	}
	return nil
}

func cloneRecord(r Record) Record {
	c := Record{Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value), JSON: r.JSON, Timestamp: r.Timestamp}
	if len(r.Headers) > 0 {
		c.Headers = make(map[string]string, len(r.Headers))
		for k, v := range r.Headers {
			c.Headers[k] = v
		}
	}
	return c
}

// normalize makes records comparable with assert.Equal: empty slices as
// nil, times in UTC.
func normalize(recs []StoredRecord) []StoredRecord {
	out := make([]StoredRecord, len(recs))
	for i, r := range recs {
		r.Timestamp = r.Timestamp.UTC()
		if len(r.Key) == 0 {
			r.Key = nil
		}
		if len(r.Value) == 0 {
			r.Value = nil
		}
		if len(r.Headers) == 0 {
			r.Headers = nil
		}
		out[i] = r
	}
	return out
}

// randomRecords makes 1..5 records; some carry their own (non-monotonic)
// timestamps.
func randomRecords(rng *rand.Rand, base time.Time) []Record {
	n := 1 + rng.IntN(5)
	recs := make([]Record, n)
	for i := range recs {
		r := &recs[i]
		r.Value = make([]byte, rng.IntN(64))
		for j := range r.Value {
			r.Value[j] = byte(rng.UintN(256))
		}
		if rng.IntN(3) == 0 {
			r.Key = []byte(fmt.Sprintf("k%d", rng.IntN(10)))
		}
		if rng.IntN(4) == 0 {
			r.Headers = map[string]string{"h": fmt.Sprint(rng.IntN(5)), "trace": "x"}
		}
		r.JSON = rng.IntN(5) == 0
		if rng.IntN(3) == 0 {
			r.Timestamp = base.Add(time.Duration(rng.IntN(2000)-1000) * time.Millisecond)
		}
	}
	return recs
}

// TestModel runs random appends (with and without expected offsets and
// idempotency keys), cursor updates, reads and restarts against the store
// and the model, and compares every answer.
func TestModel(t *testing.T) {
	ops := 3000
	if testing.Short() {
		ops = 800
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d operations", seed, ops)
	rng := rand.New(rand.NewPCG(seed, 1))
	fs := vfs.NewMem()
	clock := newFakeClock()
	o := memOptions(fs)
	o.IdempotencyWindow = 5 * time.Second
	m := newModel(o.IdempotencyWindow)
	s := clock.open(t, "db", o)
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	streams := []string{"orders", "users", "a", "a.b"}
	restarts, rejected, replayed := 0, 0, 0

	for op := range ops {
		// The producer clock moves mostly forward, sometimes back a little
		// (concurrent producers are not ordered by their clocks).
		clock.set(clock.now().Add(time.Duration(rng.IntN(700)-100) * time.Millisecond))
		stream := streams[rng.IntN(len(streams))]
		switch k := rng.IntN(100); {
		case k < 55: // append
			var opts AppendOptions
			if rng.IntN(3) == 0 {
				expected := int64(len(m.streams[stream])) - 1
				opts.ExpectedLastOffset = &expected
				if rng.IntN(3) == 0 {
					expected += int64(rng.IntN(5)) - 2
					expected = max(expected, -1)
				}
			}
			if rng.IntN(3) == 0 {
				opts.IdempotencyKey = fmt.Sprintf("idem-%d", rng.IntN(8))
			}
			recs := randomRecords(rng, clock.now())
			want, wantErr := m.append(stream, opts, clock.now(), recs)
			got, err := s.AppendWith(ctx, stream, opts, recs...)
			if wantErr != nil {
				var mm *OffsetMismatchError
				require.ErrorAs(t, err, &mm, "op %d", op)
				assert.Equal(t, wantErr, mm, "op %d", op)
				rejected++
				continue
			}
			require.NoError(t, err, "op %d", op)
			assert.Equal(t, want, got, "op %d: append %+v", op, opts)
			if got.Replayed {
				replayed++
			}
		case k < 65: // read
			from := uint64(rng.IntN(len(m.streams[stream]) + 3))
			limit := 1 + rng.IntN(20)
			want, wantErr := m.read(stream, from, limit)
			got, err := s.Read(ctx, stream, from, limit)
			if wantErr != nil {
				assert.ErrorIs(t, err, wantErr, "op %d", op)
				continue
			}
			require.NoError(t, err, "op %d", op)
			assert.Equal(t, normalize(want), normalize(got), "op %d: read %s from %d", op, stream, from)
		case k < 72: // read from time
			at := clock.now().Add(time.Duration(rng.IntN(40_000)-35_000) * time.Millisecond)
			limit := 1 + rng.IntN(20)
			want, wantErr := m.readFromTime(stream, at, limit)
			got, err := s.ReadFromTime(ctx, stream, at, limit)
			if wantErr != nil {
				assert.ErrorIs(t, err, wantErr, "op %d", op)
				continue
			}
			require.NoError(t, err, "op %d", op)
			assert.Equal(t, normalize(want), normalize(got), "op %d: read %s from time %v", op, stream, at)
		case k < 80: // read global
			from := uint64(rng.IntN(int(m.nextSeq) + 3))
			limit := 1 + rng.IntN(30)
			got, err := s.ReadGlobal(ctx, from, limit)
			require.NoError(t, err, "op %d", op)
			assert.Equal(t, normalize(m.readGlobal(from, limit)), normalize(got), "op %d: read global from %d", op, from)
		case k < 86: // stream info
			info, err := s.StreamInfo(context.Background(), stream)
			cur, ok := m.streams[stream]
			if !ok {
				assert.ErrorIs(t, err, ErrNotFound, "op %d", op)
				continue
			}
			require.NoError(t, err, "op %d", op)
			assert.Equal(t, uint64(len(cur)), info.NextOffset, "op %d", op)
			assert.Equal(t, uint64(len(cur)), info.Records, "op %d", op)
			assert.True(t, cur[len(cur)-1].Timestamp.Equal(info.LastTimestamp), "op %d", op)
		case k < 93: // cursors
			name := fmt.Sprintf("c%d", rng.IntN(3))
			if cur, ok := m.streams[stream]; ok && rng.IntN(2) == 0 {
				off := uint64(rng.IntN(len(cur) + 1))
				m.setCursor(stream, name, off, clock.now())
				require.NoError(t, s.SetCursor(context.Background(), stream, name, off), "op %d", op)
				continue
			}
			got, err := s.Cursor(context.Background(), stream, name)
			if want, ok := m.cursors[stream+"/"+name]; ok {
				require.NoError(t, err, "op %d", op)
				assert.Equal(t, want, got, "op %d", op)
			} else {
				assert.ErrorIs(t, err, ErrNotFound, "op %d", op)
			}
		default: // restart
			require.NoError(t, s.Close())
			s = clock.open(t, "db", o)
			restarts++
		}
		if t.Failed() {
			t.Fatalf("stopping at op %d (seed %d)", op, seed)
		}
	}
	// Final full comparison.
	for _, stream := range streams {
		if _, ok := m.streams[stream]; !ok {
			continue
		}
		assert.Equal(t, normalize(m.streams[stream]), normalize(readAll(t, s, stream)), stream)
	}
	assert.Equal(t, normalize(m.global), normalize(readGlobalAll(t, s)))
	list, err := s.Streams(context.Background())
	require.NoError(t, err)
	assert.Len(t, list, len(m.streams))
	t.Logf("%d restarts, %d rejected, %d replayed, %d global records, next seq %d",
		restarts, rejected, replayed, len(m.global), m.nextSeq)
}
