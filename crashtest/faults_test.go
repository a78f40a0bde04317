package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi"
	"github.com/badbatch/badbatch/storage"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// inProcess is a storage.Store on an injectable FS served by the real
// httpapi.Server on a loopback port, in this process.
type inProcess struct {
	store  *storage.Store
	api    *httpapi.Server
	served chan error
	srv    *server // only its HTTP helpers (addr, client) are used
	logs   *syncBuffer
}

func startInProcess(t *testing.T, fs vfs.FS, logs *syncBuffer) *inProcess {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	so := storage.DefaultOptions()
	so.FS = fs
	so.RingSize = 64
	so.SegmentSize = 16 << 10
	so.Logger = logger
	st, err := storage.Open("db", so)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ho := httpapi.DefaultOptions()
	ho.Addr = l.Addr().String()
	ho.Logger = logger
	api, err := httpapi.New(st, ho)
	require.NoError(t, err)
	p := &inProcess{store: st, api: api, served: make(chan error, 1), logs: logs,
		srv: &server{t: t, addr: l.Addr().String(), client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}}}
	go func() { p.served <- api.Serve(l) }()
	return p
}

// stop shuts the server down and closes the store, returning Close's error.
func (p *inProcess) stop(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, p.api.Shutdown(ctx))
	require.ErrorIs(t, <-p.served, httpapi.ErrServerClosed)
	p.srv.client.CloseIdleConnections()
	return p.store.Close()
}

// appendSome posts n raw single-record appends (sequentially) and records
// them in h, returning the statuses seen.
func appendSome(p *inProcess, h *httpHistory, prefix string, n int) []int {
	var statuses []int
	for i := range n {
		payload := fmt.Sprintf("%s-%d-%0300d", prefix, i, i)
		op := &httpOp{appendOp: appendOp{stream: fmt.Sprintf("s%d", i%2), payloads: []string{payload}, status: statusUnknown},
			contentType: "application/octet-stream", body: []byte(payload)}
		h.add(op)
		status, body, _, err := p.srv.post(op.stream, op.contentType, op.body, nil)
		h.settle(op, status, body, err)
		statuses = append(statuses, status)
	}
	return statuses
}

// errorBody decodes the API's error shape, failing if it is not that shape.
func errorBody(t *testing.T, body []byte) apiError {
	t.Helper()
	var e apiError
	require.NoError(t, json.Unmarshal(body, &e), "error body %q", body)
	require.NotEmpty(t, e.Error.Code, "error body %q", body)
	require.NotEmpty(t, e.Error.Message, "error body %q", body)
	return e
}

