package crashtest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fillUntilRefused appends records of size bytes until the server answers
// 503 (at most limit appends). It returns the error body of the 503.
func fillUntilRefused(t *testing.T, srv *server, h *httpHistory, size, limit int) apiError {
	t.Helper()
	for i := range limit {
		payload := fmt.Sprintf("fill-%d-%s", i, strings.Repeat("f", size))
		op := &httpOp{appendOp: appendOp{stream: fmt.Sprintf("s%d", i%2), payloads: []string{payload}, status: statusUnknown},
			contentType: "application/octet-stream", body: []byte(payload)}
		h.add(op)
		status, body, _, err := srv.post(op.stream, op.contentType, op.body, nil)
		h.settle(op, status, body, err)
		require.NoError(t, err, "append %d: the server must answer, not die", i)
		if status == http.StatusServiceUnavailable {
			t.Logf("refused after %d appends of %d bytes: %s", i, size, body)
			return errorBody(t, body)
		}
		require.Equal(t, http.StatusCreated, status, "append %d: %s", i, body)
	}
	t.Fatalf("no 503 after %d appends of %d bytes", limit, size)
	return apiError{}
}

// diskFullThenRecover is the common part of the real disk-full tests: the
// server, out of space, must refuse appends with 503 in the API's error
// shape (naming cause), stay up, keep serving every acknowledged record,
// report not ready, and keep refusing appends that do not fit (it reopens
// the store by itself, and fails again at the next write that does not
// fit). With heals, release gives the space back to the running server,
// which must then accept appends again without a restart; otherwise
// release applies at the restart. After the restart every acknowledged
// record is there, appends continue the offsets, and badbatch verify finds
// the directory consistent.
func diskFullThenRecover(t *testing.T, srv *server, cause string, heals bool, release func()) {
	t.Helper()
	h := &httpHistory{}
	srv.start()
	e := fillUntilRefused(t, srv, h, 32<<10, 5000)
	assert.Equal(t, "unavailable", e.Error.Code)
	assert.Contains(t, e.Error.Message, cause)
	require.True(t, srv.alive(), "the server died on the full disk; log:\n%s", tail(srv.logPath))

	status, body := getStatus(t, srv, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, status, "readyz: %s", body)
	streams, global, err := srv.readBack()
	require.NoError(t, err, "reads on a full disk")
	res := checkHistory(h.appendOps(), streams, global)
	for _, p := range res.problems {
		t.Errorf("reads on a full disk: %s", p)
	}
	// Still refused while the disk is full: the healed store fails again
	// at the next write that does not fit (or is still being reopened).
	for i := range 3 {
		payload := fmt.Sprintf("more-%d-%s", i, strings.Repeat("m", 32<<10))
		op := &httpOp{appendOp: appendOp{stream: "s0", payloads: []string{payload}, status: statusUnknown},
			contentType: "application/octet-stream", body: []byte(payload)}
		h.add(op)
		status, body, _, err = srv.post(op.stream, op.contentType, op.body, nil)
		h.settle(op, status, body, err)
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, status, "%s", body)
	}

	if heals {
		// The space comes back under the running server: it heals by itself.
		release()
		deadline := time.Now().Add(30 * time.Second)
		for {
			payload := "healed"
			op := &httpOp{appendOp: appendOp{stream: "s1", payloads: []string{payload}, status: statusUnknown},
				contentType: "application/octet-stream", body: []byte(payload)}
			h.add(op)
			status, body, _, err := srv.post(op.stream, op.contentType, op.body, nil)
			h.settle(op, status, body, err)
			require.NoError(t, err)
			if status == http.StatusCreated {
				break
			}
			require.Equal(t, http.StatusServiceUnavailable, status, "%s", body)
			require.True(t, time.Now().Before(deadline), "the server did not heal within 30s of the space coming back")
			time.Sleep(50 * time.Millisecond)
		}
		status, body := getStatus(t, srv, "/readyz")
		assert.Equal(t, http.StatusOK, status, "readyz after healing: %s", body)
	}
	stopErr := srv.stop()
	t.Logf("graceful stop: %v", stopErr)
	if !heals {
		release()
	}
	srv.start()
	next := map[string]uint64{}
	list, err := srv.streams()
	require.NoError(t, err)
	for _, info := range list {
		next[info.Stream] = info.NextOffset
	}
	for i := range 10 {
		payload := fmt.Sprintf("after-%d", i)
		op := &httpOp{appendOp: appendOp{stream: fmt.Sprintf("s%d", i%2), payloads: []string{payload}, status: statusUnknown},
			contentType: "application/octet-stream", body: []byte(payload)}
		h.add(op)
		status, body, _, err := srv.post(op.stream, op.contentType, op.body, nil)
		h.settle(op, status, body, err)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, status, "after the restart: %s", body)
		assert.Equal(t, next[op.stream], op.first, "no gap after the restart")
		next[op.stream]++
	}
	streams, global, err = srv.readBack()
	require.NoError(t, err)
	res = checkHistory(h.appendOps(), streams, global)
	for _, p := range res.problems {
		t.Errorf("after the restart: %s", p)
	}
	t.Logf("%d acknowledged, unknown: %d stored, %d absent", res.acked, res.unknownPresent, res.unknownAbsent)
	require.NoError(t, srv.stop())
	out, err := verifyDataDir(t, srv.dataDir)
	require.NoError(t, err, "badbatch verify:\n%s", out)
	assert.Contains(t, out, "is consistent")
}

// TestDiskFullFileSizeLimit runs the real binary under RLIMIT_FSIZE
// (prlimit --fsize): a write that would grow a file past the limit is cut
// short and the next fails with EFBIG, as on a full disk. The Go runtime
// catches SIGXFSZ (it is in the signals it handles, and the default action
// is ignored once a handler is installed), so the process survives and
// sees the error. The injected-error equivalent is TestWriteFaults.
func TestDiskFullFileSizeLimit(t *testing.T) {
	t.Parallel()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit not found (util-linux); the injected ENOSPC of TestWriteFaults still runs")
	}
	dir := keptDir(t, "badbatch-fsize-")
	srv := newServer(t, filepath.Join(dir, "data"), filepath.Join(dir, "serve.log"), "--segment-size", fmt.Sprint(64<<20))
	const limit = 3 << 20
	srv.wrap = []string{prlimit, fmt.Sprintf("--fsize=%d", limit), "--"}
	diskFullThenRecover(t, srv, "file too large", false, func() { srv.wrap = nil })
}

// TestDiskFullTmpfs runs the real binary on a real 8 MiB tmpfs until it is
// full (ENOSPC from the kernel), then grows the file system (mount -o
// remount) as an operator freeing space would, and restarts the server.
// It needs root and mount; elsewhere it skips, and TestWriteFaults and
// TestDiskFullFileSizeLimit still run.
func TestDiskFullTmpfs(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root; TestWriteFaults (injected ENOSPC) still runs")
	}
	dir := keptDir(t, "badbatch-tmpfs-")
	mnt := filepath.Join(dir, "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); TestWriteFaults (injected ENOSPC) still runs", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	srv := newServer(t, filepath.Join(mnt, "data"), filepath.Join(dir, "serve.log"), "--segment-size", fmt.Sprint(1<<20))
	diskFullThenRecover(t, srv, "no space left on device", true, func() {
		out, err := exec.Command("mount", "-o", "remount,size=64m", mnt).CombinedOutput()
		require.NoError(t, err, "remount: %s", out)
	})
}
