package transport

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// benchWindow bounds the messages in flight in every benchmark (below the
// default QueueSize, so that the transport never drops).
const benchWindow = 2048

// benchBatch is n MsgApp messages of one 256-byte entry each, and the size
// of their batch encoding.
func benchBatch(b *testing.B, n int) ([]*raftpb.Message, int) {
	msgs := make([]*raftpb.Message, n)
	size := 0
	for i := range msgs {
		msgs[i] = appMsg(1, 2, uint64(i), 256)
		s := messageSize(msgs[i])
		size += s + len(binary.AppendUvarint(nil, uint64(s)))
	}
	return msgs, size
}

// flow is the benchmarks' window: the producer takes a token per message,
// the receiver gives one back per message delivered.
type flow struct {
	tokens   chan struct{}
	received atomic.Int64
}

func newFlow() *flow { return &flow{tokens: make(chan struct{}, benchWindow)} }

func (f *flow) acquire(n int) {
	for range n {
		f.tokens <- struct{}{}
	}
}

func (f *flow) release() {
	<-f.tokens
	f.received.Add(1)
}

func (f *flow) waitFor(b *testing.B, n int64) {
	deadline := time.Now().Add(time.Minute)
	for f.received.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("received %d of %d messages", f.received.Load(), n)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// flowHandler is a Handler that only counts.
type flowHandler struct{ f *flow }

func (h flowHandler) Receive(*raftpb.Message) { h.f.release() }
func (h flowHandler) ReceiveSnapshot(*raftpb.Message, io.Reader) error {
	return nil
}
func (h flowHandler) ReportUnreachable(uint64)    {}
func (h flowHandler) ReportSnapshot(uint64, bool) {}

// BenchmarkTransportSend moves batches of MsgApp from node 1 to node 2 over
// loopback: impl=transport through Send (framing, HMAC, queue, sender and
// reader goroutines, decode, Handler), impl=netconn as a plain write loop of
// the same encoded bytes on a net.Conn, with the same decode on the other
// side and the same window. Bytes are the messages' encoding per batch.
func BenchmarkTransportSend(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d/impl=transport", n), func(b *testing.B) { benchTransport(b, n) })
		b.Run(fmt.Sprintf("batch=%d/impl=netconn", n), func(b *testing.B) { benchNetConn(b, n) })
	}
}

func benchTransport(b *testing.B, n int) {
	msgs, size := benchBatch(b, n)
	f := newFlow()
	a := startNode(b, 1, nil)
	r := startNode(b, 2, func(o *Options) { o.Handler = flowHandler{f} })
	mesh(b, a, r)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f.acquire(n)
		a.Send(msgs)
	}
	f.waitFor(b, int64(b.N)*int64(n))
	b.StopTimer()
	s := a.Stats()
	if s.MessagesDropped != 0 {
		b.Fatalf("%d messages dropped", s.MessagesDropped)
	}
	b.ReportMetric(float64(s.MessagesSent)/float64(max(s.FramesSent, 1)), "msgs/frame")
}

func benchNetConn(b *testing.B, n int) {
	msgs, size := benchBatch(b, n)
	f := newFlow()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the reader: length-prefixed messages, decoded one by one
		defer wg.Done()
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReaderSize(conn, 64<<10)
		var buf []byte
		for {
			size, err := binary.ReadUvarint(br)
			if err != nil {
				return
			}
			if uint64(cap(buf)) < size {
				buf = make([]byte, size)
			}
			buf = buf[:size]
			if _, err := io.ReadFull(br, buf); err != nil {
				return
			}
			m := new(raftpb.Message)
			if err := proto.Unmarshal(buf, m); err != nil {
				panic(err)
			}
			f.release()
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(b, err)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	var out []byte
	for range b.N {
		f.acquire(n)
		out = out[:0]
		for _, m := range msgs {
			if out, err = appendMessage(out, m, messageSize(m)); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := conn.Write(out); err != nil {
			b.Fatal(err)
		}
	}
	f.waitFor(b, int64(b.N)*int64(n))
	b.StopTimer()
	conn.Close()
	wg.Wait()
}
