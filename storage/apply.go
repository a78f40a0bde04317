package storage

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// This file is the business logic: a deterministic function from the
// sequence of journaled groups to decisions (offsets, 409s, duplicates)
// and index writes. It reads nothing but the groups it is given and the
// state it built from earlier groups; in particular never the wall clock.

// groupHeader is what the business logic reads of one journaled group.
type groupHeader struct {
	Stream       []byte
	Cursor       bool   // a SetCursor command rather than an append
	Control      []byte // a lifecycle command's control bytes (nil: none)
	HasExpected  bool
	ExpectedLast int64
	IdemKey      []byte
	Time         int64 // the group's journaled timestamp, unix nanoseconds
	Records      int
	FirstSeq     uint64
	Entry        uint64
	Ordinal      uint32
	Offset       uint32 // byte offset of the group within the entry's payload
}

// recordSource iterates the records of the group being applied.
type recordSource interface {
	nextRecord() bool
	// recordTime is the record's journaled timestamp, unix nanoseconds.
	recordTime() int64
	recordKey() []byte
	recordValue() []byte
}

type outcome uint8

const (
	outcomeAccepted outcome = iota
	outcomeRejected
	outcomeDuplicate
	outcomeCursor
	outcomeCommand // a lifecycle command without records took effect
)

// decision is the business logic's verdict on one group.
type decision struct {
	Outcome     outcome
	FirstOffset uint64 // accepted or duplicate: the (original) first offset
	Count       int    // accepted or duplicate: the (original) record count
	Bytes       uint64 // accepted: key and value bytes stored
	FirstSeq    uint64 // accepted or duplicate: the (original) first seq
	Current     int64  // rejected: the stream's last offset (-1: empty)
	Expected    int64  // rejected: what the append expected
	// Lifecycle rejections (reject* in lifecycle.go; 0: an offset
	// mismatch) and what a producer rejection reports.
	Reject           uint8
	Epoch            uint64
	ExpectedSeq, Seq uint64
}

// streamState is one stream's state.
type streamState struct {
	name string
	key  []byte // name as bytes, for index keys
	// meta is the business logic's working copy. Only the business-logic
	// goroutine (or Open, before it starts) touches it.
	meta    streamMeta
	dirty   bool
	deleted bool // removed by a delete in the batch being built
	// pub is the copy readers see. It trails meta by at most one Pebble
	// batch and only ever shows state whose index keys are committed.
	// Guarded by the store's stateMu.
	pub streamMeta
	// touched is the wall-clock time of the last read (unix ns), which
	// slides a TTL in memory; touchSent is the last time a read asked for
	// a journaled touch (lifecycle.go).
	touched, touchSent atomic.Int64
}

func (st *streamState) lastOffset() int64 { return int64(st.meta.NextOffset) - 1 }

// exists reports whether the stream was created or appended to.
func (st *streamState) exists() bool { return st.meta.Explicit || st.meta.NextOffset > 0 }

// applier holds the business-logic state. It is not safe for concurrent
// use: one goroutine (Open's recovery, then the business-logic processor)
// owns it. The only state it shares is the stream map and each stream's pub
// field, which it changes under *stateMu.
type applier struct {
	x      *index
	window int64 // idempotency window, nanoseconds
	pos    position

	// stateMu guards inserts into streams and every streamState.pub.
	stateMu *sync.RWMutex
	streams map[string]*streamState

	// idem holds the idempotency records that may still match:
	// key = stream | 0x00 | idempotency key.
	idem        map[string]idemRecord
	idemSweepAt int
	idemScratch []byte

	// producers: key = stream | 0x00 | producer id.
	producers map[string]producerState

	dirty []*streamState

	// The chunk being built: consecutive groups of one entry.
	chunkOpen     bool
	chunkEntry    uint64
	chunkOrdinal  uint32
	chunkOffset   uint32
	chunkFirstSeq uint64
	chunkGroups   int
	chunkRecords  int
	chunkBody     []byte
	chunkValue    []byte

	// appliedBytes counts journal bytes applied since the last index flush.
	appliedBytes int64
}

