package crashfs

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// OpKind is a kind of recorded operation.
type OpKind uint8

const (
	// OpCreate created a file (Create, ReuseForWrite's target, or
	// OpenReadWrite of a missing file).
	OpCreate OpKind = iota + 1
	// OpMkdir created a directory (MkdirAll of a missing one).
	OpMkdir
	// OpLink created a hard link at Path.
	OpLink
	// OpRename renamed From to Path.
	OpRename
	// OpRemove removed Path (Remove or RemoveAll).
	OpRemove
	// OpLock created Path as a lock file. Lock files need not survive a
	// crash, so they are not audited.
	OpLock
	// OpSyncFile synced a file's data.
	OpSyncFile
	// OpSyncDir synced a directory.
	OpSyncDir
)

func (k OpKind) String() string {
	switch k {
	case OpCreate:
		return "create"
	case OpMkdir:
		return "mkdir"
	case OpLink:
		return "link"
	case OpRename:
		return "rename"
	case OpRemove:
		return "remove"
	case OpLock:
		return "lock"
	case OpSyncFile:
		return "sync-file"
	case OpSyncDir:
		return "sync-dir"
	default:
		return fmt.Sprintf("OpKind(%d)", uint8(k))
	}
}

// Op is one recorded operation. Paths are cleaned.
type Op struct {
	Kind OpKind
	Path string
	// From is the old name of a rename or the target of a link.
	From string
}

func (o Op) String() string {
	if o.From != "" {
		return fmt.Sprintf("%s %s -> %s", o.Kind, o.From, o.Path)
	}
	return fmt.Sprintf("%s %s", o.Kind, o.Path)
}

// Recorder is a vfs.FS that logs namespace and sync operations of the FS it
// wraps. Only operations that succeeded are logged. It is safe for
// concurrent use.
type Recorder struct {
	fs vfs.FS
	mu struct {
		sync.Mutex
		ops []Op
	}
}

var _ vfs.FS = (*Recorder)(nil)

// NewRecorder wraps fs.
func NewRecorder(fs vfs.FS) *Recorder { return &Recorder{fs: fs} }

// Ops returns a copy of the log.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.mu.ops...)
}

// Mark returns the current length of the log: an acknowledgement point
// placed there says that every operation logged so far happened before the
// acknowledgement.
func (r *Recorder) Mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.mu.ops)
}

// Reset empties the log.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.ops = nil
}

func (r *Recorder) add(op Op) {
	op.Path = filepath.Clean(op.Path)
	if op.From != "" {
		op.From = filepath.Clean(op.From)
	}
	r.mu.Lock()
	r.mu.ops = append(r.mu.ops, op)
	r.mu.Unlock()
}

func (r *Recorder) exists(name string) bool {
	_, err := r.fs.Stat(name)
	return err == nil
}

// Create implements vfs.FS.
func (r *Recorder) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := r.fs.Create(name, category)
	if err != nil {
		return nil, err
	}
	r.add(Op{Kind: OpCreate, Path: name})
	return &recordedFile{File: f, r: r, name: name}, nil
}

// Link implements vfs.FS.
func (r *Recorder) Link(oldname, newname string) error {
	if err := r.fs.Link(oldname, newname); err != nil {
		return err
	}
	r.add(Op{Kind: OpLink, Path: newname, From: oldname})
	return nil
}

// Open implements vfs.FS.
func (r *Recorder) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := r.fs.Open(name, opts...)
	if err != nil {
		return nil, err
	}
	return &recordedFile{File: f, r: r, name: name}, nil
}

// OpenReadWrite implements vfs.FS.
func (r *Recorder) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	existed := r.exists(name)
	f, err := r.fs.OpenReadWrite(name, category, opts...)
	if err != nil {
		return nil, err
	}
	if !existed {
		r.add(Op{Kind: OpCreate, Path: name})
	}
	return &recordedFile{File: f, r: r, name: name}, nil
}

// OpenDir implements vfs.FS.
func (r *Recorder) OpenDir(name string) (vfs.File, error) {
	f, err := r.fs.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return &recordedFile{File: f, r: r, name: name, dir: true}, nil
}

// Remove implements vfs.FS.
func (r *Recorder) Remove(name string) error {
	if err := r.fs.Remove(name); err != nil {
		return err
	}
	r.add(Op{Kind: OpRemove, Path: name})
	return nil
}

// RemoveAll implements vfs.FS.
func (r *Recorder) RemoveAll(name string) error {
	existed := r.exists(name)
	if err := r.fs.RemoveAll(name); err != nil {
		return err
	}
	if existed {
		r.add(Op{Kind: OpRemove, Path: name})
	}
	return nil
}

// Rename implements vfs.FS.
func (r *Recorder) Rename(oldname, newname string) error {
	if err := r.fs.Rename(oldname, newname); err != nil {
		return err
	}
	r.add(Op{Kind: OpRename, Path: newname, From: oldname})
	return nil
}

// ReuseForWrite implements vfs.FS.
func (r *Recorder) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := r.fs.ReuseForWrite(oldname, newname, category)
	if err != nil {
		return nil, err
	}
	r.add(Op{Kind: OpRename, Path: newname, From: oldname})
	return &recordedFile{File: f, r: r, name: newname}, nil
}

