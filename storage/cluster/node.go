package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/badbatch/badbatch/storage"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

// Node is one member of a BadBatch cluster: a storage.Store in cluster
// mode driven by an etcd raft RawNode. It is safe for concurrent use.
//
// Goroutines (each owned by the Node, stopped and joined by Close):
//   - the raft goroutine (run): ticks, steps received messages, proposes
//     the store's ring batches, and handles every Ready: sends the
//     messages that may leave before the fsync, persists entries in the
//     journal (one Sync per Ready) and the HardState in the state file,
//     sends the rest, applies configuration changes and reports the commit
//     index to the store;
//   - the store's own goroutines (ring, proposing processor, apply
//     goroutine: see storage's doc.go);
//   - the transport's.
type Node struct {
	opts  Options
	log   *slog.Logger
	dir   string
	store *storage.Store
	rl    *raftLog
	rn    *raft.RawNode
	tr    Transport
	sf    *stateFile

	// pers is the persistent state (raft goroutine only after Open).
	pers persistent

	propc chan *storage.Proposal
	recvc chan *pb.Message
	reqc  chan func()
	stop  chan struct{}
	done  chan struct{}

	// fatal is the error that stopped the node, if any.
	fatal     atomic.Pointer[error]
	closeOnce sync.Once
	closeErr  error

	// The append goroutine (ready.go): raft's storage writes, in order.
	appendc    chan *pb.Message
	appendDone chan struct{}
	// local carries the responses the append goroutine steps back into
	// raft, in order (never dropped, never blocking the appender).
	local localQueue
	// persMu guards pers and the state file: the raft goroutine writes
	// the configuration and compaction point, the append goroutine the
	// HardState and snapshots.
	persMu sync.Mutex

	// Raft goroutine state.
	soft raft.SoftState
	term uint64 // raft's current term (from the last Ready's HardState)
	// handed is the last index handed to the append goroutine (raft's
	// last index, in flight to the journal).
	handed uint64
	ticks  int64
	// fresh is set for a node that bootstrapped an empty directory: it
	// grants no vote until it has heard from a leader or waited two
	// election timeouts (it may have voted before its disk was lost).
	fresh     bool
	heard     bool
	reads     readQueue
	confWait  map[uint64]chan error
	confSeq   uint64
	promoting uint64 // learner being promoted (0: none)

	status atomic.Pointer[Status]

	// snapMu serializes snapshot receipts; staged is the index of the
	// snapshot staged on disk and not yet installed (0: none).
	snapMu sync.Mutex
	staged uint64
	// snapshotsInstalled counts snapshots this node installed.
	snapshotsInstalled atomic.Int64
}

// Open opens (creating on first start) the node's data directory dir: the
// store (journal and index) plus dir/cluster/state, then starts raft and
// the transport. A new directory with Options.Peers bootstraps a new
// cluster; with Options.Join it asks a member to add this node.
func Open(dir string, opts *Options) (*Node, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	n := &Node{
		opts:     o,
		log:      o.Logger.With("node", o.NodeID),
		dir:      dir,
		propc:    make(chan *storage.Proposal, 256),
		recvc:    make(chan *pb.Message, 4096),
		reqc:     make(chan func(), 64),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		confWait: make(map[uint64]chan error),
	}
	n.reads.nonce = rand.Uint64()
	fs := o.Store.FS
	if fs == nil {
		fs = storage.DefaultOptions().FS
		o.Store.FS = fs
	}
	cdir := fs.PathJoin(dir, storage.ClusterDir)
	if err := n.loadState(cdir); err != nil {
		return nil, err
	}
	so := *o.Store
	so.Replication = &storage.Replication{Commit: n.pers.Commit, SnapshotIndex: n.pers.SnapIndex, Proposer: n, MaxEntryBytes: o.MaxEntryBytes}
	if so.Logger == nil {
		so.Logger = o.Logger
	}
	st, err := storage.Open(dir, &so)
	if err != nil {
		_ = n.sf.close()
		return nil, err
	}
	n.store = st
	// The stored commit index may trail what the store applied (it is
	// saved without an fsync unless the term or vote changed): anything
	// applied was committed.
	applied := st.AppliedIndex()
	if applied > n.pers.Commit {
		n.pers.Commit = applied
	}
	n.rl = newRaftLog(st.Journal(), &n.pers, st.AppliedIndex)
	if err := n.startRaft(applied); err != nil {
		_ = st.Close()
		_ = n.sf.close()
		return nil, err
	}
	listen := o.ClusterAddr
	if o.ListenAddr != "" {
		listen = o.ListenAddr
	}
	tc := &TransportConfig{
		NodeID: o.NodeID, ClusterID: n.pers.ClusterID, ClusterAddr: listen, HTTPURL: o.HTTPURL,
		Secret: o.Secret, Logger: n.log, Handler: n, Snapshots: n,
	}
	newTransport := o.NewTransport
	if newTransport == nil {
		newTransport = newTCPTransport
	}
	tr, err := newTransport(tc)
	if err != nil {
		_ = st.Close()
		_ = n.sf.close()
		return nil, fmt.Errorf("cluster: start transport on %s: %w", listen, err)
	}
	n.tr = tr
	for _, m := range n.pers.Members {
		if m.ID != o.NodeID {
			tr.AddPeer(m.ID, m.ClusterAddr)
		}
	}
	st.SetRetentionFloor(n.pers.SnapIndex)
	n.term = n.pers.Term
	n.publishStatus()
	n.appendc = make(chan *pb.Message, 256)
	n.appendDone = make(chan struct{})
	n.local.notify = make(chan struct{}, 1)
	go n.appendLoop()
	go n.run()
	return n, nil
}

