package crashfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/badbatch/badbatch/journal/internal/crashfs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// setup creates /d (durably) and returns fs.
func setup(t *testing.T) *crashfs.FS {
	t.Helper()
	fs := crashfs.New()
	require.NoError(t, fs.MkdirAll("/d", 0o755))
	syncDir(t, fs, "/")
	return fs
}

func syncDir(t *testing.T, fs vfs.FS, dir string) {
	t.Helper()
	d, err := fs.OpenDir(dir)
	require.NoError(t, err)
	require.NoError(t, d.Sync())
	require.NoError(t, d.Close())
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// writeFile creates name with synced bytes then unsynced bytes, syncing the
// directory after the create. The file is left open (not synced again).
func writeFile(t *testing.T, fs vfs.FS, name string, synced, unsynced []byte) vfs.File {
	t.Helper()
	f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	syncDir(t, fs, fs.PathDir(name))
	_, err = f.Write(bytes.Clone(synced))
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	_, err = f.Write(bytes.Clone(unsynced))
	require.NoError(t, err)
	return f
}

func read(t *testing.T, fs *crashfs.FS, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(name)
	require.NoError(t, err)
	return b
}

func exists(fs vfs.FS, name string) bool {
	_, err := fs.Stat(name)
	return err == nil
}

func TestCrashKeepsExactlySyncedDataAtZeroPercent(t *testing.T) {
	fs := setup(t)
	synced, unsynced := pattern(5000, 1), pattern(9000, 2)
	f := writeFile(t, fs, "/d/a", synced, unsynced)
	defer f.Close()

	img, report := fs.Crash(crashfs.CrashConfig{})
	assert.Equal(t, synced, read(t, img, "/d/a"))
	assert.Empty(t, report.Files)
	// The source is untouched and still writable.
	assert.Equal(t, append(bytes.Clone(synced), unsynced...), read(t, fs, "/d/a"))
	_, err := f.Write([]byte("more"))
	require.NoError(t, err)
	assert.Len(t, read(t, img, "/d/a"), len(synced), "the image shares nothing with the source")
}

func TestCrashKeepsEverythingAtHundredPercent(t *testing.T) {
	fs := setup(t)
	synced, unsynced := pattern(5000, 1), pattern(9000, 2)
	f := writeFile(t, fs, "/d/a", synced, unsynced)
	defer f.Close()
	img, _ := fs.Crash(crashfs.CrashConfig{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(1, 1))})
	assert.Equal(t, append(bytes.Clone(synced), unsynced...), read(t, img, "/d/a"))
}

func TestCrashDirectoryEntries(t *testing.T) {
	tests := []struct {
		name      string
		build     func(t *testing.T, fs *crashfs.FS)
		path      string
		wantThere bool
	}{
		{
			name: "created file without directory sync is lost",
			build: func(t *testing.T, fs *crashfs.FS) {
				f, err := fs.Create("/d/new", vfs.WriteCategoryUnspecified)
				require.NoError(t, err)
				_, err = f.Write([]byte("data"))
				require.NoError(t, err)
				require.NoError(t, f.Sync())
				require.NoError(t, f.Close())
			},
			path: "/d/new",
		},
		{
			name: "created file with directory sync survives",
			build: func(t *testing.T, fs *crashfs.FS) {
				f, err := fs.Create("/d/new", vfs.WriteCategoryUnspecified)
				require.NoError(t, err)
				require.NoError(t, f.Close())
				syncDir(t, fs, "/d")
			},
			path:      "/d/new",
			wantThere: true,
		},
		{
			name: "removed file without directory sync comes back",
			build: func(t *testing.T, fs *crashfs.FS) {
				f := writeFile(t, fs, "/d/old", []byte("x"), nil)
				require.NoError(t, f.Close())
				require.NoError(t, fs.Remove("/d/old"))
			},
			path:      "/d/old",
			wantThere: true,
		},
		{
			name: "renamed file without directory sync reverts",
			build: func(t *testing.T, fs *crashfs.FS) {
				f := writeFile(t, fs, "/d/tmp", []byte("x"), nil)
				require.NoError(t, f.Close())
				require.NoError(t, fs.Rename("/d/tmp", "/d/final"))
			},
			path: "/d/final",
		},
		{
			name: "directory made without parent sync is lost",
			build: func(t *testing.T, fs *crashfs.FS) {
				require.NoError(t, fs.MkdirAll("/e", 0o755))
				syncDir(t, fs, "/e")
			},
			path: "/e",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := setup(t)
			tt.build(t, fs)
			img, _ := fs.Crash(crashfs.CrashConfig{})
			assert.Equal(t, tt.wantThere, exists(img, tt.path))
		})
	}
}

