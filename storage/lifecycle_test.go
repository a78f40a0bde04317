package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func vals(recs []StoredRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}

func TestCreateStream(t *testing.T) {
	s := mustOpen(t, "db", memOptions(vfs.NewMem()))
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	cfg := StreamConfig{ContentType: "application/json", TTL: time.Hour}

	res, err := s.CreateStream(ctx, "a", cfg)
	require.NoError(t, err)
	assert.True(t, res.Created)
	info, err := s.StreamInfo(ctx, "a")
	require.NoError(t, err, "a created stream exists while empty")
	assert.Equal(t, uint64(0), info.NextOffset)
	assert.Equal(t, "application/json", info.ContentType)
	assert.Equal(t, int64(3600), info.TTLSeconds)
	assert.True(t, info.LastTimestamp.IsZero())
	list, err := s.Streams(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)

	res, err = s.CreateStream(ctx, "a", cfg, Record{Value: []byte("ignored")})
	require.NoError(t, err, "the same configuration again")
	assert.False(t, res.Created)
	assert.Empty(t, readAll(t, s, "a"), "a repeated create appends nothing")

	for _, other := range []StreamConfig{
		{ContentType: "text/plain", TTL: time.Hour},
		{ContentType: "application/json"},
		{ContentType: "application/json", TTL: time.Hour, Closed: true},
	} {
		_, err = s.CreateStream(ctx, "a", other)
		assert.ErrorIs(t, err, ErrStreamExists, "%+v", other)
	}

	// Initial records, atomically with the create; the default content type.
	res, err = s.CreateStream(ctx, "b", StreamConfig{}, Record{Value: []byte("1")}, Record{Value: []byte("2")})
	require.NoError(t, err)
	assert.True(t, res.Created)
	assert.Equal(t, 2, res.Append.Count)
	assert.Equal(t, []string{"1", "2"}, vals(readAll(t, s, "b")))
	info, err = s.StreamInfo(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, "application/octet-stream", info.ContentType)

	// A stream made by an append has the default configuration.
	_, err = s.Append(ctx, "c", Record{Value: []byte("x")})
	require.NoError(t, err)
	res, err = s.CreateStream(ctx, "c", StreamConfig{})
	require.NoError(t, err)
	assert.False(t, res.Created)
	_, err = s.CreateStream(ctx, "c", StreamConfig{ContentType: "text/plain"})
	assert.ErrorIs(t, err, ErrStreamExists)

	// Bad configurations change nothing.
	for _, bad := range []StreamConfig{
		{TTL: -time.Second},
		{TTL: time.Second, ExpiresAt: time.Now()},
		{ContentType: "text/\nplain"},
	} {
		_, err = s.CreateStream(ctx, "d", bad)
		assert.ErrorIs(t, err, ErrInvalidArgument, "%+v", bad)
	}
	_, err = s.StreamInfo(ctx, "d")
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = s.CreateStream(ctx, "bad name", StreamConfig{})
	assert.ErrorIs(t, err, ErrInvalidStream)
}

func TestCloseStream(t *testing.T) {
	s := mustOpen(t, "db", memOptions(vfs.NewMem()))
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()

	_, err := s.CloseStream(ctx, "missing", AppendOptions{})
	assert.ErrorIs(t, err, ErrNotFound)

	_, err = s.Append(ctx, "a", Record{Value: []byte("1")})
	require.NoError(t, err)
	_, err = s.CloseStream(ctx, "a", AppendOptions{})
	require.NoError(t, err)
	_, err = s.CloseStream(ctx, "a", AppendOptions{})
	require.NoError(t, err, "closing twice is idempotent")
	_, err = s.Append(ctx, "a", Record{Value: []byte("2")})
	assert.ErrorIs(t, err, ErrStreamClosed)
	_, err = s.CloseStream(ctx, "a", AppendOptions{}, Record{Value: []byte("3")})
	assert.ErrorIs(t, err, ErrStreamClosed, "a final append to a closed stream")
	info, err := s.StreamInfo(ctx, "a")
	require.NoError(t, err)
	assert.True(t, info.Closed)
	assert.Equal(t, []string{"1"}, vals(readAll(t, s, "a")))

	// A final append closes atomically.
	_, err = s.Append(ctx, "b", Record{Value: []byte("1")})
	require.NoError(t, err)
	res, err := s.AppendWith(ctx, "b", AppendOptions{Close: true}, Record{Value: []byte("2")})
	require.NoError(t, err)
	assert.Equal(t, uint64(1), res.FirstOffset)
	_, err = s.Append(ctx, "b", Record{Value: []byte("3")})
	assert.ErrorIs(t, err, ErrStreamClosed)
	assert.Equal(t, []string{"1", "2"}, vals(readAll(t, s, "b")))

	// A close with a failed condition changes nothing.
	_, err = s.Append(ctx, "c", Record{Value: []byte("1")})
	require.NoError(t, err)
	_, err = s.CloseStream(ctx, "c", AppendOptions{ExpectedLastOffset: ptr(int64(5))})
	assert.ErrorIs(t, err, ErrOffsetMismatch)
	_, err = s.Append(ctx, "c", Record{Value: []byte("2")})
	require.NoError(t, err, "still open")

	// Created closed.
	_, err = s.CreateStream(ctx, "d", StreamConfig{Closed: true}, Record{Value: []byte("only")})
	require.NoError(t, err)
	_, err = s.Append(ctx, "d", Record{Value: []byte("more")})
	assert.ErrorIs(t, err, ErrStreamClosed)
	assert.Equal(t, []string{"only"}, vals(readAll(t, s, "d")))
}