// loadState reads dir/cluster/state, creating it (bootstrap or join) for a
// new node, and checks it against the options.
func (n *Node) loadState(cdir string) error {
	o := &n.opts
	fs := o.Store.FS
	sf, p, err := openState(fs, fs.PathJoin(cdir, stateFileName))
	switch {
	case err == nil:
		n.sf, n.pers = sf, p
		return n.checkStored()
	case !errors.Is(err, errNoState):
		return err
	}
	// A new node. A journal without a state file is a standalone store.
	if _, serr := fs.Stat(fs.PathJoin(n.dir, "journal")); serr == nil {
		if has, herr := journalHasEntries(fs, fs.PathJoin(n.dir, "journal")); herr != nil || has {
			return fmt.Errorf("%w: %w: %s holds a standalone store; it cannot become a cluster node in place (start a new node with an empty data directory and copy the data in through the API)",
				ErrBadConfig, storage.ErrWrongMode, n.dir)
		}
	}
	if err := mkdirDurable(fs, cdir); err != nil {
		return fmt.Errorf("cluster: create %s: %w", cdir, err)
	}
	p = persistent{NodeID: o.NodeID}
	if o.Join != "" {
		info, err := requestJoin(o)
		if err != nil {
			return err
		}
		p.ClusterID = info.ClusterID
		p.Members = info.Members
	} else {
		p.ClusterID = clusterIDOf(o.Peers)
		for id, a := range o.Peers {
			m := member{ID: id, ClusterAddr: a}
			if id == o.NodeID {
				m.URL = o.HTTPURL
			}
			p.Members = append(p.Members, m)
		}
		slices.SortFunc(p.Members, func(a, b member) int { return cmpID(a.ID, b.ID) })
		n.fresh = true
	}
	sf, err = createState(fs, cdir, p)
	if err != nil {
		return err
	}
	n.sf, n.pers = sf, p
	return nil
}

// checkStored compares the stored identity and membership with the
// options.
func (n *Node) checkStored() error {
	o, p := &n.opts, &n.pers
	if p.NodeID != o.NodeID {
		return fmt.Errorf("%w: %s belongs to node %d, not %d", ErrBadConfig, n.dir, p.NodeID, o.NodeID)
	}
	if p.Removed {
		return fmt.Errorf("%w: node %d", ErrRemoved, o.NodeID)
	}
	if len(o.Peers) == 0 {
		return nil
	}
	stored := map[uint64]string{}
	for _, m := range p.Members {
		stored[m.ID] = m.ClusterAddr
	}
	if formatPeers(stored) != formatPeers(o.Peers) {
		return fmt.Errorf("%w: --peers %s disagree with the membership this node stored, %s (membership changes are made with `badbatch cluster add|remove`; start the node with the stored membership)",
			ErrBadConfig, formatPeers(o.Peers), formatPeers(stored))
	}
	return nil
}

