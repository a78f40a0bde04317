package transport

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// maxBatchMessages bounds the messages one frame may carry, so that a
// frame of tiny messages cannot make the receiver allocate far more than
// the frame's size. A sender never puts more in one frame.
const maxBatchMessages = 1 << 16

// marshalOptions marshals with the size computed by messageSize.
var marshalOptions = proto.MarshalOptions{UseCachedSize: true}

// messageSize returns the encoded size of m; it also caches the sizes that
// appendMessage then uses, so m must not change in between.
func messageSize(m *raftpb.Message) int { return proto.Size(m) }

// appendMessage appends m's batch encoding (uvarint length, then the
// protobuf encoding) to b. size is messageSize(m).
func appendMessage(b []byte, m *raftpb.Message, size int) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(size))
	start := len(b)
	b, err := marshalOptions.MarshalAppend(b, m)
	if err != nil {
		return b, err
	}
	if len(b)-start != size {
		// The message changed after messageSize: the caller broke Send's
		// contract. Never send a frame whose prefix lies.
		return b, fmt.Errorf("cluster/transport: message changed while it was encoded (%d bytes, expected %d)", len(b)-start, size)
	}
	return b, nil
}

// decodeBatch decodes a messages frame body into new messages appended to
// out. It accepts the body only whole: on error, out is returned without any
// of the body's messages.
func decodeBatch(body []byte, out []*raftpb.Message, frame uint64) ([]*raftpb.Message, error) {
	n0 := len(out)
	for off := 0; off < len(body); {
		if len(out)-n0 == maxBatchMessages {
			return out[:n0], frameErrorf(frame, "more than %d messages", maxBatchMessages)
		}
		size, k := binary.Uvarint(body[off:])
		if k <= 0 {
			return out[:n0], frameErrorf(frame, "bad message length at body offset %d", off)
		}
		off += k
		if size > uint64(len(body)-off) {
			return out[:n0], frameErrorf(frame, "message length %d at body offset %d overruns the body", size, off-k)
		}
		m, err := decodeMessage(body[off:off+int(size)], frame)
		if err != nil {
			return out[:n0], err
		}
		out = append(out, m)
		off += int(size)
	}
	if len(out) == n0 {
		return out, frameErrorf(frame, "empty messages frame")
	}
	return out, nil
}

// decodeMessage decodes one protobuf message. The result does not alias b.
func decodeMessage(b []byte, frame uint64) (*raftpb.Message, error) {
	m := new(raftpb.Message)
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, frameErrorf(frame, "undecodable message: %v", err)
	}
	return m, nil
}
