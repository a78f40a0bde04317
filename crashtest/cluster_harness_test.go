package crashtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/badbatch/badbatch/httpapi/client"
)

// The cluster harness: every node is a `badbatch serve` child process (the
// binary built once for the package, see server_test.go) with its own data
// directory, HTTP port and cluster port, all sharing one secret file. The
// network between the nodes is a clusterNet: plain loopback, network
// namespaces, or TCP proxies on loopback (cluster_net_test.go).

// clusterNode is one node of a procCluster.
type clusterNode struct {
	*server
	id uint64
	// clusterAddr is the address peers dial (the membership's);
	// listenAddr, when set, is where the node's cluster port listens
	// behind a proxy.
	clusterAddr string
	listenAddr  string
	// nodeArgs are the node's cluster flags (--peers or --join included).
	nodeArgs []string
}

// baseURL is the node's HTTP base URL, as it advertises it.
func (n *clusterNode) baseURL() string { return "http://" + n.addr }

// procCluster is a cluster of badbatch processes. Not safe for concurrent
// use, except status and the read-only accessors.
type procCluster struct {
	t      *testing.T
	root   string
	secret string
	// token is the admin token of the nodes' tokens file: every request
	// of the test carries it.
	token  string
	tokens string
	net    clusterNet
	// extra are serve flags every node gets.
	extra []string
	nodes map[uint64]*clusterNode
	// members are the ids the test believes are members, in order.
	members []uint64
	// statusc asks nodes for their status.
	statusc *http.Client
}

// clusterOptions configure newProcCluster.
type procClusterOptions struct {
	nodes int
	net   clusterNet // nil: loopback
	extra []string
}

