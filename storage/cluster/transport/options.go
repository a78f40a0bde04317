package transport

import (
	"fmt"
	"log/slog"
	"time"
)

// Default option values.
const (
	DefaultQueueSize = 4096
	// DefaultMaxFrameBytes bounds one frame's body: 64 MiB for the largest
	// raft message plus 1 MiB of slack for its encoding and the rest of the
	// batch. A single message larger than this cannot be sent.
	DefaultMaxFrameBytes = 64<<20 + 1<<20
	// DefaultBatchBytes is the size at which a sender closes the frame it is
	// filling; the next queued message starts a new frame. A frame is
	// delivered only once it is whole and verified, so smaller frames let
	// the receiver start sooner; 64 KiB measured no worse than 256 KiB or
	// 1 MiB in BenchmarkTransportSend and better at batch=1.
	DefaultBatchBytes         = 64 << 10
	DefaultSnapshotChunkBytes = 1 << 20
	DefaultDialTimeout        = 2 * time.Second
	DefaultWriteTimeout       = 5 * time.Second
	DefaultHandshakeTimeout   = 5 * time.Second
	DefaultHeartbeatInterval  = 1 * time.Second
	DefaultIdleTimeout        = 10 * time.Second
	DefaultKeepAlive          = 15 * time.Second
	DefaultBackoffMin         = 100 * time.Millisecond
	DefaultBackoffMax         = 5 * time.Second
	DefaultSnapshotAckTimeout = 2 * time.Minute
)

// Limits that options cannot exceed.
const (
	// MinSecretBytes is the shortest cluster secret New accepts.
	MinSecretBytes = 16
	// MaxAnnounceBytes bounds HTTPURL and the listen address announced in
	// the handshake (a wire-format limit).
	MaxAnnounceBytes = 512
	minFrameBytes    = 64 << 10
	maxFrameBytes    = 1 << 30
)

// Options configures New. The zero value of every optional field means
// "default"; DefaultOptions returns them filled in. New copies the struct
// (and the Secret) and never modifies the caller's value.
type Options struct {
	// NodeID is this node's raft id (required, not 0).
	NodeID uint64
	// ClusterID separates clusters: nodes with different cluster ids refuse
	// each other. 0 is a valid id (tests).
	ClusterID uint64
	// ListenAddr is the host:port of the cluster port (required);
	// "127.0.0.1:0" picks a free port, which Addr then tells.
	ListenAddr string
	// Secret is the cluster secret every node shares (from
	// --cluster-secret-file): at least MinSecretBytes bytes, required. It
	// authenticates the handshake and keys every frame's MAC. It does not
	// encrypt: the transport gives integrity and authentication, not
	// confidentiality.
	Secret []byte
	// HTTPURL is this node's client-facing URL, announced to peers in the
	// handshake (PeerURL on their side). Optional; at most MaxAnnounceBytes.
	HTTPURL string
	// Handler receives messages and reports (required). See Handler.
	Handler Handler
	// Snapshots streams the bodies of outgoing snapshots. nil means this
	// node cannot send snapshots: every MsgSnap is reported failed.
	Snapshots SnapshotSource
	// Logger receives connection events and refusals; nil discards.
	Logger *slog.Logger

	// QueueSize bounds the messages queued per peer (default 4096). When a
	// peer's queue is full, Send drops the message and reports the peer
	// unreachable.
	QueueSize int
	// MaxFrameBytes bounds one frame's body, on both sides (default
	// DefaultMaxFrameBytes). Every node of a cluster should use the same
	// value: a frame over the receiver's bound closes the connection.
	MaxFrameBytes int
	// BatchBytes is the body size at which a sender stops adding messages
	// to a frame (default 64 KiB). A larger message gets a frame of its own.
	BatchBytes int
	// SnapshotChunkBytes is the body size of one snapshot chunk frame
	// (default 1 MiB); it bounds the memory of a transfer on both sides.
	SnapshotChunkBytes int
	// DialTimeout bounds one TCP connect (default 2 s).
	DialTimeout time.Duration
	// WriteTimeout bounds one frame write; a peer that does not take a frame
	// within it is treated as down (default 5 s).
	WriteTimeout time.Duration
	// HandshakeTimeout bounds the whole handshake, on both sides (default 5 s).
	HandshakeTimeout time.Duration
	// HeartbeatInterval: a side with nothing to send for this long sends an
	// empty frame (default 1 s).
	HeartbeatInterval time.Duration
	// IdleTimeout: a connection on which no frame arrives for this long is
	// closed (default 10 s). It must exceed HeartbeatInterval.
	IdleTimeout time.Duration
	// KeepAlive is the TCP keep-alive period of every connection (default
	// 15 s; negative disables it).
	KeepAlive time.Duration
	// BackoffMin and BackoffMax bound the jittered exponential wait between
	// failed connection attempts to a peer (default 100 ms and 5 s).
	BackoffMin time.Duration
	BackoffMax time.Duration
	// SnapshotAckTimeout bounds the wait for the receiver's acknowledgement
	// after the last chunk of a snapshot (default 2 min): the receiver makes
	// the body durable before it answers.
	SnapshotAckTimeout time.Duration
}