func TestCrashTailPrefixIsByteGranular(t *testing.T) {
	fs := setup(t)
	synced, unsynced := pattern(1000, 1), pattern(3000, 2)
	f := writeFile(t, fs, "/d/a", synced, unsynced)
	defer f.Close()
	full := append(bytes.Clone(synced), unsynced...)

	rng := rand.New(rand.NewPCG(7, 7))
	lengths := map[int]bool{}
	const images = 300
	for range images {
		img, report := fs.Crash(crashfs.CrashConfig{Tail: crashfs.TailPrefix, RNG: rng})
		got := read(t, img, "/d/a")
		require.GreaterOrEqual(t, len(got), len(synced))
		require.Equal(t, full[:len(got)], got, "the image is a prefix of what was written")
		require.Len(t, report.Files, 1)
		require.Equal(t, crashfs.FileDamage{Path: "/d/a", SyncedLen: 1000, CurrentLen: 4000, KeptLen: len(got)}, report.Files[0])
		lengths[len(got)] = true
	}
	// 300 uniform draws from 3001 lengths: well over 200 distinct values,
	// and not only block-aligned ones.
	assert.Greater(t, len(lengths), 200)
	unaligned := 0
	for n := range lengths {
		if n%crashfs.PageSize != 0 {
			unaligned++
		}
	}
	assert.Greater(t, unaligned, 200)
}

func TestCrashJunk(t *testing.T) {
	header := func(*rand.Rand) []byte { return []byte("HDR!") }
	tests := []struct {
		junk    crashfs.JunkKind
		junkLen crashfs.JunkLen
	}{}
	for _, k := range []crashfs.JunkKind{crashfs.JunkZeros, crashfs.JunkGarbage, crashfs.JunkHeader} {
		for _, l := range []crashfs.JunkLen{crashfs.JunkLenPage, crashfs.JunkLenToPage, crashfs.JunkLenRandom} {
			tests = append(tests, struct {
				junk    crashfs.JunkKind
				junkLen crashfs.JunkLen
			}{k, l})
		}
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/len=%d", tt.junk, tt.junkLen), func(t *testing.T) {
			fs := setup(t)
			synced, unsynced := pattern(1000, 1), pattern(500, 2)
			f := writeFile(t, fs, "/d/a", synced, unsynced)
			defer f.Close()
			// A second file with no unsynced data gets no junk.
			g := writeFile(t, fs, "/d/b", synced, nil)
			defer g.Close()

			for seed := range uint64(20) {
				cfg := crashfs.CrashConfig{Tail: crashfs.TailPrefix, Junk: tt.junk, JunkLen: tt.junkLen, Header: header,
					RNG: rand.New(rand.NewPCG(seed, 3))}
				img, report := fs.Crash(cfg)
				require.Len(t, report.Files, 1)
				d := report.Files[0]
				got := read(t, img, "/d/a")
				require.Equal(t, d.KeptLen+d.JunkBytes, len(got))
				require.Equal(t, append(bytes.Clone(synced), unsynced...)[:d.KeptLen], got[:d.KeptLen])
				junk := got[d.KeptLen:]
				switch tt.junkLen {
				case crashfs.JunkLenPage:
					require.Len(t, junk, crashfs.PageSize)
				case crashfs.JunkLenToPage:
					require.Zero(t, len(got)%crashfs.PageSize)
					require.NotEmpty(t, junk)
				case crashfs.JunkLenRandom:
					require.GreaterOrEqual(t, len(junk), 1)
					require.LessOrEqual(t, len(junk), crashfs.MaxJunk)
				}
				switch tt.junk {
				case crashfs.JunkZeros:
					require.Equal(t, make([]byte, len(junk)), junk)
				case crashfs.JunkHeader:
					require.True(t, bytes.HasPrefix(junk, []byte("HDR!")) || bytes.HasPrefix([]byte("HDR!"), junk))
				case crashfs.JunkGarbage:
					if len(junk) >= 64 {
						require.NotEqual(t, make([]byte, len(junk)), junk)
					}
				}
				require.Equal(t, synced, read(t, img, "/d/b"))
			}
		})
	}
}