func cmpID(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// clusterIDOf derives the cluster id from the bootstrap membership, so
// that every initial member computes the same one. It keeps 53 bits, so
// that it survives JSON in JavaScript clients intact.
func clusterIDOf(peers map[uint64]string) uint64 {
	h := fnv.New64a()
	_, _ = io.WriteString(h, "badbatch-cluster\x00"+formatPeers(peers))
	return h.Sum64()&(1<<53-1) | 1
}

// startRaft creates the RawNode; a bootstrapping node appends the initial
// configuration.
func (n *Node) startRaft(applied uint64) error {
	o := &n.opts
	applied = max(applied, n.pers.ConfIndex, n.pers.SnapIndex)
	applied = min(applied, n.pers.Commit)
	cfg := &raft.Config{
		ID:                        o.NodeID,
		ElectionTick:              o.ElectionTicks,
		HeartbeatTick:             o.HeartbeatTicks,
		Storage:                   n.rl,
		Applied:                   applied,
		MaxSizePerMsg:             4 << 20,
		MaxCommittedSizePerReady:  64 << 20,
		MaxInflightMsgs:           256,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		DisableProposalForwarding: true, // the store matches its proposals by term (see storage.Store.Proposed)
		StepDownOnRemoval:         true,
		// The journaling lane is its own goroutine (ready.go): the raft
		// goroutine goes on stepping acknowledgements and proposals while
		// an fsync runs.
		AsyncStorageWrites: true,
		Logger:             raftLogger{n.log},
	}
	rn, err := raft.NewRawNode(cfg)
	if err != nil {
		return fmt.Errorf("cluster: start raft: %w", err)
	}
	n.rn = rn
	last, _ := n.rl.LastIndex()
	if n.fresh && last == 0 {
		peers := make([]raft.Peer, 0, len(n.pers.Members))
		for _, m := range n.pers.Members {
			ctx, _ := json.Marshal(confContext{ClusterAddr: m.ClusterAddr, URL: m.URL})
			peers = append(peers, raft.Peer{ID: m.ID, Context: ctx})
		}
		if err := rn.Bootstrap(peers); err != nil {
			return fmt.Errorf("cluster: bootstrap: %w", err)
		}
	}
	return nil
}

// confContext is the Context of the configuration changes this package
// proposes.
type confContext struct {
	Request     uint64 `json:"req,omitempty"`
	Origin      uint64 `json:"origin,omitempty"`
	ClusterAddr string `json:"cluster_addr,omitempty"`
	URL         string `json:"url,omitempty"`
}

// Store returns the node's store: reads go to it directly; appends made on
// it are proposed to the cluster (storage.ErrNotLeader on a follower).
func (n *Node) Store() *storage.Store { return n.store }

// ID returns this node's id.
func (n *Node) ID() uint64 { return n.opts.NodeID }

// Err returns the error that stopped the node (nil while it runs).
func (n *Node) Err() error {
	if p := n.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

// Done is closed when the node's raft goroutine has stopped (Close, or a
// fatal error: see Err).
func (n *Node) Done() <-chan struct{} { return n.done }

func (n *Node) failNode(err error) {
	if n.fatal.CompareAndSwap(nil, &err) {
		n.log.Error("cluster: node stopped", "err", err)
	}
}

// Close stops raft and the transport, then closes the store. Appends in
// flight fail with an unknown outcome (storage.ErrClosed).
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.stop)
		<-n.done
		<-n.appendDone
		var errs []error
		if err := n.tr.Close(); err != nil {
			errs = append(errs, err)
		}
		// Closing the store drains its ring into Propose; with raft stopped,
		// refuse whatever arrives (and whatever was queued) until it is
		// closed, so that no append waits for a goroutine that is gone.
		drained := make(chan struct{})
		stored := make(chan struct{})
		go func() {
			defer close(drained)
			for {
				select {
				case p := <-n.propc:
					n.store.Refuse(p, fmt.Errorf("%w: %w", storage.ErrClosed, ErrClosed))
				case <-stored:
					return
				}
			}
		}()
		if err := n.store.Close(); err != nil {
			errs = append(errs, err)
		}
		close(stored)
		<-drained
		if err := n.sf.close(); err != nil {
			errs = append(errs, err)
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// Propose implements storage.Proposer: it hands a ring batch to the raft
// goroutine.
func (n *Node) Propose(p *storage.Proposal) {
	// After the raft goroutine stopped, Close drains propc and refuses.
	n.propc <- p
}

// Receive implements TransportHandler.
func (n *Node) Receive(m *pb.Message) {
	select {
	case n.recvc <- m:
	default:
		// Raft tolerates loss; the sender retries.
	}
}

// ReportUnreachable implements TransportHandler.
func (n *Node) ReportUnreachable(id uint64) {
	n.do(func() { n.rn.ReportUnreachable(id) })
}

// ReportSnapshot implements TransportHandler.
func (n *Node) ReportSnapshot(id uint64, failed bool) {
	status := raft.SnapshotFinish
	if failed {
		status = raft.SnapshotFailure
	}
	n.do(func() { n.rn.ReportSnapshot(id, status) })
}

// do runs fn on the raft goroutine, without waiting. It is dropped if the
// node is stopping.
func (n *Node) do(fn func()) {
	select {
	case n.reqc <- fn:
	case <-n.done:
	}
}

// call runs fn on the raft goroutine and waits for it.
func (n *Node) call(ctx context.Context, fn func()) error {
	ch := make(chan struct{})
	select {
	case n.reqc <- func() { fn(); close(ch) }:
	case <-n.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ch:
		return nil
	case <-n.done:
		return ErrClosed
	}
}

// run is the raft goroutine.
func (n *Node) run() {
	defer close(n.done)
	t := time.NewTicker(n.opts.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			n.reads.failAll(ErrClosed)
			return
		case <-t.C:
			n.tick()
		case p := <-n.propc:
			n.propose(p)
			for more := true; more; {
				select {
				case p := <-n.propc:
					n.propose(p)
				default:
					more = false
				}
			}
		case m := <-n.recvc:
			n.step(m)
			for more := true; more; {
				select {
				case m := <-n.recvc:
					n.step(m)
				default:
					more = false
				}
			}
		case fn := <-n.reqc:
			fn()
		case <-n.local.notify:
			n.stepLocal()
		case <-n.appendDone:
			// The append goroutine stopped on an error (n.Err says which).
		}
		if err := n.drainReady(); err != nil {
			n.failNode(err)
		}
		if err := n.Err(); err != nil {
			n.reads.failAll(err)
			return
		}
	}
}

func (n *Node) tick() {
	n.rn.Tick()
	n.ticks++
	n.reads.tick(n)
	if n.soft.RaftState == raft.StateLeader {
		n.maybePromote()
	}
	n.publishStatus()
}

func (n *Node) propose(p *storage.Proposal) {
	if n.soft.RaftState != raft.StateLeader {
		n.store.Refuse(p, n.notLeader())
		return
	}
	if err := n.rn.Propose(p.Payload()); err != nil {
		n.store.Refuse(p, fmt.Errorf("%w: %w", storage.ErrNotLeader, err))
		return
	}
	n.store.Proposed(p, n.term)
}

// notLeader is the error for a request that needs the leader.
func (n *Node) notLeader() error {
	if n.soft.Lead == raft.None {
		return fmt.Errorf("%w: %w", storage.ErrNotLeader, ErrNoLeader)
	}
	return fmt.Errorf("%w: the leader is node %d", storage.ErrNotLeader, n.soft.Lead)
}

func (n *Node) step(m *pb.Message) {
	switch m.GetType() {
	case pb.MessageType_MsgVote, pb.MessageType_MsgPreVote:
		if n.fresh && !n.heard && n.ticks < int64(2*n.opts.ElectionTicks) {
			return // may have voted in this term before its disk was lost
		}
	case pb.MessageType_MsgHeartbeat:
		n.heard = true
		if last, _ := n.rl.LastIndex(); m.GetCommit() > max(last, n.handed) {
			n.failNode(fmt.Errorf("%w: node %d's log ends at entry %d, but leader %d knows it acknowledged entry %d; %s",
				ErrDataLost, n.opts.NodeID, last, m.GetFrom(), m.GetCommit(), replaceProcedure))
			return
		}
	case pb.MessageType_MsgApp, pb.MessageType_MsgSnap:
		n.heard = true
	}
	if err := n.rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
		n.log.Debug("cluster: step", "type", m.GetType(), "from", m.GetFrom(), "err", err)
	}
}

