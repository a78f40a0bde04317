package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/badbatch/badbatch/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The linearizability tests: clients append to and read one stream through
// any node of an in-process cluster, while a nemesis partitions the
// simulated network, drops and delays messages, and crashes and restarts
// nodes. Every operation is recorded with its call and return times, and
// porcupine checks the history against streamModel
// (linearizability_model_test.go).
//
// Scale: BADBATCH_LINZ_ROUNDS histories per configuration (default 1; 1
// under -short). Every history logs its seed; BADBATCH_LINZ_SEED=S replays
// that seed's nemesis schedule, network faults, crash images and client
// choices (the interleaving itself is up to the scheduler). A history that
// is not linearizable is written as porcupine's HTML visualization to a kept
// temporary directory, whose path the failure names.

// linConfig is one cluster shape under test.
type linConfig struct {
	name    string
	nodes   int
	clients int
	// run is how long the clients and the nemesis work.
	run time.Duration
	// snapshotEntries, if set, compacts raft's log often, so that restarted
	// nodes catch up by snapshot.
	snapshotEntries uint64
}

var linConfigs = []linConfig{
	{name: "nodes=3", nodes: 3, clients: 4, run: 2500 * time.Millisecond},
	{name: "nodes=3/snapshots", nodes: 3, clients: 4, run: 2500 * time.Millisecond, snapshotEntries: 16},
	{name: "nodes=5", nodes: 5, clients: 5, run: 2500 * time.Millisecond},
}

const (
	// An operation's timeout is drawn from [linOpTimeoutMin,
	// linOpTimeoutMax); an append still waiting then has an unknown
	// outcome. Short ones end inside faults, long ones outlast elections.
	linOpTimeoutMin = 100 * time.Millisecond
	linOpTimeoutMax = 600 * time.Millisecond
	// linThink is the most a client waits between two operations (a few
	// hundred operations per history keep porcupine's search short).
	linThink = 30 * time.Millisecond
	// linCheckTimeout bounds porcupine's search (it takes milliseconds on
	// these histories).
	linCheckTimeout = 2 * time.Minute
	linStream       = "linz"
)

// TestLinearizability checks histories of appends and linearizable reads of
// one stream, recorded under network partitions, message loss and delay,
// and crash-restarts, with porcupine.
func TestLinearizability(t *testing.T) {
	base, fixed := linSeed(t)
	rounds := envCount("BADBATCH_LINZ_ROUNDS", 1)
	if testing.Short() || fixed {
		rounds = 1
	}
	t.Logf("%d round(s) per configuration (BADBATCH_LINZ_ROUNDS=%q)", rounds, os.Getenv("BADBATCH_LINZ_ROUNDS"))
	for i, cfg := range linConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			for r := range rounds {
				seed := base
				if !fixed {
					seed = base + uint64(r*len(linConfigs)+i)
				}
				runLinHistory(t, cfg, seed)
			}
		})
	}
}

// linSeed is BADBATCH_LINZ_SEED (fixed), or a fresh base seed.
func linSeed(t *testing.T) (seed uint64, fixed bool) {
	if v := os.Getenv("BADBATCH_LINZ_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "BADBATCH_LINZ_SEED=%q", v)
		return s, true
	}
	return rand.Uint64() >> 1, false
}

