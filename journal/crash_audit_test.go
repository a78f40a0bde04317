package journal_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/badbatch/badbatch/journal"
	"github.com/badbatch/badbatch/journal/internal/crashfs"
)

// auditRun drives a journal through a Recorder and collects an
// acknowledgement point after every call that returned nil.
type auditRun struct {
	t    *testing.T
	base *crashfs.FS
	rec  *crashfs.Recorder
	j    *journal.Journal
	acks []int
	rng  *rand.Rand
	opts func() *journal.Options
}

func newAuditRun(t *testing.T, segSize, retain int64) *auditRun {
	base := crashfs.New()
	require.NoError(t, base.MkdirAll("/data", 0o755))
	root, err := base.OpenDir("/")
	require.NoError(t, err)
	require.NoError(t, root.Sync())
	require.NoError(t, root.Close())
	a := &auditRun{t: t, base: base, rec: crashfs.NewRecorder(base), rng: rand.New(rand.NewPCG(6, 6))}
	a.opts = func() *journal.Options {
		o := journal.DefaultOptions()
		o.FS = a.rec
		o.SegmentSize = segSize
		o.RetentionBytes = retain
		return o
	}
	a.open()
	return a
}

func (a *auditRun) ack() { a.acks = append(a.acks, a.rec.Mark()) }

func (a *auditRun) open() {
	j, err := journal.Open("/data/j", a.opts())
	require.NoError(a.t, err)
	a.j = j
	a.ack() // what Open recovered or created is durable when it returns
}

func (a *auditRun) appendN(n int) {
	for range n {
		groups, _ := multiGroups(a.rng, 200)
		_, err := a.j.Append(groups)
		require.NoError(a.t, err)
		a.ack()
	}
}

func (a *auditRun) count(kind crashfs.OpKind) int {
	n := 0
	for _, op := range a.rec.Ops() {
		if op.Kind == kind {
			n++
		}
	}
	return n
}

// check runs both audits over everything recorded.
func (a *auditRun) check() {
	ops := a.rec.Ops()
	for _, v := range crashfs.AuditDirSyncs(ops, a.acks) {
		assert.Fail(a.t, "directory entry not durable before acknowledgement", v.String())
	}
	for _, v := range crashfs.AuditRemoveSyncs(ops, a.acks) {
		assert.Fail(a.t, "removal not durable before acknowledgement", v.String())
	}
}

// TestDirSyncAudit records every create, rename, remove and sync the
// journal makes, and checks that each directory change is followed by a
// sync of that directory before the next acknowledgement (Append, Sync,
// TruncateBack, TruncateFront or EnforceRetention returning nil, or Open
// returning). Each case also asserts that the operation it is about did
// happen, so the audit is not vacuous.
func TestDirSyncAudit(t *testing.T) {
	tests := []struct {
		name string
		run  func(a *auditRun)
		want map[crashfs.OpKind]int // minimum count of each kind recorded
	}{
		{
			name: "directory and first segment creation",
			run:  func(a *auditRun) { a.appendN(1) },
			want: map[crashfs.OpKind]int{crashfs.OpMkdir: 1, crashfs.OpCreate: 1, crashfs.OpRename: 1},
		},
		{
			name: "segment rolls",
			run:  func(a *auditRun) { a.appendN(40) },
			want: map[crashfs.OpKind]int{crashfs.OpCreate: 5, crashfs.OpRename: 5},
		},
		{
			name: "retention deletes segments",
			run: func(a *auditRun) {
				a.appendN(40)
				require.NoError(a.t, a.j.Close())
				// Reopen with retention on, so EnforceRetention has work.
				o := a.opts
				a.opts = func() *journal.Options { x := o(); x.RetentionBytes = 2048; return x }
				a.open()
				n, err := a.j.EnforceRetention(time.Now())
				require.NoError(a.t, err)
				require.Positive(a.t, n)
				a.ack()
				a.appendN(20) // rolls run retention automatically
			},
			want: map[crashfs.OpKind]int{crashfs.OpRemove: 3},
		},
		{
			name: "TruncateFront",
			run: func(a *auditRun) {
				a.appendN(40)
				require.NoError(a.t, a.j.TruncateFront(30))
				a.ack()
				a.appendN(2)
			},
			want: map[crashfs.OpKind]int{crashfs.OpRemove: 3},
		},
		{
			name: "TruncateBack across segments and inside one",
			run: func(a *auditRun) {
				a.appendN(40)
				require.NoError(a.t, a.j.TruncateBack(12))
				a.ack()
				a.appendN(3)
				require.NoError(a.t, a.j.TruncateBack(14))
				a.ack()
				a.appendN(3)
			},
			want: map[crashfs.OpKind]int{crashfs.OpRemove: 2, crashfs.OpRename: 8},
		},
		{
			name: "torn-tail repair on Open",
			run: func(a *auditRun) {
				a.appendN(5)
				require.NoError(a.t, a.j.Close())
				segs := segmentFiles(a.t, a.base, "/data/j")
				last := a.base.PathJoin("/data/j", segs[len(segs)-1])
				data, err := a.base.ReadFile(last)
				require.NoError(a.t, err)
				require.NoError(a.t, a.base.WriteFile(last, data[:len(data)-7]))
				a.rec.Reset()
				a.acks = nil
				a.open()
				require.True(a.t, a.j.RepairReport().Truncated)
				a.appendN(2)
			},
			want: map[crashfs.OpKind]int{crashfs.OpCreate: 1, crashfs.OpRename: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuditRun(t, 512, 0)
			tt.run(a)
			a.check()
			for kind, n := range tt.want {
				assert.GreaterOrEqual(t, a.count(kind), n, "recorded %s operations", kind)
			}
			assert.Positive(t, a.count(crashfs.OpSyncDir), "directory syncs")
			require.NoError(t, a.j.Close())
		})
	}
}
