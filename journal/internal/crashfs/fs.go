package crashfs

import (
	"io"
	"os"
	"sync"

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
}

var _ vfs.FS = (*FS)(nil)

// New returns an empty crashable file system.
func New() *FS {
	return &FS{mem: vfs.NewCrashableMem()}
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
	return replaceFileDurably(fs.mem, name, data)
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
	fs.gate.RUnlock()
	fs.after("create", name)
	if err != nil {
		return nil, err
	}
	return &file{File: f, fs: fs, name: name}, nil
}

// Link implements vfs.FS.
func (fs *FS) Link(oldname, newname string) error {
	fs.gate.RLock()
	err := fs.mem.Link(oldname, newname)
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
	return &file{File: f, fs: fs, name: name}, nil
}

// OpenReadWrite implements vfs.FS.
func (fs *FS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	fs.gate.RLock()
	f, err := fs.mem.OpenReadWrite(name, category, opts...)
	fs.gate.RUnlock()
	fs.after("open-rw", name)
	if err != nil {
		return nil, err
	}
	return &file{File: f, fs: fs, name: name}, nil
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
	fs.gate.RUnlock()
	fs.after("remove", name)
	return err
}

// RemoveAll implements vfs.FS.
func (fs *FS) RemoveAll(name string) error {
	fs.gate.RLock()
	err := fs.mem.RemoveAll(name)
	fs.gate.RUnlock()
	fs.after("remove-all", name)
	return err
}

// Rename implements vfs.FS.
func (fs *FS) Rename(oldname, newname string) error {
	fs.gate.RLock()
	err := fs.mem.Rename(oldname, newname)
	fs.gate.RUnlock()
	fs.after("rename", newname)
	return err
}

// ReuseForWrite implements vfs.FS.
func (fs *FS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	fs.gate.RLock()
	f, err := fs.mem.ReuseForWrite(oldname, newname, category)
	fs.gate.RUnlock()
	fs.after("reuse", newname)
	if err != nil {
		return nil, err
	}
	return &file{File: f, fs: fs, name: newname}, nil
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
	return fs.mem.Lock(name)
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
	f.fs.gate.RUnlock()
	f.fs.after("sync", f.name)
	return err
}

func (f *file) SyncData() error {
	f.fs.gate.RLock()
	err := f.File.SyncData()
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