func TestCrashIsDeterministicPerSeed(t *testing.T) {
	fs := setup(t)
	f := writeFile(t, fs, "/d/a", pattern(3000, 1), pattern(20000, 2))
	defer f.Close()
	for seed := range uint64(10) {
		a, _ := fs.Crash(crashfs.RandomConfig(rand.New(rand.NewPCG(seed, 0)), nil))
		b, _ := fs.Crash(crashfs.RandomConfig(rand.New(rand.NewPCG(seed, 0)), nil))
		assert.Equal(t, read(t, a, "/d/a"), read(t, b, "/d/a"), "seed %d", seed)
	}
}

func TestCrashImageCanCrashAgain(t *testing.T) {
	fs := setup(t)
	f := writeFile(t, fs, "/d/a", pattern(100, 1), pattern(100, 2))
	defer f.Close()
	img, _ := fs.Crash(crashfs.CrashConfig{Tail: crashfs.TailPrefix, Junk: crashfs.JunkZeros, RNG: rand.New(rand.NewPCG(1, 2))})
	first := read(t, img, "/d/a")
	// Everything in an image is durable: crashing it again at 0% keeps it.
	img2, _ := img.Crash(crashfs.CrashConfig{})
	assert.Equal(t, first, read(t, img2, "/d/a"))
	// New unsynced writes in the image are subject to loss as usual.
	g, err := img.OpenReadWrite("/d/a", vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	_, err = g.WriteAt([]byte("tail"), int64(len(first)))
	require.NoError(t, err)
	require.NoError(t, g.Close())
	img3, _ := img.Crash(crashfs.CrashConfig{})
	assert.Equal(t, first, read(t, img3, "/d/a"))
}

// TestCrashIsAtomicWithConcurrentWriters checks the gate: with every block
// kept, an image taken while another goroutine writes 100-byte records holds
// a whole number of records, never half of one Write.
func TestCrashIsAtomicWithConcurrentWriters(t *testing.T) {
	fs := setup(t)
	f, err := fs.Create("/d/a", vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	syncDir(t, fs, "/d")
	const records = 3000
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range records {
			if _, err := f.Write(pattern(100, byte(i))); err != nil {
				panic(err)
			}
			if i%10 == 0 {
				if err := f.Sync(); err != nil {
					panic(err)
				}
			}
		}
	})
	rng := rand.New(rand.NewPCG(5, 5))
	images := 0
	for images < 200 {
		img, _ := fs.Crash(crashfs.CrashConfig{UnsyncedDataPercent: 100, RNG: rng})
		got := read(t, img, "/d/a")
		require.Zero(t, len(got)%100, "image holds %d bytes", len(got))
		for off := 0; off < len(got); off += 100 {
			require.Equal(t, pattern(100, byte(off/100)), got[off:off+100])
		}
		images++
	}
	wg.Wait()
	require.NoError(t, f.Close())
}

