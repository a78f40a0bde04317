package client_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

func appendValues(t *testing.T, c *client.Client, stream string, from, n int) {
	t.Helper()
	recs := make([]client.Record, n)
	for i := range recs {
		recs[i] = client.Record{Value: []byte(fmt.Sprint(from + i)), JSON: true}
	}
	_, err := c.AppendBatch(context.Background(), stream, recs, nil)
	require.NoError(t, err)
}

// TestTailResumesAcrossRestart tails a stream while the server restarts
// (same directory, same address): the tail reconnects by itself and yields
// every offset exactly once.
func TestTailResumesAcrossRestart(t *testing.T) {
	s := startServer(t, nil)
	c := newClient(t, s.URL(), nil)
	appendValues(t, c, "tail", 0, 5)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []uint64
	restarted := false
	for rec, err := range c.Tail(ctx, "tail", client.Earliest) {
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint(rec.Offset), string(rec.Value))
		got = append(got, rec.Offset)
		if len(got) == 3 && !restarted {
			// Records 3 and 4 may already be in flight to the client; the
			// tail must not yield them twice after the restart.
			s.stop()
			s.start()
			restarted = true
			appendValues(t, c, "tail", 5, 5)
		}
		if len(got) == 10 {
			break
		}
	}
	want := make([]uint64, 10)
	for i := range want {
		want[i] = uint64(i)
	}
	assert.Equal(t, want, got)
}

func TestTailEnds(t *testing.T) {
	s := startServer(t, nil)
	c := newClient(t, s.URL(), nil)
	appendValues(t, c, "t", 0, 2)

	t.Run("permanent error", func(t *testing.T) {
		var errs []error
		for _, err := range c.Tail(context.Background(), "never-written", client.Earliest) {
			errs = append(errs, err)
		}
		require.Len(t, errs, 1)
		assert.ErrorIs(t, errs[0], client.ErrNotFound)
	})
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var last error
		n := 0
		for _, err := range c.Tail(ctx, "t", client.Earliest) {
			if err != nil {
				last = err
				continue
			}
			n++
			if n == 2 {
				cancel()
			}
		}
		assert.Equal(t, 2, n)
		assert.ErrorIs(t, last, context.Canceled)
	})
	t.Run("from latest", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			// Append until the tail has seen one new record; the tail may
			// connect before or after the first append.
			for ctx.Err() == nil {
				_, _ = c.Append(ctx, "t", client.Record{Value: []byte("9"), JSON: true}, nil)
				time.Sleep(10 * time.Millisecond)
			}
		}()
		for rec, err := range c.Tail(ctx, "t", client.Latest) {
			require.NoError(t, err)
			assert.GreaterOrEqual(t, rec.Offset, uint64(2))
			break
		}
		cancel()
		<-done
	})
}
