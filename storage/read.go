package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/badbatch/badbatch/journal"
)

// MaxReadLimit bounds the limit of one read call.
const MaxReadLimit = 100_000

func checkLimit(limit int) error {
	if limit <= 0 || limit > MaxReadLimit {
		return fmt.Errorf("%w: limit %d not in [1, %d]", ErrInvalidArgument, limit, MaxReadLimit)
	}
	return nil
}

// beginRead holds the store open for a read; endRead releases it.
func (s *Store) beginRead() error {
	s.readMu.RLock()
	if s.closed.Load() {
		s.readMu.RUnlock()
		return ErrClosed
	}
	if s.detached {
		// A snapshot install failed part-way: the files are closed.
		s.readMu.RUnlock()
		return s.Err()
	}
	return nil
}

func (s *Store) endRead() { s.readMu.RUnlock() }

// beginStreamRead checks a stream read's arguments, holds the store open
// (the caller must endRead when err is nil) and returns the stream's
// metadata: ErrNotFound for a stream never written.
func (s *Store) beginStreamRead(stream string, limit int) (streamMeta, error) {
	if err := ValidateStreamName(stream); err != nil {
		return streamMeta{}, err
	}
	if err := checkLimit(limit); err != nil {
		return streamMeta{}, err
	}
	if err := s.beginRead(); err != nil {
		return streamMeta{}, err
	}
	m, ok := s.lookup(stream)
	if !ok {
		s.endRead()
		return streamMeta{}, s.missing(stream)
	}
	if m.Source != "" {
		m.FirstOffset = chainFirst(s.forkChain(stream))
	}
	if m.Config.TTL > 0 {
		s.touch(stream)
	}
	return m, nil
}

// Read returns up to limit records of stream from offset from on, in
// offset order. It returns ErrNotFound for a stream never written,
// ErrGone when from is below the stream's first retained offset, and
// an empty slice (nil error) when from is at or past the stream's
// NextOffset. The records never alias store memory.
func (s *Store) Read(ctx context.Context, stream string, from uint64, limit int) ([]StoredRecord, error) {
	return s.readOffsets(ctx, stream, from, limit, nil, &arena{})
}

// readOffsets is Read with the records appended to out and their bytes in
// mem.
func (s *Store) readOffsets(ctx context.Context, stream string, from uint64, limit int, out []StoredRecord, mem *arena) ([]StoredRecord, error) {
	m, err := s.beginStreamRead(stream, limit)
	if err != nil {
		return nil, err
	}
	defer s.endRead()
	if from < m.FirstOffset {
		return nil, fmt.Errorf("%w: stream %q offset %d, first retained %d", ErrGone, stream, from, m.FirstOffset)
	}
	return s.readRange(ctx, stream, from, min(m.NextOffset, from+uint64(limit)), -1<<63, out, mem)
}

// ReadBuffer is the reusable memory of ReadInto: the records of the last
// call and the bytes their keys and values point into. The zero value is
// ready to use. Not safe for concurrent use.
type ReadBuffer struct {
	// Records are the records the last ReadInto call returned. They, and
	// the Key and Value bytes they point to, are valid only until the next
	// ReadInto with this buffer: copy what must outlive it. (Headers are
	// fresh maps, as in Read.)
	Records []StoredRecord
	mem     arena
}

// ReadInto is Read without allocation in the steady state: it puts the
// records into buf (buf.Records), reusing buf's memory from the previous
// call, which that call's records therefore no longer own. Same errors as
// Read; on an error buf.Records is empty. For replaying a stream through
// code that handles each page before reading the next (an exporter, a
// projection rebuild); Read is the call whose records the caller keeps.
func (s *Store) ReadInto(ctx context.Context, stream string, from uint64, limit int, buf *ReadBuffer) error {
	buf.mem.reset()
	recs, err := s.readOffsets(ctx, stream, from, limit, buf.Records[:0], &buf.mem)
	if err != nil {
		clear(buf.Records[:cap(buf.Records)]) // drop references to the failed read's records
		buf.Records = buf.Records[:0]
		return err
	}
	buf.Records = recs
	return nil
}

