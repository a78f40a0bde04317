package journal

import (
	"encoding/binary"
	"fmt"
)

// Event is a ring slot as the journaling processor sees it. The slot type
// of the ring implements it on its pointer (see NewHandler).
type Event interface {
	// JournalGroup returns the slot's encoded group (AppendGroup output),
	// or an empty slice for "nothing to journal".
	JournalGroup() []byte
	// Journaled stamps the slot with where its group was written, or with
	// the error that kept it from being durable; see Handler.
	Journaled(pos GroupPos, err error)
}

// GroupPos is where the journal put one group. The journal knows the layout
// of the entries it writes, so downstream processors read a group's
// position from its slot instead of re-deriving it.
type GroupPos struct {
	Entry    EntryInfo // the entry holding the group
	Ordinal  uint32    // the group's index within the entry
	Offset   uint32    // the group's byte offset within the entry's payload
	FirstSeq uint64    // global position of the group's first record
}

// Handler is the journaling processor. It satisfies the disruptor's
// EventHandler[T] structurally (OnEvent(ev *T, seq int64, endOfBatch bool)
// error) without importing package disruptor.
//
// For every slot, OnEvent collects JournalGroup(): one group, or an empty
// slice for "nothing to journal". At the end of a ring batch (or earlier,
// when the pending entry would exceed MaxEntrySize; then the batch becomes
// several entries) it Writes the groups as entries, calls Sync ONCE for the
// whole batch, and then stamps every slot of the batch with Journaled, in
// sequence order, all before the endOfBatch OnEvent returns, so that
// downstream processors see stamped slots:
//
//   - Journaled(pos, nil): pos says which entry holds the slot's group and
//     where in it, and the global position of its first record;
//   - Journaled(GroupPos{}, nil) for a slot with nothing to journal;
//   - Journaled(GroupPos{}, err) for every slot of a batch that could not
//     be made durable: the journal is then failed (errors.Is(err,
//     ErrFailed)) and every later slot, empty or not, gets the sticky
//     error too;
//   - Journaled(GroupPos{}, err) for that slot alone if its group is
//     larger than MaxEntrySize (ErrEntryTooLarge) or its header is
//     malformed (ErrCorrupt); the rest of the batch is unaffected.
//
// OnEvent always returns nil: errors travel through Journaled. Under
// SyncInterval and SyncNone, Sync returns at once and Journaled means
// "written, not yet fsynced".
//
// The groups returned by JournalGroup must stay valid and unchanged until
// the endOfBatch OnEvent returns (ring slots are not reused before the
// processor's sequence advances). The handler keeps the current batch's
// slot pointers in reused slices, bounded by the ring size; in steady state
// OnEvent does not allocate.
//
// A Handler is not safe for concurrent use: one processor goroutine calls
// OnEvent. It must be the journal's only writer.
type Handler[T any, P interface {
	*T
	Event
}] struct {
	j   *Journal
	max int64

	slots   []slot[T]   // the current ring batch, in sequence order
	groups  [][]byte    // the pending entry's groups
	pending int64       // bytes of groups
	records uint64      // records of the pending entry's groups
	infos   []EntryInfo // entries written in this batch
	err     error       // first error of this batch
}

type slot[T any] struct {
	ev      *T
	entry   int32 // index into infos; -1: nothing journaled
	ordinal uint32
	offset  uint32 // byte offset within the entry
	seq     uint64 // records of the entry before this group
	err     error  // per-slot error (ErrEntryTooLarge)
}

// NewHandler returns the journaling processor for j, for a ring of T whose
// pointer implements Event:
//
//	h := journal.NewHandler[slot](j) // *slot has JournalGroup and Journaled
func NewHandler[T any, P interface {
	*T
	Event
}](j *Journal) *Handler[T, P] {
	return &Handler[T, P]{j: j, max: j.opts.MaxEntrySize}
}

// OnEvent collects one slot; at endOfBatch it writes, syncs once and stamps
// every slot of the batch. It always returns nil.
func (h *Handler[T, P]) OnEvent(ev *T, seq int64, endOfBatch bool) error {
	g := P(ev).JournalGroup()
	s := slot[T]{ev: ev, entry: -1}
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
		s.ordinal = uint32(len(h.groups))
		s.offset = uint32(h.pending)
		s.seq = h.records
		h.groups = append(h.groups, g)
		h.pending += int64(len(g))
		h.records += uint64(binary.LittleEndian.Uint32(g[groupOffRecords:]))
	}
	h.slots = append(h.slots, s)
	if endOfBatch {
		h.endBatch()
	}
	return nil
}

// flush writes the pending groups as one entry.
func (h *Handler[T, P]) flush() {
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
	h.records = 0
}

// endBatch writes the last entry, syncs once and stamps every slot.
func (h *Handler[T, P]) endBatch() {
	h.flush()
	if h.err == nil && len(h.infos) > 0 {
		h.err = h.j.Sync()
	}
	if h.err == nil {
		h.err = h.j.Err() // failed earlier (e.g. by the interval syncer)
	}
	for i := range h.slots {
		s := &h.slots[i]
		ev := P(s.ev)
		switch {
		case s.err != nil:
			ev.Journaled(GroupPos{}, s.err)
		case h.err != nil:
			ev.Journaled(GroupPos{}, h.err)
		case s.entry < 0:
			ev.Journaled(GroupPos{}, nil)
		default:
			info := h.infos[s.entry]
			ev.Journaled(GroupPos{Entry: info, Ordinal: s.ordinal, Offset: s.offset, FirstSeq: info.FirstSeq + s.seq}, nil)
		}
	}
	clear(h.slots)
	h.slots = h.slots[:0]
	h.infos = h.infos[:0]
	h.err = nil
}
