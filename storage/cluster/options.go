package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/badbatch/badbatch/storage"
	"github.com/badbatch/badbatch/storage/cluster/transport"
	pb "go.etcd.io/raft/v3/raftpb"
)

// Default option values.
const (
	// DefaultTickInterval is raft's logical clock. With DefaultElectionTicks
	// a follower that hears nothing for 0.5-1 s (randomized) starts a
	// pre-vote; with PreVote and CheckQuorum that is the failover time.
	DefaultTickInterval   = 50 * time.Millisecond
	DefaultElectionTicks  = 10
	DefaultHeartbeatTicks = 1
	// DefaultSnapshotEntries is how many applied entries the leader keeps
	// in raft's view of the log for slow followers; one further behind (or
	// a new, empty node) is sent a snapshot.
	DefaultSnapshotEntries = 10_000
	// DefaultMaxEntryBytes bounds one raft entry's payload. The TCP
	// transport carries each raft message in one frame of at most
	// transport.DefaultMaxFrameBytes and drops a larger message, and raft
	// sends an entry in one MsgApp whatever its size: an entry that does
	// not fit would be resent forever and stall the log behind it. This
	// leaves 1 MiB of the frame for the message's other fields.
	DefaultMaxEntryBytes = transport.DefaultMaxFrameBytes - 1<<20
	// minSecretBytes is the shortest cluster secret accepted.
	minSecretBytes = 16
)

// Options configures Open. The zero value of every field means "default"
// where a default exists; Open copies the struct and never modifies the
// caller's value.
type Options struct {
	// NodeID is this node's raft id (required, non-zero). It is never
	// reused: a node that lost its data joins with a new id.
	NodeID uint64
	// ClusterAddr is the host:port of this node's cluster port (required):
	// it listens there and peers dial it.
	ClusterAddr string
	// ListenAddr, when set, is where the cluster port listens instead of
	// ClusterAddr, for a node that peers reach through a proxy or a NAT:
	// they still dial ClusterAddr, the address the membership names.
	ListenAddr string
	// HTTPURL is the URL clients reach this node's HTTP API at (for
	// example "http://127.0.0.1:8081"). Peers learn it through the cluster
	// itself, to redirect clients to the leader.
	HTTPURL string
	// Peers is the initial membership, id to cluster address, this node
	// included. It bootstraps a new cluster; on later starts it must agree
	// with the stored membership. Exactly one of Peers and Join is set.
	Peers map[uint64]string
	// Join is the HTTP URL of any member: a new node asks it to add this
	// node as a learner, then catches up and is promoted to voter.
	Join string
	// Secret authenticates nodes to each other (at least 16 bytes).
	Secret []byte
	// Store are the store's options (file system, sync policy, limits,
	// handlers, ...). Replication is set by the cluster.
	Store *storage.Options
	// Logger receives the cluster's events; nil discards.
	Logger *slog.Logger
	// TickInterval, ElectionTicks and HeartbeatTicks tune raft's timers.
	TickInterval   time.Duration
	ElectionTicks  int
	HeartbeatTicks int
	// SnapshotEntries: see DefaultSnapshotEntries.
	SnapshotEntries uint64
	// MaxEntryBytes bounds one raft entry's payload (see
	// DefaultMaxEntryBytes): the store packs its ring batches into entries
	// up to it, and refuses a single append larger with
	// storage.ErrBatchTooLarge. With the TCP transport it may not exceed
	// DefaultMaxEntryBytes.
	MaxEntryBytes int64
	// NewTransport builds the transport; nil means the TCP transport of
	// package storage/cluster/transport (tests plug in a simulated
	// network).
	NewTransport func(t *TransportConfig) (Transport, error)
}

// TransportConfig is what the node hands NewTransport.
type TransportConfig struct {
	NodeID    uint64
	ClusterID uint64
	// ClusterAddr is the address the transport listens on: Options.ListenAddr
	// when set, else Options.ClusterAddr.
	ClusterAddr string
	HTTPURL     string
	Secret      []byte
	Logger      *slog.Logger
	// Handler receives messages and snapshots; Snapshots streams the
	// snapshots this node sends. Both are the Node.
	Handler   TransportHandler
	Snapshots SnapshotSource
}

// Transport carries raft messages between nodes. Implementations are safe
// for concurrent use; Send never blocks on the network.
type Transport interface {
	Send(msgs []*pb.Message)
	AddPeer(id uint64, addr string)
	RemovePeer(id uint64)
	PeerURL(id uint64) string
	Connected(id uint64) bool
	Close() error
}

// TransportHandler is what a Transport delivers to.
type TransportHandler interface {
	Receive(m *pb.Message)
	ReceiveSnapshot(m *pb.Message, body io.Reader) error
	ReportUnreachable(id uint64)
	ReportSnapshot(id uint64, failed bool)
}

// SnapshotSource streams the body of a snapshot the node sends.
type SnapshotSource interface {
	WriteSnapshot(m *pb.Message, w io.Writer) error
}