// DefaultOptions returns a new Options with every default filled in. The
// required fields (NodeID, ListenAddr, Secret, Handler) are left empty.
func DefaultOptions() *Options {
	return &Options{
		Logger:             slog.New(slog.DiscardHandler),
		QueueSize:          DefaultQueueSize,
		MaxFrameBytes:      DefaultMaxFrameBytes,
		BatchBytes:         DefaultBatchBytes,
		SnapshotChunkBytes: DefaultSnapshotChunkBytes,
		DialTimeout:        DefaultDialTimeout,
		WriteTimeout:       DefaultWriteTimeout,
		HandshakeTimeout:   DefaultHandshakeTimeout,
		HeartbeatInterval:  DefaultHeartbeatInterval,
		IdleTimeout:        DefaultIdleTimeout,
		KeepAlive:          DefaultKeepAlive,
		BackoffMin:         DefaultBackoffMin,
		BackoffMax:         DefaultBackoffMax,
		SnapshotAckTimeout: DefaultSnapshotAckTimeout,
	}
}

// withDefaults returns a copy of o with its zero fields filled in and the
// Secret copied, then validates it.
func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	c.Secret = append([]byte(nil), c.Secret...)
	d := DefaultOptions()
	fill := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	fillDuration := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	fill(&c.QueueSize, d.QueueSize)
	fill(&c.MaxFrameBytes, d.MaxFrameBytes)
	fill(&c.BatchBytes, d.BatchBytes)
	fill(&c.SnapshotChunkBytes, d.SnapshotChunkBytes)
	fillDuration(&c.DialTimeout, d.DialTimeout)
	fillDuration(&c.WriteTimeout, d.WriteTimeout)
	fillDuration(&c.HandshakeTimeout, d.HandshakeTimeout)
	fillDuration(&c.HeartbeatInterval, d.HeartbeatInterval)
	fillDuration(&c.IdleTimeout, d.IdleTimeout)
	fillDuration(&c.KeepAlive, d.KeepAlive)
	fillDuration(&c.BackoffMin, d.BackoffMin)
	fillDuration(&c.BackoffMax, d.BackoffMax)
	fillDuration(&c.SnapshotAckTimeout, d.SnapshotAckTimeout)
	return c, c.validate()
}

func (o *Options) validate() error {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	switch {
	case o.NodeID == 0:
		return invalid("NodeID is 0")
	case o.ListenAddr == "":
		return invalid("ListenAddr is empty")
	case len(o.Secret) < MinSecretBytes:
		return invalid("Secret has %d bytes, fewer than %d", len(o.Secret), MinSecretBytes)
	case o.Handler == nil:
		return invalid("Handler is nil")
	case len(o.HTTPURL) > MaxAnnounceBytes:
		return invalid("HTTPURL is longer than %d bytes", MaxAnnounceBytes)
	case o.QueueSize < 1:
		return invalid("QueueSize %d < 1", o.QueueSize)
	case o.MaxFrameBytes < minFrameBytes || o.MaxFrameBytes > maxFrameBytes:
		return invalid("MaxFrameBytes %d outside [%d, %d]", o.MaxFrameBytes, minFrameBytes, maxFrameBytes)
	case o.BatchBytes < 1 || o.BatchBytes > o.MaxFrameBytes:
		return invalid("BatchBytes %d outside [1, MaxFrameBytes]", o.BatchBytes)
	case o.SnapshotChunkBytes < 1 || o.SnapshotChunkBytes > o.MaxFrameBytes:
		return invalid("SnapshotChunkBytes %d outside [1, MaxFrameBytes]", o.SnapshotChunkBytes)
	case o.DialTimeout < 0 || o.WriteTimeout < 0 || o.HandshakeTimeout < 0 || o.HeartbeatInterval < 0 ||
		o.IdleTimeout < 0 || o.BackoffMin < 0 || o.BackoffMax < 0 || o.SnapshotAckTimeout < 0:
		return invalid("negative duration")
	case o.IdleTimeout <= o.HeartbeatInterval:
		return invalid("IdleTimeout %v <= HeartbeatInterval %v", o.IdleTimeout, o.HeartbeatInterval)
	case o.BackoffMax < o.BackoffMin:
		return invalid("BackoffMax %v < BackoffMin %v", o.BackoffMax, o.BackoffMin)
	}
	return nil
}
