// Package transport carries raft messages between the nodes of a BadBatch
// cluster: TCP with its own framing, authenticated by the cluster secret
// (docs/decisions/0011-cluster-transport.md says why not gRPC or HTTP/2).
// It knows raft's messages (raftpb) and connections; it does not know the
// raft node, the journal or HTTP. The node calls Send with the messages of
// each Ready and receives through a Handler.
//
// # Pieces
//
//   - Transport: New, AddPeer, RemovePeer, Send, PeerURL, Connected, Stats,
//     Close (transport.go). One peer per remote node (peer.go): a bounded
//     queue and a sender goroutine that connects, authenticates, batches and
//     reconnects with backoff.
//   - The handshake (handshake.go), the frames (frame.go), the message
//     batches inside frames (batch.go), snapshots (snapshot.go).
//
// # Connections
//
// Each direction between two nodes has its own connection: node A dials B
// to send to B, and B dials A to send to A. A connection is one of two
// kinds, fixed by its handshake:
//
//   - stream: the dialer sends frames of raft messages; both sides send a
//     heartbeat frame when they have had nothing to send for
//     HeartbeatInterval, and each side closes the connection when no frame
//     arrives for IdleTimeout. A peer has at most one stream to us: a newer
//     one replaces the older.
//   - snapshot: the dialer sends one MsgSnap message, the snapshot's body in
//     chunk frames and an end frame; the acceptor hands the body to
//     Handler.ReceiveSnapshot as an io.Reader and answers with one ack
//     frame. A long transfer therefore never delays heartbeats. One
//     transfer per peer runs at a time, each way.
//
// # Wire format
//
// (NEVER CHANGE a constant of this format: add a protocol version. All
// integers are little-endian.) A connection starts with the handshake:
//
//	dialer -> acceptor   hello (the dialer's nonce D)
//	acceptor -> dialer   hello (the acceptor's nonce A, its verdict in status)
//	dialer -> acceptor   proof D   (32 bytes)
//	acceptor -> dialer   confirm: status u8, proof A (32 bytes)
//
// A hello is 68 fixed bytes, then the two strings:
//
//	 0       4     5      6       7     8            16           24
//	+-------+-----+------+-------+-----+------------+------------+
//	| magic | ver | kind |status | rsv | cluster id | from       |
//	|"BBCT" | =1  | 1|2  |       | =0  | u64        | u64 (self) |
//	+-------+-----+------+-------+-----+------------+------------+
//	 24           32                 64        66         68
//	+------------+------------------+---------+----------+-----+------+
//	| to         | nonce            | url len | addr len | url | addr |
//	| u64 (peer) | 32 random bytes  | u16     | u16      |     |      |
//	+------------+------------------+---------+----------+-----+------+
//
// kind: 1 stream, 2 snapshot. status (acceptor only; 0 in the dialer's
// hello): 0 ok, 1 unsupported version, 2 wrong cluster id, 3 wrong node id
// (the dialer expected another node at this address), 4 unknown peer (the
// dialer's id is not a peer of the acceptor, or is the acceptor's own), 5
// bad proof (wrong secret; in the confirm only). url is the sender's
// HTTPURL, addr its cluster listen address; each at most 512 bytes
// (MaxAnnounceBytes). A hello with a nonzero status is followed by the
// close of the connection. With P = "badbatch cluster transport v1\x00"
// and H1, H2 the dialer's and the acceptor's hellos as sent:
//
//	proof D  = HMAC-SHA256(secret, P || "proof dialer\x00"           || H1 || H2)
//	proof A  = HMAC-SHA256(secret, P || "proof acceptor\x00"         || H1 || H2)
//	key D->A = HMAC-SHA256(secret, P || "key dialer to acceptor\x00" || H1 || H2)
//	key A->D = HMAC-SHA256(secret, P || "key acceptor to dialer\x00" || H1 || H2)
//
// The hellos are self-delimiting, so the concatenation is unambiguous, and
// they hold the version, the kind, the cluster id, both node ids, both
// nonces and both announcements: all of it is authenticated. Each side
// checks the other's proof (the dialer proves first; a refused proof is
// answered with status 5 and a close). Fresh nonces on both sides make
// every connection's keys new, so nothing recorded from one connection
// verifies on another. After the handshake each direction is a sequence of
// frames:
//
//	 0               4      5       6          8                 8+len     8+len+32
//	+---------------+------+-------+----------+-----------------+---------+
//	| body length   | type | flags | reserved | body            | MAC     |
//	| u32           | u8   | =0    | u16 = 0  | length bytes    | 32 bytes|
//	+---------------+------+-------+----------+-----------------+---------+
//
//	MAC = HMAC-SHA256(key of this direction, counter u64 || header (8 bytes) || body)
//
// counter is implicit: 0 for the first frame of each direction of each
// connection, one more for each frame after it. A replayed, reordered,
// dropped-in-the-middle, spliced (from another connection) or damaged frame
// fails its MAC. Frame types and their body lengths:
//
//	1 messages          [1, MaxFrameBytes]: one or more of (uvarint length, raftpb.Message protobuf), at most 65536
//	2 heartbeat         0
//	3 snapshot message  [1, MaxFrameBytes]: one raftpb.Message (a MsgSnap) protobuf, no length prefix
//	4 snapshot chunk    [1, MaxFrameBytes]: the next bytes of the snapshot body
//	5 snapshot end      0
//	6 snapshot ack      [1, 257]: status u8 (0 ok, 1 failed), then a UTF-8 reason
//
// Which frames may appear: stream dialer to acceptor: 1 and 2; stream
// acceptor to dialer: 2; snapshot dialer to acceptor: one 3, then any
// number of 4, then one 5; snapshot acceptor to dialer: one 6.
//
// # Invariants
//
//   - Nothing that fails validation reaches the Handler: a hello or a
//     confirm that does not parse or verify closes the connection before any
//     frame is read; a frame that fails its length bound, header check or
//     MAC closes the connection (ErrFrame) before its body is decoded; a
//     messages frame is decoded whole before any of its messages is
//     delivered. A received message whose From is not the authenticated
//     peer, or whose To is not this node, is dropped and counted
//     (Stats.MessagesRejected).
//   - Every length is bounded before anything is allocated for it: a hello's
//     strings by MaxAnnounceBytes, a frame's body by its type's bound, and a
//     body buffer grows only as bytes arrive (at most 1 MiB ahead).
//   - Memory is bounded per connection: a sender holds one frame (BatchBytes,
//     or one message up to MaxFrameBytes), a reader one body, a snapshot
//     one chunk (SnapshotChunkBytes) on either side, whatever the snapshot's
//     size.
//   - Send never blocks on the network: a full queue drops the message and
//     reports the peer unreachable; raft retries, and its MaxInflightMsgs
//     bounds what it sends to a slow follower. While a peer's connection is
//     down, queued messages are dropped and reported rather than kept.
//   - Every MsgSnap given to Send gets exactly one ReportSnapshot, except
//     for transfers running when Close is called.
//
// # Concurrency
//
// A Transport is safe for concurrent use. Its goroutines, each with its
// owner that stops and joins it:
//
//	accept loop (1)                      owner: Close
//	incoming connection (1 each)         owner: Close; handshake, then reads frames and calls the Handler
//	  heartbeat writer (1 per stream)    owner: its incoming connection's goroutine
//	peer sender (1 per peer)             owner: RemovePeer / Close; dials, drains the queue, writes frames
//	  heartbeat reader (1 per stream)    owner: the peer sender
//	snapshot sender (<= 1 per peer)      owner: RemovePeer / Close; streams from SnapshotSource
//
// Each direction of a connection has exactly one writing and one reading
// goroutine, so frame writers and readers (with their counters) are never
// shared. Handler.Receive is called in order for each connection and never
// concurrently for one peer. Lock order: Transport.mu before peer.mu before
// closerSet.mu.
package transport
