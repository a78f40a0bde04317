package transport

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"io"
	"slices"
)

// frameType is a frame's type byte. NEVER CHANGE a value: they are on the
// wire. Add a type (and a protocol version if old nodes must refuse it).
type frameType uint8

const (
	frameMessages        frameType = 1 // body: one or more length-prefixed raft messages
	frameHeartbeat       frameType = 2 // body: empty
	frameSnapshotMessage frameType = 3 // body: one raft MsgSnap message (no length prefix)
	frameSnapshotChunk   frameType = 4 // body: the next bytes of the snapshot body (at least one)
	frameSnapshotEnd     frameType = 5 // body: empty; the snapshot body is complete
	frameSnapshotAck     frameType = 6 // body: status byte, then a UTF-8 reason
)

func (t frameType) String() string {
	switch t {
	case frameMessages:
		return "messages"
	case frameHeartbeat:
		return "heartbeat"
	case frameSnapshotMessage:
		return "snapshot-message"
	case frameSnapshotChunk:
		return "snapshot-chunk"
	case frameSnapshotEnd:
		return "snapshot-end"
	case frameSnapshotAck:
		return "snapshot-ack"
	}
	return "unknown"
}

// Frame layout constants. NEVER CHANGE: they are the wire format (doc.go).
const (
	frameHeaderSize = 8  // u32 body length, u8 type, u8 flags (0), u16 reserved (0)
	macSize         = 32 // HMAC-SHA256 over counter, header and body
	frameOverhead   = frameHeaderSize + macSize
	maxAckReason    = 256
	maxAckBody      = 1 + maxAckReason
)

// Snapshot acknowledgement status bytes. NEVER CHANGE.
const (
	ackOK     byte = 0
	ackFailed byte = 1
)

const (
	// readStep is how much of a frame body the reader allocates ahead of
	// the bytes that have arrived: a header that lies about its length costs
	// at most this much before the connection ends or times out.
	readStep = 1 << 20
	// retainBytes is the largest body buffer a reader keeps between frames.
	retainBytes = 4 << 20
)

// bodyLimit returns the allowed body length range of a frame type given the
// connection's bound; ok is false for an unknown type.
func bodyLimit(t frameType, maxBody int) (lo, hi int, ok bool) {
	switch t {
	case frameMessages, frameSnapshotMessage, frameSnapshotChunk:
		return 1, maxBody, true
	case frameHeartbeat, frameSnapshotEnd:
		return 0, 0, true
	case frameSnapshotAck:
		return 1, maxAckBody, true
	}
	return 0, 0, false
}

// frameWriter seals frames for one direction of one connection: it owns the
// direction's MAC key and frame counter. Not safe for concurrent use; each
// direction has exactly one writing goroutine.
type frameWriter struct {
	mac     hash.Hash
	counter uint64  // the next frame's implicit counter
	scratch [8]byte // the counter's encoding (a field: a local would escape)
}

func newFrameWriter(key []byte) *frameWriter {
	return &frameWriter{mac: hmac.New(sha256.New, key)}
}

// begin appends room for a frame header to b; the caller appends the body
// and then calls finish with the returned start.
func (w *frameWriter) begin(b []byte) ([]byte, int) {
	return append(b, 0, 0, 0, 0, 0, 0, 0, 0), len(b)
}

// finish fills in the header of the frame that starts at b[start] (its body
// is b[start+frameHeaderSize:]) and appends its MAC.
func (w *frameWriter) finish(b []byte, start int, t frameType) []byte {
	hdr := b[start : start+frameHeaderSize]
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(b)-start-frameHeaderSize))
	hdr[4], hdr[5], hdr[6], hdr[7] = byte(t), 0, 0, 0
	binary.LittleEndian.PutUint64(w.scratch[:], w.counter)
	w.mac.Reset()
	w.mac.Write(w.scratch[:])
	w.mac.Write(b[start:])
	w.counter++
	return w.mac.Sum(b)
}