// applyConf applies a committed configuration change to raft, the
// membership and the transport, durably.
func (n *Node) applyConf(e *pb.Entry) error {
	var cc pb.ConfChangeI
	if e.GetType() == pb.EntryType_EntryConfChange {
		var c pb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &c); err != nil {
			return fmt.Errorf("cluster: entry %d: decode conf change: %w", e.GetIndex(), err)
		}
		cc = &c
	} else {
		var c pb.ConfChangeV2
		if err := proto.Unmarshal(e.GetData(), &c); err != nil {
			return fmt.Errorf("cluster: entry %d: decode conf change: %w", e.GetIndex(), err)
		}
		cc = &c
	}
	v2 := cc.AsV2()
	var ctx confContext
	if len(v2.GetContext()) > 0 {
		_ = json.Unmarshal(v2.GetContext(), &ctx)
	}
	cs := n.rn.ApplyConfChange(cc)
	n.persMu.Lock()
	defer n.persMu.Unlock()
	p := &n.pers
	p.Voters, p.Learners = cs.GetVoters(), cs.GetLearners()
	p.VotersOutgoing, p.LearnersNext, p.AutoLeave = cs.GetVotersOutgoing(), cs.GetLearnersNext(), cs.GetAutoLeave()
	p.ConfIndex = e.GetIndex()
	for _, ch := range v2.GetChanges() {
		id := ch.GetNodeId()
		switch ch.GetType() {
		case pb.ConfChangeType_ConfChangeAddNode, pb.ConfChangeType_ConfChangeAddLearnerNode:
			i := slices.IndexFunc(p.Members, func(m member) bool { return m.ID == id })
			if i < 0 {
				p.Members = append(p.Members, member{ID: id})
				i = len(p.Members) - 1
			}
			if ctx.ClusterAddr != "" {
				p.Members[i].ClusterAddr = ctx.ClusterAddr
			}
			if ctx.URL != "" {
				p.Members[i].URL = ctx.URL
			}
			if id != n.opts.NodeID && p.Members[i].ClusterAddr != "" {
				n.tr.AddPeer(id, p.Members[i].ClusterAddr)
			}
		case pb.ConfChangeType_ConfChangeRemoveNode:
			p.Members = slices.DeleteFunc(p.Members, func(m member) bool { return m.ID == id })
			if id == n.opts.NodeID {
				p.Removed = true
			} else {
				n.tr.RemovePeer(id)
			}
		}
	}
	slices.SortFunc(p.Members, func(a, b member) int { return cmpID(a.ID, b.ID) })
	if err := n.sf.save(*p, true); err != nil {
		return err
	}
	n.rl.setConfState(e.GetIndex(), cs, p.ClusterID, p.Members)
	if ctx.Origin == n.opts.NodeID {
		if ch, ok := n.confWait[ctx.Request]; ok {
			delete(n.confWait, ctx.Request)
			ch <- nil
		}
	}
	if n.promoting != 0 && slices.Contains(p.Voters, n.promoting) {
		n.promoting = 0
	}
	n.log.Info("cluster: configuration changed", "index", e.GetIndex(), "voters", p.Voters, "learners", p.Learners)
	if p.Removed {
		n.log.Warn("cluster: this node was removed from the cluster")
	}
	return nil
}

