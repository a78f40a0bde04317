package storage

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/badbatch/badbatch/journal"
)

// errIndexUnrecoverable is returned by Open when the index must be rebuilt
// from the journal but the journal no longer starts at its first entry.
var errIndexUnrecoverable = errors.New("storage: index must be rebuilt but the journal's head was removed by retention")

// recover brings the index up to the journal's end: it re-runs the
// business logic over every group after the index's applied position. If
// the index is ahead of the journal (possible only under a weak sync
// policy, when the journal lost unsynced entries the index had applied and
// flushed), it deletes the index and rebuilds it from the whole journal.
func (s *Store) recover() error {
	start := time.Now()
	pos := s.app.pos
	first, last, next := s.j.FirstIndex(), s.j.LastIndex(), s.j.NextSeq()
	if rep := s.j.RepairReport(); rep.Truncated {
		s.log.Warn("storage: journal tail repaired", "segment", rep.Segment, "offset", rep.Offset,
			"bytes", rep.Bytes, "entries", rep.Entries, "reason", rep.Reason)
	}
	if s.rep != nil {
		// Cluster mode: apply nothing past the known commit index (the
		// journal's tail may hold entries a new leader will replace).
		last = min(last, s.opts.Replication.Commit)
	}
	ahead := pos.Seq > next || (pos.Entry > last && pos.Seq > 0)
	if s.rep != nil {
		// pos.Entry is the next entry to apply (see applier.endEntry).
		ahead = pos.Seq > next || pos.Entry > s.j.LastIndex()+1
	}
	if ahead {
		s.log.Warn("storage: index is ahead of the journal; rebuilding it from the journal",
			"index_entry", pos.Entry, "index_seq", pos.Seq, "journal_last_entry", last, "journal_next_seq", next)
		if err := s.rebuildIndex(); err != nil {
			return err
		}
		pos = s.app.pos
	}
	if pos.Seq == 0 && pos.Entry < first {
		// An empty index (new, or deleted by the operator) over a journal
		// that starts after entry 1 cannot be rebuilt.
		if first > 1 && last >= first {
			return fmt.Errorf("%w: journal starts at entry %d", errIndexUnrecoverable, first)
		}
		s.app.pos.Entry = first
		pos = s.app.pos
	}
	if pos.Entry < first && last >= first {
		return fmt.Errorf("%w: index applied up to entry %d, journal starts at %d", errIndexUnrecoverable, pos.Entry, first)
	}
	r := replayer{s: s, cluster: s.rep != nil}
	replayStart := time.Now()
	if err := r.run(pos, last); err != nil {
		return fmt.Errorf("storage: recovery: %w", err)
	}
	replayed := time.Since(replayStart)
	if r.entries > 0 {
		if err := s.x.db.Flush(); err != nil {
			return fmt.Errorf("storage: flush index after recovery: %w", err)
		}
		s.app.appliedBytes = 0
		s.log.Info("storage: index caught up with the journal", "entries", r.entries, "groups", r.groups,
			"bytes", r.bytes, "from_entry", pos.Entry, "to_entry", last, "took", time.Since(start))
	}
	s.durableEntry.Store(s.app.pos.Entry)
	if s.rep != nil {
		s.rep.applied.Store(s.app.pos.Entry - 1)
		s.rep.commit.Store(s.app.pos.Entry - 1)
	}
	if first > 1 {
		// Retention removed the journal's head: derive the streams'
		// first retained offsets.
		if err := s.trimIndex(first); err != nil {
			return fmt.Errorf("storage: recovery: %w", err)
		}
	}
	s.recovery.Store(&RecoveryStats{Entries: r.entries, Groups: r.groups, Bytes: r.bytes, Took: time.Since(start), Replay: replayed, Rebuilt: ahead})
	return nil
}

// RecoveryStats describes what the last recovery (Open, or in cluster mode
// a snapshot install) re-applied from the journal to bring the index up to
// its end.
type RecoveryStats struct {
	// Entries, Groups and Bytes are the journal entries, groups and
	// bytes re-applied.
	Entries, Groups, Bytes int64
	// Took is the whole recovery; Replay the part spent re-applying.
	Took, Replay time.Duration
	// Rebuilt reports that the index was ahead of the journal (a weak
	// sync policy lost unsynced entries) and was rebuilt from it.
	Rebuilt bool
}

func (s *Store) rebuildIndex() error {
	if err := s.removeIndex(); err != nil {
		return err
	}
	s.stateMu.Lock()
	s.app = nil
	s.stateMu.Unlock()
	return s.openIndex()
}

// replayer re-applies journal entries at Open.
type replayer struct {
	s       *Store
	cluster bool // cluster mode: entries of other kinds, and applier.endEntry
	gr      journal.GroupReader
	src     readerSource
	decs    []decision
	entries int64
	groups  int64
	bytes   int64
	// unbatched is the payload applied since the last Pebble commit.
	unbatched int64
}

