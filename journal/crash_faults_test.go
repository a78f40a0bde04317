package journal_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/require"

	"github.com/badbatch/badbatch/journal"
	"github.com/badbatch/badbatch/journal/internal/crashfs"
)

const faultDir = "/data/j"

// faultOutcome is what the workload saw.
type faultOutcome struct {
	model    [][]byte // every entry written or attempted, by index
	mustHave int      // acknowledged and not truncated
	failedAt string   // the operation that failed, "" if none
	err      error
}

func durableParent(t testing.TB, fs *crashfs.FS) {
	t.Helper()
	require.NoError(t, fs.MkdirAll("/data", 0o755))
	root, err := fs.OpenDir("/")
	require.NoError(t, err)
	require.NoError(t, root.Sync())
	require.NoError(t, root.Close())
}

// faultWorkload opens a journal on fs and runs a short, fixed workload:
// appends and group commits across segment rolls (512-byte segments), a
// TruncateBack, more appends. It stops at the first error and checks the
// sticky-error contract on the way out.
func faultWorkload(t *testing.T, fs vfs.FS) faultOutcome {
	t.Helper()
	var out faultOutcome
	rng := rand.New(rand.NewPCG(11, 11))
	opts := journal.DefaultOptions()
	opts.FS = fs
	opts.SegmentSize = 512
	j, err := journal.Open(faultDir, opts)
	if err != nil {
		out.failedAt, out.err = "Open", err
		return out
	}
	fail := func(op string, err error) faultOutcome {
		out.failedAt, out.err = op, err
		require.ErrorIs(t, err, journal.ErrFailed, "%s: the failure is reported as ErrFailed", op)
		require.ErrorIs(t, j.Err(), journal.ErrFailed, "%s: Err is sticky", op)
		groups, _ := multiGroups(rng, 50)
		_, err2 := j.Append(groups)
		require.ErrorIs(t, err2, journal.ErrFailed, "%s: a later Append fails too", op)
		_, err2 = j.Write(groups)
		require.ErrorIs(t, err2, journal.ErrFailed, "%s: a later Write fails too", op)
		require.ErrorIs(t, j.Sync(), journal.ErrFailed, "%s: a later Sync fails too", op)
		require.ErrorIs(t, j.TruncateBack(1), journal.ErrFailed, "%s: a later TruncateBack fails too", op)
		_ = j.Close() // may fail again; the directory is what matters
		return out
	}
	for step := range 14 {
		switch {
		case step == 8:
			k := len(out.model) - 3
			out.mustHave = min(out.mustHave, k)
			if err := j.TruncateBack(uint64(k)); err != nil {
				return fail(fmt.Sprintf("TruncateBack(%d)", k), err)
			}
			out.model = slices.Clone(out.model[:k])
		case step%3 == 2:
			for range 3 {
				groups, payload := multiGroups(rng, 120)
				out.model = append(out.model, payload)
				if _, err := j.Write(groups); err != nil {
					return fail(fmt.Sprintf("Write of entry %d", len(out.model)), err)
				}
			}
			if err := j.Sync(); err != nil {
				return fail(fmt.Sprintf("Sync of entries up to %d", len(out.model)), err)
			}
			out.mustHave = len(out.model)
		default:
			groups, payload := multiGroups(rng, 120)
			out.model = append(out.model, payload)
			if _, err := j.Append(groups); err != nil {
				return fail(fmt.Sprintf("Append of entry %d", len(out.model)), err)
			}
			out.mustHave = len(out.model)
		}
	}
	require.NoError(t, j.Close())
	return out
}

// checkRecovered opens dir on fs and checks: Open succeeds, the entries
// are an intact prefix of the model from index 1 with at least mustHave
// of them (no gap, no duplicate), and the next Append gets the next index.
func checkRecovered(t *testing.T, fs vfs.FS, out faultOutcome, what string) int {
	t.Helper()
	j, err := openOn(fs, faultDir, 512)
	require.NoError(t, err, "%s: reopen", what)
	defer j.Close()
	first, got, err := readAll(j)
	require.NoError(t, err, "%s: read back", what)
	if len(got) > 0 {
		require.Equal(t, uint64(1), first, what)
	}
	require.Equal(t, uint64(len(got)), j.LastIndex(), what)
	require.GreaterOrEqual(t, len(got), out.mustHave, "%s: acknowledged entries lost", what)
	require.LessOrEqual(t, len(got), len(out.model), "%s: more entries than written", what)
	for i := range got {
		if !bytes.Equal(out.model[i], got[i]) {
			require.Failf(t, "entry differs", "%s: entry %d", what, i+1)
		}
	}
	groups, _ := multiGroups(rand.New(rand.NewPCG(1, 2)), 10)
	info, err := j.Append(groups)
	require.NoError(t, err, "%s: append after recovery", what)
	require.Equal(t, uint64(len(got)+1), info.Index, what)
	return len(got)
}