// maybeCompact moves raft's compaction point so that raft keeps about
// SnapshotEntries applied entries for slow followers, and lets the store's
// retention follow it.
func (n *Node) maybeCompact() {
	applied := n.store.AppliedIndex()
	keep := n.opts.SnapshotEntries
	if applied <= n.rl.compactionPoint()+2*keep {
		return
	}
	idx := applied - keep
	term, err := n.rl.Term(idx)
	if err != nil {
		return
	}
	n.rl.compact(idx, term)
	n.persMu.Lock()
	defer n.persMu.Unlock()
	n.pers.SnapIndex, n.pers.SnapTerm = idx, term
	// Durable before retention may act on it: the journal's removal of
	// the entries at or below idx is durable, and a compaction point lost
	// by a crash would leave raft a log that starts after a point whose
	// term it cannot know. (One fdatasync per SnapshotEntries entries.)
	if err := n.sf.save(n.pers, true); err != nil {
		n.log.Warn("cluster: save the compaction point", "err", err)
		return
	}
	n.store.SetRetentionFloor(idx)
}

// maybePromote proposes promoting a learner that has caught up.
// REQUIRES: leader, raft goroutine.
func (n *Node) maybePromote() {
	if n.promoting != 0 && n.ticks%int64(4*n.opts.ElectionTicks) != 0 {
		return
	}
	n.persMu.Lock()
	learners := append([]uint64(nil), n.pers.Learners...)
	n.persMu.Unlock()
	if len(learners) == 0 {
		return
	}
	st := n.rn.Status()
	for _, id := range learners {
		pr, ok := st.Progress[id]
		if !ok || pr.State != tracker.StateReplicate || pr.Match+64 < st.HardState.GetCommit() {
			continue
		}
		cc := &pb.ConfChangeV2{Changes: []*pb.ConfChangeSingle{{Type: pb.ConfChangeType_ConfChangeAddNode.Enum(), NodeId: new(id)}}}
		if err := n.rn.ProposeConfChange(cc); err == nil {
			n.promoting = id
			n.log.Info("cluster: promoting learner to voter", "learner", id, "match", pr.Match, "commit", st.HardState.GetCommit())
		}
		return
	}
}