func newApplier(x *index, window int64, stateMu *sync.RWMutex) *applier {
	return &applier{
		x:           x,
		window:      window,
		stateMu:     stateMu,
		streams:     make(map[string]*streamState),
		idem:        make(map[string]idemRecord),
		producers:   make(map[string]producerState),
		idemSweepAt: 1024,
		pos:         position{Entry: 1, Clock: math.MinInt64},
	}
}

// load reads the business-logic state from the index (at Open).
func (a *applier) load() error {
	p, ok, err := a.x.applied()
	if err != nil {
		return err
	}
	if ok {
		a.pos = p
	}
	err = a.x.scanPrefix([]byte{tagStream}, func(k, v []byte) error {
		m, err := decodeStreamMeta(v)
		if err != nil {
			return err
		}
		name := string(k[1:])
		a.streams[name] = &streamState{name: name, key: []byte(name), meta: m, pub: m}
		return nil
	})
	if err != nil {
		return err
	}
	err = a.x.scanPrefix([]byte{tagIdem}, func(k, v []byte) error {
		r, err := decodeIdem(v)
		if err != nil {
			return err
		}
		a.idem[string(k[1:])] = r
		return nil
	})
	if err != nil {
		return err
	}
	err = a.x.scanPrefix([]byte{tagProducer}, func(k, v []byte) error {
		r, err := decodeProducer(v)
		if err != nil {
			return err
		}
		a.producers[string(k[1:])] = r
		return nil
	})
	if err != nil {
		return err
	}
	if n := 2 * len(a.idem); n > a.idemSweepAt {
		a.idemSweepAt = n
	}
	return nil
}

// errPositionMismatch means the groups handed to the business logic do not
// continue from the applied position: a bug or a journal that changed under
// the index.
var errPositionMismatch = fmt.Errorf("storage: journal does not continue the index's applied position")

// apply decides one group and adds its index writes to the current batch.
func (a *applier) apply(h *groupHeader, recs recordSource) (decision, error) {
	if err := a.checkPosition(h); err != nil {
		return decision{}, err
	}
	if h.Time > a.pos.Clock {
		a.pos.Clock = h.Time
	}
	d, err := a.decide(h, recs)
	if err != nil {
		return decision{}, err
	}
	a.addChunkGroup(h, d)
	a.pos = position{Entry: h.Entry, Ordinal: h.Ordinal + 1, Seq: h.FirstSeq + uint64(h.Records), Clock: a.pos.Clock}
	return d, nil
}

// endEntry moves the applied position past entry index, which has been
// applied whole. Cluster mode only: there every entry, with groups or
// without (raft's empty and configuration entries), counts as applied, and
// the position's Entry is the next entry to apply (Ordinal 0). The next
// seq is already past the entry's records (apply advanced it group by
// group).
func (a *applier) endEntry(index uint64) {
	a.pos = position{Entry: index + 1, Seq: a.pos.Seq, Clock: a.pos.Clock}
}

func (a *applier) checkPosition(h *groupHeader) error {
	sameEntry := h.Entry == a.pos.Entry && h.Ordinal == a.pos.Ordinal
	nextEntry := h.Entry > a.pos.Entry && h.Ordinal == 0
	if h.FirstSeq != a.pos.Seq || !(sameEntry || nextEntry) {
		return fmt.Errorf("%w: group (entry %d, ordinal %d, seq %d) after position (entry %d, ordinal %d, seq %d)",
			errPositionMismatch, h.Entry, h.Ordinal, h.FirstSeq, a.pos.Entry, a.pos.Ordinal, a.pos.Seq)
	}
	return nil
}

func (a *applier) decide(h *groupHeader, recs recordSource) (decision, error) {
	if h.Cursor {
		return a.applyCursor(h, recs)
	}
	if h.Control != nil {
		return a.decideControl(h, recs)
	}
	return a.decideAppend(h, recs)
}

