package journal

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// TestModel runs random operations against the journal and a naive model
// (a slice of payloads, terms and kinds with a first index) and checks that
// they agree after every step: Write, WriteEntry of every kind (empty
// KindGroups entries and conf changes included) with terms that grow as
// raft's do (an election after a TruncateBack), Sync, Append,
// TruncateFront, TruncateBack, EnforceRetention, iterators from random
// points, and Close + Open. After every step Term agrees with the model at
// every index.
func TestModel(t *testing.T) {
	seeds := 8
	steps := 400
	if testing.Short() {
		seeds, steps = 3, 200
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 42))
			fs := vfs.NewMem()
			o := testOptions(fs, int64(1<<10+rng.IntN(8<<10)))
			o.MaxEntrySize = 16 << 10
			j := mustOpen(t, "/j", o)
			defer func() { _ = j.Close() }()
			m := &testModel{first: 1}
			var nextSeq, term uint64
			for step := range steps {
				switch op := rng.IntN(100); {
				case op < 30:
					g := entryGroups(rng.IntN(1000), 8+rng.IntN(1500))
					info, err := j.Write(g)
					require.NoError(t, err)
					require.Equal(t, m.last()+1, info.Index, "step %d", step)
					require.Equal(t, nextSeq, info.FirstSeq)
					nextSeq += uint64(info.Records)
					m.add(info, g)
				case op < 55:
					if rng.IntN(5) == 0 {
						term++ // an election
					}
					kind, payload := randomEntry(rng, 1500)
					info, err := j.WriteEntry(m.last()+1, term, kind, payload)
					require.NoError(t, err, "step %d", step)
					require.Equal(t, m.last()+1, info.Index, "step %d", step)
					require.Equal(t, nextSeq, info.FirstSeq)
					require.Equal(t, term, info.Term)
					require.Equal(t, kind, info.Kind)
					nextSeq += uint64(info.Records)
					m.addEntry(info, payload)
				case op < 65:
					require.NoError(t, j.Sync())
				case op < 72 && len(m.payloads) > 0:
					to := m.first - 1 + uint64(rng.IntN(len(m.payloads)+1))
					require.NoError(t, j.TruncateBack(to))
					if to < m.last() {
						nextSeq = m.seqs[to+1-m.first]
						term++ // a new leader replaces the suffix
					}
					m.dropBack(to)
				case op < 78:
					to := m.first + uint64(rng.IntN(len(m.payloads)+1))
					require.NoError(t, j.TruncateFront(to))
					require.LessOrEqual(t, j.FirstIndex(), to)
					require.GreaterOrEqual(t, j.FirstIndex(), m.first)
					m.dropFront(j.FirstIndex())
				case op < 85:
					require.NoError(t, j.Close())
					j = mustOpen(t, "/j", o)
					require.False(t, j.RepairReport().Truncated, "a clean close needs no repair")
				case op < 95 && len(m.payloads) > 0:
					from := m.first + uint64(rng.IntN(len(m.payloads)))
					it := j.NewIterator(from)
					for k := from; k <= m.last(); k++ {
						require.True(t, it.Next(), "entry %d: %v", k, it.Err())
						require.Equal(t, k, it.Entry().Index)
						require.True(t, bytes.Equal(m.payloads[k-m.first], it.Entry().Payload))
					}
					require.False(t, it.Next())
					require.NoError(t, it.Err())
					require.NoError(t, it.Close())
				default:
					_, err := j.Append(entryGroups(step, 100))
					require.NoError(t, err)
					info := EntryInfo{Index: m.last() + 1, FirstSeq: nextSeq}
					nextSeq += uint64(entryRecords(entryGroups(step, 100)))
					m.add(info, entryGroups(step, 100))
				}
				require.Equal(t, m.first, j.FirstIndex(), "step %d", step)
				require.Equal(t, m.last(), j.LastIndex(), "step %d", step)
				require.Equal(t, nextSeq, j.NextSeq(), "step %d", step)
				for k, want := range m.terms {
					got, err := j.Term(m.first + uint64(k))
					require.NoError(t, err, "step %d", step)
					require.Equal(t, want, got, "step %d: Term(%d)", step, m.first+uint64(k))
				}
			}
			requireMatches(t, j, m)
		})
	}
}

// randomEntry returns a random WriteEntry kind and payload: an empty
// KindGroups entry (raft's empty entry), a conf change (opaque bytes,
// sometimes none), or one to three groups of test records.
func randomEntry(rng *rand.Rand, maxValue int) (EntryKind, []byte) {
	switch rng.IntN(4) {
	case 0:
		return KindGroups, nil
	case 1:
		b := make([]byte, rng.IntN(200))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return KindConfChange, b
	default:
		return KindGroups, bytes.Join(entryGroups(rng.IntN(1000), 8+rng.IntN(maxValue)), nil)
	}
}
