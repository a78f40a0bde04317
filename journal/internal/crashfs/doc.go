// Package crashfs is the journal's test file system: power loss, an
// operation recorder with a directory-fsync audit, and ENOSPC/EIO injection,
// all as layers over Pebble's vfs.
//
// # Power loss (FS, Crash)
//
// FS wraps vfs.NewCrashableMem. Crash takes a crash image: a new, independent
// FS that holds what a real disk could hold after power was cut at that
// moment. The base image is Pebble's CrashClone, which keeps
//
//   - for every file, the bytes present at its last Sync, plus each 4 KiB
//     block written since with probability UnsyncedDataPercent (a kept block
//     past the synced length grows the file; blocks skipped in between read
//     as zeros);
//   - for every directory, the entries present at its last Sync, plus each
//     entry created since with probability UnsyncedDataPercent. An entry
//     removed or renamed away since the last directory Sync comes back. A
//     directory that was never synced loses every entry it gained.
//
// CrashClone never cuts a block in the middle, never appends bytes that were
// not written, and never writes garbage. Crash adds, for every file whose
// current length exceeds its synced length ("a file with unsynced data"):
//
//   - TailPrefix: the file becomes its synced bytes plus a uniformly random,
//     byte-granular prefix of its unsynced bytes (a torn write);
//   - Junk: after that, bytes that were never written are appended: zeros or
//     random garbage, or a caller-supplied header (for example a frame header
//     that parses as a plausible length prefix) followed by garbage; the
//     length is one 4 KiB page, the rest of the current page, or 1 B - 8 KiB.
//
// Every mutating operation on an FS and on its files holds a read gate that
// Crash holds exclusively, so an image is atomic with respect to concurrent
// writers: it never shows half of a Write call.
//
// # Recording and the directory-fsync audit (Recorder, AuditDirSyncs)
//
// Recorder wraps any vfs.FS and logs the operations that change the
// namespace or durability: creates (including OpenReadWrite and Lock of a
// missing file, and MkdirAll of a missing directory), links, renames,
// removes, file syncs and directory syncs. Mark returns the position of an
// acknowledgement point in that log. AuditDirSyncs checks that every create,
// link, rename and mkdir is followed by a Sync of the directory holding the
// new entry before the next acknowledgement point; AuditRemoveSyncs does the
// same for removes.
//
// # Error injection (Faults)
//
// Faults is an errorfs.Injector: it counts the operations it matches
// (DefaultMatch: writes, syncs and namespace changes; ReadMatch: opens,
// reads, stats, listings) and fails the one at a chosen index (and, if
// Sticky, every later one) with an error that wraps syscall.ENOSPC for
// writes and namespace operations and syscall.EIO for syncs and reads, as a
// full disk or a failing device would.
//
// # Concurrency
//
// FS, Recorder and Faults are safe for concurrent use. Crash images are new
// values that share nothing with their source.
package crashfs
