//go:build linux

package bench

// Does the way a segment file is sized before it is written change what one
// fdatasync per small append costs? Evidence for decision 0007
// (docs/decisions/0007-segment-preallocation.md):
//
//	BenchmarkFsyncPrealloc/variant=V/size={100B,1KiB,4KiB,64KiB}
//
// appends writes of size+64 bytes (a record behind a 64-byte frame header,
// like the journal) sequentially to one O_RDWR file with pwrite, one
// unix.Fdatasync after each, and reports fsyncs/s and the p50/p99 latency
// of one pwrite+fdatasync. The variants differ only in how the 64 MiB
// segment file is prepared before the timer starts:
//
//	grow          new empty file; the size grows with every write
//	keepsize      fallocate(FALLOC_FL_KEEP_SIZE, 0, 64 MiB): blocks reserved,
//	              size unchanged, so it still grows with every write
//	keepsize-4MiB no up-front reservation; fallocate(FALLOC_FL_KEEP_SIZE) of
//	              4 MiB ahead of the write position inside the write path,
//	              exactly what journal.Write does (journal/journal.go,
//	              preallocateStep) through Pebble's vfs Preallocate
//	fallocate-fsync
//	              fallocate as above, but fsync(2) instead of fdatasync(2):
//	              exactly what raft-wal v0.4.0 does
//	fallocate     fallocate(mode 0, 0, 64 MiB): size set to 64 MiB, blocks
//	              allocated as unwritten extents (etcd's wal; raft-wal too,
//	              but with fsync: see fallocate-fsync)
//	zerofill      64 MiB of zeros written and fdatasynced: size set, blocks
//	              allocated and written
//	recycled      64 MiB of old frames written and fdatasynced (a previous
//	              segment), then overwritten from the start (Pebble's WAL
//	              recycling)
//
// Every prepared file is fsynced, and so is the directory, before the
// timer starts, so that no variant pays for the file's creation inside the
// loop. A file never exceeds 64 MiB: when the next write would not fit, the
// timer stops, the file is removed and a fresh one is prepared. The machine
// is shared and noisy: run the variants interleaved, one process per
// (variant, size) in a shuffled order per round, and compare medians over
// rounds (the command is in 0007).

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// preallocSegmentSize is the segment size of the benchmark (the journal's
// default SegmentSize, raft-wal's DefaultSegmentSize).
const preallocSegmentSize = 64 << 20

// preallocFrameHeader is the per-write overhead added to each record.
const preallocFrameHeader = 64

// preallocJournalStep is the journal's preallocateStep.
const preallocJournalStep = 4 << 20

// preallocOldByte fills the payload of the frames a recycled file held
// before it is reused; new frames use preallocNewByte.
const (
	preallocOldByte = 0xEE
	preallocNewByte = 0x5A
)

type preallocVariant struct {
	name string
	// prepare fills a freshly created file of segSize bytes' budget.
	prepare func(f *os.File, segSize int64, frame int) error
	// step > 0: fallocate(KEEP_SIZE) this far ahead inside the write path.
	step int64
	// fsync: fsync(2) instead of fdatasync(2) after each write.
	fsync bool
}

var preallocVariants = []preallocVariant{
	{name: "grow", prepare: func(*os.File, int64, int) error { return nil }},
	{name: "keepsize", prepare: func(f *os.File, segSize int64, _ int) error {
		return unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, segSize)
	}},
	{name: "keepsize-4MiB", step: preallocJournalStep, prepare: func(*os.File, int64, int) error { return nil }},
	{name: "fallocate", prepare: func(f *os.File, segSize int64, _ int) error {
		return unix.Fallocate(int(f.Fd()), 0, 0, segSize)
	}},
	{name: "fallocate-fsync", fsync: true, prepare: func(f *os.File, segSize int64, _ int) error {
		return unix.Fallocate(int(f.Fd()), 0, 0, segSize)
	}},
	{name: "zerofill", prepare: func(f *os.File, segSize int64, _ int) error {
		return preallocFill(f, segSize, nil)
	}},
	{name: "recycled", prepare: func(f *os.File, segSize int64, frame int) error {
		// The previous life of the file: frames of the same size with
		// indexes counting from 1, up to the segment's end.
		old := make([]byte, frame)
		return preallocFill(f, segSize, func(p []byte, off int64) {
			for i := range p {
				pos := off + int64(i)
				k := pos % int64(frame)
				if k == 0 {
					preallocStamp(old, uint64(pos/int64(frame))+1, preallocOldByte)
				}
				p[i] = old[k]
			}
		})
	}},
}

