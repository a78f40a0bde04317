package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/badbatch/badbatch/journal"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// raftLog is raft.Storage over the store's journal: the journal IS raft's
// log, one journal entry per raft entry with the same index and term.
// Normal entries are stored as journal.KindGroups (their data is the
// groups of one ring batch, or empty); configuration changes as
// journal.KindConfChange, always in the ConfChangeV2 encoding (a V1 change
// is converted when written, the same way on every node).
//
// Raft's view of the log starts after the compaction point (SnapIndex in
// the state file): entries at or below it are reported compacted, and
// Term(SnapIndex) comes from the state file, so that it survives the
// journal's retention. The journal keeps more than raft sees: retention is
// held at or below the compaction point (Store.SetRetentionFloor).
//
// Safe for concurrent use: raft calls it on the raft goroutine, and the
// snapshot sender reads the descriptor from transport goroutines. The raft
// goroutine is the only writer.
type raftLog struct {
	mu struct {
		sync.RWMutex
		j         *journal.Journal
		hs        *pb.HardState
		cs        *pb.ConfState
		snapIndex uint64
		snapTerm  uint64
		// confs is the configuration history (index and state), oldest
		// first, so that a snapshot at index i carries the configuration
		// in force at i.
		confs []confAt
		// data is the snapshot descriptor's Data: the membership.
		data []byte
		// last is the last index raft may see. The journal can hold
		// more: after a snapshot whose body ran past its index (the
		// sender's index checkpoint had applied further), the entries
		// beyond it stay hidden from raft, which believes its log ends
		// at the snapshot, until raft appends them again (append skips
		// those it already holds, by term).
		last uint64
	}
	cache entryCache
	// applied is the store's applied index (Snapshot's index).
	applied func() uint64
}

type confAt struct {
	index uint64
	cs    *pb.ConfState
}

var _ raft.Storage = (*raftLog)(nil)

func newRaftLog(j *journal.Journal, p *persistent, applied func() uint64) *raftLog {
	l := &raftLog{applied: applied}
	l.mu.j = j
	l.mu.hs = &pb.HardState{Term: new(p.Term), Vote: new(p.Vote), Commit: new(p.Commit)}
	l.mu.cs = confStateOf(p)
	l.mu.snapIndex, l.mu.snapTerm = p.SnapIndex, p.SnapTerm
	l.mu.confs = []confAt{{index: p.ConfIndex, cs: l.mu.cs}}
	l.mu.data = descriptorData(p.ClusterID, p.Members)
	l.mu.last = j.LastIndex()
	l.cache.init(cacheMaxBytes)
	return l
}

func confStateOf(p *persistent) *pb.ConfState {
	return &pb.ConfState{
		Voters:         append([]uint64(nil), p.Voters...),
		Learners:       append([]uint64(nil), p.Learners...),
		VotersOutgoing: append([]uint64(nil), p.VotersOutgoing...),
		LearnersNext:   append([]uint64(nil), p.LearnersNext...),
		AutoLeave:      new(p.AutoLeave),
	}
}

// InitialState implements raft.Storage.
func (l *raftLog) InitialState() (*pb.HardState, *pb.ConfState, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return proto.Clone(l.mu.hs).(*pb.HardState), proto.Clone(l.mu.cs).(*pb.ConfState), nil
}

// FirstIndex implements raft.Storage.
func (l *raftLog) FirstIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.firstLocked(), nil
}

func (l *raftLog) firstLocked() uint64 {
	return max(l.mu.snapIndex+1, l.mu.j.FirstIndex())
}

// LastIndex implements raft.Storage.
func (l *raftLog) LastIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.lastLocked(), nil
}

func (l *raftLog) lastLocked() uint64 {
	last := min(l.mu.last, l.mu.j.LastIndex())
	if last < l.mu.j.FirstIndex() { // empty journal
		return l.mu.snapIndex
	}
	return max(last, l.mu.snapIndex)
}

// Term implements raft.Storage.
func (l *raftLog) Term(i uint64) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	switch {
	case i == l.mu.snapIndex:
		return l.mu.snapTerm, nil
	case i < l.mu.snapIndex:
		return 0, raft.ErrCompacted
	case i > l.lastLocked():
		return 0, raft.ErrUnavailable
	}
	if e := l.cache.get(i); e != nil {
		return e.GetTerm(), nil
	}
	t, err := l.mu.j.Term(i)
	if err != nil {
		if i < l.mu.j.FirstIndex() {
			return 0, raft.ErrCompacted
		}
		return 0, fmt.Errorf("cluster: term of entry %d: %w", i, err)
	}
	return t, nil
}

