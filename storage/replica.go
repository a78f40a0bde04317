package storage

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"sync/atomic"
	"time"

	"github.com/badbatch/badbatch/journal"
)

// This file is the store's cluster mode (see "Cluster mode" in doc.go): the
// journal is a replicated log that another component (storage/cluster,
// over etcd raft) writes, and the store proposes ring batches to it and
// applies what it reports committed.

// Replication puts a store in cluster mode. The zero value is not valid;
// a nil *Replication in Options means standalone.
type Replication struct {
	// Commit is the highest log index known to be committed when Open is
	// called (raft's HardState.Commit). Recovery applies no entry past
	// min(Commit, the journal's last index); later commits arrive through
	// Store.Commit.
	Commit uint64
	// SnapshotIndex is the index of the newest snapshot that the
	// consensus module's durable state records as installed (raft's
	// compaction point) when Open is called. Open finishes installing a
	// staged snapshot that SealSnapshot sealed at or below it, and removes
	// one sealed above it: the consensus module's durable record is the
	// installation's commit point.
	SnapshotIndex uint64
	// Proposer receives one Proposal per ring batch, from the proposing
	// processor's goroutine.
	Proposer Proposer
	// MaxInFlightBytes bounds the payload bytes proposed and not yet
	// applied; the proposing processor waits (and the ring fills, and
	// producers block) beyond it. 0 means 64 MiB.
	MaxInFlightBytes int64
	// MaxEntryBytes bounds one proposal's payload: the largest entry the
	// replicated log can carry to the other nodes. The proposing processor
	// packs a ring batch into proposals up to it and fails a single group
	// larger than it with ErrBatchTooLarge. 0 means the journal's
	// MaxEntrySize; a larger value is lowered to it.
	MaxEntryBytes int64
}

// Proposer is the consensus module's intake. Propose is called on the
// store's proposing goroutine, one ring batch at a time, in ring order. It
// may block (back pressure) but must eventually answer every proposal
// exactly once through Store.Proposed or Store.Refuse, from any goroutine.
type Proposer interface {
	Propose(p *Proposal)
}

// Proposal is one ring batch on its way through consensus: the payload of
// one log entry (concatenated journal groups) and the appends waiting for
// it. It is owned by the consensus module from Propose until it answers.
type Proposal struct {
	// payload is the entry's bytes until the log took its own copy
	// (Proposed or Refuse), then back in the store's buffer pool.
	payload []byte
	size    int             // len(payload)
	sum     uint32          // CRC-32C of payload, to check the committed entry that matches it
	groups  []*AppendFuture // one per group of payload, in order
	decs    []decision      // filled by the apply goroutine
	term    uint64          // set by Proposed
}

// Payload returns the entry payload to replicate: journal groups, back to
// back (journal.KindGroups). It is valid until Proposed or Refuse is
// called with p (the store reuses the memory); the caller must not modify
// it.
func (p *Proposal) Payload() []byte { return p.payload }

// defaultMaxInFlightBytes is Replication.MaxInFlightBytes' default.
const defaultMaxInFlightBytes = 64 << 20

// replica is the cluster-mode state of a Store.
type replica struct {
	s        *Store
	proposer Proposer
	maxBytes int64

	commit  atomic.Uint64 // highest committed index reported by the log
	applied atomic.Uint64 // highest index the business logic has applied

	// kick wakes the apply goroutine; room wakes a proposer waiting for
	// in-flight bytes.
	kick chan struct{}
	room chan struct{}
	// buffers are payload buffers the log has copied, for reuse.
	buffers chan []byte
	stop    chan struct{} // closed by stopReplica: the store is closing
	halt    chan struct{} // closed by pause: the apply goroutine returns
	wg      sync.WaitGroup

	// mu guards pending and inFlight.
	mu struct {
		sync.Mutex
		// pending are the proposals the log accepted, in proposal order;
		// their terms never decrease.
		pending  []*Proposal
		inFlight int64 // payload bytes proposed and not yet answered
		closed   bool
	}

	// queue holds committed entries handed over with CommitEntries, in
	// index order, until the apply goroutine takes them.
	queue struct {
		sync.Mutex
		ents []CommittedEntry
	}

	// Apply-goroutine state.
	bp   *businessProcessor // flush bookkeeping and the group reader
	done []*Proposal        // matched in the current round, completed after commit
	decs []decision         // the current entry's decisions
}

