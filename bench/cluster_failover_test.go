package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi/client"
)

// failoverKills is BADBATCH_CLUSTER_FAILOVERS, the number of leader kills
// BenchmarkClusterFailover measures (default 20; CI sets 20 as well).
func failoverKills(b *testing.B) int {
	v := os.Getenv("BADBATCH_CLUSTER_FAILOVERS")
	if v == "" {
		return 20
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("BADBATCH_CLUSTER_FAILOVERS=%q: want a positive integer", v)
	}
	return n
}

// BenchmarkClusterFailover measures how long a 3-node cluster of real
// `badbatch serve` processes (the binary built from this tree, each node
// with its own data directory, on loopback) takes to acknowledge appends
// again after its leader is killed with SIGKILL: the time from the kill to
// the 201 of the first append sent after it. A prober sends one small
// append at a time (its own Idempotency-Key each) to the surviving nodes in
// turn, following a follower's redirect to the leader; every attempt
// started after the kill counts. The killed node is restarted and the
// cluster let heal before the next kill. BADBATCH_CLUSTER_FAILOVERS kills
// (default 20) make one run whatever b.N is; p50-ms and p99-ms are their
// percentiles (nearest rank: with 20 kills p99 is the slowest), max-ms the
// slowest. Raft's timers are the defaults: 50 ms ticks, an election timeout
// of 10-20 ticks (0.5-1 s), PreVote and CheckQuorum. The three nodes share
// this machine's cores and its one disk.
func BenchmarkClusterFailover(b *testing.B) {
	b.Run("nodes=3", func(b *testing.B) {
		kills := failoverKills(b)
		c := startFailoverCluster(b, 3)
		var samples []time.Duration
		for range kills {
			c.waitHealthy(b, time.Minute)
			ld := c.leader(b, 10*time.Second)
			killed := ld.kill()
			d := c.firstAck(b, killed, ld, 30*time.Second)
			samples = append(samples, d)
			ld.start(b)
		}
		slices.Sort(samples)
		b.ReportMetric(nearestRank(samples, 0.50), "p50-ms")
		b.ReportMetric(nearestRank(samples, 0.99), "p99-ms")
		b.ReportMetric(float64(samples[len(samples)-1])/1e6, "max-ms")
		b.ReportMetric(float64(kills), "kills")
		load, _ := os.ReadFile("/proc/loadavg")
		b.Logf("%d kills: failover %v ... %v; load average %s", kills, samples[0].Round(time.Millisecond), samples[len(samples)-1].Round(time.Millisecond), strings.TrimSpace(string(load)))
	})
}

// nearestRank is the p-th percentile of sorted durations, in milliseconds.
func nearestRank(sorted []time.Duration, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return float64(sorted[max(i, 0)]) / 1e6
}

// failoverNode is one `badbatch serve` child process.
type failoverNode struct {
	id     uint64
	bin    string
	args   []string
	url    string
	log    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// failoverCluster is the benchmark's cluster. Not safe for concurrent use.
type failoverCluster struct {
	nodes []*failoverNode
	httpc *http.Client
}

// buildBadbatch builds cmd/badbatch into dir (as crashtest does: go build,
// no race detector).
func buildBadbatch(b *testing.B, dir string) string {
	bin := filepath.Join(dir, "badbatch")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/badbatch/badbatch/cmd/badbatch").CombinedOutput()
	if err != nil {
		b.Fatalf("go build cmd/badbatch: %v\n%s", err, out)
	}
	return bin
}

func startFailoverCluster(b *testing.B, n int) *failoverCluster {
	dir := b.TempDir()
	bin := buildBadbatch(b, dir)
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("benchmark-cluster-secret-0123456789\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	httpAddrs, clusterAddrs := freePorts(b, n), freePorts(b, n)
	var peers []string
	for i := range n {
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, clusterAddrs[i]))
	}
	c := &failoverCluster{httpc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}
	b.Cleanup(func() {
		for _, nd := range c.nodes {
			nd.kill()
		}
		c.httpc.CloseIdleConnections()
	})
	for i := range n {
		nd := &failoverNode{
			id: uint64(i + 1), bin: bin, url: "http://" + httpAddrs[i], log: filepath.Join(dir, fmt.Sprintf("node-%d.log", i+1)),
			args: []string{"serve", "--data-dir", filepath.Join(dir, fmt.Sprintf("node-%d", i+1)), "--addr", httpAddrs[i],
				"--node-id", strconv.Itoa(i + 1), "--cluster-addr", clusterAddrs[i], "--peers", strings.Join(peers, ","),
				"--cluster-secret-file", secret, "--log-level", "warn"},
		}
		c.nodes = append(c.nodes, nd)
		nd.launch(b)
	}
	for _, nd := range c.nodes {
		nd.waitReady(b, time.Minute)
	}
	return c
}