// runLinHistory records one history on a fresh cluster and checks it.
func runLinHistory(t *testing.T, cfg linConfig, seed uint64) {
	t.Logf("seed %d (replay: BADBATCH_LINZ_SEED=%d go test -run 'TestLinearizability/%s$' ./storage/cluster/)", seed, seed, cfg.name)
	c := newTestCluster(t, cfg.nodes, seed)
	if cfg.snapshotEntries > 0 {
		c.tune = func(o *Options) { o.SnapshotEntries = cfg.snapshotEntries }
	}
	c.openAll()
	c.leader(10 * time.Second)

	h := newLinHistory()
	deadline := time.Now().Add(cfg.run)
	var wg sync.WaitGroup
	for i := range cfg.clients {
		cl := &linClient{
			t: t, c: c, h: h, name: i, id: h.newClient(), last: -1,
			rng: rand.New(rand.NewPCG(seed, uint64(i)+1)),
		}
		wg.Go(func() { cl.run(deadline) })
	}
	nem := &linNemesis{t: t, c: c, h: h, rng: rand.New(rand.NewPCG(seed, 0x4e454d)), down: map[uint64]bool{}}
	wg.Go(func() { nem.run(deadline) })
	wg.Wait()
	nem.healAll()

	// The final read: every client has returned, so every operation that
	// ended is linearized before it (see pruneUnobserved).
	ld := c.leader(15 * time.Second)
	final := &linClient{t: t, c: c, h: h, id: h.newClient()}
	require.True(t, final.readOn(ld, 10*time.Second), "the final linearizable read on the leader failed")
	var snapshots int64 // installed by the nodes as they run now
	for id := range c.peers {
		if n := c.node(id); n != nil {
			require.NoError(t, n.Err(), "node %d stopped", id)
			snapshots += n.snapshotsInstalled.Load()
		}
	}
	c.closeAll()

	ops := h.operations()
	checked := pruneUnobserved(ops)
	st := h.stats()
	t.Logf("history: %d operations (%d appends ok, %d mismatched, %d failed, %d unknown of which %d seen by a read; %d reads; %d reads failed); nemesis: %s; %d snapshots installed",
		len(ops), st.ok, st.mismatch, st.failed, st.unknown, st.unknown-(len(ops)-len(checked)), st.reads, st.readsFailed, nem.summary(), snapshots)
	checkLinearizable(t, checked, h.annotations())
}

// checkLinearizable checks ops with porcupine; on failure it writes the
// visualization to a kept directory and names it.
func checkLinearizable(t *testing.T, ops []porcupine.Operation, notes []porcupine.Annotation) {
	t.Helper()
	start := time.Now()
	res := porcupine.CheckOperationsTimeout(streamModel, ops, linCheckTimeout)
	t.Logf("porcupine: %s in %v over %d operations", res, time.Since(start).Round(time.Millisecond), len(ops))
	if res == porcupine.Ok {
		return
	}
	res, info := porcupine.CheckOperationsVerbose(streamModel, ops, linCheckTimeout)
	info.AddAnnotations(notes)
	dir, err := os.MkdirTemp("", "badbatch-linz-")
	require.NoError(t, err)
	path := filepath.Join(dir, "history.html")
	require.NoError(t, porcupine.VisualizePath(streamModel, info, path))
	// The same history as text, in call order, for a reader without a browser.
	sorted := slices.Clone(ops)
	slices.SortFunc(sorted, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	var text strings.Builder
	for _, op := range sorted {
		ret := "open"
		if op.Return != forever {
			ret = time.Duration(op.Return).String()
		}
		fmt.Fprintf(&text, "%10v %10s client %3d %s -> %s  (%v)\n", time.Duration(op.Call), ret, op.ClientId,
			streamModel.DescribeOperation(op.Input, op.Output), "", op.Metadata)
	}
	for _, a := range notes {
		fmt.Fprintf(&text, "note %v-%v %s\n", time.Duration(a.Start), time.Duration(a.End), a.Description)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "history.txt"), []byte(text.String()), 0o644))
	t.Fatalf("porcupine: the history is %s (not linearizable, or not decided in %v); visualization kept at %s", res, linCheckTimeout, path)
}

// pruneUnobserved drops the appends of unknown outcome whose value no read
// returned. This is exact, not an approximation, because the history ends
// with a read called after every other operation returned: such an append
// either never took effect, or took effect after that final read (else the
// final read would hold it), so it can be linearized after every operation
// of known outcome, where it changes nothing they observed. Left in, each
// would be a candidate at every step of porcupine's search.
func pruneUnobserved(ops []porcupine.Operation) []porcupine.Operation {
	seen := map[string]bool{}
	for _, op := range ops {
		if in, out := op.Input.(linInput), op.Output.(linOutput); in.Op == linRead {
			for _, v := range out.values {
				seen[v] = true
			}
		}
	}
	out := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		in, o := op.Input.(linInput), op.Output.(linOutput)
		if in.Op == linAppend && o.Outcome == linUnknown && !seen[in.Value] {
			continue
		}
		out = append(out, op)
	}
	return out
}

