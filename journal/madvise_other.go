//go:build !linux

package journal

// adviseDontNeed is a no-op where MADV_DONTNEED on a shared file mapping is
// not known to drop the pages from the process (see madvise_linux.go).
func adviseDontNeed([]byte) {}
