package crashtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/badbatch/badbatch/httpapi/client"
)

// clusterOp is one append of the cluster load: a batch under its own
// Idempotency-Key, sent again under that key until it is acknowledged or
// the load gives up.
type clusterOp struct {
	appendOp
	key  string
	recs []client.Record
	// attempts counts the requests sent; replayed is set when the
	// acknowledgement was the server's answer to an earlier attempt.
	attempts int
	replayed bool
	ackedAt  time.Time
}

// clusterHistory is every append of a cluster load. Safe for concurrent
// use.
type clusterHistory struct {
	mu  sync.Mutex
	ops []*clusterOp
	// answers counts the failed attempts by kind ("503 no_leader",
	// "network", "timeout", ...).
	answers map[string]int
	// unexpected lists answers the contract does not allow.
	unexpected []string
}

func (h *clusterHistory) add(op *clusterOp) {
	h.mu.Lock()
	defer h.mu.Unlock()
	op.id = len(h.ops)
	h.ops = append(h.ops, op)
}

func (h *clusterHistory) appendOps() []appendOp {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]appendOp, len(h.ops))
	for i, op := range h.ops {
		out[i] = op.appendOp
	}
	return out
}

// ack records a 201.
func (h *clusterHistory) ack(op *clusterOp, res client.AppendResult) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if res.Count != len(op.payloads) || res.Stream != op.stream {
		h.unexpected = append(h.unexpected, fmt.Sprintf("op %d: 201 %+v for %d records of stream %s", op.id, res, len(op.payloads), op.stream))
		return
	}
	op.status, op.first, op.firstSeq, op.checkSeq = statusAcked, res.FirstOffset, res.FirstSeq, true
	op.replayed, op.ackedAt = res.Replayed, time.Now()
}

// failed records a failed attempt and reports whether it may be retried.
// A definite refusal (4xx) fails the op: nothing of it may be stored.
func (h *clusterHistory) failed(op *clusterOp, err error) bool {
	kind, retry := classify(err)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.answers == nil {
		h.answers = map[string]int{}
	}
	h.answers[kind]++
	if !retry {
		op.status = statusFailed
		h.unexpected = append(h.unexpected, fmt.Sprintf("op %d: %v", op.id, err))
	}
	return retry
}

// classify names a failed attempt and says whether the contract allows a
// retry: 503 (no_leader, unavailable), no answer, or a timeout.
func classify(err error) (string, bool) {
	var apiErr *client.Error
	switch {
	case errors.Is(err, client.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout", true
	case errors.Is(err, client.ErrConnection):
		return "no answer", true
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusServiceUnavailable:
		return "503 " + apiErr.Code, true
	case errors.As(err, &apiErr):
		return fmt.Sprintf("%d %s", apiErr.Status, apiErr.Code), false
	default:
		return "no answer", true
	}
}

// counts summarizes the history for the log.
func (h *clusterHistory) counts() (acked, unknown, replayed, attempts int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, op := range h.ops {
		switch op.status {
		case statusAcked:
			acked++
		case statusUnknown:
			unknown++
		}
		if op.replayed {
			replayed++
		}
		attempts += op.attempts
	}
	return acked, unknown, replayed, attempts
}

func (h *clusterHistory) answerWords() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	kinds := make([]string, 0, len(h.answers))
	for k := range h.answers {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s: %d", k, h.answers[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// ackedBetween counts the ops acknowledged in [from, to).
func (h *clusterHistory) ackedBetween(from, to time.Time) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, op := range h.ops {
		if op.status == statusAcked && !op.ackedAt.Before(from) && op.ackedAt.Before(to) {
			n++
		}
	}
	return n
}

// clusterLoad runs producers against a procCluster through the Go client,
// sending each request to the next node in round-robin order, so that
// followers redirect to the leader (the client follows the 307).
type clusterLoad struct {
	t       *testing.T
	h       *clusterHistory
	httpc   *http.Client
	timeout time.Duration // of one request
	token   string
	targets atomic.Pointer[[]*client.Client]
	rr      atomic.Uint64
	stop    chan struct{} // closed: no new appends
	giveUp  chan struct{} // closed: no more retries
	wg      sync.WaitGroup
	stopped bool
}

// startLoad starts producers appending to every node of nodes until finish.
// Each append is 1 to 4 records of 50 to 400 bytes to one of 4 streams.
func startLoad(t *testing.T, producers int, seed uint64, nodes []*clusterNode) *clusterLoad {
	t.Helper()
	l := &clusterLoad{
		t: t, h: &clusterHistory{}, timeout: 3 * time.Second, token: nodes[0].token,
		httpc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}},
		stop:  make(chan struct{}), giveUp: make(chan struct{}),
	}
	l.setTargets(nodes)
	for w := range producers {
		rng := rand.New(rand.NewPCG(seed, uint64(w+1)))
		l.wg.Go(func() { l.produce(w, rng) })
	}
	t.Cleanup(func() { l.finish(0) })
	return l
}

