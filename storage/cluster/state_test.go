package cluster

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sectorSize is the unit a torn write is made of here: a power loss during
// a write leaves each sector of it either old or new.
const sectorSize = 512

// TestStateTornSaves: after any prefix of a sequence of saves, a power loss
// that leaves each 512-byte sector of the unsynced writes either on disk or
// not (every combination) reopens the newest durable term and vote, never
// an older one. An older vote lets the node vote twice in one term, and two
// leaders of one term break everything raft promises.
//
// The sequence is raft's usual one: a durable save when the term or the
// vote changes, then saves of the commit index that are not synced.
func TestStateTornSaves(t *testing.T) {
	fs := vfs.NewCrashableMem()
	require.NoError(t, mkdirDurable(fs, "/c"))
	p := persistent{NodeID: 1, ClusterID: 9, Voters: []uint64{1, 2, 3}}
	for id := uint64(1); id <= 3; id++ {
		// Long addresses, so that one save spans several sectors.
		p.Members = append(p.Members, member{ID: id, ClusterAddr: fmt.Sprintf("node-%d.%s:7000", id, strings.Repeat("x", 200))})
	}
	sf, err := createState(fs, "/c", p)
	require.NoError(t, err)
	defer func() { require.NoError(t, sf.close()) }()
	path := fs.PathJoin("/c", stateFileName)

	type hv struct{ term, vote uint64 }
	durable := hv{0, 0}
	steps := []struct {
		term, vote, commit uint64
		durable            bool
	}{
		{1, 1, 0, true}, {1, 1, 5, false}, {1, 1, 9, false}, {1, 1, 12, false},
		{2, 0, 12, true}, {2, 3, 12, true}, {2, 3, 20, false}, {2, 3, 31, false},
		// The commit index gains a digit: the body grows by a byte, so a
		// save differs from the one two saves before in every sector
		// after the commit field.
		{3, 3, 99, true}, {3, 3, 100, false}, {3, 3, 101, false}, {3, 3, 102, false},
		{4, 2, 102, true}, {4, 2, 999, false}, {4, 2, 1000, false}, {4, 2, 1001, false},
	}
	images := 0
	for i, s := range steps {
		p.Term, p.Vote, p.Commit = s.term, s.vote, s.commit
		require.NoError(t, sf.save(p, s.durable))
		if s.durable {
			durable = hv{s.term, s.vote}
		}
		synced := readFile(t, fs.CrashClone(vfs.CrashCloneCfg{}), path)
		current := readFile(t, fs, path)
		var torn []int // sectors whose unsynced content differs
		for off := 0; off < max(len(synced), len(current)); off += sectorSize {
			if !bytes.Equal(sector(synced, off), sector(current, off)) {
				torn = append(torn, off)
			}
		}
		require.LessOrEqual(t, len(torn), 12, "step %d", i)
		for mask := 0; mask < 1<<len(torn); mask++ {
			img := bytes.Clone(synced)
			for k, off := range torn {
				if mask&(1<<k) != 0 {
					if need := off + sectorSize; len(img) < need {
						img = append(img, make([]byte, need-len(img))...)
					}
					copy(img[off:off+sectorSize], sector(current, off))
				}
			}
			got := openImage(t, img)
			images++
			require.NotNil(t, got, "step %d, image %b of sectors %v: no valid slot", i, mask, torn)
			assert.Equal(t, durable, hv{got.Term, got.Vote},
				"step %d, image %b of sectors %v: the newest durable term and vote are lost", i, mask, torn)
		}
	}
	t.Logf("%d torn images checked", images)
}

func readFile(t *testing.T, fs vfs.FS, path string) []byte {
	t.Helper()
	f, err := fs.Open(path)
	require.NoError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	return b
}

// sector returns the sectorSize bytes of b at off, zero-padded.
func sector(b []byte, off int) []byte {
	s := make([]byte, sectorSize)
	if off < len(b) {
		copy(s, b[off:])
	}
	return s
}

// openImage opens a state file holding img; nil if it has no valid slot.
func openImage(t *testing.T, img []byte) *persistent {
	t.Helper()
	fs := vfs.NewMem()
	f, err := fs.Create("state", vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	_, err = f.Write(img)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	sf, p, err := openState(fs, "state")
	if err != nil {
		return nil
	}
	require.NoError(t, sf.close())
	return &p
}