func ptr[T any](v T) *T { return &v }

func TestDeleteStream(t *testing.T) {
	s := mustOpen(t, "db", memOptions(vfs.NewMem()))
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()

	assert.ErrorIs(t, s.DeleteStream(ctx, "missing"), ErrNotFound)
	for i := range 3 {
		_, err := s.AppendWith(ctx, "a", AppendOptions{IdempotencyKey: "k"}, Record{Value: []byte{byte('0' + i)}})
		require.NoError(t, err)
	}
	_, err := s.Append(ctx, "a", Record{Value: []byte("x")}, Record{Value: []byte("y")})
	require.NoError(t, err)
	require.NoError(t, s.SetCursor(ctx, "a", "c1", 1))
	_, err = s.Append(ctx, "keep", Record{Value: []byte("k")})
	require.NoError(t, err)

	require.NoError(t, s.DeleteStream(ctx, "a"))
	_, err = s.StreamInfo(ctx, "a")
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = s.Read(ctx, "a", 0, 10)
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = s.Cursor(ctx, "a", "c1")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, s.DeleteStream(ctx, "a"), ErrNotFound, "deleted once")
	list, err := s.Streams(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "keep", list[0].Stream)

	// Recreated, it starts empty at offset 0, and forgot the old key.
	res, err := s.AppendWith(ctx, "a", AppendOptions{IdempotencyKey: "k"}, Record{Value: []byte("new")})
	require.NoError(t, err)
	assert.False(t, res.Replayed)
	assert.Equal(t, uint64(0), res.FirstOffset)
	assert.Equal(t, []string{"new"}, vals(readAll(t, s, "a")))
	assert.Equal(t, []string{"k"}, vals(readAll(t, s, "keep")))

	// The global log still holds the deleted records (until retention)
	// and reads across the delete command.
	g := readGlobalAll(t, s)
	assert.Len(t, g, 5, "1 of the 3 keyed appends, 2, keep, new")
	assert.Equal(t, "new", string(g[len(g)-1].Value))
}

