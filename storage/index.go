package storage

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// index wraps the Pebble database that holds the store's indexes.
//
// Pebble runs with its own WAL disabled (decision 0004): the journal is the
// source of truth, every Pebble batch carries the applied journal position,
// and Pebble persists only by flushing whole memtables, so the durable index
// is always a prefix of the applied batches and never runs ahead of the
// applied position stored with it.
//
// Writes (the batch methods) happen on one goroutine at a time: Open, then
// the business-logic processor. Reads are safe for concurrent use.
type index struct {
	db *pebble.DB
	// batch is the Pebble batch being built for the current ring batch.
	// It is reused across ring batches.
	batch *pebble.Batch
	// closed is set by close: a store whose snapshot install failed part-way
	// closes its index once there and again in Store.Close.
	closed bool
	// keyBuf and valBuf are scratch buffers for the batch writer.
	keyBuf []byte
	valBuf []byte
}

// pebbleLogger keeps Pebble quiet: informational lines are dropped, errors
// go to the store's logger.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(string, ...any) {}
func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := "pebble: " + fmt.Sprintf(format, args...)
	l.log.Error(msg)
	panic(msg)
}

func openIndex(dir string, fs vfs.FS, log *slog.Logger) (*index, error) {
	if err := mkdirDurable(fs, dir); err != nil {
		return nil, fmt.Errorf("storage: index directory %s: %w", dir, err)
	}
	db, err := pebble.Open(dir, &pebble.Options{
		FS:                 fs,
		FormatMajorVersion: pebble.FormatNewest,
		DisableWAL:         true,
		Logger:             pebbleLogger{log: log},
	})
	if err != nil {
		return nil, fmt.Errorf("storage: open index %s: %w", dir, err)
	}
	return &index{db: db, batch: db.NewBatch()}, nil
}

// close flushes the memtable (the WAL is off, so unflushed index state would
// otherwise be replayed from the journal on the next open) and closes.
func (x *index) close(flush bool) error {
	if x.closed {
		return nil
	}
	x.closed = true
	var ferr error
	if flush {
		ferr = x.db.Flush()
	}
	_ = x.batch.Close()
	cerr := x.db.Close()
	return errors.Join(ferr, cerr)
}

// get returns a copy of key's value, or (nil, false, nil).
func (x *index) get(key []byte, dst []byte) ([]byte, bool, error) {
	v, closer, err := x.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	dst = append(dst[:0], v...)
	_ = closer.Close()
	return dst, true, nil
}

// applied returns the applied position, or ok=false for an empty index.
func (x *index) applied() (p position, ok bool, err error) {
	v, ok, err := x.get(appliedKey, nil)
	if err != nil || !ok {
		return position{}, false, err
	}
	p, err = decodeApplied(v)
	return p, err == nil, err
}

// scanPrefix calls fn for every key with the prefix, in key order. The
// slices are valid only during the call.
func (x *index) scanPrefix(prefix []byte, fn func(k, v []byte) error) error {
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keyUpperBound(prefix)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		if err := fn(it.Key(), v); err != nil {
			_ = it.Close()
			return err
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// findRun returns the run that holds (stream, offset): the first run whose
// last offset is >= offset. ok is false when no run of the stream reaches
// offset.
func (x *index) findRun(stream []byte, offset uint64) (r run, lastOffset uint64, ok bool, err error) {
	prefix := streamPrefix(nil, tagRun, stream)
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keyUpperBound(prefix)})
	if err != nil {
		return run{}, 0, false, err
	}
	defer it.Close()
	if !it.SeekGE(runKey(nil, stream, offset)) {
		return run{}, 0, false, it.Error()
	}
	k := it.Key()
	lastOffset, err = decodeTrailingUint64(k, len(prefix))
	if err != nil {
		return run{}, 0, false, err
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return run{}, 0, false, err
	}
	r, err = decodeRun(v)
	if err != nil {
		return run{}, 0, false, err
	}
	return r, lastOffset, true, nil
}

// findTime returns the offset at which the stream's maximum timestamp first
// reached ns or later, and that run's time key. ok is false when every
// record of the stream is older than ns.
func (x *index) findTime(stream []byte, ns int64) (offset uint64, ok bool, err error) {
	prefix := streamPrefix(nil, tagTime, stream)
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keyUpperBound(prefix)})
	if err != nil {
		return 0, false, err
	}
	defer it.Close()
	if !it.SeekGE(timeKey(nil, stream, ns)) {
		return 0, false, it.Error()
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return 0, false, err
	}
	offset, err = decodeUint64(v)
	return offset, err == nil, err
}

