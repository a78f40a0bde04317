package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// minorityProbe sends appends straight to one node (no redirect followed,
// no retry) while it is cut off from the others, and records the answers.
type minorityProbe struct {
	node  *clusterNode
	round int
	httpc *http.Client
	mu    sync.Mutex
	ops   []*clusterOp
	// answers counts the answers by kind.
	answers map[string]int
	stop    chan struct{}
	done    chan struct{}
}

func startMinorityProbe(n *clusterNode, round int) *minorityProbe {
	p := &minorityProbe{
		node: n, round: round, answers: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{}),
		httpc: &http.Client{
			Timeout:       2 * time.Second,
			Transport:     &http.Transport{DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	go p.run()
	return p
}

func (p *minorityProbe) run() {
	defer close(p.done)
	for i := 0; ; i++ {
		select {
		case <-p.stop:
			return
		default:
		}
		payload := fmt.Sprintf("minority-r%d-%d|to node %d while it was cut off", p.round, i, p.node.id)
		op := &clusterOp{appendOp: appendOp{stream: "minority", payloads: []string{payload}, status: statusUnknown}, key: fmt.Sprintf("minority-r%d-%d", p.round, i)}
		kind := p.send(op)
		p.mu.Lock()
		p.ops = append(p.ops, op)
		p.answers[kind]++
		p.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
}

// send makes one append and names its answer.
func (p *minorityProbe) send(op *clusterOp) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.node.url("/v1/streams/minority/records"), bytes.NewReader([]byte(op.payloads[0])))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Idempotency-Key", op.key)
	req.Header.Set("Authorization", "Bearer "+p.node.token)
	resp, err := p.httpc.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return "timeout"
		}
		return "no answer"
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e apiError
	if resp.StatusCode != http.StatusCreated {
		_ = json.Unmarshal(body, &e)
	}
	return fmt.Sprintf("%d %s", resp.StatusCode, e.Error.Code)
}

func (p *minorityProbe) finish() {
	close(p.stop)
	<-p.done
	p.httpc.CloseIdleConnections()
}

// TestClusterPartition cuts the leader off from the other two nodes with a
// real network partition (network namespaces with the leader's veth set
// down, or, when those are unavailable, TCP proxies whose links are cut),
// BADBATCH_CLUSTER_PARTITIONS times, with producers running against every
// node. While cut off, the old leader acknowledges nothing: every append
// sent to it times out or answers 503. The majority elects a leader and
// acknowledges appends. After healing, the old leader takes the majority's
// log: the checker finds every acknowledged record on all three nodes, the
// nodes identical, and none of the appends sent to the minority stored.
func TestClusterPartition(t *testing.T) {
	rounds := envCount(t, "BADBATCH_CLUSTER_PARTITIONS", 2, 1)
	seed := baseSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	pn := newPartitionNet(t)
	t.Logf("partition of the leader %d times (BADBATCH_CLUSTER_PARTITIONS; default 2, 1 under -short) on %s; seed %d", rounds, pn.name(), seed)
	c := newProcCluster(t, procClusterOptions{nodes: 3, net: pn})
	c.start()
	l := startLoad(t, 4, seed, c.memberNodes())

	var probes []*minorityProbe
	for round := range rounds {
		c.waitHealthy(30 * time.Second)
		time.Sleep(time.Duration(200+rng.IntN(300)) * time.Millisecond)
		old := c.leader(10 * time.Second)
		pn.isolate(t, old.id)
		cut := time.Now()
		probe := startMinorityProbe(old, round)
		probes = append(probes, probe)

		// The majority elects a leader among itself and acknowledges.
		ld := c.leader(30*time.Second, old.id)
		elected := time.Now()
		require.Eventually(t, func() bool { return l.h.ackedBetween(elected, time.Now()) >= 20 }, 30*time.Second, 10*time.Millisecond,
			"the majority acknowledges appends under leader %d", ld.id)
		time.Sleep(time.Second)
		probe.finish()
		acked := l.h.ackedBetween(elected, time.Now())
		pn.heal(t, old.id)
		healed := time.Now()
		c.waitHealthy(time.Minute)
		st, err := c.status(old)
		require.NoError(t, err)
		t.Logf("round %d: node %d cut off for %v; node %d elected after %v; %d appends acknowledged by the majority meanwhile; the minority answered %v; rejoined as %s of node %d %v after the heal",
			round, old.id, healed.Sub(cut).Round(time.Millisecond), ld.id, elected.Sub(cut).Round(time.Millisecond), acked,
			probe.answers, st.Role, st.LeaderID, time.Since(healed).Round(time.Millisecond))
		for kind, n := range probe.answers {
			assert.Contains(t, []string{"timeout", "503 no_leader", "503 unavailable"}, kind, "%d appends sent to the cut-off node %d", n, old.id)
		}
		assert.NotEmpty(t, probe.ops, "appends were sent to the cut-off node")
	}
	time.Sleep(300 * time.Millisecond)
	l.finish(30 * time.Second)
	// The minority's appends are part of the history (outcome unknown) so
	// the checker accounts for them; none may be stored.
	for _, p := range probes {
		for _, op := range p.ops {
			l.h.add(op)
		}
	}
	checkCluster(t, c, l)
	for _, n := range c.memberNodes() {
		streams, _, err := n.readBack()
		require.NoError(t, err)
		assert.Empty(t, streams["minority"], "node %d stored appends that were sent to a cut-off node", n.id)
	}
}