// preallocFill writes segSize bytes (zeros, or what gen puts there) in
// 1 MiB chunks and fdatasyncs them.
func preallocFill(f *os.File, segSize int64, gen func(p []byte, off int64)) error {
	chunk := make([]byte, 1<<20)
	for off := int64(0); off < segSize; off += int64(len(chunk)) {
		p := chunk[:min(int64(len(chunk)), segSize-off)]
		if gen != nil {
			gen(p, off)
		}
		if _, err := f.WriteAt(p, off); err != nil {
			return err
		}
	}
	return unix.Fdatasync(int(f.Fd()))
}

// preallocStamp makes buf a frame: "BBJE", the index at [8,16), fill after
// the header.
func preallocStamp(buf []byte, index uint64, fill byte) {
	clear(buf[:preallocFrameHeader])
	copy(buf, "BBJE")
	binary.LittleEndian.PutUint64(buf[8:], index)
	if len(buf) > preallocFrameHeader && buf[preallocFrameHeader] != fill {
		for i := preallocFrameHeader; i < len(buf); i++ {
			buf[i] = fill
		}
	}
}

// preallocWriter appends frames of one size to a sequence of prepared
// segment files in dir, one pwrite and one fdatasync per frame.
type preallocWriter struct {
	v        preallocVariant
	dir      string
	segSize  int64
	buf      []byte
	f        *os.File
	path     string
	off      int64 // write position in the current file
	prealloc int64 // KEEP_SIZE reservation end (step variants)
	files    int   // files prepared so far
	index    uint64
}

func newPreallocWriter(v preallocVariant, dir string, segSize int64, recordSize int) *preallocWriter {
	return &preallocWriter{v: v, dir: dir, segSize: segSize, buf: make([]byte, recordSize+preallocFrameHeader)}
}