// appendFrame appends a whole frame with the given body to b.
func (w *frameWriter) appendFrame(b []byte, t frameType, body []byte) []byte {
	b, start := w.begin(b)
	b = append(b, body...)
	return w.finish(b, start, t)
}

// frameReader reads and verifies frames for one direction of one
// connection: it owns the direction's MAC key and the counter of the next
// frame it expects. Any error is sticky: the connection must be closed. Not
// safe for concurrent use.
type frameReader struct {
	r       io.Reader
	mac     hash.Hash
	counter uint64 // the next frame's implicit counter
	maxBody int
	bytes   uint64 // bytes of the frames verified so far
	hdr     [frameHeaderSize]byte
	scratch [8]byte
	trailer [macSize]byte
	sum     [macSize]byte
	buf     []byte // the last body; reused
	err     error
}

func newFrameReader(r io.Reader, key []byte, maxBody int) *frameReader {
	return &frameReader{r: r, mac: hmac.New(sha256.New, key), maxBody: maxBody}
}

// next reads the next frame and returns its type and body. The body is
// valid until the next call. At a clean end of the stream between frames it
// returns io.EOF. A frame that fails validation returns an error wrapping
// ErrFrame; an error of the underlying reader (a timeout, a reset) is
// returned as it is.
func (fr *frameReader) next() (frameType, []byte, error) {
	if fr.err != nil {
		return 0, nil, fr.err
	}
	t, body, err := fr.read()
	if err != nil {
		fr.err = err
		fr.buf = nil
		return 0, nil, err
	}
	fr.counter++
	fr.bytes += uint64(frameOverhead + len(body))
	return t, body, nil
}

func (fr *frameReader) read() (frameType, []byte, error) {
	if cap(fr.buf) > retainBytes {
		fr.buf = nil
	}
	if n, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return 0, nil, io.EOF
		}
		return 0, nil, fr.truncated(err, "header")
	}
	length := binary.LittleEndian.Uint32(fr.hdr[0:4])
	t := frameType(fr.hdr[4])
	if fr.hdr[5] != 0 || fr.hdr[6] != 0 || fr.hdr[7] != 0 {
		return 0, nil, frameErrorf(fr.counter, "nonzero flags or reserved bytes % x", fr.hdr[5:8])
	}
	lo, hi, ok := bodyLimit(t, fr.maxBody)
	if !ok {
		return 0, nil, frameErrorf(fr.counter, "unknown type %d", t)
	}
	if uint64(length) < uint64(lo) || uint64(length) > uint64(hi) {
		return 0, nil, frameErrorf(fr.counter, "%s body length %d outside [%d, %d]", t, length, lo, hi)
	}
	need := int(length)
	fr.buf = fr.buf[:0]
	for len(fr.buf) < need {
		step := min(need-len(fr.buf), readStep)
		fr.buf = slices.Grow(fr.buf, step)
		n, err := io.ReadFull(fr.r, fr.buf[len(fr.buf):len(fr.buf)+step])
		fr.buf = fr.buf[:len(fr.buf)+n]
		if err != nil {
			return 0, nil, fr.truncated(err, "body")
		}
	}
	if _, err := io.ReadFull(fr.r, fr.trailer[:]); err != nil {
		return 0, nil, fr.truncated(err, "MAC")
	}
	binary.LittleEndian.PutUint64(fr.scratch[:], fr.counter)
	fr.mac.Reset()
	fr.mac.Write(fr.scratch[:])
	fr.mac.Write(fr.hdr[:])
	fr.mac.Write(fr.buf)
	if !hmac.Equal(fr.mac.Sum(fr.sum[:0]), fr.trailer[:]) {
		return 0, nil, frameErrorf(fr.counter, "MAC mismatch (damaged, replayed, reordered or spliced)")
	}
	return t, fr.buf, nil
}

// truncated turns an end of stream inside a frame into ErrFrame and passes
// other reader errors through.
func (fr *frameReader) truncated(err error, part string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return frameErrorf(fr.counter, "truncated in the %s", part)
	}
	return err
}
