package cluster

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// FuzzStateSlot: decodeSlot never panics, accepts only what a save wrote
// (magic, length, CRC), and a slot it accepts re-encodes to a slot that
// decodes to the same state.
func FuzzStateSlot(f *testing.F) {
	fs := vfs.NewMem()
	require.NoError(f, fs.MkdirAll("/c", 0o755))
	sf, err := createState(fs, "/c", persistent{NodeID: 3, ClusterID: 9, Term: 4, Vote: 2, Commit: 17,
		Voters: []uint64{1, 2, 3}, Members: []member{{ID: 1, ClusterAddr: "a:1", URL: "http://a"}}})
	require.NoError(f, err)
	f.Add(append([]byte(nil), sf.buf...))
	require.NoError(f, sf.close())
	f.Add([]byte("BBCS"))
	f.Add(make([]byte, stateHeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, seq, ok := decodeSlot(b)
		if !ok {
			return
		}
		mem := vfs.NewMem()
		require.NoError(t, mem.MkdirAll("/d", 0o755))
		f2, err := createState(mem, "/d", p)
		require.NoError(t, err)
		defer func() { _ = f2.close() }()
		p2, _, ok2 := decodeSlot(f2.buf)
		require.True(t, ok2)
		require.Equal(t, p, p2, "seq %d", seq)
	})
}