func TestIdempotentProducer(t *testing.T) {
	s := mustOpen(t, "db", memOptions(vfs.NewMem()))
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	app := func(epoch, seq uint64, v string) (AppendResult, error) {
		return s.AppendWith(ctx, "a", AppendOptions{Producer: &Producer{ID: "p", Epoch: epoch, Seq: seq}}, Record{Value: []byte(v)})
	}
	var pe *ProducerError

	_, err := app(0, 1, "x")
	require.ErrorAs(t, err, &pe, "a new producer starts at 0")
	assert.ErrorIs(t, err, ErrProducerSeqGap)
	assert.Equal(t, uint64(0), pe.ExpectedSeq)
	assert.Equal(t, uint64(1), pe.Seq)

	r0, err := app(0, 0, "a")
	require.NoError(t, err)
	r1, err := app(0, 1, "b")
	require.NoError(t, err)
	dup, err := app(0, 1, "b-again")
	require.NoError(t, err)
	assert.True(t, dup.Replayed)
	assert.Equal(t, r1.FirstOffset, dup.FirstOffset)
	assert.Equal(t, uint64(1), dup.ProducerSeq)
	dup, err = app(0, 0, "a-again")
	require.NoError(t, err, "an older seq is a duplicate too")
	assert.True(t, dup.Replayed)
	assert.Equal(t, uint64(1), dup.ProducerSeq, "the highest accepted seq")

	_, err = app(0, 3, "gap")
	require.ErrorAs(t, err, &pe)
	assert.ErrorIs(t, err, ErrProducerSeqGap)
	assert.Equal(t, uint64(2), pe.ExpectedSeq)

	_, err = app(1, 1, "new epoch must start at 0")
	assert.ErrorIs(t, err, ErrInvalidArgument)
	_, err = app(1, 0, "c")
	require.NoError(t, err)
	_, err = app(0, 2, "fenced")
	require.ErrorAs(t, err, &pe)
	assert.ErrorIs(t, err, ErrProducerFenced)
	assert.Equal(t, uint64(1), pe.Epoch)

	// Another producer has its own sequence.
	_, err = s.AppendWith(ctx, "a", AppendOptions{Producer: &Producer{ID: "q"}}, Record{Value: []byte("q0")})
	require.NoError(t, err)

	assert.Equal(t, []string{"a", "b", "c", "q0"}, vals(readAll(t, s, "a")))
	assert.Equal(t, uint64(0), r0.FirstOffset)

	_, err = s.AppendWith(ctx, "a", AppendOptions{Producer: &Producer{ID: ""}}, Record{Value: []byte("x")})
	assert.ErrorIs(t, err, ErrInvalidArgument)
}

func TestMustExist(t *testing.T) {
	s := mustOpen(t, "db", memOptions(vfs.NewMem()))
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	_, err := s.AppendWith(ctx, "a", AppendOptions{MustExist: true}, Record{Value: []byte("x")})
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = s.StreamInfo(ctx, "a")
	assert.ErrorIs(t, err, ErrNotFound, "nothing was created")
	_, err = s.CreateStream(ctx, "a", StreamConfig{})
	require.NoError(t, err)
	_, err = s.AppendWith(ctx, "a", AppendOptions{MustExist: true}, Record{Value: []byte("x")})
	require.NoError(t, err)
}

// TestLifecycleRebuild: every lifecycle decision is a function of the
// journal. Closing and reopening, and rebuilding the index from the
// journal, give the same state and the same later decisions.
func TestLifecycleRebuild(t *testing.T) {
	for _, rebuild := range []bool{false, true} {
		fs := vfs.NewMem()
		o := memOptions(fs)
		s := mustOpen(t, "db", o)
		ctx := context.Background()
		_, err := s.CreateStream(ctx, "cfg", StreamConfig{ContentType: "application/json", ExpiresAt: time.Unix(2_000_000_000, 0)})
		require.NoError(t, err)
		_, err = s.Append(ctx, "closed", Record{Value: []byte("1")})
		require.NoError(t, err)
		_, err = s.CloseStream(ctx, "closed", AppendOptions{})
		require.NoError(t, err)
		_, err = s.Append(ctx, "gone", Record{Value: []byte("1")})
		require.NoError(t, err)
		require.NoError(t, s.DeleteStream(ctx, "gone"))
		_, err = s.Append(ctx, "again", Record{Value: []byte("old")})
		require.NoError(t, err)
		require.NoError(t, s.DeleteStream(ctx, "again"))
		_, err = s.Append(ctx, "again", Record{Value: []byte("new")})
		require.NoError(t, err)
		_, err = s.AppendWith(ctx, "prod", AppendOptions{Producer: &Producer{ID: "p", Epoch: 3}}, Record{Value: []byte("p0")})
		require.NoError(t, err)
		before := snapshotState(t, s)
		require.NoError(t, s.Close())
		if rebuild {
			require.NoError(t, fs.RemoveAll(fs.PathJoin("db", "index")))
		}
		s = mustOpen(t, "db", o)
		assert.Equal(t, before, snapshotState(t, s), "rebuild=%v", rebuild)

		info, err := s.StreamInfo(ctx, "cfg")
		require.NoError(t, err)
		assert.Equal(t, "application/json", info.ContentType)
		assert.Equal(t, int64(2_000_000_000), info.ExpiresAt.Unix())
		_, err = s.Append(ctx, "closed", Record{Value: []byte("2")})
		assert.ErrorIs(t, err, ErrStreamClosed)
		_, err = s.StreamInfo(ctx, "gone")
		assert.ErrorIs(t, err, ErrNotFound)
		assert.Equal(t, []string{"new"}, vals(readAll(t, s, "again")))
		res, err := s.AppendWith(ctx, "prod", AppendOptions{Producer: &Producer{ID: "p", Epoch: 3}}, Record{Value: []byte("p0")})
		require.NoError(t, err)
		assert.True(t, res.Replayed, "the producer's seq survived")
		_, err = s.AppendWith(ctx, "prod", AppendOptions{Producer: &Producer{ID: "p", Epoch: 2}}, Record{Value: []byte("x")})
		assert.True(t, errors.Is(err, ErrProducerFenced), "%v", err)
		require.NoError(t, s.Close())
	}
}