// decideAppend decides an append of records.
func (a *applier) decideAppend(h *groupHeader, recs recordSource) (decision, error) {
	st, err := a.liveStream(h)
	if err != nil {
		return decision{}, err
	}
	if len(h.IdemKey) > 0 {
		a.idemScratch = append(append(append(a.idemScratch[:0], h.Stream...), nameTerminator), h.IdemKey...)
		if r, ok := a.idem[string(a.idemScratch)]; ok && a.live(r) {
			return decision{Outcome: outcomeDuplicate, FirstOffset: r.FirstOffset, Count: int(r.Count), FirstSeq: r.FirstSeq}, nil
		}
	}
	last := int64(-1)
	if st != nil {
		last = st.lastOffset()
	}
	if h.HasExpected && h.ExpectedLast != last {
		return decision{Outcome: outcomeRejected, Current: last, Expected: h.ExpectedLast}, nil
	}
	if st != nil && st.meta.SoftDeleted {
		return decision{Outcome: outcomeRejected, Reject: rejectDeleted}, nil
	}
	if st != nil && st.meta.Closed {
		return decision{Outcome: outcomeRejected, Reject: rejectClosed, Current: last}, nil
	}
	if st == nil {
		st = a.newStream(h.Stream)
	}
	first := st.meta.NextOffset
	maxTime, timeOffset := st.meta.MaxTime, uint64(0)
	off := first
	bytesBefore := st.meta.Bytes
	for recs.nextRecord() {
		t := recs.recordTime()
		if t > maxTime {
			if maxTime <= st.meta.MaxTime {
				timeOffset = off
			}
			maxTime = t
		}
		st.meta.Bytes += uint64(len(recs.recordKey()) + len(recs.recordValue()))
		st.meta.LastTime = t
		off++
	}
	if off-first != uint64(h.Records) {
		return decision{}, fmt.Errorf("%w: group at seq %d declares %d records, holds %d",
			errCorruptIndex, h.FirstSeq, h.Records, off-first)
	}
	if h.Records == 0 {
		return decision{}, fmt.Errorf("%w: empty group at seq %d", errCorruptIndex, h.FirstSeq)
	}
	st.meta.NextOffset = off
	if err := a.x.setRun(h.Stream, off-1, run{Entry: h.Entry, Ordinal: h.Ordinal, Offset: h.Offset, Count: uint32(h.Records), FirstSeq: h.FirstSeq}); err != nil {
		return decision{}, err
	}
	if maxTime > st.meta.MaxTime {
		if err := a.x.setTime(h.Stream, maxTime, timeOffset); err != nil {
			return decision{}, err
		}
		st.meta.MaxTime = maxTime
	}
	a.markDirty(st)
	if st.meta.Config.TTL > 0 && h.Time > st.meta.Access {
		st.meta.Access = h.Time
	}
	d := decision{Outcome: outcomeAccepted, FirstOffset: first, Count: h.Records, FirstSeq: h.FirstSeq, Bytes: st.meta.Bytes - bytesBefore}
	if len(h.IdemKey) > 0 {
		r := idemRecord{Time: h.Time, FirstOffset: first, Count: uint32(h.Records), FirstSeq: h.FirstSeq}
		a.idem[string(a.idemScratch)] = r
		if err := a.x.setIdem(h.Stream, h.IdemKey, r); err != nil {
			return decision{}, err
		}
	}
	return d, nil
}

// live reports whether an idempotency record may still match: the window
// is measured against the clock, the largest journaled group timestamp
// applied so far. The clock never goes back, so a record that is not live
// never becomes live again, and dropping it changes no later decision.
func (a *applier) live(r idemRecord) bool {
	return r.Time >= a.pos.Clock || uint64(a.pos.Clock-r.Time) <= uint64(a.window)
}

