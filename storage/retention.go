package storage

import (
	"errors"
	"fmt"
	"time"

	"github.com/badbatch/badbatch/journal"
	"github.com/cockroachdb/pebble/v2"
)

// Retention is the store's, not the journal's: the journal's own automatic
// retention could drop entries the durable index has not applied yet, and
// Open could then not catch the index up. The store therefore opens the
// journal without retention limits and calls TruncateFront itself, never
// beyond the entry the last completed index flush made durable.

// retentionInterval is how often the retention goroutine checks the limits
// when no index flush wakes it.
const retentionInterval = time.Second

// startRetention enforces the limits once, so that a store opened over
// more data than its limits allow (written before the last index flush, or
// under other limits) serves none of it, then starts the retention
// goroutine, which also reaps expired streams (lifecycle.go). Close stops
// and joins it.
func (s *Store) startRetention() {
	limits := s.opts.RetentionBytes != 0 || s.opts.RetentionAge != 0
	if limits {
		if _, err := s.enforceRetention(time.Now()); err != nil {
			s.log.Error("storage: retention at open", "err", err)
		}
	}
	s.retainKick = make(chan struct{}, 1)
	s.retainStop = make(chan struct{})
	s.retainWG.Go(func() {
		t := time.NewTicker(retentionInterval)
		defer t.Stop()
		for {
			select {
			case <-s.retainStop:
				return
			case <-t.C:
			case <-s.retainKick:
			}
			s.reapExpired()
			if !limits {
				continue
			}
			if _, err := s.enforceRetention(time.Now()); err != nil {
				s.log.Error("storage: retention", "err", err)
			}
		}
	})
}

func (s *Store) stopRetention() {
	if s.retainStop != nil {
		close(s.retainStop)
		s.retainWG.Wait()
	}
}

// kickRetention wakes the retention goroutine (after an index flush).
func (s *Store) kickRetention() {
	if s.retainKick == nil {
		return
	}
	select {
	case s.retainKick <- struct{}{}:
	default:
	}
}

// enforceRetention drops the journal's oldest sealed segments beyond
// RetentionBytes (estimated from the mean entry size) or older than
// RetentionAge (exact: entries carry their write time), but never an entry
// at or after the durable index position. It then trims the index below
// the new start and advances the streams' FirstOffset. It returns whether
// the journal's first entry moved.
func (s *Store) enforceRetention(now time.Time) (bool, error) {
	s.retainMu.Lock()
	defer s.retainMu.Unlock()
	st := s.j.Stats()
	if st.Entries == 0 {
		return false, nil
	}
	first := st.FirstIndex
	target := first
	if lim := s.opts.RetentionBytes; lim > 0 && st.Bytes > lim {
		avg := max(1, st.Bytes/int64(st.Entries))
		target = max(target, first+uint64((st.Bytes-lim+avg-1)/avg))
	}
	if age := s.opts.RetentionAge; age > 0 {
		cutoff := now.Add(-age).UnixNano()
		lo, hi := first, st.LastIndex+1 // first entry written at or after cutoff
		for lo < hi {
			mid := lo + (hi-lo)/2
			var ts int64
			if err := s.j.Read(mid, func(e *journal.Entry) error { ts = e.Timestamp; return nil }); err != nil {
				return false, fmt.Errorf("storage: retention: read entry %d: %w", mid, err)
			}
			if ts < cutoff {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		target = max(target, lo)
	}
	cut := min(target, s.durableEntry.Load(), s.retentionFloor.Load())
	if cut <= first {
		return false, nil
	}
	if err := s.j.TruncateFront(cut); err != nil {
		if errors.Is(err, journal.ErrFailed) {
			s.fail(err)
		}
		return false, fmt.Errorf("storage: retention: truncate journal before entry %d: %w", cut, err)
	}
	newFirst := s.j.FirstIndex()
	if newFirst == first {
		return false, nil
	}
	return true, s.trimIndex(newFirst)
}

// trimIndex sets every stream's FirstOffset to its first record in an
// entry at or after newFirst and deletes the index keys below it. The
// deletions need no durability: keys that reappear after a crash point at
// removed entries and are cut off by FirstOffset.
func (s *Store) trimIndex(newFirst uint64) error {
	s.stateMu.RLock()
	streams := make([]*streamState, 0, len(s.app.streams))
	for _, st := range s.app.streams {
		streams = append(streams, st)
	}
	s.stateMu.RUnlock()

	b := s.x.db.NewBatch()
	defer b.Close()
	for _, st := range streams {
		first, err := s.firstRetained(st.key, newFirst)
		if err != nil {
			return err
		}
		if first == 0 {
			continue
		}
		s.stateMu.RLock()
		fork, forkOffset := st.pub.Source != "", st.pub.ForkOffset
		s.stateMu.RUnlock()
		if fork && first <= forkOffset {
			// The fork's own records are all retained; what it reads
			// below them is its source's, trimmed with the source.
			continue
		}
		if err := b.DeleteRange(runKey(nil, st.key, 0), runKey(nil, st.key, first), nil); err != nil {
			return err
		}
		if err := s.trimTimeKeys(b, st.key, first); err != nil {
			return err
		}
		s.stateMu.Lock()
		if first > st.pub.FirstOffset {
			st.pub.FirstOffset = first
		}
		s.stateMu.Unlock()
	}
	var firstSeq uint64
	err := s.j.Read(newFirst, func(e *journal.Entry) error { firstSeq = e.FirstSeq; return nil })
	if err != nil && !errors.Is(err, journal.ErrOutOfRange) {
		return fmt.Errorf("storage: retention: read entry %d: %w", newFirst, err)
	}
	if err == nil {
		if err := b.DeleteRange(chunkKey(nil, 0), chunkKey(nil, firstSeq), nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.NoSync)
}

// firstRetained returns the first offset of stream stored in an entry at
// or after newFirst (the stream's next offset if none is).
func (s *Store) firstRetained(stream []byte, newFirst uint64) (uint64, error) {
	first := uint64(0)
	prefix := streamPrefix(nil, tagRun, stream)
	err := s.x.scanPrefix(prefix, func(k, v []byte) error {
		r, err := decodeRun(v)
		if err != nil {
			return err
		}
		last, err := decodeTrailingUint64(k, len(prefix))
		if err != nil {
			return err
		}
		if r.Entry >= newFirst {
			first = last - uint64(r.Count) + 1
			return errStopScan
		}
		first = last + 1
		return nil
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	return first, err
}

var errStopScan = errors.New("stop scan")

// trimTimeKeys deletes the stream's time keys that can no longer answer a
// query: those before the last key whose offset is below first (that one
// still covers times up to the first retained record).
func (s *Store) trimTimeKeys(b *pebble.Batch, stream []byte, first uint64) error {
	var keep []byte
	prefix := streamPrefix(nil, tagTime, stream)
	err := s.x.scanPrefix(prefix, func(k, v []byte) error {
		off, err := decodeUint64(v)
		if err != nil {
			return err
		}
		if off >= first {
			return errStopScan
		}
		keep = append(keep[:0], k...)
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return err
	}
	if keep == nil {
		return nil
	}
	return b.DeleteRange(prefix, keep, nil)
}
