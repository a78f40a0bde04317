package transport

import "sync/atomic"

// Stats are the transport's counters since New. Bytes count whole frames
// (header, body and MAC) after the handshake.
type Stats struct {
	FramesSent       uint64
	FramesReceived   uint64
	MessagesSent     uint64 // raft messages written in frames (MsgSnap excluded)
	MessagesReceived uint64 // raft messages handed to Handler.Receive
	BytesSent        uint64
	BytesReceived    uint64
	// MessagesDropped counts messages given to Send that were never written:
	// the peer's queue was full, the peer unknown or removed, its connection
	// down, the write failed, the message too large, or the transport closed.
	MessagesDropped uint64
	// MessagesRejected counts received messages not handed to the Handler:
	// From is not the authenticated peer, To is not this node, or a MsgSnap
	// arrived outside the snapshot path.
	MessagesRejected uint64
	// AuthFailures counts handshakes refused on either side: wrong secret,
	// wrong cluster id, a node id that is not the expected one, an unknown
	// peer.
	AuthFailures uint64
	// HandshakeFailures counts connections that ended before a handshake
	// completed for any other reason: garbage, a bad version, a truncated
	// or slow handshake, too many handshakes at once.
	HandshakeFailures uint64
	// ProtocolErrors counts authenticated connections closed for a bad
	// frame: MAC mismatch, bad header, oversize length, truncation,
	// undecodable body, unexpected frame type.
	ProtocolErrors uint64
	// Connections counts authenticated connections established, both ways.
	Connections  uint64
	DialFailures uint64
	// Snapshots: transfers completed and failed, per direction.
	SnapshotsSent             uint64
	SnapshotsSendFailed       uint64
	SnapshotsReceived         uint64
	SnapshotsReceiveFailed    uint64
	SnapshotBodyBytesSent     uint64
	SnapshotBodyBytesReceived uint64
}

// counters is the live form of Stats.
type counters struct {
	framesSent, framesReceived                       atomic.Uint64
	messagesSent, messagesReceived                   atomic.Uint64
	bytesSent, bytesReceived                         atomic.Uint64
	messagesDropped, messagesRejected                atomic.Uint64
	authFailures, handshakeFailures                  atomic.Uint64
	protocolErrors, connections, dialFailures        atomic.Uint64
	snapshotsSent, snapshotsSendFailed               atomic.Uint64
	snapshotsReceived, snapshotsReceiveFailed        atomic.Uint64
	snapshotBodyBytesSent, snapshotBodyBytesReceived atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		FramesSent:                c.framesSent.Load(),
		FramesReceived:            c.framesReceived.Load(),
		MessagesSent:              c.messagesSent.Load(),
		MessagesReceived:          c.messagesReceived.Load(),
		BytesSent:                 c.bytesSent.Load(),
		BytesReceived:             c.bytesReceived.Load(),
		MessagesDropped:           c.messagesDropped.Load(),
		MessagesRejected:          c.messagesRejected.Load(),
		AuthFailures:              c.authFailures.Load(),
		HandshakeFailures:         c.handshakeFailures.Load(),
		ProtocolErrors:            c.protocolErrors.Load(),
		Connections:               c.connections.Load(),
		DialFailures:              c.dialFailures.Load(),
		SnapshotsSent:             c.snapshotsSent.Load(),
		SnapshotsSendFailed:       c.snapshotsSendFailed.Load(),
		SnapshotsReceived:         c.snapshotsReceived.Load(),
		SnapshotsReceiveFailed:    c.snapshotsReceiveFailed.Load(),
		SnapshotBodyBytesSent:     c.snapshotBodyBytesSent.Load(),
		SnapshotBodyBytesReceived: c.snapshotBodyBytesReceived.Load(),
	}
}

// sent counts one write of frames.
func (c *counters) sent(frames, messages, bytes int) {
	c.framesSent.Add(uint64(frames))
	c.messagesSent.Add(uint64(messages))
	c.bytesSent.Add(uint64(bytes))
}