// findChunk returns the chunk holding global position seq: the last chunk
// whose first seq is <= seq, or failing that the first chunk after seq.
// ok is false when no chunk exists at or after seq.
func (x *index) findChunk(seq uint64, fn func(firstSeq uint64, v []byte) (bool, error)) error {
	lower := []byte{tagChunk}
	it, err := x.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte{tagChunk + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	ok := it.SeekLT(chunkKey(nil, seq+1))
	if !ok {
		ok = it.First()
	}
	for ; ok; ok = it.Next() {
		first, err := decodeTrailingUint64(it.Key(), 1)
		if err != nil {
			return err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		more, err := fn(first, v)
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}

func decodeUint64(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: %d-byte integer", errCorruptIndex, len(v))
	}
	return uint64(v[0])<<56 | uint64(v[1])<<48 | uint64(v[2])<<40 | uint64(v[3])<<32 |
		uint64(v[4])<<24 | uint64(v[5])<<16 | uint64(v[6])<<8 | uint64(v[7]), nil
}

func decodeTrailingUint64(k []byte, prefixLen int) (uint64, error) {
	if len(k) != prefixLen+8 {
		return 0, fmt.Errorf("%w: key %x", errCorruptIndex, k)
	}
	return decodeUint64(k[prefixLen:])
}

// The batch writers below append to x.batch. REQUIRES: the caller is the
// index's single writer.

func (x *index) setStream(stream []byte, m *streamMeta) error {
	x.keyBuf = streamKey(x.keyBuf[:0], stream)
	x.valBuf = encodeStreamMeta(x.valBuf[:0], m)
	return x.batch.Set(x.keyBuf, x.valBuf, nil)
}

func (x *index) setRun(stream []byte, lastOffset uint64, r run) error {
	x.keyBuf = runKey(x.keyBuf[:0], stream, lastOffset)
	x.valBuf = encodeRun(x.valBuf[:0], r)
	return x.batch.Set(x.keyBuf, x.valBuf, nil)
}

func (x *index) setTime(stream []byte, ns int64, offset uint64) error {
	x.keyBuf = timeKey(x.keyBuf[:0], stream, ns)
	x.valBuf = appendUint64(x.valBuf[:0], offset)
	return x.batch.Set(x.keyBuf, x.valBuf, nil)
}

func (x *index) setIdem(stream, key []byte, r idemRecord) error {
	x.keyBuf = idemKey(x.keyBuf[:0], stream, key)
	x.valBuf = encodeIdem(x.valBuf[:0], r)
	return x.batch.Set(x.keyBuf, x.valBuf, nil)
}

func (x *index) deleteIdem(stream, key []byte) error {
	x.keyBuf = idemKey(x.keyBuf[:0], stream, key)
	return x.batch.Delete(x.keyBuf, nil)
}

func (x *index) setCursor(stream, name []byte, offset uint64) error {
	x.keyBuf = cursorKey(x.keyBuf[:0], stream, name)
	x.valBuf = appendUint64(x.valBuf[:0], offset)
	return x.batch.Set(x.keyBuf, x.valBuf, nil)
}

func (x *index) setProducer(stream, id []byte, p producerState) error {
	x.keyBuf = producerKey(x.keyBuf[:0], stream, id)
	x.valBuf = encodeProducer(x.valBuf[:0], p)
	return x.batch.Set(x.keyBuf, x.valBuf, nil)
}

// deletePrefix deletes every key that starts with prefix (one range
// tombstone).
func (x *index) deletePrefix(prefix []byte) error {
	return x.batch.DeleteRange(prefix, keyUpperBound(prefix), nil)
}

func (x *index) deleteStream(stream []byte) error {
	x.keyBuf = streamKey(x.keyBuf[:0], stream)
	return x.batch.Delete(x.keyBuf, nil)
}

func (x *index) setChunk(firstSeq uint64, v []byte) error {
	x.keyBuf = chunkKey(x.keyBuf[:0], firstSeq)
	return x.batch.Set(x.keyBuf, v, nil)
}

func (x *index) setApplied(p position) error {
	x.valBuf = encodeApplied(x.valBuf[:0], p)
	return x.batch.Set(appliedKey, x.valBuf, nil)
}

// commit applies the batch. The WAL is disabled, so this is a memtable
// insert; durability comes from flushes.
func (x *index) commit() error {
	if x.batch.Empty() {
		return nil
	}
	err := x.batch.Commit(pebble.NoSync)
	x.batch.Reset()
	return err
}

func appendUint64(dst []byte, v uint64) []byte {
	return append(dst, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
		byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
