package storage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"strings"

	"github.com/badbatch/badbatch/internal/vfsutil"
	"github.com/badbatch/badbatch/journal"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// A snapshot carries a whole store to a cluster node that is too far
// behind, or new: a Pebble checkpoint of the index, then every retained
// journal entry up to the snapshot's index. It is streamed in this format
// (little-endian; NEVER CHANGE these constants, add a version):
//
//	"BBSNAP01"
//	header:  u64 first index | u64 first seq | u64 last index | u64 applied index of the checkpoint
//	records: u8 type, then
//	  1 file:  u16 name length | name | u64 size | size bytes      (a file of the index checkpoint)
//	  2 entry: u64 index | u64 term | u8 kind | u32 length | payload
//	  3 end:   u64 files | u64 entries | u32 crc32c of every byte before this field
//
// The receiver writes the files into STAGE/index and the entries, through
// journal.WriteEntry (which checks their continuity and groups), into a new
// journal at STAGE/journal that starts at the first index; nothing of the
// live store changes until InstallSnapshot swaps the staged directories in.
const (
	snapshotMagic      = "BBSNAP01"
	snapshotRecFile    = 1
	snapshotRecEntry   = 2
	snapshotRecEnd     = 3
	maxSnapshotName    = 255
	maxSnapshotFile    = 1 << 40
	maxSnapshotPayload = 1 << 30
)

// SnapshotInfo describes a received snapshot.
type SnapshotInfo struct {
	FirstIndex, FirstSeq, LastIndex, CheckpointApplied uint64
	Files, Entries                                     uint64
}

// ErrBadSnapshot is returned for a snapshot stream that is malformed,
// truncated or fails its checksum. Nothing of the live store changed.
var ErrBadSnapshot = errors.New("storage: bad snapshot")

// WriteSnapshot streams a snapshot of the store that covers at least every
// entry up to upTo (which must be applied) to w. Safe to call concurrently
// with appends and reads.
func (s *Store) WriteSnapshot(w io.Writer, upTo uint64) error {
	if err := s.beginRead(); err != nil {
		return err
	}
	defer s.endRead()
	fs := s.opts.FS
	ckpt := fs.PathJoin(s.dir, fmt.Sprintf("snapshot-out-%016x", rand.Uint64()))
	if err := s.x.db.Flush(); err != nil {
		return fmt.Errorf("storage: snapshot: flush index: %w", err)
	}
	if err := s.x.db.Checkpoint(ckpt); err != nil {
		return fmt.Errorf("storage: snapshot: checkpoint index: %w", err)
	}
	defer func() { _ = fs.RemoveAll(ckpt) }()
	x, err := openIndex(ckpt, fs, s.log)
	if err != nil {
		return err
	}
	pos, _, err := x.applied()
	_ = x.close(false)
	if err != nil {
		return fmt.Errorf("storage: snapshot: read checkpoint position: %w", err)
	}
	applied := uint64(0)
	if pos.Entry > 0 {
		applied = pos.Entry - 1
	}
	first := s.j.FirstIndex()
	last := max(upTo, applied)
	var firstSeq uint64
	if first <= last {
		info, err := s.j.Info(first)
		if err != nil {
			return fmt.Errorf("storage: snapshot: entry %d: %w", first, err)
		}
		firstSeq = info.FirstSeq
	}
	sw := &snapshotWriter{w: bufio.NewWriterSize(w, 1<<20), crc: crc32.New(crcTable)}
	sw.write([]byte(snapshotMagic))
	sw.u64(first)
	sw.u64(firstSeq)
	sw.u64(last)
	sw.u64(applied)
	names, err := fs.List(ckpt)
	if err != nil {
		return fmt.Errorf("storage: snapshot: list checkpoint: %w", err)
	}
	var files, entries uint64
	buf := make([]byte, 1<<20)
	for _, name := range names {
		if err := sw.file(fs, ckpt, name, buf); err != nil {
			return err
		}
		files++
	}
	if first <= last {
		it := s.j.NewIterator(first)
		for it.Next() {
			e := it.Entry()
			if e.Index > last {
				break
			}
			sw.u8(snapshotRecEntry)
			sw.u64(e.Index)
			sw.u64(e.Term)
			sw.u8(uint8(e.Kind))
			sw.u32(uint32(len(e.Payload)))
			sw.write(e.Payload)
			entries++
			if e.Index == last {
				break
			}
			if sw.err != nil {
				break
			}
		}
		if err := errors.Join(it.Err(), it.Close()); err != nil {
			return fmt.Errorf("storage: snapshot: read the journal: %w", err)
		}
		if entries != last-first+1 {
			return fmt.Errorf("storage: snapshot: journal has %d entries from %d, want up to %d", entries, first, last)
		}
	}
	sw.u8(snapshotRecEnd)
	sw.u64(files)
	sw.u64(entries)
	sum := sw.crc.Sum32()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], sum)
	if sw.err == nil {
		_, sw.err = sw.w.Write(b[:])
	}
	if sw.err == nil {
		sw.err = sw.w.Flush()
	}
	return sw.err
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type snapshotWriter struct {
	w   *bufio.Writer
	crc hash.Hash32
	err error
	b   [8]byte
}