// setTargets replaces the nodes the producers send to.
func (l *clusterLoad) setTargets(nodes []*clusterNode) {
	l.t.Helper()
	cs := make([]*client.Client, 0, len(nodes))
	for _, n := range nodes {
		c, err := client.New(n.baseURL(), &client.Options{HTTPClient: l.httpc, MaxRetries: new(0), Token: l.token})
		require.NoError(l.t, err)
		cs = append(cs, c)
	}
	l.targets.Store(&cs)
}

func (l *clusterLoad) next() *client.Client {
	cs := *l.targets.Load()
	return cs[l.rr.Add(1)%uint64(len(cs))]
}

func (l *clusterLoad) produce(w int, rng *rand.Rand) {
	for n := 0; ; n++ {
		select {
		case <-l.stop:
			return
		default:
		}
		op := &clusterOp{appendOp: appendOp{stream: fmt.Sprintf("s%d", rng.IntN(4)), status: statusUnknown}}
		op.key = fmt.Sprintf("w%d-o%d-%x", w, n, rng.Uint64())
		for i := range 1 + rng.IntN(4) {
			p := makePayload(fmt.Sprintf("%s-r%d", op.key, i), 50+rng.IntN(351), rng)
			op.payloads = append(op.payloads, p)
			op.recs = append(op.recs, client.Record{Value: []byte(p)})
		}
		l.h.add(op)
		l.drive(op, rng)
	}
}

// drive sends op until it is acknowledged, refused, or the load gives up.
func (l *clusterLoad) drive(op *clusterOp, rng *rand.Rand) {
	opts := &client.AppendOptions{IdempotencyKey: op.key}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
		res, err := l.next().AppendBatch(ctx, op.stream, op.recs, opts)
		cancel()
		l.h.mu.Lock()
		op.attempts++
		l.h.mu.Unlock()
		if err == nil {
			l.h.ack(op, res)
			return
		}
		if !l.h.failed(op, err) {
			return
		}
		backoff := time.Duration(10+rng.IntN(20)) * time.Millisecond << min(attempt, 4)
		select {
		case <-l.giveUp:
			return
		case <-time.After(backoff):
		}
	}
}

// finish stops the producers: no new appends, and the ones in flight are
// retried for up to grace before the load gives up on them (their outcome
// stays unknown).
func (l *clusterLoad) finish(grace time.Duration) {
	if l.stopped {
		return
	}
	l.stopped = true
	close(l.stop)
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		close(l.giveUp)
		<-done
	}
	l.httpc.CloseIdleConnections()
}

// checkCluster reads every member back with consistency=any (after the
// cluster converged), checks each against the history with the queue
// checker, and requires all members to hold identical records.
func checkCluster(t *testing.T, c *procCluster, l *clusterLoad) {
	t.Helper()
	index := c.waitConverged(time.Minute)
	ops := l.h.appendOps()
	type image struct {
		id      uint64
		streams map[string][]readRecord
		global  []readRecord
	}
	var images []image
	var res checkResult
	for _, n := range c.memberNodes() {
		streams, global, err := n.readBack()
		require.NoError(t, err, "read back node %d", n.id)
		res = checkHistory(ops, streams, global)
		for _, p := range res.problems {
			t.Errorf("node %d: %s", n.id, p)
		}
		images = append(images, image{n.id, streams, global})
	}
	ref := images[0]
	for _, im := range images[1:] {
		if d := firstDifference(ref.global, im.global); d != "" {
			t.Errorf("node %d and node %d differ: %s", ref.id, im.id, d)
		}
		for name, recs := range ref.streams {
			if d := firstDifference(recs, im.streams[name]); d != "" {
				t.Errorf("stream %s: node %d and node %d differ: %s", name, ref.id, im.id, d)
			}
		}
		if len(im.streams) != len(ref.streams) {
			t.Errorf("node %d has %d streams, node %d has %d", im.id, len(im.streams), ref.id, len(ref.streams))
		}
	}
	l.h.mu.Lock()
	for _, u := range l.h.unexpected {
		t.Errorf("unexpected answer: %s", u)
	}
	l.h.mu.Unlock()
	acked, _, replayed, attempts := l.h.counts()
	t.Logf("history: %d appends, %d acknowledged (%d of them answered as an idempotent replay), %d failed, unknown: %d stored once, %d absent; %d requests; failed attempts: %s",
		len(ops), acked, replayed, res.failed, res.unknownPresent, res.unknownAbsent, attempts, l.h.answerWords())
	t.Logf("checked %d nodes at applied index %d: %d records each, identical on every node; 0 lost, 0 duplicated, 0 gaps, 0 corrupt",
		len(images), index, res.records)
}

// firstDifference describes the first difference between two record lists
// ("" when they are equal).
func firstDifference(a, b []readRecord) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("record %d: %s/%d seq %d %.40q against %s/%d seq %d %.40q",
				i, a[i].stream, a[i].offset, a[i].seq, a[i].payload, b[i].stream, b[i].offset, b[i].seq, b[i].payload)
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("%d records against %d", len(a), len(b))
	}
	return ""
}