// launch execs the node without waiting for it to be ready.
func (n *failoverNode) launch(b *testing.B) {
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(n.bin, n.args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BADBATCH_") { // the binary reads those as flags
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		_ = cmd.Wait()
		_ = logf.Close()
		close(exited)
	}(n.exited)
}

// start launches the node and waits until it is ready.
func (n *failoverNode) start(b *testing.B) {
	n.launch(b)
	n.waitReady(b, time.Minute)
}

// waitReady polls /readyz until it answers 200 (the node knows a leader).
func (n *failoverNode) waitReady(b *testing.B, timeout time.Duration) {
	poll := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := poll.Get(n.url + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-n.exited:
			b.Fatalf("node %d exited before it was ready; log %s", n.id, n.log)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("node %d not ready within %v; log %s", n.id, timeout, n.log)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kill sends SIGKILL, waits for the process to be gone and returns the
// time of the signal.
func (n *failoverNode) kill() time.Time {
	at := time.Now()
	if n.cmd == nil {
		return at
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
	n.cmd = nil
	return at
}

// status is the part of GET /v1/cluster the benchmark reads.
type failoverStatus struct {
	NodeID   uint64 `json:"node_id"`
	LeaderID uint64 `json:"leader_id"`
	Nodes    []struct {
		ID      uint64 `json:"id"`
		Healthy bool   `json:"healthy"`
	} `json:"nodes"`
}

func (c *failoverCluster) status(n *failoverNode) (failoverStatus, bool) {
	var st failoverStatus
	resp, err := c.httpc.Get(n.url + "/v1/cluster")
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	return st, resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&st) == nil
}

// waitHealthy waits until every node runs, all agree on a leader and each
// has a live connection to every other: the next kill starts from a whole
// cluster.
func (c *failoverCluster) waitHealthy(b *testing.B, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		ok, lead := true, uint64(0)
		for _, n := range c.nodes {
			st, answered := c.status(n)
			if !answered || st.LeaderID == 0 || lead != 0 && st.LeaderID != lead || len(st.Nodes) != len(c.nodes) {
				ok = false
				break
			}
			lead = st.LeaderID
			for _, m := range st.Nodes {
				ok = ok && m.Healthy
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("cluster not healthy within %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leader returns the node that says it leads.
func (c *failoverCluster) leader(b *testing.B, timeout time.Duration) *failoverNode {
	deadline := time.Now().Add(timeout)
	for {
		for _, n := range c.nodes {
			if st, ok := c.status(n); ok && st.LeaderID == n.id {
				return n
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("no leader within %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// firstAck sends appends to the nodes other than dead, one at a time,
// until one is acknowledged, and returns the time from killed to that
// acknowledgement.
func (c *failoverCluster) firstAck(b *testing.B, killed time.Time, dead *failoverNode, timeout time.Duration) time.Duration {
	var clients []*client.Client
	for _, n := range c.nodes {
		if n == dead {
			continue
		}
		cl, err := client.New(n.url, &client.Options{HTTPClient: c.httpc, MaxRetries: new(0)})
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, cl)
	}
	rec := []client.Record{{Value: []byte("failover probe")}}
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := clients[i%len(clients)].AppendBatch(ctx, "failover", rec, &client.AppendOptions{IdempotencyKey: fmt.Sprintf("probe-%d-%d", killed.UnixNano(), i)})
		cancel()
		if err == nil {
			return time.Since(killed)
		}
		if time.Since(killed) > timeout {
			b.Fatalf("no append acknowledged within %v of the kill of node %d: %v", timeout, dead.id, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