// readRange appends the records [from, end) of stream to out (nil: a new
// slice sized for them), their bytes in mem, skipping records older than
// minTime until the first one at or after it.
func (s *Store) readRange(ctx context.Context, stream string, from, end uint64, minTime int64, out []StoredRecord, mem *arena) ([]StoredRecord, error) {
	if end <= from {
		return out, nil // at or past the end
	}
	out = slices.Grow(out, int(end-from)) // end-from <= MaxReadLimit
	chain := s.forkChain(stream)
	key, owner, segEnd := stringBytes(stream), stream, end
	var gr journal.GroupReader
	for off := from; off < end; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if chain != nil {
			// A fork reads its lower offsets from the streams it was
			// forked from.
			l := ownerOf(chain, off)
			owner, key, segEnd = l.name, stringBytes(l.name), min(end, l.to)
			if off < l.first {
				if len(out) > 0 {
					return out, nil
				}
				return nil, fmt.Errorf("%w: stream %q offset %d", ErrGone, stream, off)
			}
		}
		r, lastOffset, ok, err := s.x.findRun(key, off)
		if err != nil {
			return nil, fmt.Errorf("storage: read index: %w", err)
		}
		if !ok {
			return nil, fmt.Errorf("%w: no index run for stream %q offset %d", errCorruptIndex, stream, off)
		}
		firstOffset := lastOffset - uint64(r.Count) + 1
		if firstOffset > off {
			// The runs holding [off, firstOffset) are gone: retention
			// removed them after this read checked the stream's first
			// offset. Never skip over the hole: hand back what was read
			// so far, or report the truncation.
			if len(out) > 0 {
				return out, nil
			}
			return nil, fmt.Errorf("%w: stream %q offset %d", ErrGone, stream, off)
		}
		err = s.j.Read(r.Entry, func(e *journal.Entry) error {
			gr.ResetAt(e.Payload, int(r.Offset), int(r.Ordinal), r.FirstSeq)
			if !gr.Next() {
				return fmt.Errorf("storage: group %d of entry %d: %w", r.Ordinal, r.Entry, gr.Err())
			}
			g := gr.Group()
			if g.FirstSeq != r.FirstSeq || g.Records != int(r.Count) || string(g.Stream) != owner {
				return fmt.Errorf("%w: run of stream %q at offset %d does not match journal entry %d", errCorruptIndex, stream, firstOffset, r.Entry)
			}
			for o := firstOffset; gr.NextRecord(); o++ {
				if o < off {
					continue
				}
				if o >= segEnd {
					break
				}
				v := gr.Record()
				if v.Timestamp < minTime {
					continue
				}
				minTime = -1 << 63
				out = append(out, storedRecord(mem, v, stream, o))
			}
			return gr.Err()
		})
		if err != nil {
			if errors.Is(err, journal.ErrTruncated) {
				return nil, fmt.Errorf("%w: stream %q offset %d", ErrGone, stream, off)
			}
			return nil, fmt.Errorf("storage: read journal: %w", err)
		}
		off = min(lastOffset+1, segEnd)
	}
	return out, nil
}

// arena hands out the byte slices of one read's records from shared chunks,
// so that a read allocates per chunk, not per record. Chunks double from
// 1 KiB to 64 KiB, so a small read stays small (a thousand subscribers each
// holding a short batch must not hold 64 KiB each). The records of one read
// share chunks; they never alias the journal.
//
// A reused arena (ReadBuffer) also counts what one read needed: reset
// starts the next read in one chunk of that size (up to
// arenaMaxReusedChunk), so that a steady replay allocates nothing.
type arena struct {
	buf  []byte
	used int // bytes handed out since the last reset
}

const (
	arenaFirstChunk     = 1 << 10
	arenaMaxChunk       = 64 << 10
	arenaMaxReusedChunk = 16 << 20
)

// reset makes the arena's memory reusable (the slices it handed out are
// overwritten by the next reads) and sizes its chunk for a read like the
// last one.
func (a *arena) reset() {
	want := min(a.used, arenaMaxReusedChunk)
	if cap(a.buf) < want {
		a.buf = make([]byte, 0, want)
	}
	a.buf = a.buf[:0]
	a.used = 0
}

// copy returns a copy of key followed by value in one slice of the arena.
func (a *arena) copy(key, value []byte) []byte {
	n := len(key) + len(value)
	a.used += n
	if cap(a.buf)-len(a.buf) < n {
		if n >= arenaMaxChunk/4 {
			kv := make([]byte, n) // a large record gets its own allocation
			copy(kv, key)
			copy(kv[len(key):], value)
			return kv
		}
		size := min(max(2*cap(a.buf), arenaFirstChunk), arenaMaxChunk)
		a.buf = make([]byte, 0, max(size, n))
	}
	start := len(a.buf)
	a.buf = append(append(a.buf, key...), value...)
	return a.buf[start:len(a.buf):len(a.buf)]
}

// storedRecord copies a journal record out, its bytes into mem.
func storedRecord(mem *arena, v *journal.RecordView, stream string, offset uint64) StoredRecord {
	r := StoredRecord{
		Record: Record{
			JSON:      v.Flags&journal.FlagJSON != 0,
			Timestamp: time.Unix(0, v.Timestamp),
		},
		Stream: stream,
		Offset: offset,
		Seq:    v.Seq,
	}
	kv := mem.copy(v.Key, v.Value)
	if len(v.Key) > 0 {
		r.Key = kv[:len(v.Key):len(v.Key)]
	}
	r.Value = kv[len(v.Key):]
	if nh := v.NumHeaders(); nh > 0 {
		r.Headers = make(map[string]string, nh)
		for i := range nh {
			name, value := v.Header(i)
			r.Headers[string(name)] = string(value)
		}
	}
	return r
}