// getStatus GETs p and returns the status and body.
func getStatus(t *testing.T, s *server, p string) (int, []byte) {
	t.Helper()
	resp, err := s.client.Get(s.url(p))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// TestWriteFaults injects a disk-full (ENOSPC) or an I/O error (EIO) into
// the journal of a store served over HTTP, while four clients append
// concurrently, and checks the contract around it:
//
//   - no append is acknowledged (201) whose journal write or fsync failed:
//     every 201 is found after the reopen, at its offsets;
//   - the failing appends and every later one get 503 with the API's error
//     shape {"error":{"code":"unavailable","message":...}} naming the cause,
//     and /readyz answers 503;
//   - reads keep being served, and show exactly what was there before;
//   - the error is sticky: when the fault goes away ("space returns"), the
//     server still refuses appends; it does not reopen the store by itself;
//   - an fsync is never retried: no journal fsync is even attempted after
//     the failed one, up to and including Close;
//   - after Close and Open (for EIO, on a power-loss image that keeps only
//     what was synced: the pages of the failed fsync are gone, as Linux may
//     drop them), every acknowledged append is there and new appends
//     continue the offsets with no gap and no duplicate.
func TestWriteFaults(t *testing.T) {
	t.Parallel()
	enospc := syscall.ENOSPC
	eio := syscall.EIO
	tests := []struct {
		name string
		// kind and short: which operation fails, and how many bytes of a
		// failing write reach the file first.
		kind  opKind
		short int
		err   error
		// crash reopens on a power-loss image with no unsynced data.
		crash bool
		msg   string
	}{
		{"ENOSPC on a journal write, nothing written", opWrite, 0, enospc, false, "no space left on device"},
		{"ENOSPC on a journal write, short write", opWrite, 100, enospc, false, "no space left on device"},
		{"ENOSPC creating a segment", opCreate, 0, enospc, false, "no space left on device"},
		{"EIO on a journal fsync", opSyncFile, 0, eio, true, "input/output error"},
		{"EIO on a journal fsync, page cache kept", opSyncFile, 0, eio, false, "input/output error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			ffs := newFaultFS(mem)
			var logs syncBuffer
			p := startInProcess(t, ffs, &logs)
			h := &httpHistory{}
			for _, st := range appendSome(p, h, "before", 40) {
				require.Equal(t, http.StatusCreated, st)
			}
			before, beforeGlobal, err := p.srv.readBack()
			require.NoError(t, err)

			// Arm the fault: the n-th matching journal operation from now
			// on fails, and every later one too (a full disk stays full).
			var (
				seen, failedAt atomic.Int64
				syncsAfter     atomic.Int64
			)
			countdown := int64(3 + len(tt.name)%5)
			isJournal := func(path string) bool { return strings.Contains(path, "/journal/") }
			ffs.setInject(func(kind opKind, path string, _ int) (int, error) {
				if !isJournal(path) {
					return 0, nil
				}
				if kind == opSyncFile && failedAt.Load() > 0 {
					syncsAfter.Add(1)
				}
				if kind != tt.kind {
					return 0, nil
				}
				if n := seen.Add(1); n < countdown {
					return 0, nil
				} else if n == countdown {
					failedAt.Store(n)
				}
				return tt.short, tt.err
			})
			// Four concurrent clients until each has seen a 503.
			var wg sync.WaitGroup
			bodies := make(chan []byte, 4)
			for w := range 4 {
				wg.Go(func() {
					for i := 0; i < 10_000; i++ {
						payload := fmt.Sprintf("during-w%d-%d-%0200d", w, i, i)
						op := &httpOp{appendOp: appendOp{stream: fmt.Sprintf("s%d", i%2), payloads: []string{payload}, status: statusUnknown},
							contentType: "application/octet-stream", body: []byte(payload)}
						h.add(op)
						status, body, _, err := p.srv.post(op.stream, op.contentType, op.body, nil)
						h.settle(op, status, body, err)
						if status == http.StatusServiceUnavailable {
							bodies <- body
							return
						}
					}
				})
			}
			wg.Wait()
			close(bodies)
			require.Positive(t, failedAt.Load(), "the fault fired")
			for body := range bodies {
				e := errorBody(t, body)
				assert.Equal(t, "unavailable", e.Error.Code)
				assert.Contains(t, e.Error.Message, tt.msg)
				assert.Contains(t, e.Error.Message, "journal: failed; close and reopen")
			}
			status, body := getStatus(t, p.srv, "/readyz")
			assert.Equal(t, http.StatusServiceUnavailable, status)
			assert.Contains(t, errorBody(t, body).Error.Message, "store failed")
			assert.Contains(t, logs.String(), "storage: not accepting appends until reopened")

			// Reads still work and show what was acknowledged.
			now, nowGlobal, err := p.srv.readBack()
			require.NoError(t, err, "reads after the fault")
			res := checkHistory(h.appendOps(), now, nowGlobal)
			assert.Empty(t, res.problems, "reads after the fault")
			assert.GreaterOrEqual(t, len(nowGlobal), len(beforeGlobal))
			for name, recs := range before {
				assert.Equal(t, recs, now[name][:len(recs)])
			}

			// The fault goes away; the store stays failed until reopened.
			ffs.setInject(func(kind opKind, path string, _ int) (int, error) {
				if isJournal(path) && kind == opSyncFile {
					syncsAfter.Add(1)
				}
				return 0, nil
			})
			for _, st := range appendSome(p, h, "after-fault", 3) {
				assert.Equal(t, http.StatusServiceUnavailable, st, "the store reopened by itself")
			}
			closeErr := p.stop(t)
			assert.Zero(t, syncsAfter.Load(), "a journal fsync was attempted after the failed operation")
			t.Logf("fault at operation %d; Close: %v", failedAt.Load(), closeErr)

			// Reopen: on the same FS (the page cache survived), or on a
			// power-loss image that keeps only synced data.
			fs := vfs.FS(mem)
			if tt.crash {
				fs = mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
			}
			p = startInProcess(t, fs, &logs)
			defer func() { _ = p.stop(t) }()
			next := map[string]uint64{}
			list, err := p.srv.streams()
			require.NoError(t, err)
			for _, info := range list {
				next[info.Stream] = info.NextOffset
			}
			for i, st := range appendSome(p, h, "reopened", 6) {
				require.Equal(t, http.StatusCreated, st)
				op := h.ops[len(h.ops)-6+i]
				assert.Equal(t, next[op.stream], op.first, "offsets continue after the reopen")
				next[op.stream]++
			}
			streams, global, err := p.srv.readBack()
			require.NoError(t, err)
			res = checkHistory(h.appendOps(), streams, global)
			for _, pr := range res.problems {
				t.Error(pr)
			}
			t.Logf("%d acknowledged, unknown (503 or cut): %d stored, %d absent", res.acked, res.unknownPresent, res.unknownAbsent)
			found := map[string]readRecord{}
			for _, recs := range streams {
				for _, r := range recs {
					found[r.payload] = r
				}
			}
			for _, op := range h.ops {
				if r, ok := found[op.payloads[0]]; ok && op.status == statusUnknown {
					t.Logf("op %d answered %d is stored at %s/%d seq %d", op.id, op.answer, r.stream, r.offset, r.seq)
				}
			}
		})
	}
}
