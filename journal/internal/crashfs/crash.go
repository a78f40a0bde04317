package crashfs

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// PageSize is the page size the junk lengths are aligned to.
const PageSize = 4096

// MaxJunk is the largest random junk length (JunkLenRandom).
const MaxJunk = 8 << 10

// TailMode says what happens to the unsynced bytes of a file.
type TailMode uint8

const (
	// TailPebble keeps CrashClone's choice: whole 4 KiB blocks, each kept
	// with probability UnsyncedDataPercent, zeros in skipped blocks.
	TailPebble TailMode = iota
	// TailPrefix keeps the synced bytes plus a uniformly random,
	// byte-granular prefix of the unsynced bytes.
	TailPrefix
)

func (m TailMode) String() string {
	switch m {
	case TailPebble:
		return "pebble"
	case TailPrefix:
		return "prefix"
	default:
		return fmt.Sprintf("TailMode(%d)", uint8(m))
	}
}

// JunkKind says what never-written bytes are appended after the tail.
type JunkKind uint8

const (
	// JunkNone appends nothing.
	JunkNone JunkKind = iota
	// JunkZeros appends zero bytes (a file extended but not written back).
	JunkZeros
	// JunkGarbage appends random bytes (a recycled block).
	JunkGarbage
	// JunkHeader appends CrashConfig.Header's bytes, then random garbage to
	// the chosen length (a stale block that starts like a valid frame).
	JunkHeader
)

func (k JunkKind) String() string {
	switch k {
	case JunkNone:
		return "none"
	case JunkZeros:
		return "zeros"
	case JunkGarbage:
		return "garbage"
	case JunkHeader:
		return "header"
	default:
		return fmt.Sprintf("JunkKind(%d)", uint8(k))
	}
}

// JunkLen says how long the junk is.
type JunkLen uint8

const (
	// JunkLenPage appends exactly one page.
	JunkLenPage JunkLen = iota
	// JunkLenToPage fills to the next page boundary (a whole page if the
	// file already ends on one).
	JunkLenToPage
	// JunkLenRandom appends 1 B to MaxJunk bytes, uniformly.
	JunkLenRandom
)

// CrashConfig configures Crash. The zero value gives exactly the synced
// state.
type CrashConfig struct {
	// UnsyncedDataPercent is passed to Pebble's CrashClone: the probability
	// that each unsynced 4 KiB block and each unsynced directory entry is
	// kept.
	UnsyncedDataPercent int
	// Tail chooses what happens to unsynced file bytes.
	Tail TailMode
	// Junk and JunkLen choose what is appended after the tail of every file
	// that had unsynced data.
	Junk    JunkKind
	JunkLen JunkLen
	// Header returns the leading bytes of JunkHeader junk. Nil means four
	// bytes of little-endian length in [1, 4096].
	Header func(rng *rand.Rand) []byte
	// RNG drives every random choice. It is required unless the
	// configuration makes none (zero percent, TailPebble, JunkNone).
	RNG *rand.Rand
}

func (c CrashConfig) String() string {
	return fmt.Sprintf("unsynced=%d%% tail=%s junk=%s/%d", c.UnsyncedDataPercent, c.Tail, c.Junk, c.JunkLen)
}

// RandomConfig draws a configuration that covers every mode: a percentage
// from {0, 10, 50, 90, 100}, either tail mode, and any junk.
func RandomConfig(rng *rand.Rand, header func(*rand.Rand) []byte) CrashConfig {
	percents := []int{0, 10, 50, 90, 100}
	return CrashConfig{
		UnsyncedDataPercent: percents[rng.IntN(len(percents))],
		Tail:                TailMode(rng.IntN(2)),
		Junk:                JunkKind(rng.IntN(4)),
		JunkLen:             JunkLen(rng.IntN(3)),
		Header:              header,
		RNG:                 rng,
	}
}

// FileDamage describes what Crash did to one file that had unsynced data.
type FileDamage struct {
	Path string
	// SyncedLen and CurrentLen are the file's synced and written lengths at
	// the crash.
	SyncedLen, CurrentLen int
	// KeptLen is the image's length before junk.
	KeptLen int
	// Junk and JunkBytes describe what was appended after KeptLen.
	Junk      JunkKind
	JunkBytes int
}

// CrashReport lists the files Crash touched beyond Pebble's CrashClone.
type CrashReport struct {
	Config CrashConfig
	Files  []FileDamage
}