// changeConf proposes cc (on the leader) and waits until it is applied.
func (n *Node) changeConf(ctx context.Context, typ pb.ConfChangeType, id uint64, cctx confContext) error {
	done := make(chan error, 1)
	var perr error
	err := n.call(ctx, func() {
		if n.soft.RaftState != raft.StateLeader {
			perr = n.notLeader()
			return
		}
		n.confSeq++
		cctx.Request, cctx.Origin = n.confSeq, n.opts.NodeID
		b, _ := json.Marshal(cctx)
		cc := &pb.ConfChangeV2{Changes: []*pb.ConfChangeSingle{{Type: typ.Enum(), NodeId: new(id)}}, Context: b}
		if err := n.rn.ProposeConfChange(cc); err != nil {
			perr = fmt.Errorf("%w: %w", storage.ErrNotLeader, err)
			return
		}
		n.confWait[cctx.Request] = done
	})
	if err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w (the change may still be applied: check the cluster status)", ctx.Err())
	case <-n.done:
		return ErrClosed
	}
}

// AddNode adds node id as a learner (it is promoted to voter once it has
// caught up) and returns what the new node needs to join. Leader only
// (storage.ErrNotLeader elsewhere).
func (n *Node) AddNode(ctx context.Context, id uint64, clusterAddr, url string) (JoinInfo, error) {
	if id == 0 || clusterAddr == "" {
		return JoinInfo{}, fmt.Errorf("%w: a node needs a non-zero id and a cluster address", ErrBadConfig)
	}
	st := n.Status()
	for _, m := range st.Nodes {
		if m.ID == id {
			if m.ClusterAddr != clusterAddr {
				return JoinInfo{}, fmt.Errorf("%w: node %d is already a member at %s", ErrBadConfig, id, m.ClusterAddr)
			}
			return n.joinInfo(), nil // already added: joining again is idempotent
		}
		if m.ClusterAddr == clusterAddr {
			return JoinInfo{}, fmt.Errorf("%w: cluster address %s belongs to node %d", ErrBadConfig, clusterAddr, m.ID)
		}
	}
	if err := n.changeConf(ctx, pb.ConfChangeType_ConfChangeAddLearnerNode, id, confContext{ClusterAddr: clusterAddr, URL: url}); err != nil {
		return JoinInfo{}, err
	}
	return n.joinInfo(), nil
}

// RemoveNode removes node id from the cluster. Leader only.
func (n *Node) RemoveNode(ctx context.Context, id uint64) error {
	st := n.Status()
	if !slices.ContainsFunc(st.Nodes, func(m NodeStatus) bool { return m.ID == id }) {
		return fmt.Errorf("%w: node %d is not a member", ErrBadConfig, id)
	}
	return n.changeConf(ctx, pb.ConfChangeType_ConfChangeRemoveNode, id, confContext{})
}

// JoinInfo is what a member tells a joining node.
type JoinInfo struct {
	ClusterID uint64   `json:"cluster_id"`
	Members   []member `json:"members"`
}