// roll removes the current file (if any) and prepares the next one, fsynced
// with its directory.
func (w *preallocWriter) roll() error {
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			return err
		}
		if err := os.Remove(w.path); err != nil {
			return err
		}
		w.f = nil
	}
	w.files++
	w.path = filepath.Join(w.dir, fmt.Sprintf("%020d.seg", w.files))
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	if err := w.v.prepare(f, w.segSize, len(w.buf)); err != nil {
		f.Close()
		return fmt.Errorf("prepare %s: %w", w.v.name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	d, err := os.Open(w.dir)
	if err != nil {
		f.Close()
		return err
	}
	err = d.Sync()
	d.Close()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.off, w.prealloc = f, 0, 0
	return nil
}

// full says whether the next frame needs a new file.
func (w *preallocWriter) full() bool {
	return w.f == nil || w.off+int64(len(w.buf)) > w.segSize
}

// append writes and fdatasyncs the next frame. The caller rolls first when
// full.
func (w *preallocWriter) append() error {
	w.index++
	preallocStamp(w.buf, w.index, preallocNewByte)
	n := int64(len(w.buf))
	if w.v.step > 0 && w.off+n > w.prealloc {
		step := max(min(w.v.step, w.segSize-w.off), n)
		if err := unix.Fallocate(int(w.f.Fd()), unix.FALLOC_FL_KEEP_SIZE, w.off, step); err != nil {
			return err
		}
		w.prealloc = w.off + step
	}
	if _, err := w.f.WriteAt(w.buf, w.off); err != nil {
		return err
	}
	sync := unix.Fdatasync
	if w.v.fsync {
		sync = unix.Fsync
	}
	if err := sync(int(w.f.Fd())); err != nil {
		return err
	}
	w.off += n
	return nil
}

func (w *preallocWriter) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

var preallocSizes = []int{100, 1 << 10, 4 << 10, 64 << 10}

func preallocSizeName(n int) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func BenchmarkFsyncPrealloc(b *testing.B) {
	for _, v := range preallocVariants {
		b.Run("variant="+v.name, func(b *testing.B) {
			for _, size := range preallocSizes {
				b.Run("size="+preallocSizeName(size), func(b *testing.B) {
					benchmarkFsyncPrealloc(b, v, size)
				})
			}
		})
	}
}

func benchmarkFsyncPrealloc(b *testing.B, v preallocVariant, size int) {
	w := newPreallocWriter(v, b.TempDir(), preallocSegmentSize, size)
	defer w.close()
	if err := w.roll(); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.SetBytes(int64(len(w.buf)))
	b.ResetTimer()
	for i := range b.N {
		if w.full() {
			b.StopTimer()
			if err := w.roll(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		t0 := time.Now()
		if err := w.append(); err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(t0)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Nanoseconds()), "p99-ns")
}

// TestFsyncPreallocVariantsWriteWhatTheyClaim runs every variant on a small
// segment (so that it stays fast and rolls once) and checks the file each
// one leaves behind: its size, its allocated blocks and every byte.
func TestFsyncPreallocVariantsWriteWhatTheyClaim(t *testing.T) {
	const (
		segSize = 64 << 10
		record  = 4<<10 - preallocFrameHeader // 4 KiB writes
		frame   = record + preallocFrameHeader
		perFile = segSize / frame // 16
		writes  = perFile + 4     // rolls once, leaves 4 frames in file 2
	)
	for _, v := range preallocVariants {
		t.Run(v.name, func(t *testing.T) {
			if v.step > 0 {
				v.step = 8 << 10 // two steps for the 16 KiB in the second file
			}
			w := newPreallocWriter(v, t.TempDir(), segSize, record)
			for range writes {
				if w.full() {
					if err := w.roll(); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.append(); err != nil {
					t.Fatal(err)
				}
			}
			path := w.path
			if err := w.close(); err != nil {
				t.Fatal(err)
			}
			if w.files != 2 {
				t.Fatalf("prepared %d files, want 2", w.files)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(path), fmt.Sprintf("%020d.seg", 1))); !os.IsNotExist(err) {
				t.Fatalf("the first file was not removed on roll: %v", err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var st unix.Stat_t
			if err := unix.Stat(path, &st); err != nil {
				t.Fatal(err)
			}
			const written = (writes - perFile) * frame
			wantSize, minBlocks := int64(segSize), int64(segSize)
			switch v.name {
			case "grow":
				wantSize, minBlocks = written, written
			case "keepsize":
				wantSize = written
			case "keepsize-4MiB":
				wantSize, minBlocks = written, 16<<10 // two 8 KiB steps
			}
			if int64(len(data)) != wantSize {
				t.Fatalf("file size %d, want %d", len(data), wantSize)
			}
			if st.Blocks*512 < minBlocks {
				t.Fatalf("%d bytes allocated, want at least %d", st.Blocks*512, minBlocks)
			}
			// The new frames, indexes perFile+1.. (continuing across the roll).
			want := make([]byte, frame)
			for k := range writes - perFile {
				preallocStamp(want, uint64(perFile+k+1), preallocNewByte)
				if got := data[k*frame : (k+1)*frame]; string(got) != string(want) {
					t.Fatalf("frame %d at offset %d differs from what was written", k, k*frame)
				}
			}
			// What lies behind them: nothing, zeros, or the old frames.
			for k := written / frame; k < len(data)/frame; k++ {
				got := data[k*frame : (k+1)*frame]
				switch v.name {
				case "fallocate", "fallocate-fsync", "zerofill":
					clear(want)
				case "recycled":
					preallocStamp(want, uint64(k+1), preallocOldByte)
				default:
					t.Fatalf("%d bytes behind the written frames", len(data)-written)
				}
				if string(got) != string(want) {
					t.Fatalf("old frame %d at offset %d is not what the variant claims", k, k*frame)
				}
			}
		})
	}
}