// Journal returns the store's journal. In cluster mode the consensus
// module is its only writer (WriteEntry, TruncateBack, Sync); standalone,
// the store's pipeline is, and callers must only read.
func (s *Store) Journal() *journal.Journal { return s.j }

// Proposed reports that the log accepted p as the leader of term: p will
// commit as the next entry of that term that carries groups, or never.
// Every later entry of a higher term that the store applies proves it
// never will (log matching), and fails it with ErrNotCommitted.
func (s *Store) Proposed(p *Proposal, term uint64) {
	r := s.rep
	p.term = term
	r.recycle(p)
	r.mu.Lock()
	if r.mu.closed {
		r.mu.Unlock()
		s.answer(p, fmt.Errorf("%w: outcome unknown", ErrClosed))
		return
	}
	r.mu.pending = append(r.mu.pending, p)
	r.mu.Unlock()
}

// Refuse answers p with err: the log did not take it (for example
// ErrNotLeader), so nothing of it will be stored.
func (s *Store) Refuse(p *Proposal, err error) {
	s.rep.recycle(p)
	s.answer(p, err)
}

// recycle puts p's payload buffer back in the pool: the log holds its own
// copy now (raft copies a proposal's data).
func (r *replica) recycle(p *Proposal) {
	if b := p.payload; b != nil && cap(b) <= maxRetainedSlotBuffer*8 {
		select {
		case r.buffers <- b[:0]:
		default:
		}
	}
	p.payload = nil
}

