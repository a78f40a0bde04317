package crashtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Bounds of one data directory in the kill test: it is reused across
// cycles (the log grows across restarts) until either bound is passed, then
// verified one last time and replaced.
const (
	maxDataDirBytes = 24 << 20
	maxCyclesPerDir = 25
)

// httpOp is an append made over HTTP, with what is needed to retry it.
type httpOp struct {
	appendOp
	contentType string
	body        []byte
	idemKey     string
	// answer is the last HTTP status (0: no answer).
	answer int
}

// httpHistory is every append made against one data directory.
type httpHistory struct {
	mu  sync.Mutex
	ops []*httpOp
	// unexpected lists answers the contract does not allow (500s, ...).
	unexpected []string
}

func (h *httpHistory) add(op *httpOp) {
	h.mu.Lock()
	defer h.mu.Unlock()
	op.id = len(h.ops)
	h.ops = append(h.ops, op)
}

func (h *httpHistory) appendOps() []appendOp {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]appendOp, len(h.ops))
	for i, op := range h.ops {
		out[i] = op.appendOp
	}
	return out
}

// settle classifies an answer: 201 acknowledged, a definite 4xx failed,
// anything else (no answer, 503) unknown.
func (h *httpHistory) settle(op *httpOp, status int, body []byte, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	op.answer = status
	switch {
	case err != nil:
		op.status = statusUnknown
	case status == http.StatusCreated:
		var r appendReply
		if jerr := json.Unmarshal(body, &r); jerr != nil || r.Count != len(op.payloads) || r.Stream != op.stream {
			h.unexpected = append(h.unexpected, fmt.Sprintf("op %d: 201 with body %q", op.id, body))
			op.status = statusUnknown
			return
		}
		op.status, op.first, op.firstSeq, op.checkSeq = statusAcked, r.FirstOffset, r.FirstSeq, true
	case status == http.StatusConflict:
		op.status = statusFailed
	case status == http.StatusServiceUnavailable:
		op.status = statusUnknown
	default:
		op.status = statusUnknown
		h.unexpected = append(h.unexpected, fmt.Sprintf("op %d: status %d body %q", op.id, status, body))
	}
}

// payloadSize: mostly small records (so a cycle stays fast), some medium,
// a few up to 1 MiB.
func payloadSize(rng *rand.Rand) int {
	switch r := rng.IntN(100); {
	case r < 90:
		return 100 + rng.IntN(925)
	case r < 98:
		return 1<<10 + rng.IntN(63<<10)
	default:
		return 64<<10 + rng.IntN(960<<10+1)
	}
}

// makePayload is a unique payload: its id, then filler up to size bytes.
func makePayload(id string, size int, rng *rand.Rand) string {
	var b strings.Builder
	b.WriteString(id)
	b.WriteByte('|')
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	for b.Len() < size {
		b.WriteByte(alphabet[rng.IntN(len(alphabet))])
	}
	return b.String()
}

// loadWorker appends until stop is closed or the server is gone. kind
// picks the shape of its appends:
//
//	0 raw body, 1 JSON {"records":[...]}, 2 NDJSON, 3 Idempotency-Key,
//	4 Expected-Last-Offset on stream "elo".
type loadWorker struct {
	srv    *server
	h      *httpHistory
	rng    *rand.Rand
	prefix string
	kind   int
	// lastOffset is what an Expected-Last-Offset worker believes the last
	// offset of "elo" is (-1: empty).
	lastOffset int64
}

func (w *loadWorker) run(stop <-chan struct{}) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		op := w.next(n)
		w.h.add(op)
		hdr := map[string]string{}
		if op.idemKey != "" {
			hdr["Idempotency-Key"] = op.idemKey
		}
		if w.kind == 4 {
			hdr["Expected-Last-Offset"] = strconv.FormatInt(w.lastOffset, 10)
		}
		status, body, _, err := w.srv.post(op.stream, op.contentType, op.body, hdr)
		w.h.settle(op, status, body, err)
		if w.kind == 4 && err == nil {
			switch status {
			case http.StatusCreated:
				w.lastOffset = int64(op.first) + int64(len(op.payloads)) - 1
			case http.StatusConflict:
				var e struct {
					Error struct {
						Current *int64 `json:"current_last_offset"`
					} `json:"error"`
				}
				if json.Unmarshal(body, &e) == nil && e.Error.Current != nil {
					w.lastOffset = *e.Error.Current
				}
			}
		}
		if err != nil {
			return // the server is gone
		}
	}
}

