package journal

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// failAt is an errorfs injector that fails the n-th mutating operation
// (counting from 0) and records every mutating operation after it.
type failAt struct {
	n     int64
	seen  atomic.Int64
	after []errorfs.Op
	fired atomic.Bool
}

func (f *failAt) String() string { return fmt.Sprintf("failAt(%d)", f.n) }

func (f *failAt) MaybeError(op errorfs.Op) error {
	if op.Kind.ReadOrWrite() != errorfs.OpIsWrite {
		return nil
	}
	i := f.seen.Add(1) - 1
	if i == f.n {
		f.fired.Store(true)
		return errorfs.ErrInjected
	}
	if f.fired.Load() {
		f.after = append(f.after, op)
	}
	return nil
}

// failureWorkload appends entries with rolls, retention and truncations
// until the first error, and returns the payloads of the acknowledged
// entries (by index) and the error.
func failureWorkload(fs vfs.FS, model map[uint64][]byte) (*Journal, error) {
	o := testOptions(fs, 2<<10)
	o.RetentionBytes = 6 << 10
	j, err := Open("/j", o)
	if err != nil {
		return nil, err
	}
	for i := range 40 {
		g := entryGroups(i, 150)
		info, err := j.Append(g)
		if err != nil {
			return j, err
		}
		model[info.Index] = bytes.Join(g, nil)
		switch i {
		case 20:
			for k := info.Index - 2; k <= info.Index; k++ {
				delete(model, k) // gone, or (if TruncateBack fails) either way
			}
			if err := j.TruncateBack(info.Index - 3); err != nil {
				return j, err
			}
		case 30:
			if err := j.TruncateFront(info.Index - 4); err != nil {
				return j, err
			}
		}
	}
	return j, nil
}

// TestStickyErrorAtEveryOperation injects a failure at every mutating file
// system operation of a workload in turn. After the failure every mutation
// returns the same error (ErrFailed wrapping the cause), no fsync is
// retried, and reopening on the same disk finds every acknowledged entry.
func TestStickyErrorAtEveryOperation(t *testing.T) {
	clean := &failAt{n: -1}
	_, err := failureWorkload(errorfs.Wrap(vfs.NewMem(), clean), map[uint64][]byte{})
	require.NoError(t, err)
	total := clean.seen.Load()
	require.Greater(t, total, int64(100))
	step := int64(1)
	if testing.Short() {
		step = 7
	}
	for n := int64(0); n < total; n += step {
		t.Run(fmt.Sprint("op=", n), func(t *testing.T) {
			mem := vfs.NewMem()
			inj := &failAt{n: n}
			model := map[uint64][]byte{}
			j, err := failureWorkload(errorfs.Wrap(mem, inj), model)
			require.Error(t, err)
			require.True(t, inj.fired.Load())
			require.ErrorIs(t, err, errorfs.ErrInjected)
			if j == nil {
				return // Open failed; nothing was acknowledged
			}
			require.ErrorIs(t, err, ErrFailed)
			assert.Equal(t, err, j.Err(), "the error is sticky and the same")
			_, werr := j.Append(entryGroups(1, 10))
			assert.ErrorIs(t, werr, ErrFailed)
			assert.ErrorIs(t, j.Sync(), ErrFailed)
			assert.ErrorIs(t, j.TruncateBack(1), ErrFailed)
			assert.ErrorIs(t, j.TruncateFront(1), ErrFailed)
			for _, op := range inj.after {
				assert.NotEqual(t, errorfs.OpFileSyncData, op.Kind, "fsync retried after the failure: %v", op)
				assert.NotEqual(t, errorfs.OpFileWriteAt, op.Kind, "write after the failure: %v", op)
			}
			_ = j.Close()

			j2, err := Open("/j", testOptions(mem, 2<<10))
			require.NoError(t, err, "reopen repairs")
			defer j2.Close()
			for idx, want := range model {
				if idx < j2.FirstIndex() {
					continue // retention may have removed it
				}
				require.NoError(t, j2.Read(idx, func(e *Entry) error {
					if !bytes.Equal(want, e.Payload) {
						return errors.New("payload differs")
					}
					return nil
				}), "acknowledged entry %d", idx)
			}
		})
	}
}

// TestFailedWriteIsNotPublished: the in-memory state never includes a
// frame whose write failed.
func TestFailedWriteIsNotPublished(t *testing.T) {
	mem := vfs.NewMem()
	var failWrites atomic.Bool
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if failWrites.Load() && op.Kind == errorfs.OpFileWriteAt {
			return errorfs.ErrInjected
		}
		return nil
	}))
	j := mustOpen(t, "/j", testOptions(fs, 1<<20))
	_, err := j.Append(entryGroups(1, 10))
	require.NoError(t, err)
	failWrites.Store(true)
	_, err = j.Write(entryGroups(2, 10))
	require.ErrorIs(t, err, ErrFailed)
	assert.ErrorContains(t, err, "write 00000000000000000001.seg at offset")
	assert.Equal(t, uint64(1), j.LastIndex())
	assert.ErrorIs(t, j.Read(2, func(*Entry) error { return nil }), ErrOutOfRange)
	require.NoError(t, j.Read(1, func(*Entry) error { return nil }), "reads still work")
	require.NoError(t, j.Close())
}
