package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/badbatch/badbatch"
	"github.com/badbatch/badbatch/httpapi/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// killProxy forwards TCP to a server and can cut every live connection.
type killProxy struct {
	l     net.Listener
	to    string
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newKillProxy(t *testing.T, to string) *killProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &killProxy{l: l, to: to}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = l.Close()
		p.kill()
		p.wg.Wait()
	})
	return p
}

func (p *killProxy) URL() string { return "http://" + p.l.Addr().String() }

func (p *killProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.to)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _, _ = io.Copy(s, c); _ = s.Close() }()
		go func() { defer p.wg.Done(); _, _ = io.Copy(c, s); _ = c.Close() }()
	}
}

// kill cuts every connection open now.
func (p *killProxy) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// TestSessionPipelinedAppend: batches sent without waiting are answered
// in order with consecutive offsets; binary round trip of every field.
func TestSessionPipelinedAppend(t *testing.T) {
	s := startServer(t, nil)
	c := newClient(t, s.URL(), nil)
	ctx := context.Background()
	sess, err := c.OpenSession(ctx, "sess", &client.SessionOptions{Window: 1 << 16})
	require.NoError(t, err)
	assert.Equal(t, int64(1<<16), sess.Window())
	ts := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	var pend []*client.Pending
	for i := range 200 {
		p, err := sess.Send(ctx, []client.Record{
			{Key: "k" + strconv.Itoa(i), Value: []byte{byte(i), 0}, Headers: map[string]string{"i": strconv.Itoa(i)}, Timestamp: ts},
			{Value: []byte(`{"n":` + strconv.Itoa(i) + `}`), JSON: true},
		}, nil)
		require.NoError(t, err)
		pend = append(pend, p)
	}
	require.NoError(t, sess.Flush(ctx))
	for i, p := range pend {
		res, err := p.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, uint64(2*i), res.FirstOffset)
		assert.Equal(t, 2, res.Count)
	}
	page, err := c.Read(ctx, "sess", client.ReadRequest{Limit: 2})
	require.NoError(t, err)
	require.Len(t, page.Records, 2)
	assert.Equal(t, "k0", page.Records[0].Key)
	assert.Equal(t, []byte{0, 0}, page.Records[0].Value)
	assert.Equal(t, map[string]string{"i": "0"}, page.Records[0].Headers)
	assert.True(t, ts.Equal(page.Records[0].Timestamp))
	assert.JSONEq(t, `{"n":0}`, string(page.Records[1].Value))

	// Per-batch conditions: a mismatch fails that batch only.
	_, err = sess.Append(ctx, []client.Record{{Value: []byte("x")}}, &client.AppendOptions{ExpectedLastOffset: new(int64(0))})
	var e *client.Error
	require.ErrorAs(t, err, &e)
	assert.True(t, errors.Is(err, client.ErrOffsetMismatch))
	require.NotNil(t, e.CurrentLastOffset)
	assert.Equal(t, int64(399), *e.CurrentLastOffset)
	res, err := sess.Append(ctx, []client.Record{{Value: []byte("y")}}, &client.AppendOptions{ExpectedLastOffset: new(int64(399))})
	require.NoError(t, err)
	assert.Equal(t, uint64(400), res.FirstOffset)
	require.NoError(t, sess.Close())
	_, err = sess.Send(ctx, []client.Record{{Value: []byte("z")}}, nil)
	assert.ErrorIs(t, err, client.ErrSessionClosed)
}

// TestSessionReconnectExactlyOnce: the connection is killed again and
// again mid-stream; the session reconnects, resends what was unanswered
// under its keys, and every record is stored exactly once, in order.
func TestSessionReconnectExactlyOnce(t *testing.T) {
	s := startServer(t, nil)
	proxy := newKillProxy(t, s.addr)
	c := newClient(t, proxy.URL(), func(o *client.Options) { o.MaxRetries = new(20) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sess, err := c.OpenSession(ctx, "drop", &client.SessionOptions{Window: 4 << 10})
	require.NoError(t, err)
	defer sess.Close()

	const n = 3000
	stop := make(chan struct{})
	killed := make(chan int)
	go func() {
		kills := 0
		defer func() { killed <- kills }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
				proxy.kill()
				kills++
			}
		}
	}()
	pend := make([]*client.Pending, 0, n)
	for i := range n {
		p, err := sess.Send(ctx, []client.Record{{Value: []byte(strconv.Itoa(i))}}, nil)
		require.NoError(t, err)
		pend = append(pend, p)
	}
	require.NoError(t, sess.Flush(ctx))
	close(stop)
	kills := <-killed
	for i, p := range pend {
		res, err := p.Wait(ctx)
		require.NoError(t, err, "batch %d", i)
		assert.Equal(t, uint64(i), res.FirstOffset, "batch %d", i)
	}
	t.Logf("%d kills, %d reconnects", kills, sess.Reconnects())
	require.Positive(t, sess.Reconnects(), "the test killed no session connection")

	seen := make([]int, n)
	from := client.Offset(0)
	total := 0
	for {
		page, err := c.Read(ctx, "drop", client.ReadRequest{From: from, Limit: 1000})
		require.NoError(t, err)
		if len(page.Records) == 0 {
			break
		}
		for _, r := range page.Records {
			v, err := strconv.Atoi(string(r.Value))
			require.NoError(t, err)
			assert.Equal(t, uint64(v), r.Offset, "records in send order")
			seen[v]++
			total++
		}
		from = client.Offset(page.NextOffset)
	}
	assert.Equal(t, n, total)
	for i, k := range seen {
		if k != 1 {
			t.Errorf("record %d stored %d times", i, k)
		}
	}
}

