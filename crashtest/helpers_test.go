package crashtest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// envCycles is BADBATCH_CRASH_CYCLES, or def when it is unset.
func envCycles(t *testing.T, def int) int {
	t.Helper()
	v := os.Getenv("BADBATCH_CRASH_CYCLES")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "BADBATCH_CRASH_CYCLES=%q", v)
	require.Positive(t, n, "BADBATCH_CRASH_CYCLES=%q", v)
	return n
}

// killCycles maps BADBATCH_CRASH_CYCLES to kill -9 cycles: min(N, 100) for
// N up to 200 (CI's 200 gives 100 cycles of a few hundred ms each), N
// itself above 200 (a soak with 1000 runs 1000), 10 under -short.
func killCycles(t *testing.T) int {
	t.Helper()
	if testing.Short() {
		return 10
	}
	n := envCycles(t, 200)
	if n > 200 {
		return n
	}
	return min(n, 100)
}

// powerCycles maps BADBATCH_CRASH_CYCLES to power-loss cycles of
// imagesPerCycle crash images each: N cycles (CI's 200 gives 10,000
// images), 10 under -short.
func powerCycles(t *testing.T) int {
	t.Helper()
	if testing.Short() {
		return 10
	}
	return envCycles(t, 200)
}

// baseSeed is BADBATCH_CRASH_SEED, or a fresh seed. It is logged by the
// caller so a failure can be replayed.
func baseSeed(t *testing.T) uint64 {
	t.Helper()
	if v := os.Getenv("BADBATCH_CRASH_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "BADBATCH_CRASH_SEED=%q", v)
		return s
	}
	return uint64(time.Now().UnixNano())
}

// cycleSeed derives the seed of one cycle from the base seed, so that
// BADBATCH_CRASH_SEED=<logged cycle seed> BADBATCH_CRASH_CYCLES=1 replays
// exactly that cycle's schedule.
func cycleSeed(base uint64, cycle int) uint64 {
	if cycle == 0 {
		return base
	}
	return rand.New(rand.NewPCG(base, uint64(cycle))).Uint64()
}

// keptDir makes a directory that survives the test when it fails (for the
// post-mortem) and is removed when it passes. t.TempDir would delete it.
func keptDir(t *testing.T, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept for inspection: %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}

// dirSize is the total size of the regular files under dir.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			n += info.Size()
		}
		return nil
	})
	require.NoError(t, err)
	return n
}

// durationStats summarizes a sample of durations for the log.
func durationStats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return fmt.Sprintf("n=%d min=%v p50=%v p90=%v p99=%v max=%v", len(s), s[0].Round(time.Microsecond),
		q(0.5).Round(time.Microsecond), q(0.9).Round(time.Microsecond), q(0.99).Round(time.Microsecond), s[len(s)-1].Round(time.Microsecond))
}

// envCount is the loop count in the environment variable name: def, or
// short under -short; a set variable replaces either (capped at short under
// -short, so that a -short run stays short). A malformed or non-positive
// value fails the test. The caller logs the count with its variable.
func envCount(t *testing.T, name string, def, short int) int {
	t.Helper()
	n := def
	if testing.Short() {
		n = short
	}
	if v := os.Getenv(name); v != "" {
		c, err := strconv.Atoi(v)
		require.NoError(t, err, "%s=%q", name, v)
		require.Positive(t, c, "%s=%q", name, v)
		n = c
		if testing.Short() {
			n = min(n, short)
		}
	}
	return n
}

// readFile returns a file's contents ("" if it cannot be read).
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("read %s: %v", path, err)
	}
	return string(b)
}