// run re-applies entries pos.Entry..last. Two reader goroutines read (and
// checksum) alternate entries ahead of the applier, so that the journal's
// CRC check overlaps the business logic; each holds its entry pinned until
// the applier releases it.
func (r *replayer) run(pos position, last uint64) error {
	r.src.r = &r.gr
	if pos.Entry == 0 || pos.Entry > last {
		return nil
	}
	type lane struct {
		entries chan *journal.Entry
		release chan struct{}
		err     chan error
	}
	quit := make(chan struct{})
	var lanes [2]lane
	var wg sync.WaitGroup
	for k := range lanes {
		l := &lanes[k]
		*l = lane{entries: make(chan *journal.Entry), release: make(chan struct{}), err: make(chan error, 1)}
		wg.Go(func() {
			for idx := pos.Entry + uint64(k); idx <= last; idx += 2 {
				err := r.s.j.Read(idx, func(e *journal.Entry) error {
					select {
					case l.entries <- e:
					case <-quit:
						return errStopScan
					}
					select {
					case <-l.release:
						return nil
					case <-quit:
						return errStopScan
					}
				})
				if err != nil {
					if !errors.Is(err, errStopScan) {
						l.err <- fmt.Errorf("entry %d: %w", idx, err)
					}
					return
				}
			}
		})
	}
	defer func() {
		close(quit)
		wg.Wait()
	}()
	for idx := pos.Entry; idx <= last; idx++ {
		l := &lanes[(idx-pos.Entry)%2]
		var e *journal.Entry
		select {
		case e = <-l.entries:
		case err := <-l.err:
			return err
		}
		skip := 0
		if idx == pos.Entry {
			skip = int(pos.Ordinal)
		}
		err := r.entry(e, skip)
		l.release <- struct{}{}
		if err != nil {
			return fmt.Errorf("entry %d: %w", idx, err)
		}
	}
	if r.unbatched > 0 {
		r.unbatched = 0
		return r.s.app.finish()
	}
	return nil
}

// entry applies the groups of e from ordinal skip on, as one Pebble batch,
// then runs the handlers over the accepted ones.
func (r *replayer) entry(e *journal.Entry, skip int) error {
	app := r.s.app
	if e.Kind != journal.KindGroups {
		// A raft configuration change: the consensus module applies it.
		if r.cluster {
			app.endEntry(e.Index)
		}
		r.entries++
		return nil
	}
	r.gr.Reset(e.Payload, e.FirstSeq)
	ok := false
	if skip == 0 {
		ok = r.gr.Next()
	} else {
		ok = r.gr.SeekGroup(skip)
	}
	r.decs = r.decs[:0]
	var h groupHeader
	for ; ok; ok = r.gr.Next() {
		g := r.gr.Group()
		headerOf(&h, g, e.Index, uint32(g.Ordinal), uint32(g.Offset))
		d, err := app.apply(&h, &r.src)
		if err != nil {
			return err
		}
		r.decs = append(r.decs, d)
		r.groups++
		r.bytes += int64(g.Size)
		app.appliedBytes += int64(g.Size)
	}
	if err := r.gr.Err(); err != nil {
		return err
	}
	r.entries++
	if r.cluster {
		app.endEntry(e.Index)
	}
	r.unbatched += int64(len(e.Payload))
	// Without handlers several small entries share one Pebble batch;
	// handlers must run while the entry is pinned, after its batch commits.
	if len(r.s.opts.Handlers) == 0 && r.unbatched < replayBatchBytes {
		return nil
	}
	r.unbatched = 0
	if err := app.finish(); err != nil {
		return err
	}
	if len(r.s.opts.Handlers) > 0 {
		r.handlers(e, skip)
	}
	return nil
}

// replayBatchBytes is the journal payload recovery applies per Pebble batch
// when no handler needs a batch per entry.
const replayBatchBytes = 1 << 20

func (r *replayer) handlers(e *journal.Entry, skip int) {
	var bp businessProcessor
	bp.s = r.s
	bp.gr.Reset(e.Payload, e.FirstSeq)
	ok := false
	if skip == 0 {
		ok = bp.gr.Next()
	} else {
		ok = bp.gr.SeekGroup(skip)
	}
	lastAccepted := -1
	for i, d := range r.decs {
		if d.Outcome == outcomeAccepted {
			lastAccepted = i
		}
	}
	for i := 0; ok && i < len(r.decs); i, ok = i+1, bp.gr.Next() {
		d := r.decs[i]
		if d.Outcome != outcomeAccepted {
			continue
		}
		g := bp.gr.Group()
		st := r.s.app.streams[string(g.Stream)]
		if st == nil { // deleted by a later group of the entry
			st = &streamState{name: string(g.Stream)}
		}
		bp.views = decodeRecords(&bp.gr, bp.views[:0])
		bp.callHandlers(st, d.FirstOffset, bp.views, i == lastAccepted)
	}
}
