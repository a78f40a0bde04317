package crashtest

import (
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
)

// opStatus is what a client knows of an append's outcome.
type opStatus uint8

const (
	// statusAcked: 201; the records are durable at the returned offsets.
	statusAcked opStatus = iota + 1
	// statusFailed: a definite refusal (409, 400, 413, ...); nothing was
	// stored.
	statusFailed
	// statusUnknown: no answer (connection reset, timeout) or a 503: the
	// append may or may not have been stored, but only ever whole, once.
	statusUnknown
)

func (s opStatus) String() string {
	return [...]string{"?", "acked", "failed", "unknown"}[s]
}

// appendOp is one append as the client saw it. Every payload of every
// operation of a history is unique, so a payload names its operation.
type appendOp struct {
	id       int
	stream   string
	payloads []string
	status   opStatus
	// first is the acknowledged first offset (statusAcked only).
	first uint64
	// firstSeq is the acknowledged first global position (statusAcked only;
	// checked when checkSeq is set).
	firstSeq uint64
	checkSeq bool
}

// readRecord is one record read back from the store.
type readRecord struct {
	stream  string
	offset  uint64
	seq     uint64
	payload string
}

// checkResult counts what the checker saw.
type checkResult struct {
	acked, failed, unknownPresent, unknownAbsent int
	records                                      int
	problems                                     []string
}

func (r *checkResult) problem(format string, args ...any) {
	if len(r.problems) < 50 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	} else if len(r.problems) == 50 {
		r.problems = append(r.problems, "... (more problems not listed)")
	}
}

// checkHistory is the queue checker. Given every append the clients made
// and everything read back (each stream from its first offset, and the
// global log when global is not nil), it reports:
//
//   - lost: an acknowledged record missing, or not at its acknowledged
//     offset (and global position, when known);
//   - duplicate: a payload stored twice;
//   - gap: a stream's offsets not dense from its first offset;
//   - mismatch: a record whose payload no operation wrote (corruption), or
//     an acknowledged offset holding another payload;
//   - stored failure: a record of a definitely failed append;
//   - torn batch: an append only partly stored, or not contiguous;
//   - global order: the global log not strictly increasing in seq, or
//     disagreeing with the streams.
func checkHistory(ops []appendOp, streams map[string][]readRecord, global []readRecord) checkResult {
	var res checkResult
	type where struct {
		op, idx int
	}
	owner := make(map[string]where)
	for i, op := range ops {
		for j, p := range op.payloads {
			owner[p] = where{i, j}
		}
	}
	type loc struct {
		stream string
		offset uint64
		seq    uint64
	}
	found := make(map[string]loc)
	names := make([]string, 0, len(streams))
	for name := range streams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		recs := streams[name]
		for i, r := range recs {
			res.records++
			if i > 0 && r.offset != recs[i-1].offset+1 {
				res.problem("gap: stream %s offset %d follows offset %d", name, r.offset, recs[i-1].offset)
			}
			if r.stream != "" && r.stream != name {
				res.problem("mismatch: stream %s offset %d is labelled stream %s", name, r.offset, r.stream)
			}
			if prev, dup := found[r.payload]; dup {
				res.problem("duplicate: payload %.40q at %s/%d and %s/%d", r.payload, prev.stream, prev.offset, name, r.offset)
				continue
			}
			found[r.payload] = loc{name, r.offset, r.seq}
			w, ok := owner[r.payload]
			if !ok {
				res.problem("mismatch: stream %s offset %d holds a payload no operation wrote: %.40q", name, r.offset, r.payload)
				continue
			}
			if ops[w.op].stream != name {
				res.problem("mismatch: payload of op %d (stream %s) found in stream %s offset %d", ops[w.op].id, ops[w.op].stream, name, r.offset)
			}
		}
	}
	for _, op := range ops {
		present := 0
		for _, p := range op.payloads {
			if _, ok := found[p]; ok {
				present++
			}
		}
		switch op.status {
		case statusAcked:
			res.acked++
			for j, p := range op.payloads {
				l, ok := found[p]
				want := op.first + uint64(j)
				switch {
				case !ok:
					res.problem("lost: op %d record %d (stream %s offset %d) acknowledged but not stored", op.id, j, op.stream, want)
				case l.stream != op.stream || l.offset != want:
					res.problem("mismatch: op %d record %d acknowledged at %s/%d but stored at %s/%d", op.id, j, op.stream, want, l.stream, l.offset)
				case op.checkSeq && l.seq != op.firstSeq+uint64(j):
					res.problem("mismatch: op %d record %d acknowledged at seq %d but stored at seq %d", op.id, j, op.firstSeq+uint64(j), l.seq)
				}
			}
		case statusFailed:
			res.failed++
			if present > 0 {
				res.problem("stored failure: op %d (stream %s) failed definitely but %d of its %d records are stored", op.id, op.stream, present, len(op.payloads))
			}
		case statusUnknown:
			if present == 0 {
				res.unknownAbsent++
				continue
			}
			res.unknownPresent++
			if present != len(op.payloads) {
				res.problem("torn batch: op %d (stream %s, outcome unknown) has %d of its %d records stored", op.id, op.stream, present, len(op.payloads))
				continue
			}
			first := found[op.payloads[0]]
			for j, p := range op.payloads {
				if l := found[p]; l.stream != first.stream || l.offset != first.offset+uint64(j) {
					res.problem("torn batch: op %d record %d at %s/%d, not contiguous with %s/%d", op.id, j, l.stream, l.offset, first.stream, first.offset)
				}
			}
		}
	}
	if global != nil {
		n := 0
		for i, g := range global {
			if i > 0 && g.seq <= global[i-1].seq {
				res.problem("global order: seq %d follows seq %d", g.seq, global[i-1].seq)
			}
			l, ok := found[g.payload]
			if !ok {
				res.problem("global: seq %d (%s/%d) is not in any stream read", g.seq, g.stream, g.offset)
				continue
			}
			n++
			if l.stream != g.stream || l.offset != g.offset || l.seq != g.seq {
				res.problem("global: seq %d says %s/%d, the stream read says %s/%d seq %d", g.seq, g.stream, g.offset, l.stream, l.offset, l.seq)
			}
		}
		if n != len(found) {
			res.problem("global: %d records in the global log, %d in the streams", n, len(found))
		}
	}
	return res
}