// Commit reports that every log entry up to index is committed and
// persisted in the local journal. The apply goroutine applies them in
// order. Commit never blocks; a lower index than before is ignored.
func (s *Store) Commit(index uint64) {
	r := s.rep
	for {
		c := r.commit.Load()
		if index <= c || r.commit.CompareAndSwap(c, index) {
			break
		}
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// CommittedEntry is one committed log entry as the consensus module hands
// it over (raft's committed entries carry their data).
type CommittedEntry struct {
	Index, Term uint64
	Kind        journal.EntryKind
	// Payload is the entry's data. The store keeps it until the entry is
	// applied; the caller must not modify it.
	Payload []byte
}

// CommitEntries is Commit with the committed entries' contents, so that
// the apply goroutine applies them without reading them back from the
// journal. ents must be consecutive and persisted in the local journal;
// the commit index becomes the last one's. Entries the store already
// applied are ignored.
func (s *Store) CommitEntries(ents []CommittedEntry) {
	if len(ents) == 0 {
		return
	}
	r := s.rep
	r.queue.Lock()
	if n := len(r.queue.ents); n > 0 && r.queue.ents[n-1].Index+1 != ents[0].Index {
		clear(r.queue.ents) // not consecutive: the journal serves the gap
		r.queue.ents = r.queue.ents[:0]
	}
	r.queue.ents = append(r.queue.ents, ents...)
	r.queue.Unlock()
	s.Commit(ents[len(ents)-1].Index)
}

// queued returns the handed-over entry at index, dropping older ones.
func (r *replica) queued(index uint64) (CommittedEntry, bool) {
	r.queue.Lock()
	defer r.queue.Unlock()
	q := r.queue.ents
	n := 0
	for n < len(q) && q[n].Index < index {
		n++
	}
	if n > 0 {
		clear(q[:n])
		q = q[n:]
		r.queue.ents = q
	}
	if len(q) == 0 || q[0].Index != index {
		return CommittedEntry{}, false
	}
	e := q[0]
	q[0] = CommittedEntry{}
	r.queue.ents = q[1:]
	if len(r.queue.ents) == 0 {
		r.queue.ents = r.queue.ents[:0:0]
	}
	return e, true
}

// AppliedIndex returns the highest log index the business logic has
// applied (cluster mode; standalone it is 0).
func (s *Store) AppliedIndex() uint64 {
	if s.rep == nil {
		return 0
	}
	return s.rep.applied.Load()
}

// WaitApplied blocks until the business logic has applied index (so that a
// read sees every entry up to it), ctx ends, or the store closes.
func (s *Store) WaitApplied(ctx context.Context, index uint64) error {
	if s.rep == nil {
		return nil
	}
	return s.waitFor(ctx, func() bool { return s.rep.applied.Load() >= index })
}

// answer completes every append of p with err and releases its bytes.
func (s *Store) answer(p *Proposal, err error) {
	for _, f := range p.groups {
		if s.metrics != nil {
			s.metrics.ObserveAppend(0, f.records, err)
		}
		f.complete(AppendResult{}, err)
	}
	s.rep.release(int64(p.size))
}

func (r *replica) release(n int64) {
	r.mu.Lock()
	r.mu.inFlight -= n
	r.mu.Unlock()
	select {
	case r.room <- struct{}{}:
	default:
	}
}

// reserve waits until n more payload bytes may be in flight. It returns
// false once the store is closing.
func (r *replica) reserve(n int64) bool {
	for {
		r.mu.Lock()
		if r.mu.inFlight == 0 || r.mu.inFlight+n <= r.maxBytes {
			r.mu.inFlight += n
			r.mu.Unlock()
			return true
		}
		r.mu.Unlock()
		select {
		case <-r.room:
		case <-r.stop:
			return false
		}
	}
}

// proposingProcessor is the ring's only consumer in cluster mode: it turns
// each ring batch into one Proposal (several if the batch exceeds the
// journal's entry size limit) and hands it to the Proposer. The payload is
// copied out of the slots, so the ring moves on at once.
// proposalTarget closes a proposal once it holds this many bytes, even in
// the middle of a ring batch: smaller entries let the leader's fsync, the
// followers' appends and the apply overlap instead of running one after
// another on one large entry. Measured (decision 0012): 3-node
// BenchmarkClusterAppend median 1.06M records/s against 0.95M with whole
// ring batches, alternating runs on this 2-core machine.
const proposalTarget = 256 << 10

type proposingProcessor struct {
	s   *Store
	max int64
	cur *Proposal
}

func (p *proposingProcessor) OnEvent(sl *slot, _ int64, endOfBatch bool) error {
	f := sl.future
	sl.future = nil
	n := int64(len(sl.buf))
	switch {
	case n > p.max:
		f.complete(AppendResult{}, fmt.Errorf("%w: group of %d bytes exceeds the entry size limit %d", ErrBatchTooLarge, n, p.max))
	default:
		if p.cur != nil && (int64(len(p.cur.payload))+n > p.max || int64(len(p.cur.payload)) >= proposalTarget) {
			p.flush()
		}
		if p.cur == nil {
			p.cur = &Proposal{}
			select {
			case p.cur.payload = <-p.s.rep.buffers:
			default:
			}
		}
		p.cur.payload = append(p.cur.payload, sl.buf...)
		p.cur.groups = append(p.cur.groups, f)
	}
	if b := sl.buf; b != nil && cap(b) <= maxRetainedSlotBuffer {
		p.s.slotBufs.put(b[:0])
	}
	sl.buf = nil
	if endOfBatch {
		p.flush()
	}
	return nil
}

func (p *proposingProcessor) flush() {
	prop := p.cur
	p.cur = nil
	if prop == nil {
		return
	}
	s := p.s
	prop.size = len(prop.payload)
	prop.sum = crc32.Checksum(prop.payload, crcTable)
	if err := s.Err(); err != nil {
		s.rep.mu.Lock()
		s.rep.mu.inFlight += int64(prop.size)
		s.rep.mu.Unlock()
		s.Refuse(prop, err)
		return
	}
	if !s.rep.reserve(int64(prop.size)) {
		s.rep.mu.Lock()
		s.rep.mu.inFlight += int64(prop.size)
		s.rep.mu.Unlock()
		s.Refuse(prop, ErrClosed)
		return
	}
	s.rep.proposer.Propose(prop)
}

// startReplica builds the cluster-mode pipeline:
//
//	ring -> proposing processor -> Proposer ... Store.Commit -> apply goroutine
func (s *Store) startReplica() error {
	d, err := s.newRing()
	if err != nil {
		return err
	}
	s.d = d
	r := s.rep
	max := s.journalOptions().MaxEntrySize
	if m := s.opts.Replication.MaxEntryBytes; m > 0 && m < max {
		max = m
	}
	d.HandleEventsWith(&proposingProcessor{s: s, max: max})
	if err := d.Start(); err != nil {
		return fmt.Errorf("storage: start pipeline: %w", err)
	}
	r.resume()
	return nil
}

// pause stops the apply goroutine (and waits for its index flush).
func (r *replica) pause() {
	if r.halt == nil {
		return
	}
	close(r.halt)
	r.halt = nil
	r.wg.Wait()
	r.bp.stop()
}

// resume starts the apply goroutine.
func (r *replica) resume() {
	r.halt = make(chan struct{})
	r.bp = newBusinessProcessor(r.s)
	halt := r.halt
	r.wg.Go(func() { r.run(halt) })
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// stopReplica stops the apply goroutine and fails what is still pending.
// REQUIRES: the ring is drained (no more proposals).
func (r *replica) stopReplica() {
	close(r.stop)
	r.pause()
	r.mu.Lock()
	r.mu.closed = true
	pending := r.mu.pending
	r.mu.pending = nil
	r.mu.Unlock()
	for _, p := range pending {
		r.s.answer(p, fmt.Errorf("%w: outcome unknown", ErrClosed))
	}
}

// applyRound is the most entries one round applies before it commits an
// index batch and answers producers.
const applyRound = 256

// run is the apply goroutine: the business logic of cluster mode.
func (r *replica) run(halt chan struct{}) {
	for {
		select {
		case <-r.kick:
		case <-halt:
			return
		}
		for r.applied.Load() < r.commit.Load() && r.s.failure.Load() == nil {
			select {
			case <-halt:
				return
			default:
			}
			if err := r.round(); err != nil {
				r.s.fail(err)
			}
		}
	}
}

// round applies the committed entries after the applied index (at most
// applyRound of them) as one index batch, then answers the proposals they
// carried and wakes readers.
func (r *replica) round() error {
	s := r.s
	from := r.applied.Load() + 1
	to := min(r.commit.Load(), from+applyRound-1)
	var err error
	var je journal.Entry
	for idx := from; idx <= to && err == nil; idx++ {
		if e, ok := r.queued(idx); ok {
			// The records' seqs continue the applied position: the journal
			// numbers them the same way (previous first seq + records).
			je = journal.Entry{EntryInfo: journal.EntryInfo{Index: e.Index, Term: e.Term, Kind: e.Kind, FirstSeq: s.app.pos.Seq}, Payload: e.Payload}
			err = r.entry(&je)
			continue
		}
		rerr := s.j.Read(idx, func(e *journal.Entry) error {
			err = r.entry(e)
			return nil
		})
		if rerr != nil && err == nil {
			err = fmt.Errorf("storage: apply: read entry %d (committed up to %d): %w", idx, to, rerr)
		}
	}
	if err == nil {
		// The journal numbered the records too: check that it agrees with
		// the seqs the handed-over entries were given.
		if info, ierr := s.j.Info(to); ierr == nil && info.FirstSeq+uint64(info.Records) != s.app.pos.Seq {
			err = fmt.Errorf("%w: entry %d ends at seq %d in the journal, %d in the index", errPositionMismatch, to, info.FirstSeq+uint64(info.Records), s.app.pos.Seq)
		}
	}
	if err == nil {
		err = s.app.finish()
	}
	if err != nil {
		for _, p := range r.done {
			s.answer(p, fmt.Errorf("%w: %w", ErrUnavailable, err))
		}
		r.done = r.done[:0]
		return err
	}
	r.applied.Store(s.app.pos.Entry - 1)
	durability := durabilityOf(s.opts.SyncPolicy)
	records := 0
	for _, p := range r.done {
		for i, f := range p.groups {
			records += s.completeAppend(f, p.decs[i], nil, durability)
		}
		r.release(int64(p.size))
	}
	clear(r.done)
	r.done = r.done[:0]
	s.stats.batches.Add(1)
	s.wake()
	r.bp.maybeFlush()
	return nil
}

// entry applies one committed entry and matches it against the pending
// proposals. REQUIRES: the apply goroutine; e is the entry at
// s.app.pos.Entry.
func (r *replica) entry(e *journal.Entry) error {
	s := r.s
	app := s.app
	if e.Index != app.pos.Entry {
		return fmt.Errorf("%w: entry %d after position (entry %d)", errPositionMismatch, e.Index, app.pos.Entry)
	}
	r.expire(e.Term)
	var p *Proposal
	if e.Kind == journal.KindGroups && len(e.Payload) > 0 {
		p = r.match(e)
		r.decs = r.decs[:0]
		gr := &r.bp.gr
		gr.Reset(e.Payload, e.FirstSeq)
		var h groupHeader
		for gr.Next() {
			g := gr.Group()
			headerOf(&h, g, e.Index, uint32(g.Ordinal), uint32(g.Offset))
			d, err := app.apply(&h, &r.bp.src)
			if err != nil {
				return err
			}
			r.decs = append(r.decs, d)
			app.appliedBytes += int64(g.Size)
		}
		if err := gr.Err(); err != nil {
			return err
		}
		if len(s.opts.Handlers) > 0 {
			if err := app.finish(); err != nil {
				return err
			}
			rp := replayer{s: s, decs: r.decs}
			rp.handlers(e, 0)
		}
		if p != nil {
			p.decs = append(p.decs[:0], r.decs...)
		}
	}
	app.endEntry(e.Index)
	if p != nil {
		r.done = append(r.done, p)
	}
	return nil
}

// expire fails the pending proposals of terms below term: an applied entry
// of a higher term proves they were never committed.
func (r *replica) expire(term uint64) {
	r.mu.Lock()
	n := 0
	for n < len(r.mu.pending) && r.mu.pending[n].term < term {
		n++
	}
	if n == 0 {
		r.mu.Unlock()
		return
	}
	dead := append([]*Proposal(nil), r.mu.pending[:n]...)
	r.mu.pending = append(r.mu.pending[:0], r.mu.pending[n:]...)
	r.mu.Unlock()
	for _, p := range dead {
		r.s.answer(p, ErrNotCommitted)
	}
}

// match pops the pending proposal that e carries, if e is one of this
// node's: within one term only its leader creates entries with groups, in
// the order it proposed them (the consensus module must not forward
// proposals), and a committed entry of term T is preceded by every earlier
// entry of T.
func (r *replica) match(e *journal.Entry) *Proposal {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.mu.pending) == 0 || r.mu.pending[0].term != e.Term {
		return nil
	}
	p := r.mu.pending[0]
	r.mu.pending[0] = nil
	r.mu.pending = r.mu.pending[1:]
	if p.size != len(e.Payload) || p.sum != crc32.Checksum(e.Payload, crcTable) {
		// A broken invariant of the consensus module: do not guess.
		r.s.log.Error("storage: committed entry does not carry the proposal expected next; failing it",
			"index", e.Index, "term", e.Term)
		go r.s.answer(p, fmt.Errorf("%w: proposal lost track of (entry %d)", ErrUnavailable, e.Index))
		return nil
	}
	return p
}

// completeAppend completes one append future from its decision and
// returns the records it stored.
func (s *Store) completeAppend(f *AppendFuture, dec decision, err error, durability string) int {
	var res AppendResult
	stored := 0
	switch {
	case errors.Is(err, ErrBatchTooLarge):
	case err != nil:
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	case dec.Outcome == outcomeRejected && dec.Reject != 0:
		s.stats.rejected.Add(1)
		err = lifecycleError(f.stream, &dec)
	case dec.Outcome == outcomeRejected:
		s.stats.rejected.Add(1)
		err = &OffsetMismatchError{Stream: f.stream, Expected: dec.Expected, Current: dec.Current}
	case dec.Outcome == outcomeCursor, dec.Outcome == outcomeCommand:
		res = AppendResult{Stream: f.stream, Durability: durability, ProducerSeq: dec.Seq}
	case dec.Count == 0: // a create that found the stream as configured, or a repeated close
		res = AppendResult{Stream: f.stream, Durability: durability, Replayed: true, ProducerSeq: dec.Seq}
	default:
		res = AppendResult{
			Stream:      f.stream,
			FirstOffset: dec.FirstOffset,
			LastOffset:  dec.FirstOffset + uint64(dec.Count) - 1,
			Count:       dec.Count,
			FirstSeq:    dec.FirstSeq,
			LastSeq:     dec.FirstSeq + uint64(dec.Count) - 1,
			Replayed:    dec.Outcome == outcomeDuplicate,
			Durability:  durability,
			ProducerSeq: dec.Seq,
		}
		if res.Replayed {
			s.stats.duplicates.Add(1)
		} else {
			stored = dec.Count
			s.stats.records.Add(uint64(dec.Count))
			s.stats.bytes.Add(dec.Bytes)
		}
		s.stats.appends.Add(1)
	}
	if s.metrics != nil {
		s.metrics.ObserveAppend(time.Since(f.start), f.records, err)
	}
	f.complete(res, err)
	return stored
}
