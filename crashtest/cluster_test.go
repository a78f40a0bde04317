package crashtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The cluster tests run three (or four) real `badbatch serve` processes
// (cluster_harness_test.go) under a load of producers that send every
// append to the next node in turn (cluster_load_test.go), and end with the
// queue checker run against every node's own copy of the log.

// followerOf returns a running member that is not ld, chosen by rng.
func (c *procCluster) followerOf(ld *clusterNode, rng *rand.Rand) *clusterNode {
	c.t.Helper()
	var fs []*clusterNode
	for _, n := range c.memberNodes() {
		if n.id != ld.id && n.alive() {
			fs = append(fs, n)
		}
	}
	require.NotEmpty(c.t, fs, "no running follower")
	return fs[rng.IntN(len(fs))]
}

// TestClusterKillLeader kills the leader with SIGKILL under load, waits for
// the other two to elect a new one, and restarts the old leader, again and
// again (BADBATCH_CLUSTER_KILLS times). Every append is retried under its
// Idempotency-Key until acknowledged; at the end every acknowledged record
// must be on every node exactly once at its acknowledged offset, and the
// three nodes must hold identical records.
func TestClusterKillLeader(t *testing.T) {
	kills := envCount(t, "BADBATCH_CLUSTER_KILLS", 5, 2)
	seed := baseSeed(t)
	t.Logf("kill -9 of the leader %d times (BADBATCH_CLUSTER_KILLS; default 5, 2 under -short); seed %d", kills, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	c := newProcCluster(t, procClusterOptions{nodes: 3})
	c.start()
	l := startLoad(t, 4, seed, c.memberNodes())

	var elected, restarts []time.Duration
	for range kills {
		c.waitHealthy(30 * time.Second)
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		ld := c.leader(10 * time.Second)
		ld.kill()
		killed := time.Now()
		c.leader(30*time.Second, ld.id)
		elected = append(elected, time.Since(killed))
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		restarts = append(restarts, c.restart(ld.id))
	}
	c.waitHealthy(30 * time.Second)
	time.Sleep(300 * time.Millisecond)
	l.finish(30 * time.Second)
	checkCluster(t, c, l)
	t.Logf("%d kills of the leader; a new leader agreed on after (poll every 20 ms): %s", kills, durationStats(elected))
	t.Logf("restart of the killed node (exec to /readyz 200): %s", durationStats(restarts))
}

// TestClusterFollowerRestart kills a follower with SIGKILL under load,
// keeps the load on the other two for a second, and restarts it: the
// cluster acknowledges appends while it is down, and once restarted it
// catches up to the leader's commit index. Repeated
// BADBATCH_CLUSTER_RESTARTS times; at the end all three nodes hold
// identical records.
func TestClusterFollowerRestart(t *testing.T) {
	restarts := envCount(t, "BADBATCH_CLUSTER_RESTARTS", 3, 1)
	seed := baseSeed(t)
	t.Logf("kill -9 and restart of a follower %d times (BADBATCH_CLUSTER_RESTARTS; default 3, 1 under -short); seed %d", restarts, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	c := newProcCluster(t, procClusterOptions{nodes: 3})
	c.start()
	l := startLoad(t, 4, seed, c.memberNodes())

	var catchUp []time.Duration
	for range restarts {
		c.waitHealthy(30 * time.Second)
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		ld := c.leader(10 * time.Second)
		f := c.followerOf(ld, rng)
		f.kill()
		down := time.Now()
		time.Sleep(time.Second + time.Duration(rng.IntN(500))*time.Millisecond)
		acked := l.h.ackedBetween(down, time.Now())
		assert.Positive(t, acked, "appends acknowledged while follower %d was down", f.id)
		st, err := c.status(ld)
		require.NoError(t, err)
		begin := time.Now()
		c.restart(f.id)
		require.Eventually(t, func() bool {
			fst, err := c.status(f)
			return err == nil && fst.AppliedIndex >= st.CommitIndex
		}, time.Minute, 10*time.Millisecond, "node %d catches up to commit index %d", f.id, st.CommitIndex)
		catchUp = append(catchUp, time.Since(begin))
		t.Logf("follower %d: down %v with %d appends acknowledged meanwhile; caught up to index %d", f.id, begin.Sub(down).Round(time.Millisecond), acked, st.CommitIndex)
	}
	c.waitHealthy(30 * time.Second)
	l.finish(30 * time.Second)
	checkCluster(t, c, l)
	t.Logf("restart to caught up (exec to applied >= the leader's commit index at the restart): %s", durationStats(catchUp))
}

// snapshotEntries is the --snapshot-entries of the tests that need raft's
// log compacted: with the default 10,000 that takes 20,000 entries.
const snapshotEntries = 100

// waitCommitted waits until the leader's commit index reaches index.
func (c *procCluster) waitCommitted(index uint64, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if st, err := c.status(c.leader(10 * time.Second)); err == nil && st.CommitIndex >= index {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("commit index %d not reached within %v; statuses: %s", index, timeout, describeStatuses(c.statuses()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitVoter waits until the leader reports node id as a voter (follower or
// leader, not learner) and the cluster is healthy.
func (c *procCluster) waitVoter(id uint64, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sts := c.statuses()
		if ld := c.leaderOf(sts); ld != nil && c.healthy(sts) {
			for _, m := range sts[ld.id].Nodes {
				if m.ID == id && m.Role != "learner" {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d not a voter within %v; statuses: %s", id, timeout, describeStatuses(sts))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeMember drops id from the members the test expects.
func (c *procCluster) removeMember(id uint64) {
	c.members = slices.DeleteFunc(c.members, func(m uint64) bool { return m == id })
}

// exitCode is the exit status of a process's exit error (0 for nil, -1 for
// a signal or another error).
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// TestClusterReplaceWipedNode follows docs/cluster.md's "Replacing a node
// that lost its disk" under load. A follower's data directory is wiped and
// it is restarted under its old id: it must stop on its own with
// ErrDataLost, naming --join. It is then removed with `badbatch cluster
// remove`, and a fresh node joins with a new id through --join: it must
// catch up by snapshot (the cluster runs with --snapshot-entries 100 and
// has committed well past it, so the leader's raft log is compacted), be
// promoted to voter, and hold the same records as the others.
func TestClusterReplaceWipedNode(t *testing.T) {
	seed := baseSeed(t)
	t.Logf("seed %d; --snapshot-entries %d", seed, snapshotEntries)
	rng := rand.New(rand.NewPCG(seed, 0))
	c := newProcCluster(t, procClusterOptions{nodes: 3, extra: []string{"--snapshot-entries", strconv.Itoa(snapshotEntries)}})
	c.start()
	l := startLoad(t, 4, seed, c.memberNodes())
	// The leader compacts once 2*snapshotEntries entries are applied past
	// its last compaction point.
	c.waitCommitted(4*snapshotEntries, 2*time.Minute)
	c.waitHealthy(30 * time.Second)

	ld := c.leader(10 * time.Second)
	wiped := c.followerOf(ld, rng)
	wiped.kill()
	c.wipe(wiped.id)
	c.launch(wiped.id, "")
	err, exited := wiped.waitExit(time.Minute)
	require.True(t, exited, "node %d, restarted under its old id with an empty data directory, is still running:\n%s", wiped.id, tail(wiped.logPath))
	out := tail(wiped.logPath)
	assert.NotZero(t, exitCode(err), "exit status of the wiped node (%v)", err)
	assert.Contains(t, out, "data directory was lost or replaced")
	assert.Contains(t, out, "--join")
	t.Logf("wiped node %d stopped on its own (%v): %s", wiped.id, err, lastLine(out))

	// Remove it through a node that is not the leader: the CLI follows the
	// redirect.
	via := c.followerOf(ld, rng)
	if via.id == wiped.id {
		via = ld
	}
	removeOut, err := c.cli("cluster", "remove", strconv.FormatUint(wiped.id, 10), "--server", via.baseURL())
	require.NoError(t, err, "badbatch cluster remove %d:\n%s", wiped.id, removeOut)
	c.removeMember(wiped.id)
	l.setTargets(c.memberNodes())
	t.Logf("badbatch cluster remove %d --server %s: %s", wiped.id, via.baseURL(), strings.TrimSpace(removeOut))

	// A fresh node with a new id joins through any member.
	const newID = 4
	fresh := c.newNode(newID)
	fresh.nodeArgs = append(fresh.nodeArgs, "--join", c.node(c.members[0]).baseURL())
	begin := c.launch(newID, "info")
	fresh.waitReady(begin, time.Minute)
	c.members = append(c.members, newID)
	c.waitVoter(newID, time.Minute)
	t.Logf("node %d joined and was promoted to voter %v after its start", newID, time.Since(begin).Round(time.Millisecond))
	log := tail(fresh.logPath)
	assert.Contains(t, readFile(t, fresh.logPath), "cluster: snapshot installed", "node %d caught up by snapshot:\n%s", newID, log)
	l.setTargets(c.memberNodes())
	time.Sleep(500 * time.Millisecond)

	l.finish(30 * time.Second)
	checkCluster(t, c, l)
}

// TestClusterMembershipUnderLoad adds a fourth node (`badbatch cluster
// add`, then `serve --join`) and removes the leader, one of the original
// three (`badbatch cluster remove`), while producers run the whole time:
// no acknowledged record is lost, the removed node refuses to start again,
// and the three remaining members hold identical records.
func TestClusterMembershipUnderLoad(t *testing.T) {
	seed := baseSeed(t)
	t.Logf("seed %d", seed)
	c := newProcCluster(t, procClusterOptions{nodes: 3})
	c.start()
	l := startLoad(t, 4, seed, c.memberNodes())
	time.Sleep(500 * time.Millisecond)

	const newID = 4
	added := c.newNode(newID)
	out, err := c.cli("cluster", "add", strconv.Itoa(newID), "--cluster-addr", added.clusterAddr, "--url", added.baseURL(), "--server", c.node(1).baseURL())
	require.NoError(t, err, "badbatch cluster add:\n%s", out)
	t.Logf("badbatch cluster add %d: %s", newID, strings.TrimSpace(out))
	added.nodeArgs = append(added.nodeArgs, "--join", c.node(2).baseURL())
	begin := c.launch(newID, "")
	added.waitReady(begin, time.Minute)
	c.members = append(c.members, newID)
	c.waitVoter(newID, time.Minute)
	l.setTargets(c.memberNodes())
	t.Logf("node %d ready and a voter %v after its start", newID, time.Since(begin).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)

	ld := c.leader(10 * time.Second)
	var via *clusterNode
	for _, n := range c.memberNodes() {
		if n.id != ld.id {
			via = n
			break
		}
	}
	out, err = c.cli("cluster", "remove", strconv.FormatUint(ld.id, 10), "--server", via.baseURL())
	require.NoError(t, err, "badbatch cluster remove %d (the leader):\n%s", ld.id, out)
	t.Logf("badbatch cluster remove %d (the leader): %s", ld.id, strings.TrimSpace(out))
	c.removeMember(ld.id)
	l.setTargets(c.memberNodes())
	next := c.leader(30*time.Second, ld.id)
	c.waitHealthy(30 * time.Second)
	t.Logf("node %d leads the remaining members %v", next.id, c.members)
	time.Sleep(500 * time.Millisecond)

	require.NoError(t, ld.stop(), "the removed node stops cleanly")
	c.launch(ld.id, "")
	err, exited := ld.waitExit(30 * time.Second)
	require.True(t, exited, "the removed node %d started again", ld.id)
	assert.NotZero(t, exitCode(err))
	assert.Contains(t, tail(ld.logPath), "removed from the cluster")

	l.finish(30 * time.Second)
	checkCluster(t, c, l)
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestClusterOversizedAppend: with --max-request-bytes raised to 96 MiB, an
// append of 68 MiB of records is more than one raft entry may carry (the
// TCP transport sends a message in one frame of at most 65 MiB). It must be
// refused with 413, and the cluster must go on acknowledging appends. It
// used to be proposed, then dropped by the transport on every send to a
// follower, so that it and every append after it hung for good.
func TestClusterOversizedAppend(t *testing.T) {
	c := newProcCluster(t, procClusterOptions{nodes: 3, extra: []string{"--max-request-bytes", strconv.Itoa(96 << 20)}})
	c.start()
	ld := c.leader(10 * time.Second)
	var body bytes.Buffer
	rec := make([]byte, 4<<20-64)
	for i := range 17 {
		rec[0] = byte(i)
		line, err := json.Marshal(map[string]string{"value_base64": base64.StdEncoding.EncodeToString(rec)})
		require.NoError(t, err)
		body.Write(line)
		body.WriteByte('\n')
	}
	status, answer, _, err := ld.post("big", "application/x-ndjson", body.Bytes(), nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusRequestEntityTooLarge, status, "%.300s", answer)
	assert.Contains(t, string(answer), "too_large")

	l := startLoad(t, 2, baseSeed(t), c.memberNodes())
	require.Eventually(t, func() bool { return l.h.ackedBetween(time.Now().Add(-time.Minute), time.Now()) >= 50 }, 30*time.Second, 10*time.Millisecond,
		"the cluster acknowledges appends after the oversized one")
	l.finish(30 * time.Second)
	checkCluster(t, c, l)
}