// MkdirAll implements vfs.FS. Each missing directory on the path is logged
// as created, outermost first.
func (r *Recorder) MkdirAll(dir string, perm os.FileMode) error {
	var missing []string
	for d := filepath.Clean(dir); !r.exists(d); d = filepath.Dir(d) {
		missing = append([]string{d}, missing...)
		if d == filepath.Dir(d) {
			break
		}
	}
	if err := r.fs.MkdirAll(dir, perm); err != nil {
		return err
	}
	for _, d := range missing {
		r.add(Op{Kind: OpMkdir, Path: d})
	}
	return nil
}

// Lock implements vfs.FS.
func (r *Recorder) Lock(name string) (io.Closer, error) {
	existed := r.exists(name)
	c, err := r.fs.Lock(name)
	if err != nil {
		return nil, err
	}
	if !existed {
		r.add(Op{Kind: OpLock, Path: name})
	}
	return c, nil
}

// List implements vfs.FS.
func (r *Recorder) List(dir string) ([]string, error) { return r.fs.List(dir) }

// Stat implements vfs.FS.
func (r *Recorder) Stat(name string) (vfs.FileInfo, error) { return r.fs.Stat(name) }

// PathBase implements vfs.FS.
func (r *Recorder) PathBase(p string) string { return r.fs.PathBase(p) }

// PathJoin implements vfs.FS.
func (r *Recorder) PathJoin(elem ...string) string { return r.fs.PathJoin(elem...) }

// PathDir implements vfs.FS.
func (r *Recorder) PathDir(p string) string { return r.fs.PathDir(p) }

// GetDiskUsage implements vfs.FS.
func (r *Recorder) GetDiskUsage(p string) (vfs.DiskUsage, error) { return r.fs.GetDiskUsage(p) }

// Unwrap implements vfs.FS.
func (r *Recorder) Unwrap() vfs.FS { return r.fs }

type recordedFile struct {
	vfs.File
	r    *Recorder
	name string
	dir  bool
}

func (f *recordedFile) synced() {
	kind := OpSyncFile
	if f.dir {
		kind = OpSyncDir
	}
	f.r.add(Op{Kind: kind, Path: f.name})
}

func (f *recordedFile) Sync() error {
	if err := f.File.Sync(); err != nil {
		return err
	}
	f.synced()
	return nil
}

func (f *recordedFile) SyncData() error {
	if err := f.File.SyncData(); err != nil {
		return err
	}
	f.synced()
	return nil
}

func (f *recordedFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	if err == nil && full {
		f.synced()
	}
	return full, err
}

// Violation is an operation whose directory entry was not made durable
// before an acknowledgement that depends on it.
type Violation struct {
	// OpIndex is the operation's position in the log, Op the operation.
	OpIndex int
	Op      Op
	// Dir is the directory that needed a Sync.
	Dir string
	// Ack is the acknowledgement point reached without that Sync.
	Ack int
}

func (v Violation) String() string {
	return fmt.Sprintf("op %d (%s): no sync of directory %s before acknowledgement at op %d", v.OpIndex, v.Op, v.Dir, v.Ack)
}

// AuditDirSyncs checks that every create, mkdir, link and rename in ops is
// followed by a Sync of the directory that holds the new entry (for a rename
// across directories, of both directories) before the first acknowledgement
// point after it. ackPoints are values of Recorder.Mark taken right after
// each acknowledgement. An operation with no acknowledgement point after it
// is not checked: nothing acknowledged depends on it.
func AuditDirSyncs(ops []Op, ackPoints []int) []Violation {
	return audit(ops, ackPoints, func(op Op) []string {
		switch op.Kind {
		case OpCreate, OpMkdir, OpLink:
			return []string{filepath.Dir(op.Path)}
		case OpRename:
			if d := filepath.Dir(op.From); d != filepath.Dir(op.Path) {
				return []string{filepath.Dir(op.Path), d}
			}
			return []string{filepath.Dir(op.Path)}
		}
		return nil
	})
}

// AuditRemoveSyncs is AuditDirSyncs for removals: every remove must be
// followed by a Sync of its directory before the next acknowledgement point,
// or the file can come back after a crash.
func AuditRemoveSyncs(ops []Op, ackPoints []int) []Violation {
	return audit(ops, ackPoints, func(op Op) []string {
		if op.Kind == OpRemove {
			return []string{filepath.Dir(op.Path)}
		}
		return nil
	})
}

func audit(ops []Op, ackPoints []int, dirsOf func(Op) []string) []Violation {
	var out []Violation
	for i, op := range ops {
		dirs := dirsOf(op)
		if len(dirs) == 0 {
			continue
		}
		ack := -1
		for _, a := range ackPoints {
			if a > i && (ack == -1 || a < ack) {
				ack = a
			}
		}
		if ack == -1 {
			continue
		}
		for _, dir := range dirs {
			synced := false
			for j := i + 1; j < ack && j < len(ops); j++ {
				if ops[j].Kind == OpSyncDir && ops[j].Path == dir {
					synced = true
					break
				}
			}
			if !synced {
				out = append(out, Violation{OpIndex: i, Op: op, Dir: dir, Ack: ack})
			}
		}
	}
	return out
}
