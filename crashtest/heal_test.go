package crashtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	faultBuildOnce sync.Once
	faultBinPath   string
	faultBuildErr  error
)

// faultBinary builds cmd/badbatch with -tags badbatch_faults once: the
// binary that reads BBTEST_JOURNAL_FAULT (cmd/badbatch/faults_on.go).
func faultBinary(t *testing.T) string {
	t.Helper()
	faultBuildOnce.Do(func() {
		faultBinPath = filepath.Join(binDir, "badbatch-faults")
		cmd := exec.Command("go", "build", "-tags", "badbatch_faults", "-o", faultBinPath, "github.com/badbatch/badbatch/cmd/badbatch")
		if out, err := cmd.CombinedOutput(); err != nil {
			faultBuildErr = fmt.Errorf("go build -tags badbatch_faults cmd/badbatch: %w\n%s", err, out)
		}
	})
	require.NoError(t, faultBuildErr)
	return faultBinPath
}

// healProducers and healAppends: each producer appends healAppends records
// to its own stream, one at a time (at least two journal operations
// each, so every fault index up to maxHealFault is hit).
const (
	healProducers = 2
	healAppends   = 20
	maxHealFault  = 60
)

// TestServerHealsJournalFaults runs the real binary (built with the fault
// hook) once per fault index n: the nth journal write or fsync after the
// store opened fails with EIO, and for some n the next ones too (so that
// reopens fail and are retried). Producers append with Idempotency-Keys
// and retry every 503 or broken connection until acknowledged. It checks
// that /readyz went false and came back true without a restart, that
// /metrics counted the failure and the recovery, that a 503 carried
// Retry-After, and, Jepsen-style, that every acknowledged record is
// stored exactly once at its acknowledged offset, that a retry of every
// key after the reopen is deduplicated, and that badbatch verify finds the
// directory consistent. BADBATCH_HEAL_FAULTS sets how many indices run
// (default 4, -short 2).
func TestServerHealsJournalFaults(t *testing.T) {
	count := envCount(t, "BADBATCH_HEAL_FAULTS", 4, 2)
	t.Logf("fault indices: %d (BADBATCH_HEAL_FAULTS)", count)
	for i := range min(count, maxHealFault) {
		n := i + 1
		persist := n % 3 // 0, 1 or 2 further failures
		t.Run(fmt.Sprintf("op=%d/persist=%d", n, persist), func(t *testing.T) {
			healOnce(t, n, persist)
		})
	}
}

