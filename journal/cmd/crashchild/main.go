// Command crashchild is the victim process of the journal's kill -9 test
// (journal/crash_kill_test.go). It opens a journal, then appends batches of
// records of mixed sizes (up to -max bytes each) until it is killed. After
// each Append returns nil, and only then, it writes one line to stdout:
//
//	ack <index> <payload-bytes> <sha256-of-payload, 16 hex digits>
//
// Each line is a single write(2) on an unbuffered stdout, so a line the
// parent reads in full was acknowledged by the journal before the kill.
// Before the first append it writes "ready <first-index> <last-index>"; on
// an error it writes "error <text>" to stdout and exits 1.
//
// With -fsize N the process sets RLIMIT_FSIZE to N bytes and ignores
// SIGXFSZ, so a write that would grow a file past N fails with EFBIG, as a
// full disk would: the disk-full test uses it.
//
// It is a test helper, not part of BadBatch's interface.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"

	"github.com/badbatch/badbatch/journal"
)

func main() {
	dir := flag.String("dir", "", "journal directory (required)")
	seed := flag.Uint64("seed", 1, "seed of the record sizes and contents")
	maxSize := flag.Int("max", 1<<20, "largest record value in bytes")
	segmentSize := flag.Int64("segment", 4<<20, "journal SegmentSize")
	retain := flag.Int64("retain", 0, "journal RetentionBytes (0: keep everything); retired segments are recycled")
	count := flag.Int("count", 0, "stop after this many appends (0: run until killed)")
	fsize := flag.Uint64("fsize", 0, "RLIMIT_FSIZE in bytes (0: unlimited)")
	flag.Parse()
	if *dir == "" {
		fail(fmt.Errorf("-dir is required"))
	}
	if *fsize > 0 {
		signal.Ignore(syscall.SIGXFSZ)
		lim := syscall.Rlimit{Cur: *fsize, Max: *fsize}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			fail(fmt.Errorf("setrlimit: %w", err))
		}
	}

	opts := journal.DefaultOptions()
	opts.SegmentSize = *segmentSize
	opts.RetentionBytes = *retain
	opts.MaxEntrySize = 8 << 20
	j, err := journal.Open(*dir, opts)
	if err != nil {
		fail(err)
	}
	say(fmt.Sprintf("ready %d %d\n", j.FirstIndex(), j.LastIndex()))

	rng := rand.New(rand.NewPCG(*seed, 0x6b696c6c))
	var buf []byte
	for n := 0; *count == 0 || n < *count; n++ {
		groups := make([][]byte, 1+rng.IntN(3))
		for g := range groups {
			recs := make([]journal.Record, 1+rng.IntN(3))
			for r := range recs {
				recs[r] = journal.Record{Timestamp: int64(n), Key: []byte(fmt.Sprintf("k%d", r)), Value: value(rng, *maxSize)}
			}
			groups[g] = journal.AppendGroup(nil, &journal.Group{Stream: []byte("crash"), Timestamp: int64(n)}, recs)
		}
		buf = buf[:0]
		for _, g := range groups {
			buf = append(buf, g...)
		}
		info, err := j.Append(groups)
		if err != nil {
			fail(err)
		}
		sum := sha256.Sum256(buf)
		say(fmt.Sprintf("ack %d %d %s\n", info.Index, len(buf), hex.EncodeToString(sum[:8])))
	}
	if err := j.Close(); err != nil {
		fail(err)
	}
	say("done\n")
}

// value returns a record value: mostly small, sometimes a few KiB, rarely
// up to maxSize, so that batches cross page and segment boundaries.
func value(rng *rand.Rand, maxSize int) []byte {
	var n int
	switch p := rng.IntN(100); {
	case p < 70:
		n = rng.IntN(256)
	case p < 95:
		n = rng.IntN(16 << 10)
	default:
		n = rng.IntN(maxSize + 1)
	}
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for k := 0; k < 8 && i+k < n; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// say writes s with one write(2) so a reader never sees half a line of an
// acknowledged append.
func say(s string) {
	if _, err := os.Stdout.WriteString(s); err != nil {
		os.Exit(3)
	}
}

func fail(err error) {
	say(fmt.Sprintf("error %s\n", err))
	os.Exit(1)
}