// FuzzControl decodes arbitrary control bytes: never a panic, an error
// that wraps errCorruptIndex, and what decodes re-encodes to bytes that
// decode to the same control.
func FuzzControl(f *testing.F) {
	f.Add(appendControl(nil, &control{Op: opCreate, Flags: ctlConfig | ctlClose, ContentType: []byte("text/plain"), TTL: 5e9, ExpiresAt: -7}))
	f.Add(appendControl(nil, &control{Op: opAppend, Flags: ctlProducer | ctlMustExist, ProducerID: []byte("p"), Epoch: 1 << 40, Seq: 3}))
	f.Add(appendControl(nil, &control{Op: opDelete}))
	f.Add([]byte{})
	f.Add([]byte{9, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeControl(b)
		if err != nil {
			require.ErrorIs(t, err, errCorruptIndex)
			return
		}
		again, err := decodeControl(appendControl(nil, &c))
		require.NoError(t, err)
		require.Equal(t, c, again)
	})
}

// FuzzStreamMeta: the same for the stream metadata value.
func FuzzStreamMeta(f *testing.F) {
	f.Add(encodeStreamMeta(nil, &streamMeta{NextOffset: 3, Bytes: 9, LastTime: -1, MaxTime: 5}))
	f.Add(encodeStreamMeta(nil, &streamMeta{NextOffset: 3, Explicit: true, Closed: true, Config: streamConfig{ContentType: "a/b", TTL: 7, ExpiresAt: -9}}))
	f.Add(make([]byte, 33))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeStreamMeta(b)
		if err != nil {
			require.ErrorIs(t, err, errCorruptIndex)
			return
		}
		again, err := decodeStreamMeta(encodeStreamMeta(nil, &m))
		require.NoError(t, err)
		require.Equal(t, m, again)
	})
}