func (r CrashReport) String() string {
	var b strings.Builder
	b.WriteString(r.Config.String())
	for _, f := range r.Files {
		fmt.Fprintf(&b, "; %s synced=%d written=%d kept=%d junk=%s+%d",
			f.Path, f.SyncedLen, f.CurrentLen, f.KeptLen, f.Junk, f.JunkBytes)
	}
	return b.String()
}

// Crash returns a crash image of fs: a new FS with what a disk could hold if
// power were cut now (see the package doc). fs is unchanged and can go on
// being used. The image is itself crashable, so recovery can be crashed too.
func (fs *FS) Crash(cfg CrashConfig) (*FS, CrashReport) {
	fs.gate.Lock()
	defer fs.gate.Unlock()

	report := CrashReport{Config: cfg}
	img := fs.mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: cfg.UnsyncedDataPercent, RNG: cfg.RNG})
	files := listFiles(img, "/")
	if cfg.Tail != TailPebble || cfg.Junk != JunkNone {
		for _, name := range files {
			if d, ok := fs.damage(img, name, cfg); ok {
				report.Files = append(report.Files, d)
			}
		}
	}
	out := wrap(img)
	for _, name := range files {
		if data, err := img.UnsafeGetFileDataBuffer(name); err == nil {
			out.node(name).synced.Store(int64(len(data)))
		}
	}
	return out, report
}

// damage applies the tail mode and junk to the image's file name, if the
// source file at that name has unsynced bytes and the image holds that
// same file. REQUIRES: gate held exclusively.
func (fs *FS) damage(img *vfs.MemFS, name string, cfg CrashConfig) (FileDamage, bool) {
	cur, err := fs.mem.UnsafeGetFileDataBuffer(name)
	if err != nil {
		return FileDamage{}, false // renamed or removed since; its image is CrashClone's
	}
	syncedLen := min(fs.syncedLen(name), len(cur))
	if len(cur) <= syncedLen {
		return FileDamage{}, false
	}
	data, err := img.UnsafeGetFileDataBuffer(name)
	if err != nil {
		return FileDamage{}, false
	}
	// CrashClone keeps a file's synced bytes whole. If the image's bytes
	// at this name do not start with the source file's synced bytes, the
	// name led to another file when the directory was last synced (a
	// rename over it since), and that file is left as CrashClone made it.
	if len(data) < syncedLen || !bytes.Equal(data[:syncedLen], cur[:syncedLen]) {
		return FileDamage{}, false
	}
	d := FileDamage{Path: name, SyncedLen: syncedLen, CurrentLen: len(cur)}
	var out []byte
	if cfg.Tail == TailPrefix {
		keep := syncedLen + cfg.RNG.IntN(len(cur)-syncedLen+1)
		out = slices.Clone(cur[:keep])
	} else {
		out = slices.Clone(data)
	}
	d.KeptLen = len(out)
	out = appendJunk(out, cfg, &d)
	if err := replaceFileDurably(img, name, out); err != nil {
		panic(fmt.Sprintf("crashfs: rewriting %s in a crash image: %v", name, err))
	}
	return d, true
}

func appendJunk(out []byte, cfg CrashConfig, d *FileDamage) []byte {
	if cfg.Junk == JunkNone {
		return out
	}
	var n int
	switch cfg.JunkLen {
	case JunkLenPage:
		n = PageSize
	case JunkLenToPage:
		n = PageSize - len(out)%PageSize
	default:
		n = 1 + cfg.RNG.IntN(MaxJunk)
	}
	junk := make([]byte, n)
	switch cfg.Junk {
	case JunkGarbage:
		fillRandom(cfg.RNG, junk)
	case JunkHeader:
		fillRandom(cfg.RNG, junk)
		header := cfg.Header
		if header == nil {
			header = defaultHeader
		}
		copy(junk, header(cfg.RNG))
	}
	d.Junk, d.JunkBytes = cfg.Junk, n
	return append(out, junk...)
}

func defaultHeader(rng *rand.Rand) []byte {
	n := 1 + rng.Uint32N(PageSize)
	return []byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// listFiles returns every regular file under dir, sorted, so that random
// choices made per file are reproducible from the seed.
func listFiles(mem *vfs.MemFS, dir string) []string {
	names, err := mem.List(dir)
	if err != nil {
		return nil
	}
	slices.Sort(names)
	var out []string
	for _, n := range names {
		p := mem.PathJoin(dir, n)
		fi, err := mem.Stat(p)
		if err != nil {
			continue
		}
		if fi.IsDir() {
			out = append(out, listFiles(mem, p)...)
		} else {
			out = append(out, p)
		}
	}
	return out
}