// next builds the n-th append of the worker.
func (w *loadWorker) next(n int) *httpOp {
	rng := w.rng
	op := &httpOp{appendOp: appendOp{stream: fmt.Sprintf("s%d", rng.IntN(3)), status: statusUnknown}}
	id := func(i int) string { return fmt.Sprintf("%s-o%d-r%d", w.prefix, n, i) }
	switch w.kind {
	case 0, 3:
		p := makePayload(id(0), payloadSize(rng), rng)
		op.payloads = []string{p}
		op.contentType, op.body = "application/octet-stream", []byte(p)
		if w.kind == 3 {
			op.idemKey = fmt.Sprintf("key-%s-o%d", w.prefix, n)
		}
	case 1, 4:
		if w.kind == 4 {
			op.stream = "elo"
		}
		var body struct {
			Records []map[string]string `json:"records"`
		}
		for i := range 1 + rng.IntN(5) {
			p := makePayload(id(i), min(payloadSize(rng), 256<<10), rng)
			op.payloads = append(op.payloads, p)
			body.Records = append(body.Records, map[string]string{"value_base64": base64.StdEncoding.EncodeToString([]byte(p))})
		}
		op.contentType = "application/json"
		op.body, _ = json.Marshal(body)
	case 2:
		var b strings.Builder
		for i := range 1 + rng.IntN(5) {
			p := makePayload(id(i), 100+rng.IntN(900), rng)
			op.payloads = append(op.payloads, p)
			line, _ := json.Marshal(map[string]string{"value_base64": base64.StdEncoding.EncodeToString([]byte(p))})
			b.Write(line)
			b.WriteByte('\n')
		}
		op.contentType, op.body = "application/x-ndjson", []byte(b.String())
	}
	return op
}

// initialLastOffset asks the server for the last offset of "elo".
func initialLastOffset(t *testing.T, srv *server) int64 {
	t.Helper()
	resp, err := srv.client.Head(srv.url("/v1/streams/elo"))
	require.NoError(t, err)
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return -1
	}
	require.Equal(t, http.StatusOK, resp.StatusCode)
	next, err := strconv.ParseInt(resp.Header.Get("Stream-Next-Offset"), 10, 64)
	require.NoError(t, err)
	return next - 1
}

// retryUnknown resends every unknown append that carried an Idempotency-Key,
// with the same key and body. A 201 resolves it: its records must then be
// stored exactly once, at the offsets of the answer.
func retryUnknown(srv *server, h *httpHistory) (retried, replayed int) {
	h.mu.Lock()
	var todo []*httpOp
	for _, op := range h.ops {
		if op.status == statusUnknown && op.idemKey != "" {
			todo = append(todo, op)
		}
	}
	h.mu.Unlock()
	for _, op := range todo {
		status, body, hdr, err := srv.post(op.stream, op.contentType, op.body, map[string]string{"Idempotency-Key": op.idemKey})
		h.settle(op, status, body, err)
		retried++
		if err == nil && hdr.Get("Idempotent-Replayed") == "true" {
			replayed++
		}
	}
	return retried, replayed
}