// linHistory records operations. Safe for concurrent use.
type linHistory struct {
	start time.Time
	mu    struct {
		sync.Mutex
		ops     []porcupine.Operation
		notes   []porcupine.Annotation
		clients int
		st      linStats
	}
}

type linStats struct {
	ok, mismatch, failed, unknown, reads, readsFailed int
}

func newLinHistory() *linHistory { return &linHistory{start: time.Now()} }

// now is the history's clock (monotonic nanoseconds).
func (h *linHistory) now() int64 { return int64(time.Since(h.start)) }

// newClient returns a fresh porcupine client id. A client takes a new one
// after an operation of unknown outcome, which stays open.
func (h *linHistory) newClient() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.clients++
	return h.mu.clients - 1
}

func (h *linHistory) add(op porcupine.Operation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.ops = append(h.mu.ops, op)
	in, out := op.Input.(linInput), op.Output.(linOutput)
	switch {
	case in.Op == linRead:
		h.mu.st.reads++
	case out.Outcome == linOK:
		h.mu.st.ok++
	case out.Outcome == linMismatch:
		h.mu.st.mismatch++
	case out.Outcome == linFailed:
		h.mu.st.failed++
	default:
		h.mu.st.unknown++
	}
}

func (h *linHistory) readFailed() {
	h.mu.Lock()
	h.mu.st.readsFailed++
	h.mu.Unlock()
}

func (h *linHistory) note(start, end int64, desc string) {
	h.mu.Lock()
	h.mu.notes = append(h.mu.notes, porcupine.Annotation{Tag: "nemesis", Start: start, End: end, Description: desc})
	h.mu.Unlock()
}

func (h *linHistory) operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.mu.ops)
}

func (h *linHistory) annotations() []porcupine.Annotation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.mu.notes)
}

func (h *linHistory) stats() linStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.st
}

// linClient issues operations one at a time through the nodes it picks.
// Owned by one goroutine.
type linClient struct {
	t    *testing.T
	c    *testCluster
	h    *linHistory
	rng  *rand.Rand
	name int // for values: c<name>-<seq>
	id   int // porcupine client id
	seq  int
	// last is the last offset of the stream this client last learned of
	// (-1: empty), used as the expected offset of conditional appends.
	last int64
}

func (cl *linClient) run(deadline time.Time) {
	for time.Now().Before(deadline) {
		if cl.rng.IntN(100) < 40 {
			if n := cl.pick(); n != nil {
				cl.readOn(n, cl.opTimeout())
			}
		} else {
			cl.append()
		}
		time.Sleep(time.Duration(cl.rng.Int64N(int64(linThink))))
	}
}

func (cl *linClient) opTimeout() time.Duration {
	return linOpTimeoutMin + time.Duration(cl.rng.Int64N(int64(linOpTimeoutMax-linOpTimeoutMin)))
}

// pick returns a random running node (nil if none is up).
func (cl *linClient) pick() *Node {
	ids := make([]uint64, 0, len(cl.c.peers))
	for id := range cl.c.peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	cl.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for _, id := range ids {
		if n := cl.c.node(id); n != nil {
			return n
		}
	}
	return nil
}

// append appends one unique value, half the time conditionally on the last
// offset this client knows of, through a random node, then the leader it
// names, until the operation's timeout.
func (cl *linClient) append() {
	cl.seq++
	in := linInput{Op: linAppend, Value: fmt.Sprintf("c%d-%d", cl.name, cl.seq)}
	if cl.rng.IntN(2) == 0 {
		in.HasExpected, in.Expected = true, cl.last
	}
	ctx, cancel := context.WithTimeout(context.Background(), cl.opTimeout())
	defer cancel()
	call := cl.h.now()
	out, via := cl.tryAppend(ctx, in)
	ret := cl.h.now()
	op := porcupine.Operation{ClientId: cl.id, Input: in, Call: call, Output: out, Return: ret, Metadata: via}
	switch out.Outcome {
	case linOK:
		cl.last = int64(out.Offset)
	case linMismatch:
		cl.last = out.Current
	case linUnknown:
		op.Return = forever
		cl.id = cl.h.newClient()
	}
	cl.h.add(op)
}

