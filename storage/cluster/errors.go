package cluster

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Sentinel errors. Check them with errors.Is.
var (
	// ErrBadConfig is returned by Open for options or a data directory that
	// cannot start this node as configured.
	ErrBadConfig = errors.New("cluster: bad configuration")
	// ErrNoLeader is returned while no leader is known: appends and
	// linearizable reads wait for an election; retry after a short delay.
	ErrNoLeader = errors.New("cluster: no leader")
	// ErrDataLost means this node's log is shorter than what the cluster
	// knows it acknowledged: its data directory was lost or replaced. It
	// must not take part again under its old id (it could vote twice in one
	// term). Remove it and add a fresh node with a new id.
	ErrDataLost = errors.New("cluster: this node's data directory was lost or replaced")
	// ErrRemoved is returned once this node has been removed from the
	// cluster.
	ErrRemoved = errors.New("cluster: this node was removed from the cluster")
	// ErrClosed is returned by calls on a closed node.
	ErrClosed = errors.New("cluster: closed")
)

// replaceProcedure is what an operator does for a node that lost its disk.
const replaceProcedure = "remove it with `badbatch cluster remove ID --server URL` and start a fresh node with a new --node-id and --join URL (docs/cluster.md, \"Replacing a node\")"

func formatPeers(p map[uint64]string) string {
	ids := make([]uint64, 0, len(p))
	for id := range p {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%d=%s", id, p[id])
	}
	return strings.Join(parts, ",")
}