// TestStreamTTL: a TTL slides with reads and appends, not with
// StreamInfo; a slide survives a restart up to an eighth of the TTL; an
// expired stream answers ErrNotFound, and the business logic deletes it by
// the journaled time.
func TestStreamTTL(t *testing.T) {
	fs := vfs.NewMem()
	clock := newFakeClock()
	t0 := clock.now()
	o := memOptions(fs)
	s := clock.open(t, "db", o)
	ctx := context.Background()
	at := func(d time.Duration) { clock.set(t0.Add(d)) }

	_, err := s.CreateStream(ctx, "ttl", StreamConfig{TTL: 10 * time.Second}, Record{Value: []byte("1")})
	require.NoError(t, err)
	_, err = s.CreateStream(ctx, "head", StreamConfig{TTL: 10 * time.Second})
	require.NoError(t, err)

	at(5 * time.Second)
	_, err = s.Read(ctx, "ttl", 0, 10) // slides to t0+5s, and journals a touch
	require.NoError(t, err)
	_, err = s.StreamInfo(ctx, "head") // does not slide
	require.NoError(t, err)

	at(12 * time.Second)
	_, err = s.StreamInfo(ctx, "ttl")
	require.NoError(t, err, "the read at 5s slid the TTL to 15s")
	_, err = s.StreamInfo(ctx, "head")
	assert.ErrorIs(t, err, ErrNotFound, "HEAD did not slide it: expired at 10s")
	_, err = s.Read(ctx, "head", 0, 10)
	assert.ErrorIs(t, err, ErrNotFound)
	list, err := s.Streams(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)

	// The slide survives a restart (the touch was journaled).
	require.NoError(t, s.Close())
	s = clock.open(t, "db", o)
	_, err = s.StreamInfo(ctx, "ttl")
	require.NoError(t, err, "after a restart, the journaled touch at 5s still holds")

	// An append slides it too.
	at(14 * time.Second)
	_, err = s.Append(ctx, "ttl", Record{Value: []byte("2")})
	require.NoError(t, err)
	at(23 * time.Second)
	_, err = s.StreamInfo(ctx, "ttl")
	require.NoError(t, err, "the append at 14s slid it to 24s")
	at(24 * time.Second)
	_, err = s.StreamInfo(ctx, "ttl")
	assert.ErrorIs(t, err, ErrNotFound)

	// The business logic decides expiry by the journaled time: an append
	// with MustExist finds nothing, a plain append starts a new stream.
	_, err = s.AppendWith(ctx, "ttl", AppendOptions{MustExist: true}, Record{Value: []byte("x")})
	assert.ErrorIs(t, err, ErrNotFound)
	res, err := s.Append(ctx, "ttl", Record{Value: []byte("new")})
	require.NoError(t, err)
	assert.Equal(t, uint64(0), res.FirstOffset, "a new stream, without the old TTL")
	info, err := s.StreamInfo(ctx, "ttl")
	require.NoError(t, err)
	assert.Zero(t, info.TTLSeconds)

	// The reaper deletes what has expired, and only that.
	s.reapExpired()
	require.NoError(t, s.Close()) // drains the reaper's deletes
	s = clock.open(t, "db", o)
	defer func() { require.NoError(t, s.Close()) }()
	s.stateMu.RLock()
	_, kept := s.app.streams["head"]
	s.stateMu.RUnlock()
	assert.False(t, kept, "the reaper deleted the expired stream")
	assert.Equal(t, []string{"new"}, vals(readAll(t, s, "ttl")))
}

func TestStreamExpiresAt(t *testing.T) {
	clock := newFakeClock()
	t0 := clock.now()
	o := memOptions(vfs.NewMem())
	s := clock.open(t, "db", o)
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	_, err := s.CreateStream(ctx, "e", StreamConfig{ExpiresAt: t0.Add(time.Minute)}, Record{Value: []byte("1")})
	require.NoError(t, err)
	clock.set(t0.Add(59 * time.Second))
	_, err = s.Read(ctx, "e", 0, 1)
	require.NoError(t, err)
	clock.set(t0.Add(time.Minute))
	_, err = s.Read(ctx, "e", 0, 1)
	assert.ErrorIs(t, err, ErrNotFound, "reads do not slide an expiry time")
	_, err = s.CloseStream(ctx, "e", AppendOptions{})
	assert.ErrorIs(t, err, ErrNotFound)
}

