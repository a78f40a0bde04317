package storage

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/badbatch/badbatch/disruptor"
	"github.com/badbatch/badbatch/journal"
)

// slot is one ring slot: one append (or SetCursor), encoded as one journal
// group.
type slot struct {
	// Written by the producer before Publish.
	buf    []byte // the encoded group, in a buffer from Store.slotBufs
	future *AppendFuture

	// Written by the journaling processor (Journaled) before the barrier
	// lets the business logic see the slot.
	pos      journal.GroupPos
	journErr error

	// Written by the replication processor.
	replErr error
}

// JournalGroup is the slot's encoded group, for the journaling processor.
func (sl *slot) JournalGroup() []byte { return sl.buf }

// Journaled is the journaling processor's stamp: where the group went.
func (sl *slot) Journaled(pos journal.GroupPos, err error) { sl.pos, sl.journErr = pos, err }

// maxRetainedViews caps the decoded records the business processor keeps
// between batches for the embedder's handlers.
const maxRetainedViews = 1 << 16

// maxRetainedSlotBuffer caps the encoded-group buffer the free list keeps
// between appends.
const maxRetainedSlotBuffer = 1 << 20

// slotBuffers is the free list of encoded-group buffers. A producer takes
// one when it claims a slot; the business processor, the last stage to
// read a slot's group, gives it back at the end of the slot's batch and
// leaves the slot without one. Buffers thus follow the appends in flight,
// not the ring: a store allocates about as many as it ever has appends in
// flight (at most RingSize), instead of one per slot on the ring's first
// lap, and the buffer a producer gets back is the most recently released
// (LIFO), likely still in cache. Safe for concurrent use.
type slotBuffers struct {
	mu   sync.Mutex
	free [][]byte
}

// get returns a released buffer, or nil when there is none.
func (p *slotBuffers) get() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.free)
	if n == 0 {
		return nil
	}
	b := p.free[n-1]
	p.free[n-1] = nil
	p.free = p.free[:n-1]
	return b
}

// put gives one buffer back.
func (p *slotBuffers) put(b []byte) {
	p.mu.Lock()
	p.free = append(p.free, b)
	p.mu.Unlock()
}

// release takes the buffers of the batch's slots back (except those over
// maxRetainedSlotBuffer, which one huge append must not pin) and leaves the
// slots without one. REQUIRES: nothing reads those slots' groups any more.
func (p *slotBuffers) release(batch []completion) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range batch {
		sl := batch[i].sl
		if b := sl.buf; b != nil && cap(b) <= maxRetainedSlotBuffer {
			p.free = append(p.free, b[:0])
		}
		sl.buf = nil
	}
}

// startPipeline builds and starts the disruptor:
//
//	HandleEventsWith(journaling, replication).Then(business)
func (s *Store) startPipeline() error {
	d, err := s.newRing()
	if err != nil {
		return err
	}
	s.d = d
	jh := journal.NewHandler[slot](s.j)
	rh := &replicationProcessor{}
	s.bp = newBusinessProcessor(s)
	d.HandleEventsWith(jh, rh).Then(s.bp)
	if err := d.Start(); err != nil {
		return fmt.Errorf("storage: start pipeline: %w", err)
	}
	return nil
}

