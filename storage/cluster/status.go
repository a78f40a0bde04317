package cluster

import (
	"slices"

	"go.etcd.io/raft/v3"
)

// Roles reported in Status.
const (
	RoleLeader    = "leader"
	RoleFollower  = "follower"
	RoleCandidate = "candidate"
	RoleLearner   = "learner"
)

// Status is a snapshot of the cluster as this node sees it. It is a plain
// value, safe to copy and share; its JSON form is GET /v1/cluster.
type Status struct {
	NodeID    uint64 `json:"node_id"`
	ClusterID uint64 `json:"cluster_id"`
	// LeaderID is 0 while no leader is known.
	LeaderID  uint64 `json:"leader_id"`
	LeaderURL string `json:"leader_url,omitempty"`
	Term      uint64 `json:"term"`
	// CommitIndex is the highest log index this node knows committed;
	// AppliedIndex the highest its store has applied (what a
	// consistency=any read sees).
	CommitIndex  uint64       `json:"commit_index"`
	AppliedIndex uint64       `json:"applied_index"`
	Role         string       `json:"role"`
	Nodes        []NodeStatus `json:"nodes"`
	// Error is set once the node has stopped (see Node.Err).
	Error string `json:"error,omitempty"`
}

// NodeStatus is one member. MatchIndex is the leader's view of how far the
// member's log matches its own (0 when this node is not the leader);
// Healthy says whether this node has a live authenticated connection to it
// (always true for itself).
type NodeStatus struct {
	ID          uint64 `json:"id"`
	URL         string `json:"url"`
	ClusterAddr string `json:"cluster_addr"`
	Role        string `json:"role"`
	MatchIndex  uint64 `json:"match_index"`
	Healthy     bool   `json:"healthy"`
}

// Status returns the node's current view of the cluster.
func (n *Node) Status() Status {
	st := *n.status.Load()
	st.Nodes = slices.Clone(st.Nodes)
	st.AppliedIndex = n.store.AppliedIndex()
	for i := range st.Nodes {
		m := &st.Nodes[i]
		if m.ID == n.opts.NodeID {
			m.Healthy = n.Err() == nil
		} else {
			m.Healthy = n.tr != nil && n.tr.Connected(m.ID)
			if m.URL == "" && n.tr != nil {
				m.URL = n.tr.PeerURL(m.ID)
			}
		}
		if m.ID == st.LeaderID && st.LeaderURL == "" {
			st.LeaderURL = m.URL
		}
	}
	if err := n.Err(); err != nil {
		st.Error = err.Error()
	}
	return st
}

// Leader returns the known leader's id and HTTP URL (0 and "" while none
// is known; the URL may be "" until the leader's handshake announced it).
func (n *Node) Leader() (uint64, string) {
	st := n.Status()
	return st.LeaderID, st.LeaderURL
}

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool {
	st := n.status.Load()
	return st.LeaderID == n.opts.NodeID && n.Err() == nil
}

// Ready reports whether the node can serve: it knows a leader, its store
// is healthy and it has not stopped.
func (n *Node) Ready() bool {
	st := n.status.Load()
	return n.Err() == nil && st.LeaderID != 0 && n.store.Ready()
}

// publishStatus rebuilds the status snapshot. Raft goroutine only (and
// Open, before it starts).
func (n *Node) publishStatus() {
	bs := n.rn.BasicStatus()
	st := &Status{
		NodeID:      n.opts.NodeID,
		LeaderID:    bs.Lead,
		Term:        bs.HardState.GetTerm(),
		CommitIndex: bs.HardState.GetCommit(),
		Role:        roleOf(bs.RaftState),
	}
	var progress map[uint64]uint64
	if bs.RaftState == raft.StateLeader {
		progress = map[uint64]uint64{}
		for id, pr := range n.rn.Status().Progress {
			progress[id] = pr.Match
		}
	}
	n.persMu.Lock()
	members := append([]member(nil), n.pers.Members...)
	learners := append([]uint64(nil), n.pers.Learners...)
	st.ClusterID = n.pers.ClusterID
	n.persMu.Unlock()
	for _, m := range members {
		ns := NodeStatus{ID: m.ID, URL: m.URL, ClusterAddr: m.ClusterAddr, Role: RoleFollower, MatchIndex: progress[m.ID]}
		switch {
		case m.ID == bs.Lead:
			ns.Role = RoleLeader
		case slices.Contains(learners, m.ID):
			ns.Role = RoleLearner
		case m.ID == n.opts.NodeID && bs.RaftState != raft.StateFollower:
			ns.Role = roleOf(bs.RaftState)
		}
		if m.ID == n.opts.NodeID && ns.URL == "" {
			ns.URL = n.opts.HTTPURL
		}
		st.Nodes = append(st.Nodes, ns)
	}
	n.status.Store(st)
}

func roleOf(s raft.StateType) string {
	switch s {
	case raft.StateLeader:
		return RoleLeader
	case raft.StateCandidate, raft.StatePreCandidate:
		return RoleCandidate
	default:
		return RoleFollower
	}
}