// TestCheckerDetects proves the checker can fail: each broken history must
// be reported with the right kind of problem, and the clean one must pass.
func TestCheckerDetects(t *testing.T) {
	rec := func(stream string, off, seq uint64, p string) readRecord {
		return readRecord{stream: stream, offset: off, seq: seq, payload: p}
	}
	baseOps := func() []appendOp {
		return []appendOp{
			{id: 1, stream: "a", payloads: []string{"a1", "a2"}, status: statusAcked, first: 0, firstSeq: 0, checkSeq: true},
			{id: 2, stream: "a", payloads: []string{"a3"}, status: statusFailed},
			{id: 3, stream: "a", payloads: []string{"a4", "a5"}, status: statusUnknown},
			{id: 4, stream: "b", payloads: []string{"b1"}, status: statusAcked, first: 0, firstSeq: 4, checkSeq: true},
			{id: 5, stream: "b", payloads: []string{"b2"}, status: statusUnknown},
		}
	}
	clean := func() map[string][]readRecord {
		return map[string][]readRecord{
			"a": {rec("a", 0, 0, "a1"), rec("a", 1, 1, "a2"), rec("a", 2, 2, "a4"), rec("a", 3, 3, "a5")},
			"b": {rec("b", 0, 4, "b1")},
		}
	}
	globalOf := func(s map[string][]readRecord) []readRecord {
		var g []readRecord
		for _, recs := range s {
			g = append(g, recs...)
		}
		slices.SortFunc(g, func(x, y readRecord) int { return int(x.seq) - int(y.seq) })
		return g
	}
	tests := []struct {
		name   string
		mutate func(ops []appendOp, s map[string][]readRecord) []readRecord
		want   string // "" means clean
	}{
		{"clean", func(_ []appendOp, s map[string][]readRecord) []readRecord { return globalOf(s) }, ""},
		{"clean without unknown", func(_ []appendOp, s map[string][]readRecord) []readRecord {
			s["a"] = s["a"][:2]
			return globalOf(s)
		}, ""},
		{"lost", func(_ []appendOp, s map[string][]readRecord) []readRecord {
			s["b"] = nil
			return nil
		}, "lost"},
		{"lost tail of a batch", func(_ []appendOp, s map[string][]readRecord) []readRecord {
			s["a"] = s["a"][:1]
			return nil
		}, "lost"},
		{"duplicate", func(_ []appendOp, s map[string][]readRecord) []readRecord {
			s["b"] = append(s["b"], rec("b", 1, 5, "b1"))
			return nil
		}, "duplicate"},
		{"gap", func(_ []appendOp, s map[string][]readRecord) []readRecord {
			s["b"] = append(s["b"], rec("b", 2, 5, "b2"))
			return nil
		}, "gap"},
		{"corrupt payload", func(_ []appendOp, s map[string][]readRecord) []readRecord {
			s["b"] = append(s["b"], rec("b", 1, 5, "b2\x00garbage"))
			return nil
		}, "mismatch"},
		{"moved", func(_ []appendOp, s map[string][]readRecord) []readRecord {
			s["a"][0].payload, s["a"][1].payload = "a2", "a1"
			return nil
		}, "mismatch"},
		{"wrong seq", func(_ []appendOp, s map[string][]readRecord) []readRecord {
			s["b"][0].seq = 9
			return nil
		}, "mismatch"},
		{"stored failure", func(_ []appendOp, s map[string][]readRecord) []readRecord {
			s["a"] = append(s["a"], rec("a", 4, 6, "a3"))
			return nil
		}, "stored failure"},
		{"torn unknown batch", func(_ []appendOp, s map[string][]readRecord) []readRecord {
			s["a"] = s["a"][:3]
			return nil
		}, "torn batch"},
		{"wrong stream", func(_ []appendOp, s map[string][]readRecord) []readRecord {
			s["a"] = append(s["a"], rec("a", 4, 6, "b2"))
			return nil
		}, "mismatch"},
		{"global disorder", func(_ []appendOp, s map[string][]readRecord) []readRecord {
			g := globalOf(s)
			g[0], g[1] = g[1], g[0]
			return g
		}, "global order"},
		{"global missing a record", func(_ []appendOp, s map[string][]readRecord) []readRecord {
			return globalOf(s)[1:]
		}, "global"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, s := baseOps(), clean()
			g := tt.mutate(ops, s)
			res := checkHistory(ops, s, g)
			if tt.want == "" {
				assert.Empty(t, res.problems)
				return
			}
			if assert.NotEmpty(t, res.problems, "the checker missed a %s", tt.want) {
				assert.Contains(t, res.problems[0], tt.want)
			}
		})
	}
}
