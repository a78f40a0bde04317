// Package testenv holds helpers shared by BadBatch's tests. It is internal
// and imported only from _test.go files.
package testenv

import (
	"os"
	"strconv"
	"testing"
)

// CrashCycles is the iteration count of a long crash, restart or stress
// loop: def, or short under -short; BADBATCH_CRASH_CYCLES (CI sets 200, a
// soak 2000+) replaces either, capped at short under -short so that the
// race run stays bounded. It fails the test on a malformed value and logs
// the count it returns.
func CrashCycles(tb testing.TB, def, short int) int {
	tb.Helper()
	n := def
	if testing.Short() {
		n = short
	}
	if v := os.Getenv("BADBATCH_CRASH_CYCLES"); v != "" {
		c, err := strconv.Atoi(v)
		if err != nil {
			tb.Fatalf("BADBATCH_CRASH_CYCLES=%q: %v", v, err)
		}
		n = c
		if testing.Short() && n > short {
			n = short
		}
	}
	tb.Logf("cycles: %d (def %d, short %d, BADBATCH_CRASH_CYCLES=%q)", n, def, short, os.Getenv("BADBATCH_CRASH_CYCLES"))
	return n
}
