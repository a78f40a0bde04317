package journal

import (
	"errors"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// sizeFile extends f to size bytes of allocated blocks that read as zeros
// (fallocate mode 0), so that writes inside it change no file size and an
// fdatasync after them commits no inode change (decision 0007). It returns
// false, nil where the file system cannot, and false and the error when
// fallocate failed otherwise (ENOSPC, EFBIG under RLIMIT_FSIZE, EIO).
// Either way the segment then grows as it is written, as it would without
// sizing: callers log the error and go on, and a disk that is really full
// fails the write that needs the space. Zeros that a failed fallocate may
// have left beyond the frames are free space to Open.
func sizeFile(f vfs.File, size int64) (bool, error) {
	fd := f.Fd()
	if fd == vfs.InvalidFd {
		return false, nil
	}
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	if st.Size() >= size {
		return true, nil
	}
	err = syscall.Fallocate(int(fd), 0, 0, size)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS), errors.Is(err, syscall.EINVAL):
		return false, nil
	default:
		return false, err
	}
}

// trimFile cuts f to size bytes: the zero tail sizeFile added beyond the
// last frame. It never cuts a byte a reader can reach (readers stop at the
// segment's size).
func trimFile(f vfs.File, size int64) error {
	fd := f.Fd()
	if fd == vfs.InvalidFd {
		return nil
	}
	return syscall.Ftruncate(int(fd), size)
}