// tryAppend makes the attempts of one append. Only an attempt that ends
// with storage.ErrNotLeader or storage.ErrNotCommitted is retried: those
// stored nothing. Any other error leaves the outcome unknown.
func (cl *linClient) tryAppend(ctx context.Context, in linInput) (linOutput, string) {
	var opts storage.AppendOptions
	if in.HasExpected {
		opts.ExpectedLastOffset = &in.Expected
	}
	var via []string
	n := cl.pick()
	for {
		if n != nil {
			via = append(via, fmt.Sprint(n.ID()))
			res, err := n.Store().AppendWith(ctx, linStream, opts, rec(in.Value))
			var mm *storage.OffsetMismatchError
			switch {
			case err == nil:
				if res.Count != 1 || res.Replayed {
					cl.t.Errorf("append %s: unexpected result %+v", in.Value, res)
				}
				return linOutput{Outcome: linOK, Offset: res.FirstOffset}, "via " + fmt.Sprint(via)
			case errors.As(err, &mm):
				return linOutput{Outcome: linMismatch, Current: mm.Current}, "via " + fmt.Sprint(via)
			case errors.Is(err, storage.ErrNotLeader), errors.Is(err, storage.ErrNotCommitted):
			default:
				return linOutput{Outcome: linUnknown}, fmt.Sprintf("via %v: %v", via, err)
			}
		}
		select {
		case <-ctx.Done():
			return linOutput{Outcome: linFailed}, fmt.Sprintf("via %v: no attempt stored anything", via)
		case <-time.After(5 * time.Millisecond):
		}
		next := cl.pick()
		if n != nil {
			if lead, _ := n.Leader(); lead != 0 && lead != n.ID() {
				if ln := cl.c.node(lead); ln != nil {
					next = ln
				}
			}
		}
		n = next
	}
}

// readOn reads the whole stream linearizably on n (Node.ReadIndex, then
// Store.Read) and records it; a read that fails is not recorded (it
// changed nothing). It reports whether the read succeeded.
func (cl *linClient) readOn(n *Node, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	call := cl.h.now()
	if err := n.ReadIndex(ctx); err != nil {
		cl.h.readFailed()
		return false
	}
	recs, err := n.Store().Read(ctx, linStream, 0, storage.MaxReadLimit)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		cl.h.readFailed()
		return false
	}
	ret := cl.h.now()
	values := make([]string, len(recs))
	for i, r := range recs {
		if r.Offset != uint64(i) {
			cl.t.Errorf("node %d: record %d of the read has offset %d", n.ID(), i, r.Offset)
		}
		values[i] = string(r.Value)
	}
	if len(recs) == storage.MaxReadLimit {
		cl.t.Errorf("the stream outgrew one read")
	}
	cl.last = int64(len(values)) - 1
	cl.h.add(porcupine.Operation{
		ClientId: cl.id, Input: linInput{Op: linRead}, Call: call,
		Output: readOutput(values), Return: ret, Metadata: fmt.Sprintf("on node %d", n.ID()),
	})
	return true
}

// linNemesis injects one fault at a time, then heals. Owned by one
// goroutine.
type linNemesis struct {
	t    *testing.T
	c    *testCluster
	h    *linHistory
	rng  *rand.Rand
	down map[uint64]bool // crashed, not yet restarted
	// counts of each fault injected.
	counts map[string]int
}