// ReadFromTime returns up to limit records of stream starting with the
// first record, in offset order, whose timestamp is at or after t.
//
// Timestamps need not increase along a stream (producers may supply their
// own). The rule, as Kafka's time index: the result starts at the lowest
// offset whose own timestamp is >= t, and continues in offset order from
// there, including later records whose timestamps are < t. Equivalently it
// starts where the stream's maximum-timestamp-so-far first reaches t. If no
// retained record is at or after t, the result is empty. Errors as Read.
func (s *Store) ReadFromTime(ctx context.Context, stream string, t time.Time, limit int) ([]StoredRecord, error) {
	m, err := s.beginStreamRead(stream, limit)
	if err != nil {
		return nil, err
	}
	defer s.endRead()
	ns := t.UnixNano()
	if t.Before(minTimestamp) {
		ns = -1 << 63
	} else if t.After(maxTimestamp) {
		return nil, nil
	}
	from, ok, err := s.findTime(stream, ns)
	if err != nil {
		return nil, fmt.Errorf("storage: read time index: %w", err)
	}
	if !ok || from >= m.NextOffset {
		return nil, nil
	}
	from = max(from, m.FirstOffset)
	// The first record at or after t lies in the run that holds from; the
	// scan below skips the older ones before it. Read one run further than
	// limit in case the skipped records shorten the page.
	var out []StoredRecord
	for len(out) < limit && from < m.NextOffset {
		end := min(m.NextOffset, from+uint64(limit-len(out)))
		recs, err := s.readRange(ctx, stream, from, end, ns, nil, &arena{})
		if err != nil {
			return nil, err
		}
		if len(recs) > 0 {
			ns = -1 << 63
		}
		out = append(out, recs...)
		from = end
	}
	return out, nil
}

// findTime is the index's time lookup through a fork's chain: the first
// link whose own records reach ns within the fork's view answers (a
// fork's own time keys start afresh at the fork, and the records before
// it did not reach ns).
func (s *Store) findTime(stream string, ns int64) (uint64, bool, error) {
	chain := s.forkChain(stream)
	if chain == nil {
		return s.x.findTime(stringBytes(stream), ns)
	}
	for _, l := range chain {
		off, ok, err := s.x.findTime(stringBytes(l.name), ns)
		if err != nil {
			return 0, false, err
		}
		if ok && off < l.to {
			return max(off, l.from), true, nil
		}
	}
	return 0, false, nil
}

// ReadGlobal returns up to limit records of every stream in commit order,
// starting at global position fromSeq. Only accepted records are returned
// (rejected and duplicate appends and cursor updates are journaled but
// skipped), each with Stream set. Seqs increase but have gaps.
func (s *Store) ReadGlobal(ctx context.Context, fromSeq uint64, limit int) ([]StoredRecord, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	if err := s.beginRead(); err != nil {
		return nil, err
	}
	defer s.endRead()
	var (
		mem arena
		out []StoredRecord
		gr  journal.GroupReader
		dec chunkDecoder
	)
	err := s.x.findChunk(fromSeq, func(firstSeq uint64, v []byte) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if err := dec.reset(v); err != nil {
			return false, err
		}
		err := s.j.Read(dec.Entry, func(e *journal.Entry) error {
			gr.ResetAt(e.Payload, int(dec.Offset), int(dec.Ordinal), firstSeq)
			for range dec.Groups {
				cg, err := dec.next()
				if err != nil {
					return err
				}
				if !gr.Next() {
					return fmt.Errorf("%w: chunk at seq %d names more groups than entry %d holds: %v", errCorruptIndex, firstSeq, dec.Entry, gr.Err())
				}
				g := gr.Group()
				if !cg.Accepted || g.FirstSeq+uint64(g.Records) <= fromSeq {
					continue
				}
				// The stream name is the one string per group; records
				// of one group share it.
				stream := string(g.Stream)
				for k := 0; gr.NextRecord(); k++ {
					rv := gr.Record()
					if rv.Seq < fromSeq {
						continue
					}
					if len(out) == limit {
						return nil
					}
					out = append(out, storedRecord(&mem, rv, stream, cg.Offset+uint64(k)))
				}
			}
			return gr.Err()
		})
		if errors.Is(err, journal.ErrTruncated) {
			return true, nil // removed by retention: continue with later chunks
		}
		if err != nil {
			return false, err
		}
		return len(out) < limit, nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: read global: %w", err)
	}
	return out, nil
}
