package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/badbatch/badbatch"
	"github.com/badbatch/badbatch/httpapi/client"
)

func TestClientLifecycle(t *testing.T) {
	srv := startServer(t, nil)
	c, err := client.New(srv.URL(), nil)
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()

	created, err := c.CreateStream(ctx, "s", client.StreamConfig{ContentType: "text/plain", TTL: time.Hour})
	require.NoError(t, err)
	assert.True(t, created)
	created, err = c.CreateStream(ctx, "s", client.StreamConfig{ContentType: "text/plain", TTL: time.Hour})
	require.NoError(t, err)
	assert.False(t, created)
	_, err = c.CreateStream(ctx, "s", client.StreamConfig{})
	assert.ErrorIs(t, err, client.ErrStreamExists)
	info, err := c.StreamInfo(ctx, "s")
	require.NoError(t, err)
	assert.Equal(t, "text/plain", info.ContentType)
	assert.Equal(t, int64(3600), info.TTLSeconds)

	p := func(epoch, seq uint64) *client.AppendOptions {
		return &client.AppendOptions{Producer: &badbatch.Producer{ID: "p", Epoch: epoch, Seq: seq}}
	}
	_, err = c.Append(ctx, "s", client.Record{Value: []byte("a")}, p(0, 0))
	require.NoError(t, err)
	res, err := c.Append(ctx, "s", client.Record{Value: []byte("a")}, p(0, 0))
	require.NoError(t, err)
	assert.True(t, res.Replayed)
	_, err = c.Append(ctx, "s", client.Record{Value: []byte("x")}, p(0, 5))
	var ce *client.Error
	require.True(t, errors.As(err, &ce), "%v", err)
	assert.ErrorIs(t, err, client.ErrProducerSeqGap)
	require.NotNil(t, ce.ExpectedSeq)
	assert.Equal(t, uint64(1), *ce.ExpectedSeq)
	assert.Equal(t, uint64(5), *ce.ReceivedSeq)
	_, err = c.Append(ctx, "s", client.Record{Value: []byte("b")}, p(2, 0))
	require.NoError(t, err)
	_, err = c.Append(ctx, "s", client.Record{Value: []byte("x")}, p(1, 0))
	assert.ErrorIs(t, err, client.ErrProducerFenced)
	require.True(t, errors.As(err, &ce))
	assert.Equal(t, uint64(2), *ce.ProducerEpoch)

	require.NoError(t, c.ForkStream(ctx, "f", "s", 1, nil))
	_, err = c.Append(ctx, "f", client.Record{Value: []byte("f1")}, nil)
	require.NoError(t, err)
	page, err := c.Read(ctx, "f", client.ReadRequest{From: client.Earliest, Limit: 10})
	require.NoError(t, err)
	require.Len(t, page.Records, 2)
	assert.Equal(t, "a", string(page.Records[0].Value))
	assert.Equal(t, "f1", string(page.Records[1].Value))

	_, err = c.Append(ctx, "s", client.Record{Value: []byte("last")}, &client.AppendOptions{Close: true})
	require.NoError(t, err)
	_, err = c.Append(ctx, "s", client.Record{Value: []byte("more")}, nil)
	assert.ErrorIs(t, err, client.ErrStreamClosed)
	require.NoError(t, c.CloseStream(ctx, "s"))

	// A tail of the closed stream yields its records, then ends cleanly.
	var got []string
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	for rec, err := range c.Tail(tctx, "s", client.Earliest) {
		require.NoError(t, err)
		got = append(got, string(rec.Value))
	}
	require.NoError(t, tctx.Err(), "the tail ended at the close, not at the deadline")
	cancel()
	assert.Equal(t, []string{"a", "b", "last"}, got)
	n := 0
	for _, err := range c.Tail(ctx, "s", client.Latest) {
		require.NoError(t, err)
		n++
	}
	assert.Zero(t, n, "from latest: nothing, then the end")

	require.NoError(t, c.DeleteStream(ctx, "s"))
	_, err = c.StreamInfo(ctx, "s")
	assert.ErrorIs(t, err, client.ErrGone, "soft-deleted: f reads it")
	require.NoError(t, c.DeleteStream(ctx, "f"))
	_, err = c.StreamInfo(ctx, "s")
	assert.ErrorIs(t, err, client.ErrNotFound)
	assert.ErrorIs(t, c.DeleteStream(ctx, "s"), client.ErrNotFound)

	_, err = c.Append(ctx, "s", client.Record{Value: []byte("x")}, &client.AppendOptions{MustExist: true})
	assert.ErrorIs(t, err, client.ErrInvalidOptions)
}

