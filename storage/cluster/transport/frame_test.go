package transport

import (
	"bytes"
	"encoding/binary"
	"io"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

var testKey = bytes.Repeat([]byte{0x5a}, 32)

func TestFrameRoundTrip(t *testing.T) {
	w := newFrameWriter(testKey)
	var stream []byte
	bodies := []struct {
		typ  frameType
		body []byte
	}{
		{frameHeartbeat, nil},
		{frameMessages, []byte{1, 2, 3}},
		{frameSnapshotChunk, bytes.Repeat([]byte{9}, 3*readStep+17)}, // read in several steps
		{frameSnapshotEnd, nil},
		{frameSnapshotAck, []byte{ackFailed, 'n', 'o'}},
	}
	for _, b := range bodies {
		stream = w.appendFrame(stream, b.typ, b.body)
	}
	r := newFrameReader(bytes.NewReader(stream), testKey, 4*readStep)
	for i, b := range bodies {
		typ, body, err := r.next()
		require.NoError(t, err, "frame %d", i)
		assert.Equal(t, b.typ, typ)
		assert.Equal(t, len(b.body), len(body))
		assert.True(t, bytes.Equal(b.body, body))
	}
	_, _, err := r.next()
	require.ErrorIs(t, err, io.EOF, "a clean end between frames")
	assert.Equal(t, uint64(len(stream)), r.bytes)
	assert.Equal(t, uint64(len(bodies)), r.counter)
}

// TestFrameRejects covers every way a frame stream can be wrong; each must
// fail with ErrFrame (the connection is then closed) and never return the
// body.
func TestFrameRejects(t *testing.T) {
	seal := func(frames ...[2]any) []byte {
		w := newFrameWriter(testKey)
		var b []byte
		for _, f := range frames {
			b = w.appendFrame(b, f[0].(frameType), f[1].([]byte))
		}
		return b
	}
	one := seal([2]any{frameMessages, []byte("hello")})
	two := seal([2]any{frameMessages, []byte("first")}, [2]any{frameMessages, []byte("second")})
	three := seal([2]any{frameMessages, []byte("first")}, [2]any{frameMessages, []byte("second")}, [2]any{frameMessages, []byte("third")})
	firstLen := frameOverhead + len("first")
	secondLen := frameOverhead + len("second")
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		return c
	}
	header := func(length uint32, typ frameType, flags byte) []byte {
		h := make([]byte, frameHeaderSize, frameHeaderSize+macSize)
		binary.LittleEndian.PutUint32(h, length)
		h[4], h[5] = byte(typ), flags
		return h
	}
	otherKey := newFrameWriter(bytes.Repeat([]byte{1}, 32)).appendFrame(nil, frameMessages, []byte("hello"))
	cases := []struct {
		name   string
		stream []byte
		good   int // frames that verify before the bad one
	}{
		{"flipped length", flip(one, 0), 0},
		{"flipped type", flip(one, 4), 0},
		{"flipped flags", flip(one, 5), 0},
		{"flipped reserved", flip(one, 7), 0},
		{"flipped body", flip(one, frameHeaderSize+2), 0},
		{"flipped MAC", flip(one, len(one)-1), 0},
		{"truncated header", one[:5], 0},
		{"truncated body", one[:frameHeaderSize+2], 0},
		{"truncated MAC", one[:len(one)-1], 0},
		{"reordered", append(bytes.Clone(two[firstLen:]), two[:firstLen]...), 0},
		{"replayed in the same connection", append(bytes.Clone(two[:firstLen]), two[:firstLen]...), 1},
		{"dropped in the middle", append(bytes.Clone(three[:firstLen]), three[firstLen+secondLen:]...), 1},
		{"another key", otherKey, 0},
		{"oversize length", header(1<<20+1, frameMessages, 0), 0},
		{"max length", header(^uint32(0), frameSnapshotChunk, 0), 0},
		{"empty messages", header(0, frameMessages, 0), 0},
		{"heartbeat with a body", header(1, frameHeartbeat, 0), 0},
		{"oversize ack", header(maxAckBody+1, frameSnapshotAck, 0), 0},
		{"unknown type", header(0, 0, 0), 0},
		{"type 7", header(0, 7, 0), 0},
		{"flags", header(0, frameHeartbeat, 1), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newFrameReader(bytes.NewReader(c.stream), testKey, 1<<20)
			for i := 0; i < c.good; i++ {
				_, _, err := r.next()
				require.NoError(t, err)
			}
			typ, body, err := r.next()
			require.ErrorIs(t, err, ErrFrame)
			assert.Zero(t, typ)
			assert.Nil(t, body)
			_, _, again := r.next()
			assert.Equal(t, err, again, "errors are sticky")
		})
	}
}

