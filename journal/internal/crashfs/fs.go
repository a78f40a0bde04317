package crashfs

import (
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FS is an in-memory vfs.FS that can take crash images (see Crash). It is
// safe for concurrent use.
type FS struct {
	mem *vfs.MemFS
	// gate is held shared by every mutating operation and exclusively by
	// Crash, so that an image never observes half of an operation.
	gate sync.RWMutex
	// hook, if set, runs after every mutating operation, outside the gate.
	hook func(op string, path string)
	// nodes tracks, per file, the length at its last Sync, following the
	// file through renames and links the way MemFS's nodes do. Crash needs
	// it: MemFS does not expose a node's synced length, and a 0% clone
	// cannot tell it either when the file's directory entry is not durable.
	nodes struct {
		sync.Mutex
		m map[string]*nodeState
	}
}

// nodeState is what FS knows about one file node.
type nodeState struct {
	synced atomic.Int64
}

// key normalizes a path the way MemFS resolves it.
func key(p string) string {
	return strings.TrimLeft(path.Clean("/"+p), "/")
}

// node returns the state of the file at p, creating it if unknown (a file
// that existed before tracking, or created by OpenReadWrite).
func (fs *FS) node(p string) *nodeState {
	fs.nodes.Lock()
	defer fs.nodes.Unlock()
	k := key(p)
	n := fs.nodes.m[k]
	if n == nil {
		n = &nodeState{}
		fs.nodes.m[k] = n
	}
	return n
}

// newNode records that p now names a new, empty, never-synced file.
func (fs *FS) newNode(p string) *nodeState {
	fs.nodes.Lock()
	defer fs.nodes.Unlock()
	n := &nodeState{}
	fs.nodes.m[key(p)] = n
	return n
}

// syncedLen returns the synced length of the file at p.
func (fs *FS) syncedLen(p string) int {
	fs.nodes.Lock()
	defer fs.nodes.Unlock()
	if n := fs.nodes.m[key(p)]; n != nil {
		return int(n.synced.Load())
	}
	return 0
}

// moveNode makes newname name the node oldname named; with keepOld (a
// link) oldname keeps it too.
func (fs *FS) moveNode(oldname, newname string, keepOld bool) {
	fs.nodes.Lock()
	defer fs.nodes.Unlock()
	ok, nk := key(oldname), key(newname)
	if n := fs.nodes.m[ok]; n != nil {
		fs.nodes.m[nk] = n
	} else {
		delete(fs.nodes.m, nk)
	}
	if !keepOld && ok != nk {
		delete(fs.nodes.m, ok)
	}
}

// dropNodes forgets p and, for a directory, everything under it.
func (fs *FS) dropNodes(p string) {
	fs.nodes.Lock()
	defer fs.nodes.Unlock()
	k := key(p)
	for name := range fs.nodes.m {
		if name == k || strings.HasPrefix(name, k+"/") {
			delete(fs.nodes.m, name)
		}
	}
}

var _ vfs.FS = (*FS)(nil)

// New returns an empty crashable file system.
func New() *FS {
	return wrap(vfs.NewCrashableMem())
}

func wrap(mem *vfs.MemFS) *FS {
	fs := &FS{mem: mem}
	fs.nodes.m = map[string]*nodeState{}
	return fs
}

// SetHook installs fn to be called after every mutating operation (create,
// write, sync, rename, remove, ...) with the operation's name and path. The
// hook runs in the caller's goroutine, outside any lock, so it may call
// Crash. Set it before the FS is shared; pass nil to remove it.
func (fs *FS) SetHook(fn func(op string, path string)) {
	fs.hook = fn
}

// Mem returns the underlying Pebble MemFS.
func (fs *FS) Mem() *vfs.MemFS { return fs.mem }

// String dumps the tree with file sizes.
func (fs *FS) String() string { return fs.mem.String() }

// ReadFile returns a copy of the current contents of the named file.
func (fs *FS) ReadFile(name string) ([]byte, error) {
	f, err := fs.mem.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// WriteFile replaces the named file with data, syncs it, and syncs its
// directory, so the result survives any later crash image. It is meant for
// tests that build or damage on-disk state by hand.
func (fs *FS) WriteFile(name string, data []byte) error {
	fs.gate.RLock()
	defer fs.gate.RUnlock()
	if err := replaceFileDurably(fs.mem, name, data); err != nil {
		return err
	}
	fs.newNode(name).synced.Store(int64(len(data)))
	return nil
}

func replaceFileDurably(mem *vfs.MemFS, name string, data []byte) error {
	f, err := mem.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if _, err := f.Write(append([]byte(nil), data...)); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	d, err := mem.OpenDir(mem.PathDir(name))
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}

func (fs *FS) after(op, path string) {
	if h := fs.hook; h != nil {
		h(op, path)
	}
}

// Create implements vfs.FS.
func (fs *FS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	fs.gate.RLock()
	f, err := fs.mem.Create(name, category)
	var n *nodeState
	if err == nil {
		n = fs.newNode(name)
	}
	fs.gate.RUnlock()
	fs.after("create", name)
	if err != nil {
		return nil, err
	}
	return &file{File: f, fs: fs, name: name, node: n}, nil
}

// Link implements vfs.FS.
func (fs *FS) Link(oldname, newname string) error {
	fs.gate.RLock()
	err := fs.mem.Link(oldname, newname)
	if err == nil {
		fs.moveNode(oldname, newname, true)
	}
	fs.gate.RUnlock()
	fs.after("link", newname)
	return err
}

// Open implements vfs.FS.
func (fs *FS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.mem.Open(name, opts...)
	if err != nil {
		return nil, err
	}
	return &file{File: f, fs: fs, name: name, node: fs.node(name)}, nil
}

// OpenReadWrite implements vfs.FS.
func (fs *FS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	fs.gate.RLock()
	f, err := fs.mem.OpenReadWrite(name, category, opts...)
	var n *nodeState
	if err == nil {
		n = fs.node(name)
	}
	fs.gate.RUnlock()
	fs.after("open-rw", name)
	if err != nil {
		return nil, err
	}
	return &file{File: f, fs: fs, name: name, node: n}, nil
}

// OpenDir implements vfs.FS.
func (fs *FS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.mem.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return &file{File: f, fs: fs, name: name}, nil
}

// Remove implements vfs.FS.
func (fs *FS) Remove(name string) error {
	fs.gate.RLock()
	err := fs.mem.Remove(name)
	if err == nil {
		fs.dropNodes(name)
	}
	fs.gate.RUnlock()
	fs.after("remove", name)
	return err
}

// RemoveAll implements vfs.FS.
func (fs *FS) RemoveAll(name string) error {
	fs.gate.RLock()
	err := fs.mem.RemoveAll(name)
	if err == nil {
		fs.dropNodes(name)
	}
	fs.gate.RUnlock()
	fs.after("remove-all", name)
	return err
}

// Rename implements vfs.FS.
func (fs *FS) Rename(oldname, newname string) error {
	fs.gate.RLock()
	err := fs.mem.Rename(oldname, newname)
	if err == nil {
		fs.moveNode(oldname, newname, false)
	}
	fs.gate.RUnlock()
	fs.after("rename", newname)
	return err
}

// ReuseForWrite implements vfs.FS.
func (fs *FS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	fs.gate.RLock()
	f, err := fs.mem.ReuseForWrite(oldname, newname, category)
	if err == nil {
		fs.moveNode(oldname, newname, false)
	}
	fs.gate.RUnlock()
	fs.after("reuse", newname)
	if err != nil {
		return nil, err
	}
	return &file{File: f, fs: fs, name: newname, node: fs.node(newname)}, nil
}

// MkdirAll implements vfs.FS.
func (fs *FS) MkdirAll(dir string, perm os.FileMode) error {
	fs.gate.RLock()
	err := fs.mem.MkdirAll(dir, perm)
	fs.gate.RUnlock()
	fs.after("mkdir", dir)
	return err
}

// Lock implements vfs.FS.
func (fs *FS) Lock(name string) (io.Closer, error) {
	fs.gate.RLock()
	defer fs.gate.RUnlock()
	c, err := fs.mem.Lock(name)
	if err == nil {
		fs.newNode(name)
	}
	return c, err
}

// List implements vfs.FS.
func (fs *FS) List(dir string) ([]string, error) { return fs.mem.List(dir) }

// Stat implements vfs.FS.
func (fs *FS) Stat(name string) (vfs.FileInfo, error) { return fs.mem.Stat(name) }

// PathBase implements vfs.FS.
func (fs *FS) PathBase(p string) string { return fs.mem.PathBase(p) }

// PathJoin implements vfs.FS.
func (fs *FS) PathJoin(elem ...string) string { return fs.mem.PathJoin(elem...) }

// PathDir implements vfs.FS.
func (fs *FS) PathDir(p string) string { return fs.mem.PathDir(p) }

// GetDiskUsage implements vfs.FS.
func (fs *FS) GetDiskUsage(p string) (vfs.DiskUsage, error) { return fs.mem.GetDiskUsage(p) }

// Unwrap implements vfs.FS.
func (fs *FS) Unwrap() vfs.FS { return fs.mem }

// file gates the mutating methods of a MemFS file.
type file struct {
	vfs.File
	fs   *FS
	name string
	node *nodeState // nil for a directory
}

// noteSynced records the file's length as synced. REQUIRES: gate held
// (shared), the Sync done.
func (f *file) noteSynced() {
	if f.node == nil {
		return
	}
	if fi, err := f.File.Stat(); err == nil && !fi.IsDir() {
		f.node.synced.Store(fi.Size())
	}
}

func (f *file) Write(p []byte) (int, error) {
	f.fs.gate.RLock()
	n, err := f.File.Write(p)
	f.fs.gate.RUnlock()
	f.fs.after("write", f.name)
	return n, err
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	f.fs.gate.RLock()
	n, err := f.File.WriteAt(p, off)
	f.fs.gate.RUnlock()
	f.fs.after("write", f.name)
	return n, err
}

func (f *file) Sync() error {
	f.fs.gate.RLock()
	err := f.File.Sync()
	if err == nil {
		f.noteSynced()
	}
	f.fs.gate.RUnlock()
	f.fs.after("sync", f.name)
	return err
}

func (f *file) SyncData() error {
	f.fs.gate.RLock()
	err := f.File.SyncData()
	if err == nil {
		f.noteSynced()
	}
	f.fs.gate.RUnlock()
	f.fs.after("sync", f.name)
	return err
}

func (f *file) SyncTo(length int64) (bool, error) {
	f.fs.gate.RLock()
	full, err := f.File.SyncTo(length)
	f.fs.gate.RUnlock()
	f.fs.after("sync-to", f.name)
	return full, err
}

func (f *file) Preallocate(off, length int64) error {
	f.fs.gate.RLock()
	defer f.fs.gate.RUnlock()
	return f.File.Preallocate(off, length)
}