// TestKill9 is the kill -9 test of the real binary over HTTP (see the
// package doc). Each cycle: start the server (timed from exec to /readyz
// 200, and reported), retry the unknown idempotent appends of the last
// cycle, read everything back and check the whole history of the data
// directory, stop the server with SIGKILL while idle and run
// `badbatch verify` on the recovered directory, start it again (timed), run
// the concurrent load and SIGKILL the server 1 to 50 ms into it.
func TestKill9(t *testing.T) {
	t.Parallel()
	cycles := killCycles(t)
	seed := baseSeed(t)
	t.Logf("kill -9: %d cycles (min(BADBATCH_CRASH_CYCLES, 100), all of it above 200, 10 under -short); base seed %d", cycles, seed)
	root := keptDir(t, "badbatch-kill-")

	var (
		restarts                          []time.Duration
		killAfter                         []time.Duration
		acked, failed, unkPresent, unkAbs int
		retried, replayed, verifies, dirs int
		records                           int
		readTime, verifyTime              time.Duration
	)
	var srv *server
	var h *httpHistory
	cyclesInDir := 0
	newDir := func() {
		dirs++
		dir := filepath.Join(root, fmt.Sprintf("data-%d", dirs))
		srv = newServer(t, dir, filepath.Join(root, fmt.Sprintf("serve-%d.log", dirs)))
		h = &httpHistory{}
		cyclesInDir = 0
	}
	newDir()
	// timedStart starts the server and records the restart time, which is
	// reported, not asserted: timings live in benchmarks (the recovery
	// benchmarks in storage), and this machine's cores are shared.
	timedStart := func() {
		restarts = append(restarts, srv.start())
	}
	// checkDir restarts the server after a crash, resolves and checks the
	// history, and verifies the directory offline.
	checkDir := func(cycle int, cs uint64) {
		timedStart()
		r, rp := retryUnknown(srv, h)
		retried += r
		replayed += rp
		readStart := time.Now()
		streams, global, err := srv.readBack()
		require.NoError(t, err, "cycle %d: read back", cycle)
		res := checkHistory(h.appendOps(), streams, global)
		readTime += time.Since(readStart)
		for _, p := range res.problems {
			t.Errorf("cycle %d (seed %d): %s", cycle, cs, p)
		}
		for _, u := range h.unexpected {
			t.Errorf("cycle %d (seed %d): unexpected answer: %s", cycle, cs, u)
		}
		if t.Failed() {
			t.Fatalf("cycle %d failed: data dir %s kept (log %s); reproduce with BADBATCH_CRASH_SEED=%d BADBATCH_CRASH_CYCLES=1 go test -run TestKill9 ./crashtest/",
				cycle, srv.dataDir, srv.logPath, cs)
		}
		// Stop the recovered server the hard way too, then verify offline.
		srv.kill()
		verifyStart := time.Now()
		out, err := verifyDataDir(t, srv.dataDir)
		verifyTime += time.Since(verifyStart)
		verifies++
		require.NoError(t, err, "cycle %d: badbatch verify on %s:\n%s", cycle, srv.dataDir, out)
		require.Contains(t, out, "is consistent", "cycle %d: badbatch verify:\n%s", cycle, out)
		require.NotContains(t, out, "PROBLEM", "cycle %d: badbatch verify:\n%s", cycle, out)
		acked, failed, unkPresent, unkAbs, records = res.acked, res.failed, res.unknownPresent, res.unknownAbsent, res.records
	}
	var totals [4]int
	for cycle := range cycles {
		cs := cycleSeed(seed, cycle)
		rng := rand.New(rand.NewPCG(cs, 0))
		if cycle > 0 {
			checkDir(cycle-1, cycleSeed(seed, cycle-1))
			if cyclesInDir >= maxCyclesPerDir || dirSize(t, srv.dataDir) > maxDataDirBytes {
				totals[0] += acked
				totals[1] += failed
				totals[2] += unkPresent
				totals[3] += unkAbs
				newDir()
			}
		}
		cyclesInDir++
		if cyclesInDir > 1 {
			timedStart() // after the idle kill -9 that preceded verify
		} else {
			srv.start() // a new, empty data dir
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		elo := initialLastOffset(t, srv)
		for w := range 8 {
			lw := &loadWorker{
				srv: srv, h: h, rng: rand.New(rand.NewPCG(cs, uint64(w+1))),
				prefix: fmt.Sprintf("d%d-c%d-w%d", dirs, cycle, w), kind: []int{0, 0, 1, 2, 3, 3, 4, 4}[w], lastOffset: elo,
			}
			wg.Go(func() { lw.run(stop) })
		}
		after := time.Duration(1+rng.IntN(50)) * time.Millisecond
		time.Sleep(after)
		srv.kill()
		killAfter = append(killAfter, after)
		close(stop)
		wg.Wait()
	}
	checkDir(cycles-1, cycleSeed(seed, cycles-1))
	totals[0] += acked
	totals[1] += failed
	totals[2] += unkPresent
	totals[3] += unkAbs
	t.Logf("%d kill -9 cycles over %d data dirs (last one %d records); %d appends acknowledged, %d failed definitely (409), unknown: %d stored once, %d absent; %d unknown idempotent appends retried (%d replayed the original); 0 lost, 0 duplicated, 0 gaps, 0 corrupt",
		cycles, dirs, records, totals[0], totals[1], totals[2], totals[3], retried, replayed)
	t.Logf("badbatch verify: %d runs, all consistent, %v in all; read back and check: %v in all", verifies, verifyTime.Round(time.Millisecond), readTime.Round(time.Millisecond))
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("restart time (exec to /readyz 200; reported, not asserted): %s; load average %s", durationStats(restarts), strings.TrimSpace(string(load)))
	t.Logf("kill after: %s", durationStats(killAfter))
}
