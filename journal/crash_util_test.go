package journal_test

// Helpers shared by the crash, torn-tail, fault-injection and fuzz tests.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"

	"github.com/badbatch/badbatch/journal"
)

// crashCycles returns the iteration count of a long loop: the value of
// BADBATCH_CRASH_CYCLES if set (CI sets 200, a soak 2000+), else def, or
// short under -short. The count used is always logged.
func crashCycles(t testing.TB, def, short int) int {
	t.Helper()
	if s := os.Getenv("BADBATCH_CRASH_CYCLES"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "BADBATCH_CRASH_CYCLES=%q", s)
		require.Positive(t, n, "BADBATCH_CRASH_CYCLES")
		t.Logf("cycles: %d (BADBATCH_CRASH_CYCLES)", n)
		return n
	}
	n := def
	if testing.Short() {
		n = short
	}
	t.Logf("cycles: %d (default; set BADBATCH_CRASH_CYCLES to change)", n)
	return n
}

// payloadGroups returns one group with one record whose value is valueSize
// random bytes, as a Write argument, and the entry payload it makes.
func payloadGroups(rng *rand.Rand, valueSize int) ([][]byte, []byte) {
	v := make([]byte, valueSize)
	for i := range v {
		v[i] = byte(rng.Uint32())
	}
	g := journal.AppendGroup(nil, &journal.Group{Stream: []byte("s"), Timestamp: 1}, []journal.Record{{Timestamp: 1, Value: v}})
	return [][]byte{g}, g
}

// multiGroups returns 1-3 groups of 1-3 records with values up to maxValue
// bytes, and the payload they make.
func multiGroups(rng *rand.Rand, maxValue int) ([][]byte, []byte) {
	groups := make([][]byte, 1+rng.IntN(3))
	var payload []byte
	for g := range groups {
		recs := make([]journal.Record, 1+rng.IntN(3))
		for r := range recs {
			v := make([]byte, rng.IntN(maxValue+1))
			for i := range v {
				v[i] = byte(rng.Uint32())
			}
			recs[r] = journal.Record{Timestamp: int64(r), Key: []byte{byte(g), byte(r)}, Value: v}
		}
		groups[g] = journal.AppendGroup(nil, &journal.Group{Stream: []byte(fmt.Sprintf("s%d", g)), Timestamp: 7}, recs)
		payload = append(payload, groups[g]...)
	}
	return groups, payload
}

// modelEntry is one entry as written: what a crash image that keeps it
// must read back.
type modelEntry struct {
	kind    journal.EntryKind
	term    uint64
	payload []byte
}

// raftEntry returns a random entry as raft's log holds them: an empty
// KindGroups entry (a new leader's), a conf change (opaque bytes, up to
// 300), or 1-3 groups (multiGroups) as one payload.
func raftEntry(rng *rand.Rand, term uint64, maxValue int) modelEntry {
	switch rng.IntN(4) {
	case 0:
		return modelEntry{kind: journal.KindGroups, term: term}
	case 1:
		b := make([]byte, rng.IntN(301))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return modelEntry{kind: journal.KindConfChange, term: term, payload: b}
	default:
		_, payload := multiGroups(rng, maxValue)
		return modelEntry{kind: journal.KindGroups, term: term, payload: payload}
	}
}

// writeModelEntry writes e at the journal's next index with WriteEntry.
func writeModelEntry(j *journal.Journal, e modelEntry) (journal.EntryInfo, error) {
	return j.WriteEntry(j.LastIndex()+1, e.term, e.kind, e.payload)
}

// readEntries returns copies of every entry from FirstIndex on, as the
// iterator reads them, and checks on the way that Term and Info agree with
// what the iterator read (kind and term).
func readEntries(j *journal.Journal) (first uint64, entries []modelEntry, err error) {
	first = j.FirstIndex()
	it := j.NewIterator(first)
	defer it.Close()
	for it.Next() {
		e := it.Entry()
		entries = append(entries, modelEntry{kind: e.Kind, term: e.Term, payload: bytes.Clone(e.Payload)})
		term, err := j.Term(e.Index)
		if err != nil {
			return first, entries, err
		}
		info, err := j.Info(e.Index)
		if err != nil {
			return first, entries, err
		}
		if term != e.Term || info != e.EntryInfo {
			return first, entries, fmt.Errorf("entry %d: Term %d and Info %+v disagree with the entry read, %+v", e.Index, term, info, e.EntryInfo)
		}
	}
	return first, entries, it.Err()
}

// sameEntry reports whether got reads back as want was written (a nil
// and an empty payload are the same).
func sameEntry(want, got modelEntry) bool {
	return want.kind == got.kind && want.term == got.term && bytes.Equal(want.payload, got.payload)
}

// readAll returns copies of every entry's payload from FirstIndex on, and
// the iterator's error.
func readAll(j *journal.Journal) (first uint64, payloads [][]byte, err error) {
	first = j.FirstIndex()
	it := j.NewIterator(first)
	defer it.Close()
	for it.Next() {
		payloads = append(payloads, bytes.Clone(it.Entry().Payload))
	}
	return first, payloads, it.Err()
}

// openOn opens dir on fs with test options.
func openOn(fs vfs.FS, dir string, segmentSize int64) (*journal.Journal, error) {
	opts := journal.DefaultOptions()
	opts.FS = fs
	if segmentSize > 0 {
		opts.SegmentSize = segmentSize
	}
	return journal.Open(dir, opts)
}
