package crashtest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// opKind is a kind of file-system operation faultFS sees.
type opKind uint8

const (
	opCreate   opKind = iota + 1 // a file was created (Create, ReuseForWrite, OpenReadWrite of a new file)
	opMkdir                      // a directory was created
	opRename                     // a file was renamed (path is the new name)
	opLink                       // a hard link was created
	opRemove                     // a file or tree was removed
	opWrite                      // file data was written
	opSyncFile                   // a file's data was synced
	opSyncDir                    // a directory was synced
)

func (k opKind) String() string {
	return [...]string{"?", "create", "mkdir", "rename", "link", "remove", "write", "sync-file", "sync-dir"}[k]
}

// fsOp is one operation, numbered in the order faultFS started it.
type fsOp struct {
	seq  uint64
	kind opKind
	path string // cleaned
	from string // rename and link: the old name
	err  error  // what the operation returned
}

func (o fsOp) String() string {
	if o.from != "" {
		return fmt.Sprintf("#%d %s %s -> %s (err %v)", o.seq, o.kind, o.from, o.path, o.err)
	}
	return fmt.Sprintf("#%d %s %s (err %v)", o.seq, o.kind, o.path, o.err)
}

// injectFunc decides the fate of an operation before faultFS performs it:
// nil lets it run; an error fails it. For opWrite, short > 0 writes that
// many bytes of the buffer first (a short write, as a full disk does) and
// then returns the error.
type injectFunc func(kind opKind, path string, size int) (short int, err error)

// faultFS wraps a vfs.FS to report the operations that change the
// namespace or make data durable to its listeners, to inject errors into
// them, and to know, per file, how many bytes are known durable (the
// file's size after its last successful sync). It is safe for concurrent
// use.
//
// Every mutating operation holds gate shared while it runs and records its
// effect; quiesce takes gate exclusively, so that a crash image and the
// bookkeeping (synced sizes, the acknowledgements of the caller) describe
// the same instant.
type faultFS struct {
	vfs.FS

	gate sync.RWMutex

	mu struct {
		sync.Mutex
		seq    uint64
		inject injectFunc
		// synced is the durable size of each file: an upper bound of the
		// bytes its last completed sync covered. Renames move it.
		synced map[string]int64
		// listeners see every operation as it completes.
		listeners []func(fsOp)
		// afterWrite, if set, runs after a write to a file whose path it
		// accepts has returned, outside every faultFS lock (so it may
		// quiesce). It is cleared before it runs: it fires once.
		afterWrite       func(path string)
		afterWriteAccept func(path string) bool
	}
}

var _ vfs.FS = (*faultFS)(nil)

func newFaultFS(fs vfs.FS) *faultFS {
	f := &faultFS{FS: fs}
	f.mu.synced = map[string]int64{}
	return f
}

// setInject installs (or, with nil, removes) the fault injector.
func (f *faultFS) setInject(fn injectFunc) {
	f.mu.Lock()
	f.mu.inject = fn
	f.mu.Unlock()
}

// listen adds a callback run (under no faultFS lock) after every operation.
func (f *faultFS) listen(fn func(fsOp)) {
	f.mu.Lock()
	f.mu.listeners = append(f.mu.listeners, fn)
	f.mu.Unlock()
}

// syncedSize is the durable size of path (-1 if unknown).
func (f *faultFS) syncedSize(path string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, ok := f.mu.synced[filepath.Clean(path)]; ok {
		return n
	}
	return -1
}

// onceAfterWrite arms fn to run once, in the writing goroutine, right after
// the next write to a path that accept accepts has returned.
func (f *faultFS) onceAfterWrite(accept func(path string) bool, fn func(path string)) {
	f.mu.Lock()
	f.mu.afterWrite, f.mu.afterWriteAccept = fn, accept
	f.mu.Unlock()
}

// takeAfterWrite returns (and disarms) the after-write hook if it accepts
// path.
func (f *faultFS) takeAfterWrite(path string) func(string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn := f.mu.afterWrite
	if fn == nil || !f.mu.afterWriteAccept(path) {
		return nil
	}
	f.mu.afterWrite, f.mu.afterWriteAccept = nil, nil
	return fn
}

// quiesce runs fn while no operation of this FS is in flight.
func (f *faultFS) quiesce(fn func()) {
	f.gate.Lock()
	defer f.gate.Unlock()
	fn()
}

// begin numbers an operation and asks the injector about it.
func (f *faultFS) begin(kind opKind, path string, size int) (uint64, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.seq++
	var short int
	var err error
	if f.mu.inject != nil {
		short, err = f.mu.inject(kind, filepath.Clean(path), size)
	}
	return f.mu.seq, short, err
}

// end records a finished operation and updates the synced sizes.
func (f *faultFS) end(op fsOp, syncedSize int64) {
	op.path = filepath.Clean(op.path)
	if op.from != "" {
		op.from = filepath.Clean(op.from)
	}
	f.mu.Lock()
	if op.err == nil {
		switch op.kind {
		case opCreate:
			f.mu.synced[op.path] = 0
		case opSyncFile:
			f.mu.synced[op.path] = max(f.mu.synced[op.path], syncedSize)
		case opRename:
			if n, ok := f.mu.synced[op.from]; ok {
				f.mu.synced[op.path] = n
			} else {
				delete(f.mu.synced, op.path)
			}
			delete(f.mu.synced, op.from)
		case opRemove:
			for p := range f.mu.synced {
				if p == op.path || len(p) > len(op.path) && p[:len(op.path)+1] == op.path+string(filepath.Separator) {
					delete(f.mu.synced, p)
				}
			}
		}
	}
	ls := f.mu.listeners
	f.mu.Unlock()
	for _, l := range ls {
		l(op)
	}
}