// Entries implements raft.Storage: [lo, hi), at least one entry, at most
// maxSize bytes of data beyond the first.
func (l *raftLog) Entries(lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if lo < l.firstLocked() {
		return nil, raft.ErrCompacted
	}
	if hi > l.lastLocked()+1 {
		return nil, fmt.Errorf("cluster: entries [%d, %d) beyond the last index %d: %w", lo, hi, l.lastLocked(), raft.ErrUnavailable)
	}
	var out []*pb.Entry
	var size uint64
	for i := lo; i < hi; i++ {
		e := l.cache.get(i)
		if e == nil {
			var err error
			if e, err = readEntry(l.mu.j, i); err != nil {
				return nil, err
			}
		}
		size += uint64(len(e.GetData()))
		if len(out) > 0 && size > maxSize {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

// readEntry reads journal entry i as a raft entry (a copy).
func readEntry(j *journal.Journal, i uint64) (*pb.Entry, error) {
	var e *pb.Entry
	err := j.Read(i, func(je *journal.Entry) error {
		typ := pb.EntryType_EntryNormal
		if je.Kind == journal.KindConfChange {
			typ = pb.EntryType_EntryConfChangeV2
		}
		e = &pb.Entry{Term: new(je.Term), Index: new(je.Index), Type: typ.Enum()}
		if len(je.Payload) > 0 {
			e.Data = append([]byte(nil), je.Payload...)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, journal.ErrOutOfRange) || errors.Is(err, journal.ErrTruncated) {
			return nil, raft.ErrUnavailable
		}
		return nil, fmt.Errorf("cluster: read entry %d: %w", i, err)
	}
	return e, nil
}

// Snapshot implements raft.Storage. The descriptor names the store's
// applied index (at or above the compaction point, so that it carries
// every applied configuration change, the receiver's own admission
// included) with the configuration in force there; the body (an index
// checkpoint and the journal up to that index) is streamed by the
// transport from the store when the leader sends it (snapshot.go).
func (l *raftLog) Snapshot() (*pb.Snapshot, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	idx := max(l.applied(), l.mu.snapIndex)
	if idx == 0 {
		// Nothing applied yet: raft asks only after a failed read of the
		// log (the follower is sent entries once it answers again).
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	term := l.mu.snapTerm
	if idx != l.mu.snapIndex {
		t, err := l.mu.j.Term(idx)
		if err != nil {
			return nil, raft.ErrSnapshotTemporarilyUnavailable
		}
		term = t
	}
	cs := l.confAtLocked(idx)
	return &pb.Snapshot{Data: l.mu.data, Metadata: &pb.SnapshotMetadata{
		Index:     new(idx),
		Term:      new(term),
		ConfState: proto.Clone(cs).(*pb.ConfState),
	}}, nil
}

// confAtLocked returns the configuration in force at index i.
func (l *raftLog) confAtLocked(i uint64) *pb.ConfState {
	cs := l.mu.confs[0].cs
	for _, c := range l.mu.confs {
		if c.index <= i {
			cs = c.cs
		}
	}
	return cs
}

// append persists entries (not synced): a suffix replacing whatever the
// journal holds from the first entry's index on. REQUIRES: raft goroutine.
func (l *raftLog) append(ents []*pb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	j := l.mu.j
	for _, e := range ents {
		idx := e.GetIndex()
		if idx <= j.LastIndex() && idx >= j.FirstIndex() {
			if t, err := j.Term(idx); err == nil && t == e.GetTerm() {
				// Already held (same index and term: the same entry).
				continue
			}
			if err := j.TruncateBack(idx - 1); err != nil {
				return fmt.Errorf("cluster: truncate the log after %d: %w", idx-1, err)
			}
			l.cache.truncate(idx)
		}
		kind, data, err := entryPayload(e)
		if err != nil {
			return err
		}
		if _, err := j.WriteEntry(e.GetIndex(), e.GetTerm(), kind, data); err != nil {
			return fmt.Errorf("cluster: write entry %d: %w", e.GetIndex(), err)
		}
		if kind == journal.KindConfChange && e.GetType() != pb.EntryType_EntryConfChangeV2 {
			e = &pb.Entry{Term: e.Term, Index: e.Index, Type: pb.EntryType_EntryConfChangeV2.Enum(), Data: data}
		}
		l.cache.add(e)
	}
	l.mu.last = ents[len(ents)-1].GetIndex()
	return nil
}

// entryPayload maps a raft entry to a journal kind and payload.
func entryPayload(e *pb.Entry) (journal.EntryKind, []byte, error) {
	switch e.GetType() {
	case pb.EntryType_EntryNormal:
		return journal.KindGroups, e.GetData(), nil
	case pb.EntryType_EntryConfChangeV2:
		return journal.KindConfChange, e.GetData(), nil
	case pb.EntryType_EntryConfChange:
		var cc pb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return 0, nil, fmt.Errorf("cluster: entry %d: decode conf change: %w", e.GetIndex(), err)
		}
		data, err := proto.Marshal(cc.AsV2())
		if err != nil {
			return 0, nil, fmt.Errorf("cluster: entry %d: encode conf change: %w", e.GetIndex(), err)
		}
		return journal.KindConfChange, data, nil
	default:
		return 0, nil, fmt.Errorf("cluster: entry %d: unknown entry type %v", e.GetIndex(), e.GetType())
	}
}

// setHardState records hs (the caller persists it).
func (l *raftLog) setHardState(hs *pb.HardState) {
	l.mu.Lock()
	l.mu.hs = proto.Clone(hs).(*pb.HardState)
	l.mu.Unlock()
}

func descriptorData(clusterID uint64, members []member) []byte {
	b, _ := json.Marshal(snapshotData{ClusterID: clusterID, Members: members})
	return b
}

// setConfState records the configuration produced by the entry at index,
// and the membership's addresses.
func (l *raftLog) setConfState(index uint64, cs *pb.ConfState, clusterID uint64, members []member) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.data = descriptorData(clusterID, members)
	l.mu.cs = proto.Clone(cs).(*pb.ConfState)
	l.mu.confs = append(l.mu.confs, confAt{index: index, cs: l.mu.cs})
}

// compact moves raft's compaction point to index (whose term is term) and
// forgets the configuration history it no longer needs.
func (l *raftLog) compact(index, term uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if index <= l.mu.snapIndex {
		return
	}
	l.mu.snapIndex, l.mu.snapTerm = index, term
	keep := 0
	for k, c := range l.mu.confs {
		if c.index <= index {
			keep = k
		}
	}
	l.mu.confs = l.mu.confs[keep:]
}

// reset points the log at a new journal after a snapshot was installed:
// the compaction point is the snapshot's.
func (l *raftLog) reset(j *journal.Journal, snap *pb.SnapshotMetadata, clusterID uint64, members []member) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.data = descriptorData(clusterID, members)
	l.mu.j = j
	l.mu.snapIndex, l.mu.snapTerm = snap.GetIndex(), snap.GetTerm()
	l.mu.last = snap.GetIndex()
	l.mu.cs = proto.Clone(snap.GetConfState()).(*pb.ConfState)
	l.mu.confs = []confAt{{index: snap.GetIndex(), cs: l.mu.cs}}
	l.cache.truncate(0)
}

// entryCache keeps the most recently written entries so that raft's reads
// of them (MsgApp to followers, committed entries) do not go to the
// journal. Guarded by raftLog.mu (writes under the write lock, reads under
// the read lock; the cache itself is only mutated under the write lock).
type entryCache struct {
	ents     []*pb.Entry // contiguous indexes, oldest first
	bytes    int
	maxBytes int
}

const cacheMaxBytes = 32 << 20

func (c *entryCache) init(maxBytes int) { c.maxBytes = maxBytes }

func (c *entryCache) get(i uint64) *pb.Entry {
	if len(c.ents) == 0 {
		return nil
	}
	first := c.ents[0].GetIndex()
	if i < first || i >= first+uint64(len(c.ents)) {
		return nil
	}
	return c.ents[i-first]
}

func (c *entryCache) add(e *pb.Entry) {
	if n := len(c.ents); n > 0 && c.ents[n-1].GetIndex()+1 != e.GetIndex() {
		c.truncate(0)
	}
	c.ents = append(c.ents, e)
	c.bytes += len(e.GetData())
	for c.bytes > c.maxBytes && len(c.ents) > 1 {
		c.bytes -= len(c.ents[0].GetData())
		c.ents[0] = nil
		c.ents = c.ents[1:]
	}
}

// truncate drops the cached entries at or after index (all for 0).
func (c *entryCache) truncate(index uint64) {
	for n := len(c.ents); n > 0 && (index == 0 || c.ents[n-1].GetIndex() >= index); n = len(c.ents) {
		c.bytes -= len(c.ents[n-1].GetData())
		c.ents[n-1] = nil
		c.ents = c.ents[:n-1]
	}
}
