package cluster

import (
	"encoding/json"

	"fmt"
	"github.com/badbatch/badbatch/journal"
	"io"

	pb "go.etcd.io/raft/v3/raftpb"
)

// Snapshots. Raft decides when a follower needs one (its next entry is at
// or below the leader's compaction point); the descriptor raft sends
// (raftLog.Snapshot) names the compaction point and carries the membership
// in Data. The body is streamed by the transport on its own connection:
// the sender's store writes an index checkpoint and its journal entries
// (storage.Store.WriteSnapshot), the receiver's store stages them on disk
// (ReceiveSnapshot). Only then is MsgSnap stepped into raft, whose Ready
// hands the snapshot back to installSnapshot: the stage is sealed at the
// snapshot's index, the state file records it (the compaction point,
// configuration and commit, fsynced: the commit point), then the store
// swaps the staged files in. The store's next Open finishes a swap that a
// crash interrupted after the state file's record, and drops a sealed
// stage the state file does not record.

// snapshotData is a snapshot descriptor's Data.
type snapshotData struct {
	ClusterID uint64   `json:"cluster_id"`
	Members   []member `json:"members"`
}

// WriteSnapshot implements SnapshotSource.
func (n *Node) WriteSnapshot(m *pb.Message, w io.Writer) error {
	return n.store.WriteSnapshot(w, m.GetSnapshot().GetMetadata().GetIndex())
}

// ReceiveSnapshot implements TransportHandler: it stages the body, then
// hands the message to raft.
func (n *Node) ReceiveSnapshot(m *pb.Message, body io.Reader) error {
	meta := m.GetSnapshot().GetMetadata()
	n.snapMu.Lock()
	defer n.snapMu.Unlock()
	info, err := n.store.ReceiveSnapshot(body)
	if err != nil {
		return fmt.Errorf("cluster: receive snapshot at %d from %d: %w", meta.GetIndex(), m.GetFrom(), err)
	}
	if info.LastIndex < meta.GetIndex() {
		return fmt.Errorf("cluster: snapshot body ends at %d, before its index %d", info.LastIndex, meta.GetIndex())
	}
	n.staged = meta.GetIndex()
	n.log.Info("cluster: snapshot received", "from", m.GetFrom(), "index", meta.GetIndex(), "files", info.Files, "entries", info.Entries)
	select {
	case n.recvc <- m:
	case <-n.done:
		return ErrClosed
	}
	return nil
}

// installSnapshot persists a snapshot raft accepted. Raft goroutine only.
func (n *Node) installSnapshot(s *pb.Snapshot) error {
	meta := s.GetMetadata()
	n.snapMu.Lock()
	staged := n.staged
	n.staged = 0
	n.snapMu.Unlock()
	if staged != meta.GetIndex() {
		return fmt.Errorf("cluster: raft installs snapshot %d but the staged one is %d", meta.GetIndex(), staged)
	}
	var data snapshotData
	if err := json.Unmarshal(s.GetData(), &data); err != nil {
		return fmt.Errorf("cluster: snapshot %d: bad descriptor: %w", meta.GetIndex(), err)
	}
	// The order is the installation's crash safety: the stage is sealed,
	// then the state file records the snapshot (the commit point), then
	// the store swaps the staged files in. The next Open removes a sealed
	// stage the state file does not record, and finishes one it does
	// (storage.Replication.SnapshotIndex).
	if err := n.store.SealSnapshot(meta.GetIndex()); err != nil {
		return fmt.Errorf("cluster: install snapshot %d: %w", meta.GetIndex(), err)
	}
	cs := meta.GetConfState()
	n.persMu.Lock()
	defer n.persMu.Unlock()
	p := &n.pers
	p.SnapIndex, p.SnapTerm = meta.GetIndex(), meta.GetTerm()
	p.Voters, p.Learners = cs.GetVoters(), cs.GetLearners()
	p.VotersOutgoing, p.LearnersNext, p.AutoLeave = cs.GetVotersOutgoing(), cs.GetLearnersNext(), cs.GetAutoLeave()
	p.ConfIndex = meta.GetIndex()
	p.Commit = max(p.Commit, meta.GetIndex())
	if len(data.Members) > 0 {
		p.Members = data.Members
	}
	if err := n.sf.save(*p, true); err != nil {
		return err
	}
	err := n.rl.install(func() (*journal.Journal, error) {
		if err := n.store.InstallSnapshot(meta.GetIndex()); err != nil {
			return nil, err
		}
		return n.store.Journal(), nil // the journal the installation opened
	}, meta, p.ClusterID, p.Members)
	if err != nil {
		return fmt.Errorf("cluster: install snapshot %d: %w", meta.GetIndex(), err)
	}
	n.snapshotsInstalled.Add(1)
	n.store.SetRetentionFloor(meta.GetIndex())
	for _, m := range p.Members {
		if m.ID != n.opts.NodeID && m.ClusterAddr != "" {
			n.tr.AddPeer(m.ID, m.ClusterAddr)
		}
	}
	n.log.Info("cluster: snapshot installed", "index", meta.GetIndex(), "term", meta.GetTerm(), "applied", n.store.AppliedIndex())
	return nil
}
