package journal_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/badbatch/badbatch/journal"
)

// buildCrashChild builds journal/cmd/crashchild once per test into a temp
// directory and returns the binary's path.
func buildCrashChild(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "crashchild")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/crashchild")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/crashchild:\n%s", out)
	return bin
}

// ack is one line "ack <index> <len> <sha16>" printed by the child.
type ack struct {
	index uint64
	size  int
	sum   string
}

// childRun is the output of one crashchild process.
type childRun struct {
	ready    bool
	acks     []ack
	errLine  string
	waitErr  error
	lastLine string
}

// runChild starts the child and, if killAfter > 0, sends SIGKILL after that
// long (or after it has acknowledged killAfterAcks appends, whichever is
// first). It returns every complete line the child wrote.
func runChild(t *testing.T, bin string, args []string, killAfter time.Duration) childRun {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())

	var run childRun
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			run.lastLine = line
			fields := strings.Fields(line)
			switch {
			case len(fields) == 3 && fields[0] == "ready":
				run.ready = true
			case len(fields) == 4 && fields[0] == "ack":
				idx, err1 := strconv.ParseUint(fields[1], 10, 64)
				size, err2 := strconv.Atoi(fields[2])
				if err1 == nil && err2 == nil {
					run.acks = append(run.acks, ack{index: idx, size: size, sum: fields[3]})
				}
			case len(fields) > 0 && fields[0] == "error":
				run.errLine = line
			}
		}
	})
	if killAfter > 0 {
		timer := time.AfterFunc(killAfter, func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
		defer timer.Stop()
	}
	wg.Wait()
	run.waitErr = cmd.Wait()
	return run
}

func sum16(p []byte) string {
	s := sha256.Sum256(p)
	return hex.EncodeToString(s[:8])
}

// verifyDir opens dir, checks that every acknowledged entry is present with
// the acknowledged length and checksum, and that the journal is dense from
// FirstIndex to LastIndex with no unreadable entry. It returns the checksum
// of every entry present, by index, for the next cycle to compare against.
// With retained, the child ran with retention: entries below FirstIndex may
// be gone (removed or recycled); without it, FirstIndex must be 1.
func verifyDir(t *testing.T, dir string, acked map[uint64]ack, before map[uint64]string, retained bool) (map[uint64]string, journal.RepairReport, error) {
	t.Helper()
	opts := journal.DefaultOptions()
	opts.MaxEntrySize = 8 << 20
	j, err := journal.Open(dir, opts)
	if err != nil {
		return nil, journal.RepairReport{}, fmt.Errorf("reopen: %w", err)
	}
	defer j.Close()
	rep := j.RepairReport()
	floor := j.FirstIndex()
	if !retained && floor != 1 {
		return nil, rep, fmt.Errorf("FirstIndex %d without retention", floor)
	}
	present := map[uint64]string{}
	it := j.NewIterator(j.FirstIndex())
	next := j.FirstIndex()
	for it.Next() {
		e := it.Entry()
		if e.Index != next {
			it.Close()
			return nil, rep, fmt.Errorf("iterator returned index %d, want %d (gap or duplicate)", e.Index, next)
		}
		next++
		present[e.Index] = sum16(e.Payload)
		if a, ok := acked[e.Index]; ok && (a.size != len(e.Payload) || a.sum != present[e.Index]) {
			it.Close()
			return nil, rep, fmt.Errorf("entry %d: %d bytes sha %s, acknowledged %d bytes sha %s", e.Index, len(e.Payload), present[e.Index], a.size, a.sum)
		}
	}
	if err := it.Err(); err != nil {
		it.Close()
		return nil, rep, fmt.Errorf("iterating: %w", err)
	}
	it.Close()
	if next-1 != j.LastIndex() {
		return nil, rep, fmt.Errorf("iterated to %d, LastIndex %d", next-1, j.LastIndex())
	}
	for idx, a := range acked {
		if _, ok := present[idx]; !ok && idx >= floor {
			return nil, rep, fmt.Errorf("acknowledged entry %d (%d bytes) missing: journal holds [%d, %d]", idx, a.size, j.FirstIndex(), j.LastIndex())
		}
	}
	for idx, s := range before {
		if present[idx] != s && idx >= floor {
			return nil, rep, fmt.Errorf("entry %d present after the previous reopen changed or vanished", idx)
		}
	}
	return present, rep, j.Close()
}

