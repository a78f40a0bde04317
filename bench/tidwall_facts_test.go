package bench_test

// Evidence for docs/decisions/0002-tidwall-wal-evidence.md.
//
// Each test below demonstrates one defect of github.com/tidwall/wal v1.2.1 as
// shipped, by asserting that the defect IS present. If upstream fixes a defect
// (or go.mod moves to a version without it), the matching test fails: that is
// intended, and it means the decision record must be revisited, not that the
// test should be "fixed" to pass again.

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/wal"
)

// tidwallVersion is the version these facts were established against.
const tidwallVersion = "v1.2.1"

// openTidwall opens a tidwall log in dir with a fresh options value (wal.Open
// mutates the options it is given, including the package-level defaults).
func openTidwall(t *testing.T, dir string, segmentSize int) (*wal.Log, error) {
	t.Helper()
	opts := *wal.DefaultOptions
	if segmentSize > 0 {
		opts.SegmentSize = segmentSize
	}
	return wal.Open(dir, &opts)
}

// writeTidwall writes payloads as entries 1..n and closes the log.
func writeTidwall(t *testing.T, dir string, payloads [][]byte) {
	t.Helper()
	l, err := openTidwall(t, dir, 0)
	require.NoError(t, err)
	for i, p := range payloads {
		require.NoError(t, l.Write(uint64(i+1), p))
	}
	require.NoError(t, l.Close())
}

// onlySegment returns the path of the single segment file in dir.
func onlySegment(t *testing.T, dir string) string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "0*"))
	require.NoError(t, err)
	require.Len(t, names, 1, "expected exactly one tidwall segment")
	return names[0]
}

func testPayloads(n, size int) [][]byte {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(size)))
	out := make([][]byte, n)
	for i := range out {
		p := make([]byte, size)
		for j := range p {
			p[j] = byte(rng.UintN(256))
		}
		out[i] = p
	}
	return out
}

// TestTidwallZeroTailReadsAsPhantomEntries shows that a zero-filled tail, as a
// file system leaves after a crash that extended the file but lost the data
// (ext4 delalloc, XFS), opens cleanly and reads back as one phantom empty entry
// per zero byte: tidwall's format is uvarint(len)+data with no checksum, and
// uvarint 0x00 is a valid empty entry.
//
// Fails if upstream fixes the defect (e.g. adds checksums or rejects empty
// entries on load).
func TestTidwallZeroTailReadsAsPhantomEntries(t *testing.T) {
	for _, zeros := range []int{1, 7, 512, 4096} {
		t.Run(fmt.Sprintf("zeros=%d", zeros), func(t *testing.T) {
			dir := t.TempDir()
			payloads := testPayloads(5, 100)
			writeTidwall(t, dir, payloads)
			seg := onlySegment(t, dir)
			appendToFile(t, seg, make([]byte, zeros))

			l, err := openTidwall(t, dir, 0)
			require.NoError(t, err, "a zero tail should open without complaint (that is the defect)")
			defer func() { require.NoError(t, l.Close()) }()
			last, err := l.LastIndex()
			require.NoError(t, err)
			assert.Equal(t, uint64(len(payloads)+zeros), last,
				"every zero byte becomes one entry")
			for i := range payloads {
				got, err := l.Read(uint64(i + 1))
				require.NoError(t, err)
				require.Equal(t, payloads[i], got)
			}
			for idx := uint64(len(payloads) + 1); idx <= last; idx++ {
				got, err := l.Read(idx)
				require.NoError(t, err, "phantom entry %d reads without error", idx)
				require.Empty(t, got, "phantom entry %d is empty", idx)
			}
		})
	}
}

