package storage

import (
	"bytes"
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// FuzzSnapshotStream: a snapshot stream of any bytes is either refused with
// ErrBadSnapshot (or a journal error), leaving no staging directory, or
// staged completely; it never panics and never touches the live store.
func FuzzSnapshotStream(f *testing.F) {
	fs := vfs.NewMem()
	o := memOptions(fs)
	o.Replication = &Replication{Proposer: noProposer{}}
	o.SegmentSize = 64 << 10 // a staged journal preallocates one segment per input
	src, err := Open("/src", memOptions(fs))
	require.NoError(f, err)
	for i := range 3 {
		_, err := src.Append(context.Background(), "s", Record{Value: []byte{byte(i)}})
		require.NoError(f, err)
	}
	var good bytes.Buffer
	require.NoError(f, src.WriteSnapshot(&good, src.j.LastIndex()))
	require.NoError(f, src.Close())
	f.Add(good.Bytes())
	f.Add([]byte(snapshotMagic))
	f.Add(good.Bytes()[:len(good.Bytes())/2])
	dst, err := Open("/dst", o)
	require.NoError(f, err)
	f.Cleanup(func() { _ = dst.Close() })
	stage := fs.PathJoin("/dst", snapshotStage)
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := dst.ReceiveSnapshot(bytes.NewReader(b))
		if err != nil {
			_, serr := fs.Stat(stage)
			require.Error(t, serr, "a refused snapshot leaves no staging directory")
			return
		}
		require.Equal(t, info.LastIndex-info.FirstIndex+1, info.Entries)
		require.NoError(t, fs.RemoveAll(stage))
	})
}

// noProposer is a Proposer for stores that never append in a test.
type noProposer struct{}

func (noProposer) Propose(*Proposal) {}