func healOnce(t *testing.T, n, persist int) {
	dir := keptDir(t, "badbatch-heal-")
	srv := newServer(t, filepath.Join(dir, "data"), filepath.Join(dir, "serve.log"))
	srv.bin = faultBinary(t)
	srv.wrap = []string{"env", fmt.Sprintf("BBTEST_JOURNAL_FAULT=%d+%d", n, persist)}
	srv.start()

	// Watch /readyz through the run.
	var notReady, polls atomic.Int64
	stopPoll := make(chan struct{})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for {
			select {
			case <-stopPoll:
				return
			default:
			}
			if resp, err := c.Get(srv.url("/readyz")); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				polls.Add(1)
				if resp.StatusCode == http.StatusServiceUnavailable {
					notReady.Add(1)
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type ack struct{ offset uint64 }
	acked := make([][]ack, healProducers)
	var unavailable, retryAfter atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, healProducers)
	for p := range healProducers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("p%d", p)
			for i := range healAppends {
				key := fmt.Sprintf("%s-%d", stream, i)
				for {
					if ctx.Err() != nil {
						errs <- fmt.Errorf("%s: not acknowledged in time", key)
						return
					}
					status, body, hdr, err := srv.post(stream, "application/octet-stream", []byte(key), map[string]string{"Idempotency-Key": key})
					if err != nil {
						time.Sleep(5 * time.Millisecond)
						continue // unknown outcome: retry with the same key
					}
					if status == http.StatusServiceUnavailable {
						unavailable.Add(1)
						if hdr.Get("Retry-After") != "" {
							retryAfter.Add(1)
						}
						time.Sleep(5 * time.Millisecond)
						continue
					}
					if status != http.StatusCreated {
						errs <- fmt.Errorf("%s: status %d: %s", key, status, body)
						return
					}
					var r appendReply
					if err := json.Unmarshal(body, &r); err != nil {
						errs <- fmt.Errorf("%s: %w", key, err)
						return
					}
					acked[p] = append(acked[p], ack{r.FirstOffset})
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	srv.waitReady(time.Now(), 30*time.Second)
	close(stopPoll)
	<-pollDone
	require.True(t, srv.alive(), "the server healed without a restart")

	assert.Positive(t, unavailable.Load(), "an append was refused while the store was down")
	assert.Equal(t, unavailable.Load(), retryAfter.Load(), "every 503 carries Retry-After")
	assert.Positive(t, notReady.Load(), "/readyz went false (of %d polls)", polls.Load())
	metrics := getMetrics(t, srv)
	failures, recoveries := metrics["badbatch_store_failures_total"], metrics["badbatch_store_recoveries_total"]
	assert.GreaterOrEqual(t, failures, 1.0, "failures counted")
	assert.Equal(t, failures, recoveries, "every failure healed")
	assert.Equal(t, 1.0, metrics["badbatch_store_healthy"])
	t.Logf("fault #%d+%d: %d refused appends, readyz false %d of %d polls, failures %v, reopen attempts %v, dropped entries %v",
		n, persist, unavailable.Load(), notReady.Load(), polls.Load(), failures,
		metrics["badbatch_store_reopen_attempts_total"], metrics["badbatch_store_dropped_entries_total"])

	// Every acknowledged record exactly once, at its acknowledged offset.
	streams, _, err := srv.readBack()
	require.NoError(t, err)
	for p := range healProducers {
		stream := fmt.Sprintf("p%d", p)
		recs := streams[stream]
		require.Len(t, recs, healAppends, "stream %s: one record per key", stream)
		for i, r := range recs {
			assert.Equal(t, fmt.Sprintf("%s-%d", stream, i), r.payload, "stream %s offset %d", stream, i)
		}
		require.Len(t, acked[p], healAppends)
		for i, a := range acked[p] {
			assert.Equal(t, uint64(i), a.offset, "%s-%d acknowledged at its stored offset", stream, i)
		}
	}
	// The idempotency table survived the reopen: every retry is a replay.
	for p := range healProducers {
		stream := fmt.Sprintf("p%d", p)
		for i := range healAppends {
			key := fmt.Sprintf("%s-%d", stream, i)
			status, body, hdr, err := srv.post(stream, "application/octet-stream", []byte(key), map[string]string{"Idempotency-Key": key})
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, status, "%s", body)
			assert.Equal(t, "true", hdr.Get("Idempotent-Replayed"), "%s deduplicated after the reopen", key)
		}
	}
	streams, _, err = srv.readBack()
	require.NoError(t, err)
	for p := range healProducers {
		assert.Len(t, streams[fmt.Sprintf("p%d", p)], healAppends, "no duplicate after the retries")
	}
	require.NoError(t, srv.stop())
	out, err := verifyDataDir(t, srv.dataDir)
	require.NoError(t, err, "badbatch verify:\n%s", out)
	assert.Contains(t, out, "is consistent")
}

// getMetrics returns the unlabelled samples of /metrics.
func getMetrics(t *testing.T, srv *server) map[string]float64 {
	t.Helper()
	status, body := getStatus(t, srv, "/metrics")
	require.Equal(t, http.StatusOK, status)
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		var f float64
		if _, err := fmt.Sscan(v, &f); err == nil {
			out[name] = f
		}
	}
	return out
}