// TestTidwallTornTailFailsOpen shows that a tail cut by a few bytes (a torn
// last write) makes Open fail with wal.ErrCorrupt instead of repairing the log
// to its valid prefix: every entry before the torn one becomes unreachable
// through the library.
//
// Fails if upstream adds torn-tail repair on Open.
func TestTidwallTornTailFailsOpen(t *testing.T) {
	for _, cut := range []int{1, 2, 3, 50, 99} {
		t.Run(fmt.Sprintf("cut=%d", cut), func(t *testing.T) {
			dir := t.TempDir()
			writeTidwall(t, dir, testPayloads(5, 100))
			seg := onlySegment(t, dir)
			fi, err := os.Stat(seg)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(seg, fi.Size()-int64(cut)))

			l, err := openTidwall(t, dir, 0)
			if err == nil {
				_ = l.Close()
			}
			require.ErrorIs(t, err, wal.ErrCorrupt)
		})
	}
}

// TestTidwallBitFlipReadsBackSilently shows that a single flipped bit in an
// entry's data is returned by Read as if it were the written data: entries
// carry no checksum.
//
// Fails if upstream adds per-entry checksums.
func TestTidwallBitFlipReadsBackSilently(t *testing.T) {
	dir := t.TempDir()
	payloads := testPayloads(3, 100)
	writeTidwall(t, dir, payloads)
	seg := onlySegment(t, dir)
	raw, err := os.ReadFile(seg)
	require.NoError(t, err)
	// Entry 2 starts after entry 1 (1-byte uvarint 100 + 100 bytes); flip a
	// bit in the middle of entry 2's data.
	const flipAt = 101 + 1 + 50
	raw[flipAt] ^= 0x10
	require.NoError(t, os.WriteFile(seg, raw, 0o640))

	l, err := openTidwall(t, dir, 0)
	require.NoError(t, err)
	defer func() { require.NoError(t, l.Close()) }()
	got, err := l.Read(2)
	require.NoError(t, err, "the flipped entry reads without error (the defect)")
	want := bytes.Clone(payloads[1])
	want[50] ^= 0x10
	assert.Equal(t, want, got, "Read returns the corrupted bytes as data")
	assert.NotEqual(t, payloads[1], got)
}

// TestTidwallNeverSyncsDirectory inspects tidwall's own source (from the Go
// module cache, at the version go.mod resolves) and shows that the library
// creates and renames files in the log directory (os.MkdirAll, OpenFile with
// O_CREATE, os.Rename) but never opens a directory to fsync it: every Sync()
// call is on a segment file handle (l.sfile) or on the temp file written by
// atomicWrite (f). A new segment or a renamed START/END/TEMP file can
// therefore vanish after power loss even though its data was fsynced.
//
// Fails if upstream adds a directory sync (a Sync on any other receiver, or
// an os.Open of a path, which is how a directory is opened for syncing).
func TestTidwallNeverSyncsDirectory(t *testing.T) {
	src := tidwallSourceFile(t)
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, src, nil, 0)
	require.NoError(t, err)

	syncReceivers := map[string]int{}
	calls := map[string]int{}
	ast.Inspect(file, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		recv := exprString(sel.X)
		calls[recv+"."+sel.Sel.Name]++
		if sel.Sel.Name == "Sync" {
			syncReceivers[recv]++
		}
		return true
	})
	t.Logf("%s: Sync receivers %v", src, syncReceivers)

	// The library does create and rename directory entries...
	assert.Positive(t, calls["os.MkdirAll"], "creates the log directory")
	assert.Positive(t, calls["os.OpenFile"], "creates segment files with O_CREATE")
	assert.Positive(t, calls["os.Rename"], "renames START/END/TEMP files")
	// ...but only ever syncs files.
	for recv := range syncReceivers {
		assert.Contains(t, []string{"l.sfile", "f"}, recv,
			"unexpected Sync receiver %q: upstream may now sync a directory", recv)
	}
	assert.Zero(t, calls["os.Open"], "os.Open (the usual way to open a directory for fsync) is never called")
}