// DefaultOptions returns Options with every default filled in (the
// required fields stay empty).
func DefaultOptions() *Options {
	return &Options{
		Store:           storage.DefaultOptions(),
		TickInterval:    DefaultTickInterval,
		ElectionTicks:   DefaultElectionTicks,
		HeartbeatTicks:  DefaultHeartbeatTicks,
		SnapshotEntries: DefaultSnapshotEntries,
		MaxEntryBytes:   DefaultMaxEntryBytes,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// withDefaults returns a validated copy of o with defaults filled in.
func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	d := DefaultOptions()
	if c.Store == nil {
		c.Store = d.Store
	} else {
		so := *c.Store
		c.Store = &so
	}
	if c.TickInterval == 0 {
		c.TickInterval = d.TickInterval
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = d.ElectionTicks
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = d.HeartbeatTicks
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = d.SnapshotEntries
	}
	if c.MaxEntryBytes == 0 {
		c.MaxEntryBytes = d.MaxEntryBytes
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	peers := make(map[uint64]string, len(c.Peers))
	addrs := make(map[string]uint64, len(c.Peers))
	for id, a := range c.Peers {
		if id == 0 {
			return c, fmt.Errorf("%w: peer id 0 (ids start at 1)", ErrBadConfig)
		}
		if a == "" {
			return c, fmt.Errorf("%w: peer %d has no cluster address", ErrBadConfig, id)
		}
		if other, dup := addrs[a]; dup {
			return c, fmt.Errorf("%w: peers %d and %d share the cluster address %s", ErrBadConfig, other, id, a)
		}
		addrs[a] = id
		peers[id] = a
	}
	c.Peers = peers
	c.Secret = append([]byte(nil), c.Secret...)
	switch {
	case c.NodeID == 0:
		return c, fmt.Errorf("%w: node id is required and must not be 0", ErrBadConfig)
	case c.ClusterAddr == "":
		return c, fmt.Errorf("%w: cluster address is required", ErrBadConfig)
	case len(c.Secret) < minSecretBytes:
		return c, fmt.Errorf("%w: the cluster secret must be at least %d bytes (have %d)", ErrBadConfig, minSecretBytes, len(c.Secret))
	case len(c.Peers) == 0 && c.Join == "":
		return c, fmt.Errorf("%w: give the initial members (peers) or a member to join", ErrBadConfig)
	case len(c.Peers) > 0 && c.Join != "":
		return c, fmt.Errorf("%w: peers and join are exclusive: peers bootstraps a new cluster, join enters an existing one", ErrBadConfig)
	case c.TickInterval < 0 || c.ElectionTicks < 0 || c.HeartbeatTicks < 0:
		return c, fmt.Errorf("%w: negative raft timer", ErrBadConfig)
	case c.MaxEntryBytes < 0 || c.NewTransport == nil && c.MaxEntryBytes > DefaultMaxEntryBytes:
		return c, fmt.Errorf("%w: the largest entry (%d bytes) must be positive and fit the transport's frame (at most %d bytes)", ErrBadConfig, c.MaxEntryBytes, DefaultMaxEntryBytes)
	case c.ElectionTicks <= c.HeartbeatTicks:
		return c, fmt.Errorf("%w: election ticks (%d) must exceed heartbeat ticks (%d)", ErrBadConfig, c.ElectionTicks, c.HeartbeatTicks)
	}
	if len(c.Peers) > 0 {
		a, ok := c.Peers[c.NodeID]
		if !ok {
			return c, fmt.Errorf("%w: node id %d is not among the peers %s", ErrBadConfig, c.NodeID, formatPeers(c.Peers))
		}
		if a != c.ClusterAddr {
			return c, fmt.Errorf("%w: peers give node %d the cluster address %s, but it listens on %s", ErrBadConfig, c.NodeID, a, c.ClusterAddr)
		}
	}
	if c.Join != "" {
		if u, err := url.Parse(c.Join); err != nil || u.Host == "" {
			return c, fmt.Errorf("%w: join URL %q is not an absolute URL", ErrBadConfig, c.Join)
		}
	}
	return c, nil
}

// ParsePeers parses "ID=HOST:PORT,ID=HOST:PORT,...". Ids must be positive
// and unique.
func ParsePeers(s string) (map[uint64]string, error) {
	peers := map[uint64]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		idText, addr, ok := strings.Cut(part, "=")
		if !ok || addr == "" {
			return nil, fmt.Errorf("%w: %q: want ID=HOST:PORT", ErrBadConfig, part)
		}
		id, err := strconv.ParseUint(idText, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("%w: %q: the id must be a positive integer", ErrBadConfig, part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrBadConfig, part, err)
		}
		if _, dup := peers[id]; dup {
			return nil, fmt.Errorf("%w: node id %d appears twice", ErrBadConfig, id)
		}
		peers[id] = addr
	}
	if len(peers) == 0 {
		return nil, fmt.Errorf("%w: no peers", ErrBadConfig)
	}
	return peers, nil
}