// A header that lies about a large length allocates only what arrives (one
// read step ahead), not the declared length.
func TestFrameReaderAllocatesAsBytesArrive(t *testing.T) {
	h := make([]byte, frameHeaderSize)
	binary.LittleEndian.PutUint32(h, 64<<20)
	h[4] = byte(frameSnapshotChunk)
	stream := io.MultiReader(bytes.NewReader(h), bytes.NewReader(make([]byte, 100)))
	r := newFrameReader(stream, testKey, 64<<20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := r.next()
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, ErrFrame)
	allocated := after.TotalAlloc - before.TotalAlloc
	assert.Less(t, allocated, uint64(4*readStep), "allocated %d bytes for a 64 MiB claim", allocated)
}

func TestFrameWriterAllocs(t *testing.T) {
	w := newFrameWriter(testKey)
	buf := make([]byte, 0, 1024)
	body := []byte("some body")
	allocs := testing.AllocsPerRun(100, func() { buf = w.appendFrame(buf[:0], frameMessages, body) })
	assert.Zero(t, allocs)
}

func TestBatchRoundTrip(t *testing.T) {
	var msgs []*raftpb.Message
	for typ := range int32(24) {
		m := msg(raftpb.MessageType(typ), 1, 2, uint64(typ))
		if typ%3 == 0 {
			m.Context = []byte("ctx")
			m.Reject = proto.Bool(true)
		}
		msgs = append(msgs, m, appMsg(1, 2, uint64(typ), int(typ)*10))
	}
	msgs = append(msgs, &raftpb.Message{}) // every field absent: zero bytes
	body := batch(t, msgs...)
	got, err := decodeBatch(body, nil, 0)
	require.NoError(t, err)
	requireSameMessages(t, msgs, got)

	// The decoded messages do not alias the frame buffer, which is reused.
	for i := range body {
		body[i] = 0xff
	}
	requireSameMessages(t, msgs, got)
}

func TestBatchRejects(t *testing.T) {
	good := batch(t, appMsg(1, 2, 5, 10))
	tooMany := bytes.Repeat([]byte{0}, maxBatchMessages+1) // that many empty messages
	cases := map[string][]byte{
		"empty":             nil,
		"bad uvarint":       {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"length overruns":   {5, 1, 2},
		"truncated message": good[:len(good)-1],
		"bad protobuf":      {3, 0x08, 0xff, 0xff},
		"too many":          tooMany,
		"good then garbage": append(bytes.Clone(good), 0x80),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := decodeBatch(body, nil, 3)
			require.ErrorIs(t, err, ErrFrame)
			assert.Empty(t, out, "nothing of a bad batch is returned")
		})
	}
	exact := bytes.Repeat([]byte{0}, maxBatchMessages)
	out, err := decodeBatch(exact, nil, 0)
	require.NoError(t, err)
	assert.Len(t, out, maxBatchMessages)
}

func TestAppendMessageAllocs(t *testing.T) {
	m := appMsg(1, 2, 7, 1000)
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		buf, err = appendMessage(buf[:0], m, messageSize(m))
		if err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}
