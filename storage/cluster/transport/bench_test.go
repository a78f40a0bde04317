package transport

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"hash/crc32"
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

// BenchmarkFrameSeal prices the per-frame MAC: sealing a frame with
// HMAC-SHA256 and verifying it (what the transport does), against CRC-32C
// (the obvious alternative, with no authentication) and AES-256-GCM (an
// AEAD that would also encrypt; not used, measured for a later version).
func BenchmarkFrameSeal(b *testing.B) {
	table := crc32.MakeTable(crc32.Castagnoli)
	for _, size := range []int{256, 64 << 10} {
		body := make([]byte, size)
		b.Run(fmt.Sprintf("body=%s/check=hmac-sha256", sizeName(size)), func(b *testing.B) {
			w := newFrameWriter(testKey)
			buf := make([]byte, 0, frameOverhead+size)
			var stream bytes.Reader
			r := newFrameReader(&stream, testKey, 1<<20)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for range b.N {
				buf = w.appendFrame(buf[:0], frameMessages, body)
				stream.Reset(buf)
				if _, _, err := r.next(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("body=%s/check=aes-256-gcm", sizeName(size)), func(b *testing.B) {
			block, err := aes.NewCipher(testKey)
			require.NoError(b, err)
			aead, err := cipher.NewGCM(block)
			require.NoError(b, err)
			nonce := make([]byte, aead.NonceSize())
			header := make([]byte, frameHeaderSize)
			sealed := make([]byte, 0, size+aead.Overhead())
			opened := make([]byte, 0, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for i := range b.N {
				binary.LittleEndian.PutUint64(nonce, uint64(i)) // the implicit counter
				sealed = aead.Seal(sealed[:0], nonce, body, header)
				if opened, err = aead.Open(opened[:0], nonce, sealed, header); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("body=%s/check=crc32c", sizeName(size)), func(b *testing.B) {
			buf := make([]byte, 0, frameHeaderSize+4+size)
			in := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for range b.N {
				buf = binary.LittleEndian.AppendUint32(buf[:0], uint32(size))
				buf = append(buf, byte(frameMessages), 0, 0, 0)
				buf = append(buf, body...)
				buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, table))
				copy(in, buf[frameHeaderSize:frameHeaderSize+size])
				if crc32.Checksum(buf[:len(buf)-4], table) != binary.LittleEndian.Uint32(buf[len(buf)-4:]) {
					b.Fatal("crc")
				}
			}
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