// TestDiskFullAndFsyncFailure injects ENOSPC into every write, create,
// rename and remove, and EIO into every fsync, one operation index at a
// time, once and (sticky) forever, into a short workload. Each failure must
// be reported as ErrFailed, acknowledge nothing, and stick: later Append,
// Write, Sync and TruncateBack fail too. The directory is then reopened
// without faults twice: as the failed process left it (a restart), and as
// a power loss would leave it (only synced data). Both must hold every
// acknowledged entry, an intact prefix of what was written, no gap, no
// duplicate, and append at the next index.
func TestDiskFullAndFsyncFailure(t *testing.T) {
	counter := &crashfs.Faults{At: -1}
	base := crashfs.New()
	durableParent(t, base)
	clean := faultWorkload(t, counter.Wrap(base))
	require.Empty(t, clean.failedAt)
	ops := counter.Seen()
	require.Greater(t, ops, 50, "the workload is long enough to fail in many places")

	failures := map[string]int{}
	runs := 0
	for _, sticky := range []bool{false, true} {
		for at := range ops {
			t.Run(fmt.Sprintf("sticky=%t/op=%d", sticky, at), func(t *testing.T) {
				base := crashfs.New()
				durableParent(t, base)
				faults := &crashfs.Faults{At: at, Sticky: sticky}
				out := faultWorkload(t, faults.Wrap(base))
				fired := faults.Fired()
				require.NotEmpty(t, fired, "op %d of %d was never reached", at, ops)
				require.NotEmpty(t, out.failedAt, "an injected %v on %q was swallowed: no operation failed", fired[0].Kind, fired[0].Path)
				require.True(t, errors.Is(out.err, crashfs.ErrInjected), "%s failed with %v, not the injected fault", out.failedAt, out.err)
				failures[out.failedAt]++
				runs++

				img, rep := base.Crash(crashfs.CrashConfig{})
				checkRecovered(t, base, out, "restart after "+out.failedAt)
				checkRecovered(t, img, out, fmt.Sprintf("power loss after %s [%s]", out.failedAt, rep))
			})
		}
	}
	t.Logf("%d operation indexes x {once, sticky} = %d runs; failures surfaced by %d distinct operations", ops, runs, len(failures))
}

// TestFaultsDuringRepair fails each operation of a repairing Open in turn
// (once, and sticky): a journal whose last segment has a torn tail and
// whose directory holds a leftover *.tmp file. Open may fail, but must not
// lose or damage anything: afterwards an Open without faults, on the
// directory as left and on a power-loss image of it, recovers all ten
// acknowledged entries.
func TestFaultsDuringRepair(t *testing.T) {
	base := crashfs.New()
	durableParent(t, base)
	rng := rand.New(rand.NewPCG(12, 12))
	j, err := openOn(base, faultDir, 512)
	require.NoError(t, err)
	out := faultOutcome{}
	for range 10 {
		groups, payload := multiGroups(rng, 100)
		_, err := j.Append(groups)
		require.NoError(t, err)
		out.model = append(out.model, payload)
	}
	out.mustHave = len(out.model)
	require.NoError(t, j.Close())
	segs := segmentFiles(t, base, faultDir)
	last := base.PathJoin(faultDir, segs[len(segs)-1])
	data, err := base.ReadFile(last)
	require.NoError(t, err)
	require.NoError(t, base.WriteFile(last, append(data, plausibleFrameHeader(rng, 11, 100)...)))
	require.NoError(t, base.WriteFile(base.PathJoin(faultDir, "00000000000000000099.seg.tmp"), []byte("partial")))

	total := 0
	for _, mode := range []struct {
		name  string
		match func(errorfs.Op) bool
	}{{"writes", crashfs.DefaultMatch}, {"reads", crashfs.ReadMatch}} {
		counter := &crashfs.Faults{At: -1, Match: mode.match}
		img, _ := base.Crash(crashfs.CrashConfig{})
		j, err = openOn(counter.Wrap(img), faultDir, 512)
		require.NoError(t, err)
		require.True(t, j.RepairReport().Truncated)
		require.NoError(t, j.Close())
		ops := counter.Seen()
		require.Positive(t, ops)
		total += ops
		for _, sticky := range []bool{false, true} {
			for at := range ops {
				t.Run(fmt.Sprintf("%s/sticky=%t/op=%d", mode.name, sticky, at), func(t *testing.T) {
					img, _ := base.Crash(crashfs.CrashConfig{})
					faults := &crashfs.Faults{At: at, Sticky: sticky, Match: mode.match}
					j, err := openOn(faults.Wrap(img), faultDir, 512)
					if err == nil {
						_ = j.Close()
					}
					require.NotEmpty(t, faults.Fired())
					power, _ := img.Crash(crashfs.CrashConfig{})
					checkRecovered(t, img, out, fmt.Sprintf("reopen after repair failed at %s op %d (%v)", mode.name, at, err))
					checkRecovered(t, power, out, fmt.Sprintf("power loss after repair failed at %s op %d (%v)", mode.name, at, err))
				})
			}
		}
	}
	t.Logf("%d operations (writes, then reads) of a repairing Open failed in turn, once and sticky", total)
}