func (n *Node) joinInfo() JoinInfo {
	st := n.Status()
	info := JoinInfo{ClusterID: st.ClusterID}
	for _, m := range st.Nodes {
		info.Members = append(info.Members, member{ID: m.ID, ClusterAddr: m.ClusterAddr, URL: m.URL})
	}
	return info
}

// ReadIndex waits until this node has applied everything committed before
// the call (raft ReadIndex, confirmed by a quorum of heartbeats), so that
// a read that follows is linearizable. It works on followers too. While no
// leader is known it waits for one, as long as ctx allows.
func (n *Node) ReadIndex(ctx context.Context) error {
	r := &readRequest{done: make(chan struct{})}
	if err := n.call(ctx, func() { n.reads.add(n, r) }); err != nil {
		return err
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrClosed
	}
	if r.err != nil {
		return r.err
	}
	return n.store.WaitApplied(ctx, r.index)
}

// readRequest is one ReadIndex caller.
type readRequest struct {
	done  chan struct{}
	index uint64
	err   error
}

// readQueue batches ReadIndex callers: the callers queued while no request
// is in flight share the next one. Raft goroutine only.
//
// A request's context (raft's RequestCtx, echoed in the ReadState) is the
// queue's nonce and the request's sequence number, 16 bytes big-endian.
// The nonce is drawn at Open, so that the leader's late answer to a request
// of this node's previous incarnation, whose index may predate appends
// acknowledged since, never completes a request of this one (sequence
// numbers alone start over at every Open; TestReadIndexAnswerToEarlierIncarnation).
type readQueue struct {
	nonce     uint64
	seq       uint64
	inFlight  []*readRequest
	flightCtx uint64
	flightAge int64
	waiting   []*readRequest
}

func (q *readQueue) add(n *Node, r *readRequest) {
	q.waiting = append(q.waiting, r)
	q.issue(n)
}

func (q *readQueue) issue(n *Node) {
	if len(q.inFlight) > 0 || len(q.waiting) == 0 || n.soft.Lead == raft.None {
		return // without a leader the callers wait (their contexts bound it)
	}
	q.seq++
	q.inFlight, q.waiting = q.waiting, nil
	q.flightCtx, q.flightAge = q.seq, 0
	n.rn.ReadIndex(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, q.nonce), q.seq))
}

func (q *readQueue) resolve(rs raft.ReadState) {
	c := rs.RequestCtx
	if len(c) != 16 || binary.BigEndian.Uint64(c) != q.nonce || binary.BigEndian.Uint64(c[8:]) != q.flightCtx || len(q.inFlight) == 0 {
		return
	}
	for _, r := range q.inFlight {
		r.index = rs.Index
		close(r.done)
	}
	q.inFlight = nil
}

// tick retries a request that got no answer within an election timeout
// (raft drops read requests while leadership changes).
func (q *readQueue) tick(n *Node) {
	if len(q.inFlight) > 0 {
		q.flightAge++
		if q.flightAge > int64(n.opts.ElectionTicks) {
			q.waiting = append(q.inFlight, q.waiting...)
			q.inFlight = nil
		}
	}
	q.issue(n)
}

func (q *readQueue) fail(rs []*readRequest, err error) {
	for _, r := range rs {
		r.err = err
		close(r.done)
	}
}

func (q *readQueue) failAll(err error) {
	q.fail(q.inFlight, err)
	q.fail(q.waiting, err)
	q.inFlight, q.waiting = nil, nil
}

// raftLogger sends raft's log to slog (debug for its chatter).
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) Debug(v ...any)              {}
func (r raftLogger) Debugf(string, ...any)       {}
func (r raftLogger) Info(v ...any)               { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Infof(f string, v ...any)    { r.l.Debug(fmt.Sprintf(f, v...)) }
func (r raftLogger) Warning(v ...any)            { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(f string, v ...any) { r.l.Warn(fmt.Sprintf(f, v...)) }
func (r raftLogger) Error(v ...any)              { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(f string, v ...any)   { r.l.Error(fmt.Sprintf(f, v...)) }
func (r raftLogger) Fatal(v ...any)              { panic(fmt.Sprint(v...)) }
func (r raftLogger) Fatalf(f string, v ...any)   { panic(fmt.Sprintf(f, v...)) }
func (r raftLogger) Panic(v ...any)              { panic(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(f string, v ...any)   { panic(fmt.Sprintf(f, v...)) }
