package cluster

import (
	"fmt"
	"sync"

	"github.com/badbatch/badbatch/journal"
	"github.com/badbatch/badbatch/storage"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// The lanes of a Ready (raft runs with AsyncStorageWrites):
//
//   - the raft goroutine takes each Ready and sends its messages to peers
//     at once (the leader's appends leave in parallel with its own fsync:
//     the replication processor), hands the storage append to the append
//     goroutine, and applies committed configuration changes before it
//     reports the commit index to the store's apply goroutine (the
//     business-logic processor);
//   - the append goroutine (the journaling processor) writes the entries
//     of every queued storage append into the journal (WriteEntry), the
//     HardState into the state file, installs snapshots, syncs ONCE for
//     everything it took, and only then releases the responses that raft
//     attached (acknowledgements and votes to peers, and raft's own
//     "stable" notices, which it steps back through n.local).
//
// Raft emits only committed entries that are stable for apply, so the
// store never applies an entry this node has not fsynced.

// localQueue is an unbounded FIFO of messages from the append goroutine to
// the raft goroutine. Safe for concurrent use.
type localQueue struct {
	mu     sync.Mutex
	msgs   []*pb.Message
	notify chan struct{}
}

func (q *localQueue) push(ms []*pb.Message) {
	if len(ms) == 0 {
		return
	}
	q.mu.Lock()
	q.msgs = append(q.msgs, ms...)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *localQueue) take() []*pb.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	ms := q.msgs
	q.msgs = nil
	return ms
}

// stepLocal steps the append goroutine's responses into raft, in order.
// Raft goroutine only.
func (n *Node) stepLocal() {
	for _, m := range n.local.take() {
		if err := n.rn.Step(m); err != nil {
			n.log.Debug("cluster: step local", "type", m.GetType(), "err", err)
		}
	}
}

// drainReady handles every pending Ready. Raft goroutine only.
func (n *Node) drainReady() error {
	for n.rn.HasReady() {
		if err := n.handleReady(n.rn.Ready()); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		if rd.SoftState.Lead != n.soft.Lead {
			n.log.Info("cluster: leader", "leader", rd.SoftState.Lead, "state", rd.SoftState.RaftState.String())
		}
		n.soft = *rd.SoftState
	}
	if hs := rd.HardState; hs != nil && !raft.IsEmptyHardState(hs) {
		n.term = hs.GetTerm()
	}
	out := rd.Messages[:0:0]
	var appendMsg, applyMsg *pb.Message
	for _, m := range rd.Messages {
		switch m.GetTo() {
		case raft.LocalAppendThread:
			appendMsg = m
		case raft.LocalApplyThread:
			applyMsg = m
		default:
			out = append(out, m)
		}
	}
	if len(out) > 0 {
		n.tr.Send(out)
	}
	if appendMsg != nil {
		if ents := appendMsg.GetEntries(); len(ents) > 0 {
			n.handed = ents[len(ents)-1].GetIndex()
		}
		if s := appendMsg.GetSnapshot(); s != nil && !raft.IsEmptySnap(s) {
			n.handed = max(n.handed, s.GetMetadata().GetIndex())
		}
		select {
		case n.appendc <- appendMsg:
		case <-n.appendDone:
			return n.Err()
		}
	}
	changed := rd.SoftState != nil
	if applyMsg != nil {
		if err := n.applyCommitted(applyMsg); err != nil {
			return err
		}
		changed = true
	}
	for _, rs := range rd.ReadStates {
		n.reads.resolve(rs)
	}
	if changed {
		n.maybeCompact()
		n.publishStatus()
	}
	return nil
}

// applyCommitted handles raft's apply message: configuration changes go
// to raft and the membership first, then the store's apply goroutine is
// told the new commit index, then raft hears that they are applied.
// Raft goroutine only.
func (n *Node) applyCommitted(m *pb.Message) error {
	ents := make([]storage.CommittedEntry, 0, len(m.GetEntries()))
	for _, e := range m.GetEntries() {
		kind := journal.KindGroups
		if t := e.GetType(); t == pb.EntryType_EntryConfChange || t == pb.EntryType_EntryConfChangeV2 {
			if err := n.applyConf(e); err != nil {
				return err
			}
			kind = journal.KindConfChange
		}
		ents = append(ents, storage.CommittedEntry{Index: e.GetIndex(), Term: e.GetTerm(), Kind: kind, Payload: e.GetData()})
	}
	n.store.CommitEntries(ents)
	for _, r := range m.GetResponses() {
		if err := n.rn.Step(r); err != nil {
			n.log.Debug("cluster: step apply response", "err", err)
		}
	}
	return nil
}

// maxAppendBatch bounds the storage appends one fsync covers.
const maxAppendBatch = 64

// appendLoop is the journaling lane: it persists raft's storage appends in
// order, several per fsync when they queue up.
func (n *Node) appendLoop() {
	defer close(n.appendDone)
	batch := make([]*pb.Message, 0, maxAppendBatch)
	for {
		select {
		case m := <-n.appendc:
			batch = append(batch[:0], m)
		case <-n.stop:
			return
		}
		for more := true; more && len(batch) < maxAppendBatch; {
			select {
			case m := <-n.appendc:
				batch = append(batch, m)
			default:
				more = false
			}
		}
		if err := n.persist(batch); err != nil {
			n.failNode(err)
			return
		}
		var self, peers []*pb.Message
		for _, m := range batch {
			for _, r := range m.GetResponses() {
				if r.GetTo() == n.opts.NodeID {
					self = append(self, r)
				} else {
					peers = append(peers, r)
				}
			}
		}
		if len(peers) > 0 {
			n.tr.Send(peers)
		}
		n.local.push(self)
		clear(batch)
	}
}

// persist makes a batch of storage appends durable: snapshots, entries and
// the newest HardState, with one journal fsync. Append goroutine only.
func (n *Node) persist(batch []*pb.Message) error {
	var wrote bool
	var hs *pb.HardState
	for _, m := range batch {
		if s := m.GetSnapshot(); s != nil && !raft.IsEmptySnap(s) {
			if wrote {
				// Entries written before the snapshot are superseded by it;
				// make them durable first so the journal is in order.
				if err := n.store.Journal().Sync(); err != nil {
					return fmt.Errorf("cluster: sync the log: %w", err)
				}
				wrote = false
			}
			if err := n.installSnapshot(s); err != nil {
				return err
			}
		}
		if len(m.GetEntries()) > 0 {
			if err := n.rl.append(m.GetEntries()); err != nil {
				return err
			}
			wrote = true
		}
		if m.Term != nil {
			hs = &pb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}
		}
	}
	if wrote {
		if err := n.store.Journal().Sync(); err != nil {
			return fmt.Errorf("cluster: sync the log: %w", err)
		}
	}
	if hs != nil {
		n.persMu.Lock()
		defer n.persMu.Unlock()
		durable := hs.GetTerm() != n.pers.Term || hs.GetVote() != n.pers.Vote
		n.pers.Term, n.pers.Vote = hs.GetTerm(), hs.GetVote()
		n.pers.Commit = max(n.pers.Commit, hs.GetCommit())
		if err := n.sf.save(n.pers, durable); err != nil {
			return err
		}
		n.rl.setHardState(hs)
	}
	return nil
}