// tidwallSourceFile locates wal.go of the tidwall/wal version go.mod resolves.
func tidwallSourceFile(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}} {{.Dir}}", "github.com/tidwall/wal").Output()
	require.NoError(t, err, "go list -m github.com/tidwall/wal")
	version, dir, ok := strings.Cut(strings.TrimSpace(string(out)), " ")
	require.True(t, ok, "unexpected go list output %q", out)
	require.Equal(t, tidwallVersion, version, "these facts were established on %s", tidwallVersion)
	require.NotEmpty(t, dir, "tidwall/wal is not in the module cache (run go mod download)")
	return filepath.Join(dir, "wal.go")
}

func exprString(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.SelectorExpr:
		return exprString(x.X) + "." + x.Sel.Name
	default:
		return fmt.Sprintf("%T", e)
	}
}

const concurrentReadChildEnv = "BADBATCH_TIDWALL_CONCURRENT_READ_CHILD"

// TestTidwallConcurrentReadsPanic shows upstream issue #34: Read holds only
// the read lock but loads segments and mutates the shared segment cache, so
// concurrent Reads of non-tail segments race, and one reader can index a
// segment whose entries another reader's cache eviction just cleared. The
// crash is a runtime panic (index out of range / nil dereference) or a fatal
// "concurrent map" error that no recover can catch, so the readers run in a
// child process (this test binary re-executed) and the parent asserts that
// the child died of it within a bounded time.
//
// Fails if the child runs its whole time budget without crashing, which is
// what a fixed upstream would do.
func TestTidwallConcurrentReadsPanic(t *testing.T) {
	if os.Getenv(concurrentReadChildEnv) != "" {
		concurrentReadChild(t, os.Getenv(concurrentReadChildEnv))
		return
	}
	const attempts = 3
	var lastOut []byte
	for attempt := 1; attempt <= attempts; attempt++ {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestTidwallConcurrentReadsPanic$", "-test.count=1")
		cmd.Env = append(os.Environ(), concurrentReadChildEnv+"="+dir)
		out, err := cmd.CombinedOutput()
		lastOut = out
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) && crashedOnRead(out) {
			t.Logf("attempt %d: child crashed as expected (exit %d):\n%s", attempt, exitErr.ExitCode(), firstLines(out, 12))
			return
		}
		t.Logf("attempt %d: child did not crash (err=%v)", attempt, err)
	}
	t.Fatalf("concurrent tidwall Reads did not crash in %d bounded attempts; issue #34 may be fixed upstream. Last output:\n%s",
		attempts, firstLines(lastOut, 40))
}

// crashedOnRead reports whether the child's output shows a Go panic or a
// fatal runtime error raised inside tidwall's read path.
func crashedOnRead(out []byte) bool {
	s := string(out)
	return (strings.Contains(s, "panic:") || strings.Contains(s, "fatal error:")) &&
		strings.Contains(s, "github.com/tidwall/")
}

func concurrentReadChild(t *testing.T, dir string) {
	opts := *wal.DefaultOptions
	opts.SegmentSize = 2048   // many small segments
	opts.SegmentCacheSize = 1 // every read of another segment evicts
	l, err := wal.Open(dir, &opts)
	require.NoError(t, err)
	const entries = 4000
	payload := bytes.Repeat([]byte("x"), 100)
	for i := 1; i <= entries; i++ {
		require.NoError(t, l.Write(uint64(i), payload))
	}
	deadline := time.Now().Add(10 * time.Second)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 34))
			for time.Now().Before(deadline) {
				idx := 1 + rng.Uint64N(entries-100) // stay off the tail segment
				if _, err := l.Read(idx); err != nil && !errors.Is(err, wal.ErrNotFound) {
					panic("unexpected read error: " + err.Error() + " at " + strconv.FormatUint(idx, 10))
				}
			}
		})
	}
	wg.Wait()
	fmt.Println("NO-CRASH")
}

func appendToFile(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