// newRing returns the multi-producer ring the producers publish into.
func (s *Store) newRing() (*disruptor.Disruptor[slot], error) {
	d, err := disruptor.New[slot](nil, &disruptor.Options{
		RingSize:     s.opts.RingSize,
		Producer:     disruptor.MultiProducer,
		WaitStrategy: s.opts.WaitStrategy,
		Logger:       s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: pipeline: %w", err)
	}
	return d, nil
}

// replicationProcessor is the standalone replication stage.
type replicationProcessor struct{ r standalone }

func (p *replicationProcessor) OnEvent(sl *slot, _ int64, endOfBatch bool) error {
	sl.replErr = p.r.replicate(sl.buf, endOfBatch)
	return nil
}

// completion is what the business processor remembers of one slot until
// the end of its batch.
type completion struct {
	sl  *slot
	h   groupHeader
	dec decision
	st  *streamState
	err error
	// lo, hi: the group's records in businessProcessor.views.
	lo, hi int
}

// businessProcessor is the business-logic processor: one goroutine,
// deterministic, in sequence order. It never returns an error to the
// disruptor (that would halt the ring and strand producers): failures fail
// the affected futures and make the store unavailable.
type businessProcessor struct {
	s   *Store
	app *applier

	gr  journal.GroupReader
	src readerSource
	// views are the records of the batch's accepted groups, decoded once by
	// applySlot and kept for the embedder's handlers (only when there are
	// handlers); each completion holds its range.
	views []journal.RecordView

	batch []completion

	// Handler scratch, reused.
	rec     StoredRecord
	headers map[string]string

	// The index flush in flight, if any, and what it will make durable.
	flushing <-chan struct{}
	flushPos position
}

func newBusinessProcessor(s *Store) *businessProcessor {
	b := &businessProcessor{s: s, app: s.app}
	b.src.r = &b.gr
	return b
}

// stop is called after the processor's goroutine has ended.
func (b *businessProcessor) stop() {
	if b.flushing != nil {
		<-b.flushing
		b.flushed()
	}
}

// flushed records that the flush in flight has completed.
func (b *businessProcessor) flushed() {
	b.flushing = nil
	b.s.durableEntry.Store(b.flushPos.Entry)
	b.s.kickRetention()
}

// readerSource adapts a GroupReader positioned on a group to recordSource.
// With keep set, it appends every record it decodes to *keep.
type readerSource struct {
	r    *journal.GroupReader
	keep *[]journal.RecordView
}

func (s *readerSource) nextRecord() bool {
	if !s.r.NextRecord() {
		return false
	}
	if s.keep != nil {
		*s.keep = append(*s.keep, *s.r.Record())
	}
	return true
}

func (s *readerSource) recordTime() int64   { return s.r.Record().Timestamp }
func (s *readerSource) recordKey() []byte   { return s.r.Record().Key }
func (s *readerSource) recordValue() []byte { return s.r.Record().Value }

// headerOf fills h from the group the reader is positioned on.
func headerOf(h *groupHeader, g *journal.GroupView, entry uint64, ordinal uint32, offset uint32) {
	*h = groupHeader{
		Stream:       g.Stream,
		HasExpected:  g.Flags&journal.GroupHasExpectedOffset != 0,
		ExpectedLast: g.ExpectedLastOffset,
		IdemKey:      g.IdempotencyKey,
		Time:         g.Timestamp,
		Records:      g.Records,
		FirstSeq:     g.FirstSeq,
		Entry:        entry,
		Ordinal:      ordinal,
		Offset:       offset,
	}
	if g.Flags&journal.GroupHasControl != 0 {
		h.Control = g.Control
		if h.Control == nil {
			h.Control = []byte{} // present but empty: decodeControl refuses it
		}
	}
	if len(g.Stream) >= len(cursorStreamPrefix) && string(g.Stream[:len(cursorStreamPrefix)]) == cursorStreamPrefix {
		h.Cursor = true
		h.Stream = g.Stream[len(cursorStreamPrefix):]
	}
}

// OnEvent applies one slot. REQUIRES: called by the disruptor, in order.
func (b *businessProcessor) OnEvent(sl *slot, _ int64, endOfBatch bool) error {
	c := completion{sl: sl}
	switch {
	case errors.Is(sl.journErr, journal.ErrEntryTooLarge):
		// This slot alone was refused; nothing was journaled.
		c.err = fmt.Errorf("%w: %w", ErrBatchTooLarge, sl.journErr)
	case sl.journErr != nil:
		c.err = sl.journErr
		b.s.fail(sl.journErr)
	case sl.replErr != nil:
		c.err = sl.replErr
		b.s.fail(sl.replErr)
	case b.s.failure.Load() != nil:
		c.err = *b.s.failure.Load()
	default:
		c.err = b.applySlot(sl, &c)
		if c.err != nil {
			b.s.fail(c.err)
		}
	}
	b.batch = append(b.batch, c)
	if endOfBatch {
		b.endBatch()
	}
	return nil
}

// applySlot decodes the slot's group, once, at the position the journal
// stamped, and applies it.
func (b *businessProcessor) applySlot(sl *slot, c *completion) error {
	b.gr.Reset(sl.buf, sl.pos.FirstSeq)
	if !b.gr.Next() {
		return fmt.Errorf("storage: undecodable group in ring: %w", b.gr.Err())
	}
	headerOf(&c.h, b.gr.Group(), sl.pos.Entry.Index, sl.pos.Ordinal, sl.pos.Offset)
	c.lo = len(b.views)
	if len(b.s.opts.Handlers) > 0 {
		b.src.keep = &b.views
	}
	dec, err := b.app.apply(&c.h, &b.src)
	b.src.keep = nil
	c.hi = len(b.views)
	if err != nil {
		return err
	}
	if err := b.gr.Err(); err != nil {
		return err
	}
	c.dec = dec
	if dec.Outcome == outcomeAccepted {
		c.st = b.app.streams[string(c.h.Stream)]
	}
	b.app.appliedBytes += int64(len(sl.buf))
	return nil
}

// endBatch commits the batch's index writes, runs the embedder's handlers,
// completes the futures and wakes waiters.
func (b *businessProcessor) endBatch() {
	s := b.s
	if s.failure.Load() == nil {
		if err := b.app.finish(); err != nil {
			s.fail(err)
		}
	}
	failed := s.failure.Load()
	if failed == nil && len(s.opts.Handlers) > 0 {
		b.runHandlers()
	}
	// The handlers were the last readers of the batch's groups.
	clear(b.views)
	b.views = b.views[:0]
	if cap(b.views) > maxRetainedViews {
		b.views = nil
	}
	s.slotBufs.release(b.batch)
	occupancy := int64(0)
	if s.metrics != nil {
		occupancy = int64(s.opts.RingSize) - s.d.RingBuffer().RemainingCapacity()
	}
	records := 0
	durability := durabilityOf(s.opts.SyncPolicy)
	for i := range b.batch {
		c := &b.batch[i]
		f := c.sl.future
		c.sl.future = nil
		err := c.err
		if err == nil && failed != nil {
			err = *failed
		}
		records += s.completeAppend(f, c.dec, err, durability)
		b.batch[i] = completion{}
	}
	if s.metrics != nil {
		s.metrics.ObserveBatch(len(b.batch), records, occupancy)
	}
	s.stats.batches.Add(1)
	b.batch = b.batch[:0]
	s.wake()
	b.maybeFlush()
}

// maybeFlush starts an asynchronous index flush once IndexFlushBytes of
// journal have been applied since the last one, and waits for the previous
// flush if a second one is due while it still runs (so that the journal to
// re-apply after a crash stays under about 2 x IndexFlushBytes).
func (b *businessProcessor) maybeFlush() {
	if b.flushing != nil {
		select {
		case <-b.flushing:
			b.flushed()
		default:
		}
	}
	if b.app.appliedBytes < b.s.opts.IndexFlushBytes || b.s.failure.Load() != nil {
		return
	}
	if b.flushing != nil {
		<-b.flushing
		b.flushed()
	}
	ch, err := b.s.x.db.AsyncFlush()
	if err != nil {
		b.s.fail(fmt.Errorf("storage: flush index: %w", err))
		return
	}
	b.flushing = ch
	b.flushPos = b.app.pos
	b.app.appliedBytes = 0
	b.s.stats.indexFlushes.Add(1)
}

// runHandlers calls the embedder's handlers for every accepted record of
// the batch, in commit order.
func (b *businessProcessor) runHandlers() {
	last := -1
	for i := range b.batch {
		if b.batch[i].err == nil && b.batch[i].dec.Outcome == outcomeAccepted {
			last = i
		}
	}
	for i := 0; i <= last; i++ {
		c := &b.batch[i]
		if c.err != nil || c.dec.Outcome != outcomeAccepted {
			continue
		}
		b.callHandlers(c.st, c.dec.FirstOffset, b.views[c.lo:c.hi], i == last)
	}
}

// decodeRecords appends the records of the group r is positioned on.
func decodeRecords(r *journal.GroupReader, dst []journal.RecordView) []journal.RecordView {
	for r.NextRecord() {
		dst = append(dst, *r.Record())
	}
	return dst
}

// callHandlers runs the handlers over the records of one accepted group,
// whose first offset is first.
func (b *businessProcessor) callHandlers(st *streamState, first uint64, views []journal.RecordView, lastGroup bool) {
	n := len(views)
	for k := range views {
		v := &views[k]
		r := &b.rec
		*r = StoredRecord{
			Record: Record{
				Key:       v.Key,
				Value:     v.Value,
				JSON:      v.Flags&journal.FlagJSON != 0,
				Timestamp: time.Unix(0, v.Timestamp),
			},
			Stream: st.name,
			Offset: first + uint64(k),
			Seq:    v.Seq,
		}
		if nh := v.NumHeaders(); nh > 0 {
			if b.headers == nil {
				b.headers = make(map[string]string, nh)
			}
			clear(b.headers)
			for i := range nh {
				name, value := v.Header(i)
				b.headers[string(name)] = string(value)
			}
			r.Headers = b.headers
		}
		end := lastGroup && k == n-1
		for _, h := range b.s.opts.Handlers {
			if err := h.OnRecord(r, end); err != nil {
				b.s.stats.handlerErrors.Add(1)
				b.s.log.Error("storage: handler failed", "stream", st.name, "offset", r.Offset, "seq", r.Seq, "err", err)
			}
		}
	}
}