// TestSessionRefused: a refused upgrade is the server's error.
func TestSessionRefused(t *testing.T) {
	s := startServer(t, nil)
	c := newClient(t, s.URL(), nil)
	_, err := c.OpenSession(context.Background(), "bad name", nil)
	require.Error(t, err)
	assert.True(t, errors.Is(err, client.ErrInvalidStream), "%v", err)
}

// TestSessionIdempotencyKeys: a session checks a caller's key as Append
// does (invalid_options, nothing sent), and sends a 256-byte one.
func TestSessionIdempotencyKeys(t *testing.T) {
	s := startServer(t, nil)
	c := newClient(t, s.URL(), nil)
	ctx := context.Background()
	sess, err := c.OpenSession(ctx, "skeys", nil)
	require.NoError(t, err)
	defer sess.Close()
	for name, key := range map[string]string{
		"257 bytes": strings.Repeat("k", 257),
		"a newline": "k-\n7",
		"non-ASCII": "k-é",
	} {
		_, err := sess.Send(ctx, []client.Record{{Value: []byte("x")}}, &client.AppendOptions{IdempotencyKey: key})
		require.ErrorIs(t, err, client.ErrInvalidOptions, name)
		var ce *client.Error
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, client.CodeInvalidOptions, ce.Code, name)
	}
	key := "~" + strings.Repeat(" ", 254) + "~"
	first, err := sess.Append(ctx, []client.Record{{Value: []byte("a")}}, &client.AppendOptions{IdempotencyKey: key})
	require.NoError(t, err, "256 printable bytes")
	assert.Equal(t, uint64(0), first.FirstOffset, "the refused batches were not sent")
	again, err := sess.Append(ctx, []client.Record{{Value: []byte("a")}}, &client.AppendOptions{IdempotencyKey: key})
	require.NoError(t, err)
	assert.True(t, again.Replayed)
	assert.Equal(t, first.FirstOffset, again.FirstOffset)
}

// TestSessionRefusesOptionsItCannotCarry: a session's frames carry only
// an idempotency key and an expected last offset; any other option is
// invalid_options and nothing is sent (a label is never dropped).
func TestSessionRefusesOptionsItCannotCarry(t *testing.T) {
	s := startServer(t, nil)
	c := newClient(t, s.URL(), nil)
	ctx := context.Background()
	sess, err := c.OpenSession(ctx, "sopts", nil)
	require.NoError(t, err)
	defer sess.Close()
	for name, opts := range map[string]*client.AppendOptions{
		"StreamSeq": {StreamSeq: "s-1"},
		"MustExist": {MustExist: true},
		"Producer":  {Producer: &badbatch.Producer{ID: "p"}},
		"Close":     {Close: true},
	} {
		_, err := sess.Send(ctx, []client.Record{{Value: []byte("x")}}, opts)
		require.ErrorIs(t, err, client.ErrInvalidOptions, name)
		var ce *client.Error
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, client.CodeInvalidOptions, ce.Code, name)
	}
	res, err := sess.Append(ctx, []client.Record{{Value: []byte("a")}}, nil)
	require.NoError(t, err)
	assert.Equal(t, uint64(0), res.FirstOffset, "the refused batches were not sent")

	// The way to label an append: Append.
	_, err = c.Append(ctx, "sopts", client.Record{Value: []byte("b")}, &client.AppendOptions{StreamSeq: "s-1"})
	require.NoError(t, err)
	_, err = c.Append(ctx, "sopts", client.Record{Value: []byte("c")}, &client.AppendOptions{StreamSeq: "s-1"})
	assert.ErrorIs(t, err, client.ErrStreamSeq)
}
