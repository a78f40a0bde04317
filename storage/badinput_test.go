package storage

import (
	"github.com/badbatch/badbatch"

	"context"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBadInput: each kind of bad input gets its typed error and changes
// nothing stored: not the streams, not the records, not the journal.
func TestBadInput(t *testing.T) {
	o := memOptions(vfs.NewMem())
	o.MaxRecordBytes = 1 << 10
	o.MaxBatchBytes = 4 << 10
	s := mustOpen(t, "db", o)
	ctx := context.Background()
	_, err := s.Append(ctx, "good", Record{Value: []byte("v")})
	require.NoError(t, err)
	require.NoError(t, s.SetCursor(context.Background(), "good", "c", 1))

	big := make([]byte, 1<<10+1)
	half := make([]byte, 900)
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"empty stream name", func() error { _, err := s.Append(ctx, "", Record{}); return err }, ErrInvalidStream},
		{"bad stream byte", func() error { _, err := s.Append(ctx, "a/b", Record{}); return err }, ErrInvalidStream},
		{"leading dot", func() error { _, err := s.Append(ctx, ".a", Record{}); return err }, ErrInvalidStream},
		{"stream name too long", func() error { _, err := s.Append(ctx, strings.Repeat("a", 201), Record{}); return err }, ErrInvalidStream},
		{"empty batch", func() error { _, err := s.Append(ctx, "good"); return err }, ErrEmptyBatch},
		{"record too large", func() error { _, err := s.Append(ctx, "good", Record{Value: big}); return err }, ErrRecordTooLarge},
		{"record too large by headers", func() error {
			_, err := s.Append(ctx, "good", Record{Value: half, Headers: map[string]string{"h": string(half)}})
			return err
		}, ErrRecordTooLarge},
		{"batch too large", func() error {
			_, err := s.Append(ctx, "good", Record{Value: half}, Record{Value: half}, Record{Value: half}, Record{Value: half}, Record{Value: half})
			return err
		}, ErrBatchTooLarge},
		{"expected offset below -1", func() error {
			_, err := s.AppendWith(ctx, "good", AppendOptions{ExpectedLastOffset: badbatch.ExpectLastOffset(-2)}, Record{})
			return err
		}, ErrInvalidArgument},
		{"idempotency key too long", func() error {
			_, err := s.AppendWith(ctx, "good", AppendOptions{IdempotencyKey: strings.Repeat("k", 257)}, Record{})
			return err
		}, ErrInvalidArgument},
		{"timestamp out of range", func() error {
			_, err := s.Append(ctx, "good", Record{Timestamp: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)})
			return err
		}, ErrInvalidArgument},
		{"async invalid stream", func() error { _, err := s.AppendAsync("a b", AppendOptions{}, Record{}); return err }, ErrInvalidStream},
		{"cancelled context", func() error {
			c, cancel := context.WithCancel(ctx)
			cancel()
			_, err := s.Append(c, "good", Record{})
			return err
		}, context.Canceled},
		{"read unknown stream", func() error { _, err := s.Read(ctx, "nope", 0, 1); return err }, ErrNotFound},
		{"read zero limit", func() error { _, err := s.Read(ctx, "good", 0, 0); return err }, ErrInvalidArgument},
		{"read negative limit", func() error { _, err := s.ReadGlobal(ctx, 0, -1); return err }, ErrInvalidArgument},
		{"read from time unknown stream", func() error { _, err := s.ReadFromTime(ctx, "nope", time.Now(), 1); return err }, ErrNotFound},
		{"stream info unknown", func() error { _, err := s.StreamInfo(context.Background(), "nope"); return err }, ErrNotFound},
		{"cursor on unknown stream", func() error { return s.SetCursor(context.Background(), "nope", "c", 0) }, ErrNotFound},
		{"cursor bad name", func() error { return s.SetCursor(context.Background(), "good", "a/b", 0) }, ErrInvalidArgument},
		{"cursor beyond next offset", func() error { return s.SetCursor(context.Background(), "good", "c", 2) }, ErrInvalidArgument},
		{"cursor never set", func() error { _, err := s.Cursor(context.Background(), "good", "other"); return err }, ErrNotFound},
		{"wait bad stream", func() error { return s.Wait(ctx, "", 0) }, ErrInvalidStream},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshotState(t, s)
			journalBefore := s.j.NextSeq()
			err := tc.call()
			assert.ErrorIs(t, err, tc.want)
			assert.Equal(t, before, snapshotState(t, s), "stored state changed")
			assert.Equal(t, journalBefore, s.j.NextSeq(), "something was journaled")
			c, err := s.Cursor(context.Background(), "good", "c")
			require.NoError(t, err)
			assert.Equal(t, uint64(1), c)
		})
	}

	require.NoError(t, s.Close())
	closedCalls := map[string]func() error{
		"Append":       func() error { _, err := s.Append(ctx, "good", Record{}); return err },
		"AppendAsync":  func() error { _, err := s.AppendAsync("good", AppendOptions{}, Record{}); return err },
		"Read":         func() error { _, err := s.Read(ctx, "good", 0, 1); return err },
		"ReadFromTime": func() error { _, err := s.ReadFromTime(ctx, "good", time.Now(), 1); return err },
		"ReadGlobal":   func() error { _, err := s.ReadGlobal(ctx, 0, 1); return err },
		"Streams":      func() error { _, err := s.Streams(context.Background()); return err },
		"StreamInfo":   func() error { _, err := s.StreamInfo(context.Background(), "good"); return err },
		"SetCursor":    func() error { return s.SetCursor(context.Background(), "good", "c", 0) },
		"Cursor":       func() error { _, err := s.Cursor(context.Background(), "good", "c"); return err },
		"Wait":         func() error { return s.Wait(ctx, "good", 0) },
	}
	for name, call := range closedCalls {
		t.Run("closed/"+name, func(t *testing.T) {
			assert.ErrorIs(t, call(), ErrClosed)
		})
	}
	assert.False(t, s.Ready())

	s = mustOpen(t, "db", o)
	defer func() { require.NoError(t, s.Close()) }()
	info, err := s.StreamInfo(context.Background(), "good")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), info.NextOffset, "bad input left no trace after a reopen")
}

// TestOptionsValidation: Open rejects bad options and never modifies the
// caller's struct.
func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		mod  func(o *Options)
	}{
		{"ring not a power of two", func(o *Options) { o.RingSize = 100 }},
		{"negative window", func(o *Options) { o.IdempotencyWindow = -1 }},
		{"record above batch", func(o *Options) { o.MaxRecordBytes, o.MaxBatchBytes = 10, 5 }},
		{"negative flush bytes", func(o *Options) { o.IndexFlushBytes = -1 }},
		{"nil handler", func(o *Options) { o.Handlers = []Handler{nil} }},
		{"unknown sync policy", func(o *Options) { o.SyncPolicy = 9 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &Options{FS: vfs.NewMem()}
			tc.mod(o)
			copyBefore := *o
			_, err := Open("db", o)
			assert.ErrorIs(t, err, ErrInvalidArgument)
			assert.Equal(t, copyBefore.RingSize, o.RingSize)
			assert.Equal(t, copyBefore.MaxBatchBytes, o.MaxBatchBytes)
		})
	}
	o := &Options{FS: vfs.NewMem()}
	s, err := Open("db", o)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	assert.Zero(t, o.RingSize, "Open filled defaults into a copy, not the caller's options")
	assert.Nil(t, o.Logger)
}