func TestHookRunsAfterEachMutation(t *testing.T) {
	fs := setup(t)
	var ops []string
	var images []*crashfs.FS
	fs.SetHook(func(op, path string) {
		ops = append(ops, op+" "+path)
		if op == "write" {
			img, _ := fs.Crash(crashfs.CrashConfig{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(1, 1))})
			images = append(images, img)
		}
	})
	f, err := fs.Create("/d/a", vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	_, err = f.Write([]byte("abc"))
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
	require.NoError(t, fs.Rename("/d/a", "/d/b"))
	fs.SetHook(nil)
	assert.Equal(t, []string{"create /d/a", "write /d/a", "sync /d/a", "rename /d/b"}, ops)
	require.Len(t, images, 1)
	assert.Equal(t, []byte("abc"), read(t, images[0], "/d/a"), "a crash taken from the hook sees the write")
}

func TestRecorderLogsNamespaceAndSyncs(t *testing.T) {
	fs := setup(t)
	r := crashfs.NewRecorder(fs)
	require.NoError(t, r.MkdirAll("/d/x/y", 0o755))
	require.NoError(t, r.MkdirAll("/d/x/y", 0o755)) // exists: not logged
	f, err := r.Create("/d/x/y/a", vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
	g, err := r.OpenReadWrite("/d/x/y/a", vfs.WriteCategoryUnspecified) // exists: not a create
	require.NoError(t, err)
	require.NoError(t, g.Close())
	g, err = r.OpenReadWrite("/d/x/y/c", vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	require.NoError(t, g.Close())
	require.NoError(t, r.Rename("/d/x/y/a", "/d/x/y/b"))
	syncDir(t, r, "/d/x/y")
	require.NoError(t, r.Remove("/d/x/y/b"))
	lock, err := r.Lock("/d/LOCK")
	require.NoError(t, err)
	require.NoError(t, lock.Close())

	want := []crashfs.Op{
		{Kind: crashfs.OpMkdir, Path: "/d/x"},
		{Kind: crashfs.OpMkdir, Path: "/d/x/y"},
		{Kind: crashfs.OpCreate, Path: "/d/x/y/a"},
		{Kind: crashfs.OpSyncFile, Path: "/d/x/y/a"},
		{Kind: crashfs.OpCreate, Path: "/d/x/y/c"},
		{Kind: crashfs.OpRename, Path: "/d/x/y/b", From: "/d/x/y/a"},
		{Kind: crashfs.OpSyncDir, Path: "/d/x/y"},
		{Kind: crashfs.OpRemove, Path: "/d/x/y/b"},
		{Kind: crashfs.OpLock, Path: "/d/LOCK"},
	}
	assert.Equal(t, want, r.Ops())
	assert.Equal(t, len(want), r.Mark())
	r.Reset()
	assert.Empty(t, r.Ops())
}

func TestAuditDirSyncs(t *testing.T) {
	create := crashfs.Op{Kind: crashfs.OpCreate, Path: "/j/2.seg"}
	syncJ := crashfs.Op{Kind: crashfs.OpSyncDir, Path: "/j"}
	syncOther := crashfs.Op{Kind: crashfs.OpSyncDir, Path: "/k"}
	syncFile := crashfs.Op{Kind: crashfs.OpSyncFile, Path: "/j/2.seg"}
	rename := crashfs.Op{Kind: crashfs.OpRename, From: "/tmp/x", Path: "/j/x"}
	syncTmp := crashfs.Op{Kind: crashfs.OpSyncDir, Path: "/tmp"}
	remove := crashfs.Op{Kind: crashfs.OpRemove, Path: "/j/1.seg"}
	tests := []struct {
		name        string
		ops         []crashfs.Op
		acks        []int
		wantDirs    []string // directories named by the violations, in order
		wantRemoves []string
	}{
		{name: "create then dir sync then ack", ops: []crashfs.Op{create, syncFile, syncJ}, acks: []int{3}},
		{name: "create then ack without dir sync", ops: []crashfs.Op{create, syncFile}, acks: []int{2}, wantDirs: []string{"/j"}},
		{name: "dir sync after the ack is too late", ops: []crashfs.Op{create, syncFile, syncJ}, acks: []int{2}, wantDirs: []string{"/j"}},
		{name: "sync of another dir does not count", ops: []crashfs.Op{create, syncOther}, acks: []int{2}, wantDirs: []string{"/j"}},
		{name: "dir sync before the create does not count", ops: []crashfs.Op{syncJ, create}, acks: []int{2}, wantDirs: []string{"/j"}},
		{name: "no ack after the create: nothing depends on it", ops: []crashfs.Op{syncJ, create}, acks: []int{1}},
		{name: "rename across dirs needs both", ops: []crashfs.Op{rename, syncJ}, acks: []int{2}, wantDirs: []string{"/tmp"}},
		{name: "rename across dirs with both synced", ops: []crashfs.Op{rename, syncTmp, syncJ}, acks: []int{3}},
		{name: "remove without sync", ops: []crashfs.Op{remove, syncFile}, acks: []int{2}, wantRemoves: []string{"/j"}},
		{name: "remove with sync", ops: []crashfs.Op{remove, syncJ}, acks: []int{2}},
		{name: "first ack after the op is the one that counts", ops: []crashfs.Op{create, syncFile, syncJ}, acks: []int{5, 2}, wantDirs: []string{"/j"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dirs, removes []string
			for _, v := range crashfs.AuditDirSyncs(tt.ops, tt.acks) {
				dirs = append(dirs, v.Dir)
				assert.Contains(t, v.String(), "no sync of directory")
			}
			for _, v := range crashfs.AuditRemoveSyncs(tt.ops, tt.acks) {
				removes = append(removes, v.Dir)
			}
			assert.Equal(t, tt.wantDirs, dirs)
			assert.Equal(t, tt.wantRemoves, removes)
		})
	}
}

func TestFaultsInjectAtIndex(t *testing.T) {
	// The workload: create, write, sync, write, sync. Five counted ops.
	workload := func(fs vfs.FS) []error {
		var errs []error
		f, err := fs.Create("/d/a", vfs.WriteCategoryUnspecified)
		errs = append(errs, err)
		if err != nil {
			return errs
		}
		defer f.Close()
		_, err = f.Write([]byte("one"))
		errs = append(errs, err)
		errs = append(errs, f.Sync())
		_, err = f.Write([]byte("two"))
		errs = append(errs, err)
		errs = append(errs, f.Sync())
		return errs
	}
	count := &crashfs.Faults{At: -1}
	for _, err := range workload(count.Wrap(setup(t))) {
		require.NoError(t, err)
	}
	require.Equal(t, 5, count.Seen())

	wantErrno := []syscall.Errno{syscall.ENOSPC, syscall.ENOSPC, syscall.EIO, syscall.ENOSPC, syscall.EIO}
	for _, sticky := range []bool{false, true} {
		for at := range 5 {
			t.Run(fmt.Sprintf("sticky=%t/at=%d", sticky, at), func(t *testing.T) {
				faults := &crashfs.Faults{At: at, Sticky: sticky}
				errs := workload(faults.Wrap(setup(t)))
				for i, err := range errs {
					switch {
					case i < at, i > at && !sticky:
						require.NoError(t, err, "op %d", i)
					default:
						require.ErrorIs(t, err, crashfs.ErrInjected, "op %d", i)
						require.ErrorIs(t, err, wantErrno[i], "op %d", i)
						var ie *crashfs.InjectedError
						require.True(t, errors.As(err, &ie))
						require.Equal(t, "/d/a", ie.Op.Path)
					}
				}
				fired := faults.Fired()
				require.NotEmpty(t, fired)
				if !sticky {
					require.Len(t, fired, 1)
				}
				if at == 0 {
					require.Equal(t, errorfs.OpCreate, fired[0].Kind)
				}
			})
		}
	}
}

// TestCrashSyncedLengthFollowsTheFile checks that the synced length used by
// TailPrefix belongs to the file, not to whether its name is durable: a
// file synced under a temporary name and renamed, in a directory whose own
// entry was never synced, keeps all its synced bytes when it is kept.
func TestCrashSyncedLengthFollowsTheFile(t *testing.T) {
	fs := crashfs.New()
	require.NoError(t, fs.MkdirAll("/new/dir", 0o755)) // "/" never synced
	f, err := fs.Create("/new/dir/a.tmp", vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	synced := pattern(6000, 1)
	_, err = f.Write(bytes.Clone(synced))
	require.NoError(t, err)
	require.NoError(t, f.SyncData())
	require.NoError(t, f.Close())
	require.NoError(t, fs.Rename("/new/dir/a.tmp", "/new/dir/a"))
	syncDir(t, fs, "/new/dir")
	g, err := fs.OpenReadWrite("/new/dir/a", vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	defer g.Close()
	_, err = g.WriteAt(pattern(3000, 2), 6000)
	require.NoError(t, err)

	// At 0% the whole tree is lost: "/new" was never made durable in "/".
	img, _ := fs.Crash(crashfs.CrashConfig{})
	assert.False(t, exists(img, "/new"))
	// At 100% the directories are kept, and a prefix never cuts into the
	// 6000 synced bytes.
	rng := rand.New(rand.NewPCG(9, 9))
	for range 50 {
		img, report := fs.Crash(crashfs.CrashConfig{UnsyncedDataPercent: 100, Tail: crashfs.TailPrefix, RNG: rng})
		got := read(t, img, "/new/dir/a")
		require.GreaterOrEqual(t, len(got), 6000)
		require.Equal(t, synced, got[:6000])
		require.Len(t, report.Files, 1)
		require.Equal(t, 6000, report.Files[0].SyncedLen)
	}
}

// TestCrashLeavesAReplacedFileAlone: when a name was renamed over after the
// last directory sync, the image may hold the old file under it; Crash must
// not splice the new file's bytes into it.
func TestCrashLeavesAReplacedFileAlone(t *testing.T) {
	fs := setup(t)
	old := writeFile(t, fs, "/d/seg", pattern(5000, 1), nil)
	require.NoError(t, old.Close())
	f := writeFile(t, fs, "/d/seg.tmp", pattern(100, 7), pattern(4000, 8))
	defer f.Close()
	require.NoError(t, fs.Rename("/d/seg.tmp", "/d/seg")) // directory not synced
	img, report := fs.Crash(crashfs.CrashConfig{Tail: crashfs.TailPrefix, Junk: crashfs.JunkZeros, RNG: rand.New(rand.NewPCG(1, 1))})
	assert.Equal(t, pattern(5000, 1), read(t, img, "/d/seg"), "the old file, untouched")
	for _, d := range report.Files {
		assert.NotEqual(t, "/d/seg", d.Path)
	}
}

func TestFaultsOnReads(t *testing.T) {
	base := setup(t)
	f := writeFile(t, base, "/d/a", []byte("abc"), nil)
	require.NoError(t, f.Close())
	faults := &crashfs.Faults{At: 1, Match: crashfs.ReadMatch}
	fs := faults.Wrap(base)
	g, err := fs.Open("/d/a") // read op 0
	require.NoError(t, err)
	defer g.Close()
	buf := make([]byte, 3)
	_, err = g.ReadAt(buf, 0) // read op 1: fails
	require.ErrorIs(t, err, syscall.EIO)
	require.ErrorIs(t, err, crashfs.ErrInjected)
	_, err = g.ReadAt(buf, 0) // not sticky
	require.NoError(t, err)
	assert.Equal(t, []byte("abc"), buf)
	w, err := fs.Create("/d/b", vfs.WriteCategoryUnspecified) // writes are not matched
	require.NoError(t, err)
	require.NoError(t, w.Close())
	assert.Equal(t, 3, faults.Seen(), "open and two reads; the create is not counted")
}