func (w *snapshotWriter) write(p []byte) {
	if w.err != nil {
		return
	}
	_, w.err = w.w.Write(p)
	_, _ = w.crc.Write(p)
}
func (w *snapshotWriter) u8(v uint8) { w.write([]byte{v}) }
func (w *snapshotWriter) u16(v uint16) {
	binary.LittleEndian.PutUint16(w.b[:], v)
	w.write(w.b[:2])
}
func (w *snapshotWriter) u32(v uint32) {
	binary.LittleEndian.PutUint32(w.b[:], v)
	w.write(w.b[:4])
}
func (w *snapshotWriter) u64(v uint64) {
	binary.LittleEndian.PutUint64(w.b[:], v)
	w.write(w.b[:8])
}

func (w *snapshotWriter) file(fs vfs.FS, dir, name string, buf []byte) error {
	path := fs.PathJoin(dir, name)
	st, err := fs.Stat(path)
	if err != nil {
		return fmt.Errorf("storage: snapshot: stat %s: %w", path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("storage: snapshot: unexpected directory %s in the checkpoint", path)
	}
	f, err := fs.Open(path)
	if err != nil {
		return fmt.Errorf("storage: snapshot: open %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	w.u8(snapshotRecFile)
	w.u16(uint16(len(name)))
	w.write([]byte(name))
	w.u64(uint64(st.Size()))
	remaining := st.Size()
	for remaining > 0 && w.err == nil {
		n := int(min(int64(len(buf)), remaining))
		if _, err := io.ReadFull(f, buf[:n]); err != nil {
			return fmt.Errorf("storage: snapshot: read %s: %w", path, err)
		}
		w.write(buf[:n])
		remaining -= int64(n)
	}
	return w.err
}

// snapshotReader decodes a snapshot stream with bounds on every length.
type snapshotReader struct {
	r   *bufio.Reader
	crc hash.Hash32
	b   [8]byte
}

func (r *snapshotReader) read(p []byte) error {
	if _, err := io.ReadFull(r.r, p); err != nil {
		return fmt.Errorf("%w: truncated: %w", ErrBadSnapshot, err)
	}
	_, _ = r.crc.Write(p)
	return nil
}

func (r *snapshotReader) u8() (uint8, error) {
	err := r.read(r.b[:1])
	return r.b[0], err
}

func (r *snapshotReader) u16() (uint16, error) {
	err := r.read(r.b[:2])
	return binary.LittleEndian.Uint16(r.b[:]), err
}

func (r *snapshotReader) u32() (uint32, error) {
	err := r.read(r.b[:4])
	return binary.LittleEndian.Uint32(r.b[:]), err
}

func (r *snapshotReader) u64() (uint64, error) {
	err := r.read(r.b[:8])
	return binary.LittleEndian.Uint64(r.b[:]), err
}

// snapshotStage is the staging directory of a received snapshot, inside
// the data directory.
const snapshotStage = "snapshot-in"

// ReceiveSnapshot reads a snapshot stream from r into a staging directory
// beside the store (replacing any earlier one), syncing everything it
// writes; InstallSnapshot then swaps it in. On error the staging directory
// is removed and the store is untouched. Memory stays bounded whatever the
// snapshot's size. Cluster mode only; one call at a time.
func (s *Store) ReceiveSnapshot(r io.Reader) (SnapshotInfo, error) {
	fs := s.opts.FS
	stage := fs.PathJoin(s.dir, snapshotStage)
	info, err := receiveSnapshot(fs, stage, r, s.journalOptions())
	if err != nil {
		_ = fs.RemoveAll(stage)
	}
	return info, err
}

func receiveSnapshot(fs vfs.FS, stage string, r io.Reader, jo *journal.Options) (SnapshotInfo, error) {
	var info SnapshotInfo
	if err := fs.RemoveAll(stage); err != nil {
		return info, fmt.Errorf("storage: snapshot: clear %s: %w", stage, err)
	}
	idxDir := fs.PathJoin(stage, indexDirName)
	if err := mkdirDurable(fs, idxDir); err != nil {
		return info, fmt.Errorf("storage: snapshot: create %s: %w", idxDir, err)
	}
	sr := &snapshotReader{r: bufio.NewReaderSize(r, 1<<20), crc: crc32.New(crcTable)}
	magic := make([]byte, len(snapshotMagic))
	if err := sr.read(magic); err != nil {
		return info, err
	}
	if string(magic) != snapshotMagic {
		return info, fmt.Errorf("%w: bad magic %q", ErrBadSnapshot, magic)
	}
	var err error
	for _, p := range []*uint64{&info.FirstIndex, &info.FirstSeq, &info.LastIndex, &info.CheckpointApplied} {
		if *p, err = sr.u64(); err != nil {
			return info, err
		}
	}
	if info.FirstIndex == 0 || info.LastIndex+1 < info.FirstIndex {
		return info, fmt.Errorf("%w: entries [%d, %d]", ErrBadSnapshot, info.FirstIndex, info.LastIndex)
	}
	o := *jo
	o.FS, o.FirstIndex, o.FirstSeq = fs, info.FirstIndex, info.FirstSeq
	j, err := journal.Open(JournalDir(fs, stage), &o)
	if err != nil {
		return info, fmt.Errorf("storage: snapshot: create the staged journal: %w", err)
	}
	defer func() { _ = j.Close() }()
	buf := make([]byte, 1<<20)
	var payload []byte
	for {
		typ, err := sr.u8()
		if err != nil {
			return info, err
		}
		switch typ {
		case snapshotRecFile:
			if err := sr.file(fs, idxDir, buf); err != nil {
				return info, err
			}
			info.Files++
		case snapshotRecEntry:
			var idx, term uint64
			var kind uint8
			var n uint32
			if idx, err = sr.u64(); err == nil {
				if term, err = sr.u64(); err == nil {
					if kind, err = sr.u8(); err == nil {
						n, err = sr.u32()
					}
				}
			}
			if err != nil {
				return info, err
			}
			if n > maxSnapshotPayload {
				return info, fmt.Errorf("%w: entry %d of %d bytes", ErrBadSnapshot, idx, n)
			}
			if cap(payload) < int(n) {
				payload = make([]byte, n)
			}
			payload = payload[:n]
			if err := sr.read(payload); err != nil {
				return info, err
			}
			if idx > info.LastIndex {
				return info, fmt.Errorf("%w: entry %d beyond the last index %d", ErrBadSnapshot, idx, info.LastIndex)
			}
			if _, err := j.WriteEntry(idx, term, journal.EntryKind(kind), payload); err != nil {
				return info, fmt.Errorf("%w: entry %d: %w", ErrBadSnapshot, idx, err)
			}
			info.Entries++
		case snapshotRecEnd:
			files, err := sr.u64()
			if err != nil {
				return info, err
			}
			entries, err := sr.u64()
			if err != nil {
				return info, err
			}
			sum := sr.crc.Sum32()
			var b [4]byte
			if _, err := io.ReadFull(sr.r, b[:]); err != nil {
				return info, fmt.Errorf("%w: truncated: %w", ErrBadSnapshot, err)
			}
			switch {
			case binary.LittleEndian.Uint32(b[:]) != sum:
				return info, fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
			case files != info.Files || entries != info.Entries:
				return info, fmt.Errorf("%w: %d files and %d entries, the end record says %d and %d", ErrBadSnapshot, info.Files, info.Entries, files, entries)
			case info.Entries != info.LastIndex-info.FirstIndex+1:
				return info, fmt.Errorf("%w: %d entries for [%d, %d]", ErrBadSnapshot, info.Entries, info.FirstIndex, info.LastIndex)
			}
			if err := j.Sync(); err != nil {
				return info, fmt.Errorf("storage: snapshot: sync the staged journal: %w", err)
			}
			if err := j.Close(); err != nil {
				return info, fmt.Errorf("storage: snapshot: close the staged journal: %w", err)
			}
			if err := syncDir(fs, idxDir); err != nil {
				return info, err
			}
			return info, syncDir(fs, stage)
		default:
			return info, fmt.Errorf("%w: unknown record type %d", ErrBadSnapshot, typ)
		}
	}
}

func (r *snapshotReader) file(fs vfs.FS, dir string, buf []byte) error {
	n, err := r.u16()
	if err != nil {
		return err
	}
	if n == 0 || n > maxSnapshotName {
		return fmt.Errorf("%w: file name of %d bytes", ErrBadSnapshot, n)
	}
	name := make([]byte, n)
	if err := r.read(name); err != nil {
		return err
	}
	if strings.ContainsAny(string(name), "/\\\x00") || string(name) == "." || string(name) == ".." {
		return fmt.Errorf("%w: file name %q", ErrBadSnapshot, name)
	}
	size, err := r.u64()
	if err != nil {
		return err
	}
	if size > maxSnapshotFile {
		return fmt.Errorf("%w: file %q of %d bytes", ErrBadSnapshot, name, size)
	}
	path := fs.PathJoin(dir, string(name))
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("storage: snapshot: create %s: %w", path, err)
	}
	for size > 0 {
		k := int(min(uint64(len(buf)), size))
		if err := r.read(buf[:k]); err != nil {
			_ = f.Close()
			return err
		}
		if _, err := f.Write(buf[:k]); err != nil {
			_ = f.Close()
			return fmt.Errorf("storage: snapshot: write %s: %w", path, err)
		}
		size -= uint64(k)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("storage: snapshot: sync %s: %w", path, err)
	}
	return f.Close()
}

func syncDir(fs vfs.FS, dir string) error { return vfsutil.SyncDir(fs, dir) }