// TestWaitOnClosedStream: a tail at the end of a closed stream ends at
// once, and one waiting when the stream closes wakes.
func TestWaitOnClosedStream(t *testing.T) {
	s := mustOpen(t, "db", memOptions(vfs.NewMem()))
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	_, err := s.Append(ctx, "a", Record{Value: []byte("1")})
	require.NoError(t, err)
	require.NoError(t, s.Wait(ctx, "a", 0))
	errc := make(chan error, 1)
	go func() { errc <- s.Wait(ctx, "a", 1) }()
	select {
	case err := <-errc:
		t.Fatalf("Wait returned before the close: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	_, err = s.CloseStream(ctx, "a", AppendOptions{})
	require.NoError(t, err)
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, ErrStreamClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not wake on the close")
	}
	assert.ErrorIs(t, s.Wait(ctx, "a", 1), ErrStreamClosed)
	assert.NoError(t, s.Wait(ctx, "a", 0), "a record below the end is still there")
}

func TestForkStream(t *testing.T) {
	s := mustOpen(t, "db", memOptions(vfs.NewMem()))
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	for _, batch := range [][]string{{"a0", "a1"}, {"a2", "a3", "a4"}} {
		recs := make([]Record, len(batch))
		for i, v := range batch {
			recs[i] = Record{Value: []byte(v)}
		}
		_, err := s.CreateStream(ctx, "src", StreamConfig{ContentType: "text/plain"})
		require.NoError(t, err)
		_, err = s.Append(ctx, "src", recs...)
		require.NoError(t, err)
	}
	// Fork inside the second append, with a first record of its own.
	res, err := s.ForkStream(ctx, "f", "src", 3, 0, nil, Record{Value: []byte("f3")})
	require.NoError(t, err)
	assert.Equal(t, uint64(3), res.FirstOffset)
	_, err = s.Append(ctx, "f", Record{Value: []byte("f4")})
	require.NoError(t, err)
	_, err = s.Append(ctx, "src", Record{Value: []byte("a5")})
	require.NoError(t, err)
	assert.Equal(t, []string{"a0", "a1", "a2", "f3", "f4"}, vals(readAll(t, s, "f")))
	assert.Equal(t, []string{"a0", "a1", "a2", "a3", "a4", "a5"}, vals(readAll(t, s, "src")), "the source diverges")
	got, err := s.Read(ctx, "f", 2, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"a2", "f3"}, vals(got), "a page across the fork point")
	assert.Equal(t, "f", got[0].Stream)
	info, err := s.StreamInfo(ctx, "f")
	require.NoError(t, err)
	assert.Equal(t, "text/plain", info.ContentType, "the source's configuration")
	assert.Equal(t, "src", info.ForkedFrom)
	assert.Equal(t, uint64(3), info.ForkOffset)
	assert.Equal(t, uint64(5), info.NextOffset)

	// A fork of the fork, below its fork point.
	_, err = s.ForkStream(ctx, "ff", "f", 1, 0, &StreamConfig{ContentType: "application/json"})
	require.NoError(t, err)
	_, err = s.Append(ctx, "ff", Record{Value: []byte("1"), JSON: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"a0", "1"}, vals(readAll(t, s, "ff")))
	// And one at its end.
	_, err = s.ForkStream(ctx, "fe", "f", 5, 0, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"a0", "a1", "a2", "f3", "f4"}, vals(readAll(t, s, "fe")))

	// Refusals change nothing.
	_, err = s.ForkStream(ctx, "x", "src", 7, 0, nil)
	assert.ErrorIs(t, err, ErrInvalidArgument, "past the source's end")
	_, err = s.ForkStream(ctx, "x", "nope", 0, 0, nil)
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = s.ForkStream(ctx, "f", "src", 0, 0, nil)
	assert.ErrorIs(t, err, ErrStreamExists, "another fork point")
	res, err = s.ForkStream(ctx, "f", "src", 3, 0, nil)
	require.NoError(t, err, "the same fork again")
	assert.True(t, res.Replayed)

	// A fork inside one append: its first own record is a prefix of it.
	_, err = s.Append(ctx, "bytes", Record{Value: []byte("hello")})
	require.NoError(t, err)
	_, err = s.ForkStream(ctx, "hel", "bytes", 0, 3, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"hel"}, vals(readAll(t, s, "hel")))
	_, err = s.ForkStream(ctx, "x", "bytes", 0, 6, nil)
	assert.ErrorIs(t, err, ErrInvalidArgument, "past the record's end")
	res, err = s.ForkStream(ctx, "hel", "bytes", 0, 3, nil)
	require.NoError(t, err)
	assert.True(t, res.Replayed)
	_, err = s.ForkStream(ctx, "hel", "bytes", 0, 2, nil)
	assert.ErrorIs(t, err, ErrStreamExists)

	// Deleting a source with forks soft-deletes it: 410 for it, its
	// forks read on; the last fork's delete cascades.
	require.NoError(t, s.DeleteStream(ctx, "src"))
	_, err = s.Read(ctx, "src", 0, 1)
	assert.ErrorIs(t, err, ErrStreamDeleted)
	assert.ErrorIs(t, err, ErrGone)
	_, err = s.Append(ctx, "src", Record{Value: []byte("no")})
	assert.ErrorIs(t, err, ErrStreamDeleted)
	_, err = s.CreateStream(ctx, "src", StreamConfig{})
	assert.ErrorIs(t, err, ErrStreamExists, "the name is taken while forks read it")
	_, err = s.ForkStream(ctx, "x", "src", 0, 0, nil)
	assert.ErrorIs(t, err, ErrStreamExists)
	assert.Equal(t, []string{"a0", "a1", "a2", "f3", "f4"}, vals(readAll(t, s, "f")))

	require.NoError(t, s.DeleteStream(ctx, "f")) // f has forks: soft
	assert.Equal(t, []string{"a0", "1"}, vals(readAll(t, s, "ff")))
	require.NoError(t, s.DeleteStream(ctx, "ff"))
	_, err = s.StreamInfo(ctx, "src")
	assert.ErrorIs(t, err, ErrStreamDeleted, "fe still reads src through f")
	require.NoError(t, s.DeleteStream(ctx, "fe"))
	for _, name := range []string{"src", "f", "ff", "fe"} {
		_, err = s.StreamInfo(ctx, name)
		assert.ErrorIs(t, err, ErrNotFound, "%s: the cascade removed it", name)
		assert.NotErrorIs(t, err, ErrGone, name)
	}
	_, err = s.Append(ctx, "src", Record{Value: []byte("fresh")})
	require.NoError(t, err)
	assert.Equal(t, []string{"fresh"}, vals(readAll(t, s, "src")))
}