func (f *faultFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f.gate.RLock()
	defer f.gate.RUnlock()
	seq, _, err := f.begin(opCreate, name, 0)
	var file vfs.File
	if err == nil {
		file, err = f.FS.Create(name, category)
	}
	f.end(fsOp{seq: seq, kind: opCreate, path: name, err: err}, 0)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, path: filepath.Clean(name)}, nil
}

func (f *faultFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f.gate.RLock()
	defer f.gate.RUnlock()
	_, statErr := f.FS.Stat(name)
	existed := statErr == nil
	file, err := f.FS.OpenReadWrite(name, category, opts...)
	if err != nil {
		return nil, err
	}
	if !existed {
		seq, _, _ := f.begin(opCreate, name, 0)
		f.end(fsOp{seq: seq, kind: opCreate, path: name}, 0)
	}
	return &faultFile{File: file, fs: f, path: filepath.Clean(name)}, nil
}

func (f *faultFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	file, err := f.FS.Open(name, opts...)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, path: filepath.Clean(name)}, nil
}

func (f *faultFS) OpenDir(name string) (vfs.File, error) {
	file, err := f.FS.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, path: filepath.Clean(name), dir: true}, nil
}

func (f *faultFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f.gate.RLock()
	defer f.gate.RUnlock()
	seq, _, err := f.begin(opRename, newname, 0)
	var file vfs.File
	if err == nil {
		file, err = f.FS.ReuseForWrite(oldname, newname, category)
	}
	f.end(fsOp{seq: seq, kind: opRename, path: newname, from: oldname, err: err}, 0)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, path: filepath.Clean(newname)}, nil
}

func (f *faultFS) Link(oldname, newname string) error {
	f.gate.RLock()
	defer f.gate.RUnlock()
	seq, _, err := f.begin(opLink, newname, 0)
	if err == nil {
		err = f.FS.Link(oldname, newname)
	}
	f.end(fsOp{seq: seq, kind: opLink, path: newname, from: oldname, err: err}, 0)
	return err
}

func (f *faultFS) Rename(oldname, newname string) error {
	f.gate.RLock()
	defer f.gate.RUnlock()
	seq, _, err := f.begin(opRename, newname, 0)
	if err == nil {
		err = f.FS.Rename(oldname, newname)
	}
	f.end(fsOp{seq: seq, kind: opRename, path: newname, from: oldname, err: err}, 0)
	return err
}

func (f *faultFS) Remove(name string) error {
	f.gate.RLock()
	defer f.gate.RUnlock()
	seq, _, err := f.begin(opRemove, name, 0)
	if err == nil {
		err = f.FS.Remove(name)
	}
	f.end(fsOp{seq: seq, kind: opRemove, path: name, err: err}, 0)
	return err
}

func (f *faultFS) RemoveAll(name string) error {
	f.gate.RLock()
	defer f.gate.RUnlock()
	seq, _, err := f.begin(opRemove, name, 0)
	if err == nil {
		err = f.FS.RemoveAll(name)
	}
	f.end(fsOp{seq: seq, kind: opRemove, path: name, err: err}, 0)
	return err
}

// MkdirAll records one opMkdir per directory it creates, parents first.
func (f *faultFS) MkdirAll(dir string, perm os.FileMode) error {
	f.gate.RLock()
	defer f.gate.RUnlock()
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := f.FS.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	seq, _, err := f.begin(opMkdir, dir, 0)
	if err == nil {
		err = f.FS.MkdirAll(dir, perm)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		f.end(fsOp{seq: seq, kind: opMkdir, path: missing[i], err: err}, 0)
	}
	return err
}

func (f *faultFS) Unwrap() vfs.FS { return f.FS }

// faultFile is a file opened through faultFS.
type faultFile struct {
	vfs.File
	fs   *faultFS
	path string
	dir  bool
}

func (f *faultFile) write(p []byte, do func([]byte) (int, error)) (int, error) {
	f.fs.gate.RLock()
	defer f.fs.gate.RUnlock()
	seq, short, err := f.fs.begin(opWrite, f.path, len(p))
	n := 0
	if err != nil {
		if short > 0 {
			n, _ = do(p[:min(short, len(p))])
		}
	} else {
		n, err = do(p)
	}
	f.fs.end(fsOp{seq: seq, kind: opWrite, path: f.path, err: err}, 0)
	return n, err
}

func (f *faultFile) Write(p []byte) (int, error) {
	n, err := f.write(p, f.File.Write)
	if hook := f.fs.takeAfterWrite(f.path); hook != nil {
		hook(f.path)
	}
	return n, err
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.write(p, func(b []byte) (int, error) { return f.File.WriteAt(b, off) })
	if hook := f.fs.takeAfterWrite(f.path); hook != nil {
		hook(f.path)
	}
	return n, err
}

func (f *faultFile) sync(do func() error) error {
	f.fs.gate.RLock()
	defer f.fs.gate.RUnlock()
	kind := opSyncFile
	if f.dir {
		kind = opSyncDir
	}
	seq, _, err := f.fs.begin(kind, f.path, 0)
	if err == nil {
		err = do()
	}
	var size int64
	if err == nil && !f.dir {
		if st, serr := f.File.Stat(); serr == nil {
			size = st.Size()
		}
	}
	f.fs.end(fsOp{seq: seq, kind: kind, path: f.path, err: err}, size)
	return err
}

func (f *faultFile) Sync() error     { return f.sync(f.File.Sync) }
func (f *faultFile) SyncData() error { return f.sync(f.File.SyncData) }

func (f *faultFile) SyncTo(length int64) (bool, error) {
	full := false
	err := f.sync(func() error {
		var err error
		full, err = f.File.SyncTo(length)
		return err
	})
	return full, err
}

var _ io.WriterAt = (*faultFile)(nil)
