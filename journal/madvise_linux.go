package journal

import "syscall"

// adviseDontNeed drops b's pages from the process's page tables. b must be
// a whole read-only shared file mapping (page-aligned). Errors are ignored:
// the advice only saves memory.
func adviseDontNeed(b []byte) {
	if len(b) > 0 {
		_ = syscall.Madvise(b, syscall.MADV_DONTNEED)
	}
}