func (nm *linNemesis) ids() []uint64 {
	ids := make([]uint64, 0, len(nm.c.peers))
	for id := range nm.c.peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// leaderID is the leader some running node knows of (0: none).
func (nm *linNemesis) leaderID() uint64 {
	for _, id := range nm.ids() {
		if n := nm.c.node(id); n != nil && n.IsLeader() {
			return id
		}
	}
	return 0
}

func (nm *linNemesis) run(deadline time.Time) {
	nm.counts = map[string]int{}
	sleepUntil := func(d time.Duration) {
		if left := time.Until(deadline); d > left {
			d = max(left, 0)
		}
		time.Sleep(d)
	}
	sleepUntil(time.Duration(50+nm.rng.IntN(100)) * time.Millisecond)
	for time.Now().Before(deadline) {
		start := nm.h.now()
		desc := nm.inject()
		// A second fault on top of the first, now and then.
		if nm.rng.IntN(4) == 0 {
			sleepUntil(time.Duration(nm.rng.IntN(100)) * time.Millisecond)
			desc += ", then " + nm.inject()
		}
		sleepUntil(time.Duration(20+nm.rng.IntN(600)) * time.Millisecond)
		nm.healAll()
		nm.h.note(start, nm.h.now(), desc)
		sleepUntil(time.Duration(50+nm.rng.IntN(150)) * time.Millisecond)
	}
}

// inject starts one fault and describes it.
func (nm *linNemesis) inject() string {
	ids := nm.ids()
	others := func(of ...uint64) []uint64 {
		var out []uint64
		for _, id := range ids {
			if !slices.Contains(of, id) {
				out = append(out, id)
			}
		}
		return out
	}
	// victims returns k distinct nodes, the leader first if asked and known.
	victims := func(k int, leaderFirst bool) []uint64 {
		pool := slices.Clone(ids)
		nm.rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
		if lead := nm.leaderID(); leaderFirst && lead != 0 {
			pool = append([]uint64{lead}, others(lead)...)
		}
		return pool[:k]
	}
	minority := (len(ids) - 1) / 2
	switch k := nm.rng.IntN(8); k {
	case 0, 1:
		// A minority (with the leader, or at random) cut off.
		cut := victims(1+nm.rng.IntN(minority), k == 0)
		nm.c.net.partition(cut, others(cut...))
		nm.counts["partition"]++
		return fmt.Sprintf("partition %v | %v", cut, others(cut...))
	case 2:
		// A node (the leader, if known) hears no one, but is heard.
		v := victims(1, true)[0]
		nm.c.net.mu.Lock()
		for _, id := range others(v) {
			nm.c.net.setCutLocked(id, v, true)
		}
		nm.c.net.mu.Unlock()
		nm.counts["one-way"]++
		return fmt.Sprintf("node %d hears no one", v)
	case 3:
		drop := 0.05 + 0.3*nm.rng.Float64()
		delay := time.Duration(1+nm.rng.IntN(5)) * time.Millisecond
		nm.c.net.setFaults(drop, delay)
		nm.counts["drop-delay"]++
		return fmt.Sprintf("drop %.0f%%, delay up to %v", 100*drop, delay)
	default:
		// Power loss: on one node (the leader, or at random), or now and
		// then on a majority at once. Every link of every victim is cut
		// first, those between victims included, so that nothing one does
		// after its image is taken (it runs on until stopped) reaches
		// anyone (decision 0012, 9). Cutting only the victims from the
		// others once let a victim fsync and acknowledge an entry to the
		// leader among them after its image was taken: the leader
		// acknowledged an append that the images of a majority lacked.
		n := 1
		if k == 7 {
			n = minority + 1
		}
		down := victims(n, k == 4)
		nm.c.net.partition(down, ids)
		for _, id := range down {
			if !nm.down[id] {
				nm.c.crash(id, nm.rng)
				nm.down[id] = true
			}
		}
		nm.counts["crash"]++
		return fmt.Sprintf("crash %v", down)
	}
}

// healAll heals the network, ends drops and delays and restarts the nodes
// that are down.
func (nm *linNemesis) healAll() {
	nm.c.net.heal()
	nm.c.net.setFaults(0, 0)
	for _, id := range nm.ids() {
		if !nm.down[id] {
			continue
		}
		n, err := Open("/data", nm.c.options(id))
		if err != nil {
			nm.t.Errorf("restart node %d: %v", id, err)
			continue
		}
		nm.c.mu.Lock()
		nm.c.nodes[id] = n
		nm.c.mu.Unlock()
		delete(nm.down, id)
	}
}

func (nm *linNemesis) summary() string {
	keys := make([]string, 0, len(nm.counts))
	for k := range nm.counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", nm.counts[k], k)
	}
	return fmt.Sprint(parts)
}

