package journal

import "fmt"

// Handler is the journaling processor. It satisfies the disruptor's
// EventHandler[T] structurally (OnEvent(ev *T, seq int64, endOfBatch bool)
// error) without importing package disruptor.
//
// For every slot, OnEvent collects encoded(ev): one group, or an empty
// slice for "nothing to journal". At the end of a ring batch (or earlier,
// when the pending entry would exceed MaxEntrySize; then the batch becomes
// several entries) it Writes the groups as entries, calls Sync ONCE for the
// whole batch, and then calls done for every slot of the batch in sequence
// order, all before the endOfBatch OnEvent returns, so that downstream
// processors see stamped slots:
//
//   - done(ev, info, ordinal, nil): info describes the entry holding the
//     slot's group and ordinal is the group's index within that entry;
//   - done(ev, EntryInfo{}, -1, nil) for a slot with nothing to journal;
//   - done(ev, EntryInfo{}, -1, err) for every slot of a batch that could
//     not be made durable: the journal is then failed (errors.Is(err,
//     ErrFailed)) and every later slot, empty or not, gets the sticky
//     error too;
//   - done(ev, EntryInfo{}, -1, err) for that slot alone if its group is
//     larger than MaxEntrySize (ErrEntryTooLarge) or its header is
//     malformed (ErrCorrupt); the rest of the batch is unaffected.
//
// OnEvent always returns nil: errors travel through done. Under
// SyncInterval and SyncNone, Sync returns at once and done means "written,
// not yet fsynced".
//
// The groups returned by encoded must stay valid and unchanged until the
// endOfBatch OnEvent returns (ring slots are not reused before the
// processor's sequence advances). The handler keeps the current batch's
// slot pointers in reused slices, bounded by the ring size; in steady state
// OnEvent does not allocate.
//
// A Handler is not safe for concurrent use: one processor goroutine calls
// OnEvent. It must be the journal's only writer.
type Handler[T any] struct {
	j       *Journal
	encoded func(ev *T) []byte
	done    func(ev *T, info EntryInfo, ordinal int, err error)
	max     int64

	slots   []slot[T]   // the current ring batch, in sequence order
	groups  [][]byte    // the pending entry's groups
	pending int64       // bytes of groups
	infos   []EntryInfo // entries written in this batch
	err     error       // first error of this batch
}

type slot[T any] struct {
	ev      *T
	entry   int32 // index into infos; -1: nothing journaled
	ordinal int32
	err     error // per-slot error (ErrEntryTooLarge)
}

// NewHandler returns the journaling processor for j. encoded returns the
// slot's encoded group (AppendGroup output) or an empty slice; done is
// called once per slot as described on Handler.
func NewHandler[T any](j *Journal, encoded func(ev *T) []byte,
	done func(ev *T, info EntryInfo, ordinal int, err error)) *Handler[T] {
	return &Handler[T]{j: j, encoded: encoded, done: done, max: j.opts.MaxEntrySize}
}

// OnEvent collects one slot; at endOfBatch it writes, syncs once and calls
// done for every slot of the batch. It always returns nil.
func (h *Handler[T]) OnEvent(ev *T, seq int64, endOfBatch bool) error {
	g := h.encoded(ev)
	s := slot[T]{ev: ev, entry: -1, ordinal: -1}
	switch {
	case len(g) == 0:
	case int64(len(g)) > h.max:
		s.err = fmt.Errorf("%w: group of %d bytes at ring sequence %d exceeds MaxEntrySize %d",
			ErrEntryTooLarge, len(g), seq, h.max)
	case !validGroupHeader(g):
		_, err := groupRecords(g)
		s.err = fmt.Errorf("journal: handler: ring sequence %d: %w", seq, err)
	default:
		if h.pending+int64(len(g)) > h.max {
			h.flush()
		}
		s.entry = int32(len(h.infos))
		s.ordinal = int32(len(h.groups))
		h.groups = append(h.groups, g)
		h.pending += int64(len(g))
	}
	h.slots = append(h.slots, s)
	if endOfBatch {
		h.endBatch()
	}
	return nil
}

// flush writes the pending groups as one entry.
func (h *Handler[T]) flush() {
	if len(h.groups) == 0 {
		return
	}
	var info EntryInfo
	if h.err == nil {
		var err error
		if info, err = h.j.Write(h.groups); err != nil {
			h.err = err
		}
	}
	h.infos = append(h.infos, info)
	clear(h.groups)
	h.groups = h.groups[:0]
	h.pending = 0
}

// endBatch writes the last entry, syncs once and completes every slot.
func (h *Handler[T]) endBatch() {
	h.flush()
	if h.err == nil && len(h.infos) > 0 {
		h.err = h.j.Sync()
	}
	if h.err == nil {
		h.err = h.j.Err() // failed earlier (e.g. by the interval syncer)
	}
	for i := range h.slots {
		s := &h.slots[i]
		switch {
		case s.err != nil:
			h.done(s.ev, EntryInfo{}, -1, s.err)
		case h.err != nil:
			h.done(s.ev, EntryInfo{}, -1, h.err)
		case s.entry < 0:
			h.done(s.ev, EntryInfo{}, -1, nil)
		default:
			h.done(s.ev, h.infos[s.entry], int(s.ordinal), nil)
		}
	}
	clear(h.slots)
	h.slots = h.slots[:0]
	h.infos = h.infos[:0]
	h.err = nil
}
