package journal_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFileSizeLimitIsADiskFull runs the crashchild under a real
// RLIMIT_FSIZE (set with setrlimit in the child, SIGXFSZ ignored), so that
// the kernel cuts the segment write that crosses the limit short and fails
// the next one with EFBIG, as a full disk does: a real short write, not an
// injected error. The journal must report it (ErrFailed), acknowledge
// nothing more, and after a reopen without the limit hold every
// acknowledged entry intact, with the torn tail repaired.
func TestFileSizeLimitIsADiskFull(t *testing.T) {
	bin := buildCrashChild(t)
	for _, limit := range []int{1<<20 + 12345, 2<<20 + 777, 3 << 20} {
		t.Run(fmt.Sprintf("fsize=%d", limit), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "j")
			args := []string{"-dir", dir, "-seed", strconv.Itoa(limit), "-segment", strconv.Itoa(8 << 20), "-fsize", strconv.Itoa(limit)}
			run := runChild(t, bin, args, time.Minute)
			require.True(t, run.ready, "child never opened the journal (last line %q)", run.lastLine)
			require.NotEmpty(t, run.errLine, "the child should stop on the size limit (last line %q, wait %v)", run.lastLine, run.waitErr)
			require.Contains(t, run.errLine, "journal: failed", "reported as the sticky ErrFailed")
			require.Contains(t, strings.ToLower(run.errLine), "file too large", "caused by EFBIG")
			require.Positive(t, len(run.acks), "some appends fit under the limit")

			acked := map[uint64]ack{}
			for _, a := range run.acks {
				acked[a.index] = a
			}
			present, rep, err := verifyDir(t, dir, acked, nil, false)
			require.NoError(t, err)
			t.Logf("%d acknowledged appends, %d entries present after reopen; repair: %+v", len(run.acks), len(present), rep)
			// The entry whose write was cut short is not there, nor anything
			// after it: one more than acknowledged at most (written, not
			// yet synced when the next write failed).
			require.LessOrEqual(t, len(present), len(run.acks)+1)
			// The kernel wrote up to the limit: the repaired tail ends there.
			require.True(t, rep.Truncated, "the short write left a torn tail to repair")
			require.Equal(t, int64(limit), rep.Offset+rep.Bytes, "the dropped bytes end at the size limit")
		})
	}
}