// TestKill9 runs the crashchild, kills it with SIGKILL at a random moment
// (before, during or after its Open, in the middle of appends of up to
// 1 MiB), reopens the directory and checks that every entry whose Append
// the child reported as returned is present and intact, with no gap and no
// duplicate. A directory is reused by 10 consecutive cycles, so recovery of
// a directory that was itself recovered is covered, then replaced. Every
// other directory runs with retention (3 segments of 64 KiB, records up to
// 4 KiB), so the child recycles
// retired segments and its preparer makes spares ready: kills land in
// those too, and acknowledged entries below the first retained index may
// be gone.
func TestKill9(t *testing.T) {
	cycles := crashCycles(t, 200, 30)
	bin := buildCrashChild(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BADBATCH_CRASH_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d (BADBATCH_CRASH_SEED=%d replays the same child seeds and kill delays; the kill's exact instant is up to the scheduler)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 9))

	base := t.TempDir()
	var dir string
	var acked map[uint64]ack
	var present map[uint64]string
	var retained bool
	totalAcks, maxIndex, repairs, done, withSpares := 0, uint64(0), 0, 0, 0
	deadline, hasDeadline := t.Deadline()
	for cycle := range cycles {
		// Every cycle fsyncs a real disk; on a shared machine whose disk is
		// saturated, stop early rather than hit the test binary's timeout,
		// and say so.
		if hasDeadline && time.Until(deadline) < 90*time.Second {
			t.Logf("stopping after %d of %d cycles: less than 90s left before the -timeout deadline (slow fsyncs?)", cycle, cycles)
			break
		}
		if cycle%10 == 0 {
			dir = filepath.Join(base, fmt.Sprintf("j%04d", cycle))
			acked, present = map[uint64]ack{}, map[uint64]string{}
			// Every other directory runs with retention of 3 segments:
			// retired segments are recycled, and the preparer has the
			// next file ready, so kills land in recycling renames, spare
			// preparation and rolls into recycled files.
			retained = cycle%20 == 10
		}
		childSeed := rng.Uint64()
		// Most kills land while appending; some before or during Open.
		delay := time.Duration(1+rng.IntN(120)) * time.Millisecond
		if rng.IntN(5) == 0 {
			delay = time.Duration(rng.IntN(3000)) * time.Microsecond
		}
		segment := 1 << (18 + rng.IntN(5))
		args := []string{"-dir", dir, "-seed", strconv.FormatUint(childSeed, 10), "-segment", strconv.Itoa(segment)}
		if retained {
			// Small segments and records, so that a child killed within
			// 120 ms has rolled, retired and recycled several segments.
			segment = 64 << 10
			args = []string{"-dir", dir, "-seed", strconv.FormatUint(childSeed, 10), "-segment", strconv.Itoa(segment),
				"-max", "4096", "-retain", strconv.Itoa(3 * segment)}
		}
		run := runChild(t, bin, args, delay)
		if run.errLine != "" {
			keep := filepath.Join(os.TempDir(), fmt.Sprintf("badbatch-kill9-%d-%d", seed, cycle))
			_ = os.Rename(dir, keep)
			t.Fatalf("cycle %d (seed %d, child seed %d): child failed: %s; data dir kept at %s", cycle, seed, childSeed, run.errLine, keep)
		}
		for _, a := range run.acks {
			acked[a.index] = a
			maxIndex = max(maxIndex, a.index)
		}
		totalAcks += len(run.acks)
		var err error
		var rep journal.RepairReport
		present, rep, err = verifyDir(t, dir, acked, present, retained)
		if rep.Truncated {
			repairs++
		}
		if names, _ := os.ReadDir(dir); retained {
			for _, e := range names {
				if journal.IsSpareFile(e.Name()) {
					withSpares++
					break
				}
			}
		}
		if err != nil {
			keep := filepath.Join(os.TempDir(), fmt.Sprintf("badbatch-kill9-%d-%d", seed, cycle))
			_ = os.Rename(dir, keep)
			t.Fatalf("cycle %d (seed %d, child seed %d, killed after %v, %d acks this cycle): %v\ndata dir kept at %s",
				cycle, seed, childSeed, delay, len(run.acks), err, keep)
		}
		done++
	}
	t.Logf("%d kill -9 cycles, %d acknowledged appends verified, highest index %d, %d reopens repaired a torn tail, %d found recycled or prepared spare files: 0 lost, 0 duplicated, 0 corrupt",
		done, totalAcks, maxIndex, repairs, withSpares)
	require.Positive(t, totalAcks, "the child never acknowledged an append: the kills came too early to test anything")
}