// applyCursor stores a named cursor. Its one record carries the cursor name
// as key and the offset as an 8-byte big-endian value.
func (a *applier) applyCursor(h *groupHeader, recs recordSource) (decision, error) {
	if h.Records != 1 || !recs.nextRecord() {
		return decision{}, fmt.Errorf("%w: cursor group at seq %d has %d records", errCorruptIndex, h.FirstSeq, h.Records)
	}
	off, err := decodeUint64(recs.recordValue())
	if err != nil {
		return decision{}, err
	}
	if err := a.x.setCursor(h.Stream, recs.recordKey(), off); err != nil {
		return decision{}, err
	}
	return decision{Outcome: outcomeCursor, FirstOffset: off}, nil
}

func (a *applier) addChunkGroup(h *groupHeader, d decision) {
	if a.chunkOpen && a.chunkEntry != h.Entry {
		a.closeChunk()
	}
	if !a.chunkOpen {
		a.chunkOpen = true
		a.chunkEntry, a.chunkOrdinal, a.chunkOffset, a.chunkFirstSeq = h.Entry, h.Ordinal, h.Offset, h.FirstSeq
		a.chunkGroups, a.chunkRecords = 0, 0
		a.chunkBody = a.chunkBody[:0]
	}
	a.chunkGroups++
	a.chunkRecords += h.Records
	a.chunkBody = appendChunkGroup(a.chunkBody, chunkGroup{
		Records:  uint32(h.Records),
		Accepted: d.Outcome == outcomeAccepted,
		Offset:   d.FirstOffset,
	})
}

// closeChunk queues the open chunk's key into the batch. An error is
// deferred to finish (Batch.Set fails only on a closed batch).
func (a *applier) closeChunk() {
	if !a.chunkOpen {
		return
	}
	a.chunkOpen = false
	if a.chunkRecords == 0 {
		// Only commands without records: no seq to look up, and the
		// key would collide with the next chunk's.
		return
	}
	a.chunkValue = appendChunkHeader(a.chunkValue[:0], a.chunkEntry, a.chunkOrdinal, a.chunkOffset, a.chunkGroups)
	a.chunkValue = append(a.chunkValue, a.chunkBody...)
	_ = a.x.setChunk(a.chunkFirstSeq, a.chunkValue)
}

// finish ends the current Pebble batch: it writes the touched streams'
// metadata and the applied position, commits, and publishes the streams'
// new state to readers. It returns the journal bytes applied since the
// last flush request.
func (a *applier) finish() error {
	a.closeChunk()
	for _, st := range a.dirty {
		if st.deleted {
			continue
		}
		if err := a.x.setStream(st.key, &st.meta); err != nil {
			return err
		}
	}
	a.sweepIdem()
	if err := a.x.setApplied(a.pos); err != nil {
		return err
	}
	if err := a.x.commit(); err != nil {
		return fmt.Errorf("storage: commit index batch: %w", err)
	}
	if len(a.dirty) > 0 {
		a.stateMu.Lock()
		for _, st := range a.dirty {
			first := st.pub.FirstOffset // owned by retention
			st.pub = st.meta
			st.pub.FirstOffset = first
			st.dirty = false
		}
		a.stateMu.Unlock()
		clear(a.dirty)
		a.dirty = a.dirty[:0]
	}
	return nil
}

// sweepIdem drops idempotency records that can no longer match, once the
// table has doubled since the last sweep (amortized O(1) per insert).
func (a *applier) sweepIdem() {
	if len(a.idem) < a.idemSweepAt {
		return
	}
	for k, r := range a.idem {
		if !a.live(r) {
			delete(a.idem, k)
			stream, key := splitIdemMapKey(k)
			_ = a.x.deleteIdem(stream, key)
		}
	}
	a.idemSweepAt = max(1024, 2*len(a.idem))
}

func splitIdemMapKey(k string) (stream, key []byte) {
	for i := 0; i < len(k); i++ {
		if k[i] == nameTerminator {
			return []byte(k[:i]), []byte(k[i+1:])
		}
	}
	return []byte(k), nil
}