// newProcCluster prepares (but does not start) a cluster of o.nodes nodes
// with ids 1..n bootstrapped by --peers. Its directory is kept when the test
// fails, and the tail of every node's log is printed then.
func newProcCluster(t *testing.T, o procClusterOptions) *procCluster {
	t.Helper()
	c := &procCluster{
		t: t, root: keptDir(t, "badbatch-cluster-"), net: o.net, extra: o.extra,
		nodes:   map[uint64]*clusterNode{},
		statusc: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	if c.net == nil {
		c.net = loopbackNet{}
	}
	var secret [32]byte
	_, _ = rand.Read(secret[:])
	c.secret = filepath.Join(c.root, "cluster.secret")
	require.NoError(t, os.WriteFile(c.secret, []byte(hex.EncodeToString(secret[:])+"\n"), 0o600))
	c.token = "test-admin-" + hex.EncodeToString(secret[:8])
	c.tokens = filepath.Join(c.root, "tokens")
	require.NoError(t, os.WriteFile(c.tokens, []byte(c.token+" admin\n"), 0o600))
	var peers []string
	for id := uint64(1); id <= uint64(o.nodes); id++ {
		n := c.newNode(id)
		peers = append(peers, fmt.Sprintf("%d=%s", id, n.clusterAddr))
	}
	for id := uint64(1); id <= uint64(o.nodes); id++ {
		n := c.nodes[id]
		n.nodeArgs = append(n.nodeArgs, "--peers", strings.Join(peers, ","))
		c.members = append(c.members, id)
	}
	t.Cleanup(func() {
		// Registered after the servers' own cleanups, so it runs before
		// them: the processes are still there to be asked.
		if t.Failed() {
			for _, id := range c.ids() {
				n := c.nodes[id]
				t.Logf("node %d (%s, data %s) log tail:\n%s", id, n.baseURL(), n.dataDir, tail(n.logPath))
			}
		}
		c.statusc.CloseIdleConnections()
	})
	return c
}

// newNode allocates node id's addresses and directories.
func (c *procCluster) newNode(id uint64) *clusterNode {
	c.t.Helper()
	a := c.net.addrs(c.t, id)
	s := newServer(c.t, filepath.Join(c.root, fmt.Sprintf("node-%d", id)), filepath.Join(c.root, fmt.Sprintf("node-%d.log", id)))
	s.addr, s.wrap, s.readQuery, s.token = a.http, a.wrap, "consistency=any", c.token
	n := &clusterNode{server: s, id: id, clusterAddr: a.cluster, listenAddr: a.listen}
	n.nodeArgs = []string{"--node-id", strconv.FormatUint(id, 10), "--cluster-addr", a.cluster,
		"--cluster-secret-file", c.secret, "--tokens-file", c.tokens}
	if a.listen != "" {
		n.nodeArgs = append(n.nodeArgs, "--cluster-listen-addr", a.listen)
	}
	c.nodes[id] = n
	return n
}

// ids returns every node id ever created, in order.
func (c *procCluster) ids() []uint64 {
	ids := make([]uint64, 0, len(c.nodes))
	for id := range c.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (c *procCluster) node(id uint64) *clusterNode {
	c.t.Helper()
	n, ok := c.nodes[id]
	require.True(c.t, ok, "no node %d", id)
	return n
}

// memberNodes returns the nodes the test believes are members.
func (c *procCluster) memberNodes() []*clusterNode {
	out := make([]*clusterNode, 0, len(c.members))
	for _, id := range c.members {
		out = append(out, c.nodes[id])
	}
	return out
}

// launch execs node id's process (without waiting for it to be ready).
// logLevel overrides the default warn ("" keeps it).
func (c *procCluster) launch(id uint64, logLevel string) time.Time {
	c.t.Helper()
	n := c.node(id)
	n.args = append(append(slices.Clone(n.nodeArgs), c.extra...), "--log-level", orDefault(logLevel, "warn"))
	return n.launch()
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// start launches every member and waits until all are ready (they know a
// leader).
func (c *procCluster) start() {
	c.t.Helper()
	begin := time.Now()
	for _, id := range c.members {
		c.launch(id, "")
	}
	for _, n := range c.memberNodes() {
		n.waitReady(begin, 60*time.Second)
	}
	c.t.Logf("cluster of %d nodes on %s ready in %v (data under %s)", len(c.members), c.net.name(), time.Since(begin).Round(time.Millisecond), c.root)
}

// restart launches a node that was killed or stopped and waits until it is
// ready; it returns how long that took.
func (c *procCluster) restart(id uint64) time.Duration {
	c.t.Helper()
	begin := c.launch(id, "")
	c.node(id).waitReady(begin, 60*time.Second)
	return time.Since(begin)
}

// wipe deletes node id's data directory (the node must be down).
func (c *procCluster) wipe(id uint64) {
	c.t.Helper()
	n := c.node(id)
	require.False(c.t, n.alive(), "node %d is running", id)
	require.NoError(c.t, os.RemoveAll(n.dataDir))
}

// status asks node n for GET /v1/cluster.
func (c *procCluster) status(n *clusterNode) (client.ClusterStatus, error) {
	var st client.ClusterStatus
	req, err := http.NewRequest(http.MethodGet, n.url("/v1/cluster"), nil)
	if err != nil {
		return st, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.statusc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /v1/cluster on node %d: %d %s", n.id, resp.StatusCode, b)
	}
	return st, json.Unmarshal(b, &st)
}

// statuses asks every running member for its status.
func (c *procCluster) statuses() map[uint64]client.ClusterStatus {
	out := map[uint64]client.ClusterStatus{}
	for _, n := range c.memberNodes() {
		if !n.alive() {
			continue
		}
		if st, err := c.status(n); err == nil {
			out[n.id] = st
		}
	}
	return out
}

// voters counts the voters of a status's membership.
func voters(st client.ClusterStatus) int {
	v := 0
	for _, m := range st.Nodes {
		if m.Role != "learner" {
			v++
		}
	}
	return v
}

// leaderOf returns the leader that a quorum of the running members agree
// on (the leader itself included), or nil.
func (c *procCluster) leaderOf(sts map[uint64]client.ClusterStatus) *clusterNode {
	for id, st := range sts {
		if st.LeaderID != id || st.Role != "leader" {
			continue
		}
		agree := 0
		for _, o := range sts {
			if o.LeaderID == id {
				agree++
			}
		}
		if agree >= voters(st)/2+1 {
			return c.nodes[id]
		}
	}
	return nil
}

// leader waits until a quorum of the running members agree on a leader
// other than the ids in not, and returns it.
func (c *procCluster) leader(timeout time.Duration, not ...uint64) *clusterNode {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sts := c.statuses()
		if ld := c.leaderOf(sts); ld != nil && !slices.Contains(not, ld.id) {
			return ld
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no leader (other than %v) agreed on within %v; statuses: %s", not, timeout, describeStatuses(sts))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitHealthy waits until every member runs, all agree on one leader, and
// each has a live connection to every other member: the cluster survives
// the loss of any one node from here.
func (c *procCluster) waitHealthy(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sts := c.statuses()
		if c.healthy(sts) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster not healthy within %v; statuses: %s", timeout, describeStatuses(sts))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *procCluster) healthy(sts map[uint64]client.ClusterStatus) bool {
	if len(sts) != len(c.members) {
		return false
	}
	var lead uint64
	for _, st := range sts {
		if st.LeaderID == 0 || lead != 0 && st.LeaderID != lead || len(st.Nodes) != len(c.members) {
			return false
		}
		lead = st.LeaderID
		for _, m := range st.Nodes {
			if !m.Healthy || !slices.Contains(c.members, m.ID) {
				return false
			}
		}
	}
	return true
}

// waitConverged waits until every member has applied the same index, which
// is the leader's commit index, twice in a row 100 ms apart (no append is
// in flight: the producers must have stopped). It returns that index.
func (c *procCluster) waitConverged(timeout time.Duration) uint64 {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last uint64
	stable := 0
	for {
		sts := c.statuses()
		idx, ok := converged(sts, len(c.members))
		switch {
		case ok && idx == last:
			stable++
		case ok:
			last, stable = idx, 1
		default:
			stable = 0
		}
		if stable >= 2 {
			return idx
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("members did not converge within %v; statuses: %s", timeout, describeStatuses(sts))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// converged reports whether all n statuses agree on a leader and have
// applied its commit index.
func converged(sts map[uint64]client.ClusterStatus, n int) (uint64, bool) {
	if len(sts) != n {
		return 0, false
	}
	var lead, commit uint64
	for _, st := range sts {
		if st.LeaderID == 0 || lead != 0 && st.LeaderID != lead {
			return 0, false
		}
		lead = st.LeaderID
	}
	ld, ok := sts[lead]
	if !ok {
		return 0, false
	}
	commit = ld.CommitIndex
	for _, st := range sts {
		if st.AppliedIndex != commit || st.CommitIndex != commit {
			return 0, false
		}
	}
	return commit, true
}

func describeStatuses(sts map[uint64]client.ClusterStatus) string {
	ids := make([]uint64, 0, len(sts))
	for id := range sts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	for _, id := range ids {
		st := sts[id]
		fmt.Fprintf(&b, "\n  node %d: %s leader %d term %d commit %d applied %d", id, st.Role, st.LeaderID, st.Term, st.CommitIndex, st.AppliedIndex)
		for _, m := range st.Nodes {
			fmt.Fprintf(&b, " [%d %s healthy=%v match=%d]", m.ID, m.Role, m.Healthy, m.MatchIndex)
		}
		if st.Error != "" {
			fmt.Fprintf(&b, " error: %s", st.Error)
		}
	}
	if len(ids) == 0 {
		b.WriteString("none answered")
	}
	return b.String()
}

// cli runs `badbatch ARGS... --token TOKEN` and returns its combined
// output.
func (c *procCluster) cli(args ...string) (string, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, badbatchBinary(c.t), append(args, "--token", c.token)...)
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitExit waits up to timeout for node n's process to exit on its own and
// returns its exit error; ok is false if it is still running.
func (n *clusterNode) waitExit(timeout time.Duration) (err error, ok bool) {
	if n.cmd == nil {
		return n.err, true
	}
	select {
	case <-n.exited:
		n.cmd = nil
		return n.err, true
	case <-time.After(timeout):
		return nil, false
	}
}
