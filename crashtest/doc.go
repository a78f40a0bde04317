// Package crashtest proves BadBatch's durability contract end to end: it
// holds only tests. Nothing here is imported by the product.
//
// The suites, each in its own file:
//
//   - kill_test.go: the real badbatch binary, built once, served on a free
//     loopback port and killed with SIGKILL 1 to 50 ms into a concurrent
//     HTTP load (mixed record sizes, several streams, Idempotency-Key and
//     Expected-Last-Offset), restarted, read back over HTTP, and checked by
//     a queue checker (checker_test.go) in the style of Jepsen's: every
//     operation is acknowledged (201), failed (a definite 4xx) or unknown
//     (connection reset, timeout, 503), and the checker requires no lost
//     acknowledged record, no duplicate, no gap, no payload mismatch and no
//     record that no operation wrote. Every restart is timed (exec to the
//     first 200 from /readyz) and `badbatch verify` must report the
//     recovered data directory consistent.
//   - powerloss_test.go: storage.Store on Pebble's crashable in-memory file
//     system; crash images are taken at random points with a random share
//     of unsynced data kept, and the journal's unsynced tail is further
//     zeroed or filled with garbage by faultFS (faultfs_test.go), then every
//     image is reopened and checked.
//   - dirsync_test.go: every file created or renamed in the data directory
//     is followed by an fsync of its parent directory before the next
//     acknowledgement.
//   - diskfull_test.go, fsync_test.go: injected ENOSPC and EIO, a real
//     RLIMIT_FSIZE (prlimit) and a real full tmpfs: nothing is acknowledged
//     on failure, the server answers 503 and keeps serving reads, an fsync
//     is never retried, and after a reopen writes resume with no gap.
//   - badinput_test.go, fuzz_test.go: hostile HTTP against the real server
//     changes nothing stored; FuzzStreamName checks ValidateStreamName
//     against the regular expression of the data model.
//
// # Scale
//
// BADBATCH_CRASH_CYCLES (CI exports 200) scales every loop: kill -9 cycles
// = min(BADBATCH_CRASH_CYCLES, 100) unless it is above 200, then all of it;
// power-loss images = 50 per cycle. -short uses 10 cycles. Every test logs
// the counts it used.
//
// # Reproducing a failure
//
// A failing kill -9 or power-loss cycle logs its seed and keeps its data
// directory (the path is logged; it is not deleted). BADBATCH_CRASH_SEED=S
// replays the schedule of that seed (kill times, record sizes, crash
// points); the interleaving of concurrent requests is up to the scheduler.
package crashtest