func TestForkRebuildAndTime(t *testing.T) {
	for _, rebuild := range []bool{false, true} {
		fs := vfs.NewMem()
		clock := newFakeClock()
		t0 := clock.now()
		o := memOptions(fs)
		s := clock.open(t, "db", o)
		ctx := context.Background()
		for i := range 6 {
			clock.set(t0.Add(time.Duration(i) * time.Second))
			_, err := s.Append(ctx, "src", Record{Value: []byte{byte('0' + i)}})
			require.NoError(t, err)
		}
		_, err := s.ForkStream(ctx, "f", "src", 3, 0, nil)
		require.NoError(t, err)
		clock.set(t0.Add(10 * time.Second))
		_, err = s.Append(ctx, "f", Record{Value: []byte("x")})
		require.NoError(t, err)
		require.NoError(t, s.DeleteStream(ctx, "src"))
		before := snapshotState(t, s)
		require.NoError(t, s.Close())
		if rebuild {
			require.NoError(t, fs.RemoveAll(fs.PathJoin("db", "index")))
		}
		s = clock.open(t, "db", o)
		assert.Equal(t, before, snapshotState(t, s), "rebuild=%v", rebuild)
		assert.Equal(t, []string{"0", "1", "2", "x"}, vals(readAll(t, s, "f")))
		_, err = s.StreamInfo(ctx, "src")
		assert.ErrorIs(t, err, ErrStreamDeleted)

		for _, tc := range []struct {
			at   time.Duration
			want []string
		}{
			{1 * time.Second, []string{"1", "2", "x"}},
			{3 * time.Second, []string{"x"}}, // the source's 3s record is past the fork

			{11 * time.Second, nil},
		} {
			got, err := s.ReadFromTime(ctx, "f", t0.Add(tc.at), 10)
			require.NoError(t, err)
			assert.Equal(t, tc.want, valsOrNil(got), "from %v", tc.at)
		}
		require.NoError(t, s.Close())
	}
}

func valsOrNil(recs []StoredRecord) []string {
	if len(recs) == 0 {
		return nil
	}
	return vals(recs)
}

func TestStreamSeq(t *testing.T) {
	s := mustOpen(t, "db", memOptions(vfs.NewMem()))
	defer func() { require.NoError(t, s.Close()) }()
	ctx := context.Background()
	app := func(seq string) error {
		_, err := s.AppendWith(ctx, "a", AppendOptions{StreamSeq: seq}, Record{Value: []byte(seq)})
		return err
	}
	require.NoError(t, app("001"))
	require.NoError(t, app("002"))
	assert.ErrorIs(t, app("001"), ErrStreamSeq)
	assert.ErrorIs(t, app("002"), ErrStreamSeq, "equal is not above")
	require.NoError(t, app("2"))
	assert.ErrorIs(t, app("10"), ErrStreamSeq, "byte order, not numeric: \"10\" < \"2\"")
	require.NoError(t, app("a"))
	assert.ErrorIs(t, app("B"), ErrStreamSeq, "uppercase sorts before lowercase")
	require.NoError(t, app("b"))
	assert.Equal(t, []string{"001", "002", "2", "a", "b"}, vals(readAll(t, s, "a")))

	// A producer's repeat is recognized before the label.
	p := &Producer{ID: "p"}
	_, err := s.AppendWith(ctx, "a", AppendOptions{Producer: p, StreamSeq: "c"}, Record{Value: []byte("c")})
	require.NoError(t, err)
	res, err := s.AppendWith(ctx, "a", AppendOptions{Producer: p, StreamSeq: "c"}, Record{Value: []byte("c")})
	require.NoError(t, err)
	assert.True(t, res.Replayed)
}