func TestStreamSeqLabels(t *testing.T) {
	ctx := context.Background()
	at := &answerTransport{status: http.StatusCreated, body: "{}"}
	fake := newClient(t, "http://127.0.0.1:1", func(o *client.Options) { o.HTTPClient = &http.Client{Transport: at} })
	for name, label := range map[string]string{
		"257 bytes": strings.Repeat("s", 257),
		"a newline": "s-\n7",
		"non-ASCII": "s-é",
	} {
		_, err := fake.Append(ctx, "s", client.Record{Value: []byte("x")}, &client.AppendOptions{StreamSeq: label})
		require.ErrorIs(t, err, client.ErrInvalidOptions, name)
		var ce *client.Error
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, client.CodeInvalidOptions, ce.Code, name)
	}
	assert.Zero(t, at.calls.Load(), "a bad label sends nothing")

	// Against the real server: 256 bytes at both ends of the range, the
	// second above the first, and the same label again is refused there.
	srv := startServer(t, nil)
	c := newClient(t, srv.URL(), nil)
	first, second := strings.Repeat("!", 256), "~"+strings.Repeat(" ", 254)+"~"
	_, err := c.Append(ctx, "seq", client.Record{Value: []byte("a")}, &client.AppendOptions{StreamSeq: first})
	require.NoError(t, err, "256 printable bytes")
	_, err = c.Append(ctx, "seq", client.Record{Value: []byte("b")}, &client.AppendOptions{StreamSeq: second})
	require.NoError(t, err)
	_, err = c.Append(ctx, "seq", client.Record{Value: []byte("x")}, &client.AppendOptions{StreamSeq: second})
	assert.ErrorIs(t, err, client.ErrStreamSeq, "equal is not above")
}

func TestIdempotencyKeys(t *testing.T) {
	ctx := context.Background()
	at := &answerTransport{status: http.StatusCreated, body: "{}"}
	fake := newClient(t, "http://127.0.0.1:1", func(o *client.Options) { o.HTTPClient = &http.Client{Transport: at} })
	for name, key := range map[string]string{
		"257 bytes": strings.Repeat("k", 257),
		"a newline": "k-\n7",
		"non-ASCII": "k-é",
	} {
		_, err := fake.AppendBatch(ctx, "s", []client.Record{{Value: []byte("x")}}, &client.AppendOptions{IdempotencyKey: key})
		require.ErrorIs(t, err, client.ErrInvalidOptions, name)
		var ce *client.Error
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, client.CodeInvalidOptions, ce.Code, name)
	}
	assert.Zero(t, at.calls.Load(), "a bad key sends nothing")
	below := int64(-2)
	_, err := fake.AppendBatch(ctx, "s", []client.Record{{Value: []byte("x")}}, &client.AppendOptions{ExpectedLastOffset: &below})
	require.ErrorIs(t, err, client.ErrInvalidOptions, "an expected last offset below -1")
	assert.Zero(t, at.calls.Load(), "a bad expected offset sends nothing")

	// Against the real server: a 256-byte key is sent, and its repeat is
	// answered with the first result.
	srv := startServer(t, nil)
	c := newClient(t, srv.URL(), nil)
	key := "~" + strings.Repeat(" ", 254) + "~"
	first, err := c.Append(ctx, "keys", client.Record{Value: []byte("a")}, &client.AppendOptions{IdempotencyKey: key})
	require.NoError(t, err, "256 printable bytes")
	again, err := c.Append(ctx, "keys", client.Record{Value: []byte("a")}, &client.AppendOptions{IdempotencyKey: key})
	require.NoError(t, err)
	assert.True(t, again.Replayed)
	assert.Equal(t, first.FirstOffset, again.FirstOffset)
}
