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
//   - cluster_test.go, cluster_partition_test.go: clusters of real
//     `badbatch serve` processes (cluster_harness_test.go), each node on a
//     loopback address of its own (127.0.0.(10+N), so that a follower's
//     redirect to the leader crosses hosts) with a tokens file. Producers
//     (cluster_load_test.go) send each append, under an Idempotency-Key of
//     its own, to the next node in turn through the Go client and retry it
//     until it is acknowledged; at the end every node's own copy of the log
//     is read with consistency=any, checked with the queue checker, and
//     compared with the others'. The tests kill -9 the leader
//     (TestClusterKillLeader) and a follower (TestClusterFollowerRestart),
//     replace a node that lost its disk (TestClusterReplaceWipedNode), add
//     and remove members under load (TestClusterMembershipUnderLoad), refuse
//     an append too large for one raft entry (TestClusterOversizedAppend),
//     and cut the leader off with a real partition (TestClusterPartition:
//     network namespaces as root, else TCP proxies on loopback,
//     cluster_net_test.go).
//
// # Scale
//
// BADBATCH_CRASH_CYCLES (CI exports 200) scales every loop: kill -9 cycles
// = min(BADBATCH_CRASH_CYCLES, 100) unless it is above 200, then all of it;
// power-loss images = 50 per cycle. -short uses 10 cycles. The cluster tests
// have counts of their own: BADBATCH_CLUSTER_KILLS (leader kills, default 5,
// CI 20), BADBATCH_CLUSTER_RESTARTS (follower restarts, default 3, CI 5) and
// BADBATCH_CLUSTER_PARTITIONS (partitions, default 2, CI 3); -short caps them
// at 2, 1 and 1. BADBATCH_CLUSTER_NET=netns or proxy chooses the partition
// test's network. Every test logs the counts it used.
//
// # Reproducing a failure
//
// A failing kill -9 or power-loss cycle logs its seed and keeps its data
// directory (the path is logged; it is not deleted). BADBATCH_CRASH_SEED=S
// replays the schedule of that seed (kill times, record sizes, crash
// points); the interleaving of concurrent requests is up to the scheduler.
package crashtest