// TestLinearizabilityRejectsStaleRead is the negative control on a real
// cluster: a read of a partitioned old leader's own state (what
// consistency=any serves), taken after the majority acknowledged an append,
// makes a history porcupine must reject; the linearizable read path on the
// same node gives no answer, and on the majority it gives a history
// porcupine accepts.
func TestLinearizabilityRejectsStaleRead(t *testing.T) {
	c := newTestCluster(t, 3, 11)
	c.openAll()
	old := c.leader(10 * time.Second)
	h := newLinHistory()
	cl := &linClient{t: t, c: c, h: h, id: h.newClient(), last: -1}
	ctx := context.Background()

	appendOK := func(n *Node, v string) {
		t.Helper()
		call := h.now()
		res, err := n.Store().Append(ctx, linStream, rec(v))
		require.NoError(t, err)
		h.add(porcupine.Operation{ClientId: cl.id, Input: linInput{Op: linAppend, Value: v}, Call: call,
			Output: linOutput{Outcome: linOK, Offset: res.FirstOffset}, Return: h.now()})
	}
	appendOK(old, "before")
	require.True(t, cl.readOn(old, 5*time.Second))

	var majority []uint64
	for id := range c.peers {
		if id != old.ID() {
			majority = append(majority, id)
		}
	}
	c.net.partition([]uint64{old.ID()}, majority)
	var nl *Node
	require.Eventually(t, func() bool {
		for _, id := range majority {
			if n := c.node(id); n.IsLeader() {
				nl = n
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "the majority elects a leader")
	appendOK(nl, "after")

	// consistency=any on the old leader: its own applied state.
	call := h.now()
	recs, err := old.Store().Read(ctx, linStream, 0, 100)
	require.NoError(t, err)
	values := make([]string, len(recs))
	for i, r := range recs {
		values[i] = string(r.Value)
	}
	stale := porcupine.Operation{ClientId: cl.id, Input: linInput{Op: linRead}, Call: call,
		Output: readOutput(values), Return: h.now()}
	require.Equal(t, []string{"before"}, values, "the old leader cannot have applied the majority's append")
	assert.False(t, porcupine.CheckOperations(streamModel, append(h.operations(), stale)),
		"porcupine must reject a stale read")

	// The linearizable path refuses on the old leader, and answers on the
	// majority.
	assert.False(t, cl.readOn(old, 300*time.Millisecond), "ReadIndex on a partitioned old leader must not answer")
	require.True(t, cl.readOn(c.node(majority[0]), 5*time.Second))
	assert.True(t, porcupine.CheckOperations(streamModel, h.operations()))
	c.net.heal()
}

// TestPruneUnobserved: dropping the unknown appends no read saw keeps
// porcupine's verdict, on a legal and an illegal history that end with a
// final read.
func TestPruneUnobserved(t *testing.T) {
	ap := func(client int, call, ret int64, v string, out linOutput) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: linInput{Op: linAppend, Value: v}, Output: out}
	}
	rd := func(client int, call, ret int64, vs ...string) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: linInput{Op: linRead}, Output: readOutput(vs)}
	}
	unknown := linOutput{Outcome: linUnknown}
	legal := []porcupine.Operation{
		ap(0, 0, forever, "seen", unknown),
		ap(1, 0, forever, "unseen", unknown),
		ap(2, 5, 15, "ok", linOutput{Outcome: linOK, Offset: 1}),
		rd(3, 20, 30, "seen", "ok"),
		rd(4, 40, 50, "seen", "ok"),
	}
	illegal := append(slices.Clone(legal[:4]), rd(4, 40, 50, "ok"))
	for _, tc := range []struct {
		name  string
		ops   []porcupine.Operation
		legal bool
	}{{"legal", legal, true}, {"illegal", illegal, false}} {
		t.Run(tc.name, func(t *testing.T) {
			pruned := pruneUnobserved(tc.ops)
			assert.Len(t, pruned, len(tc.ops)-1, "exactly the unseen unknown append is dropped")
			assert.Equal(t, tc.legal, porcupine.CheckOperations(streamModel, tc.ops))
			assert.Equal(t, tc.legal, porcupine.CheckOperations(streamModel, pruned))
		})
	}
}
