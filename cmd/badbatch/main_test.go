package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fmt"
	"github.com/badbatch/badbatch/httpapi"
	"github.com/badbatch/badbatch/storage"
	"github.com/badbatch/badbatch/storage/cluster"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run executes the command line in process and returns its stdout.
func run(t *testing.T, ctx context.Context, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd(strings.NewReader(stdin), &out, &errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func TestEnvFlags(t *testing.T) {
	root := newRootCmd(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	serve, _, err := root.Find([]string{"serve"})
	require.NoError(t, err)
	require.NoError(t, serve.ParseFlags([]string{"--addr", "127.0.0.1:1"}))
	t.Setenv("BADBATCH_DATA_DIR", "/from/env")
	t.Setenv("BADBATCH_ADDR", "127.0.0.1:2")
	t.Setenv("BADBATCH_SYNC", "interval")
	require.NoError(t, applyEnv(serve))
	assert.Equal(t, "/from/env", serve.Flags().Lookup("data-dir").Value.String())
	assert.Equal(t, "127.0.0.1:1", serve.Flags().Lookup("addr").Value.String(), "the command line wins")
	assert.Equal(t, "interval", serve.Flags().Lookup("sync").Value.String())
	assert.Contains(t, serve.Flags().Lookup("data-dir").Usage, "BADBATCH_DATA_DIR")

	t.Setenv("BADBATCH_SYNC_INTERVAL", "soon")
	assert.ErrorContains(t, applyEnv(serve), "BADBATCH_SYNC_INTERVAL")
}

func TestServeRefusesOpenAddressWithoutAuth(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, err := run(t, context.Background(), "", "serve", "--addr", "0.0.0.0:0", "--data-dir", dir)
	require.ErrorIs(t, err, httpapi.ErrInsecureListen)
	assert.Contains(t, err.Error(), "--insecure-no-auth")
	_, statErr := os.Stat(dir)
	assert.True(t, os.IsNotExist(statErr), "refused before touching the data directory")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// startServe runs `badbatch serve` in process; stop (also run at the end
// of the test) cancels its context, as SIGTERM does, and waits for it.
func startServe(t *testing.T, dir string, extra ...string) (string, func()) {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := run(t, ctx, "", append([]string{"serve", "--addr", addr, "--data-dir", dir, "--log-level", "error"}, extra...)...)
		done <- err
	}()
	url := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 10*time.Millisecond)
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			assert.NoError(t, <-done)
		}
	}
	t.Cleanup(stop)
	return url, stop
}

func TestCommandsAgainstServer(t *testing.T) {
	dir := t.TempDir()
	url, _ := startServe(t, filepath.Join(dir, "data"))
	ctx := context.Background()

	input := filepath.Join(dir, "lines.txt")
	require.NoError(t, os.WriteFile(input, []byte("alpha\nbeta\ngamma\n"), 0o600))
	out, err := run(t, ctx, "", "append", "words", input, "--server", url, "--batch", "2")
	require.NoError(t, err)
	assert.Equal(t, "appended 3 records to words\n", out)
	out, err = run(t, ctx, "", "append", "words-post", input, "--server", url, "--batch", "2", "--post")
	require.NoError(t, err)
	assert.Equal(t, "appended 3 records to words-post\n", out)
	out, err = run(t, ctx, "", "read", "words-post", "--server", url, "--text")
	require.NoError(t, err)
	assert.Equal(t, "alpha\nbeta\ngamma\n", out, "--post appends the same records")

	out, err = run(t, ctx, "{\"n\":1}\n\n{\"n\":2}\n", "append", "events", "--server", url)
	require.NoError(t, err)
	assert.Equal(t, "appended 2 records to events\n", out)

	out, err = run(t, ctx, `{"key":"k","value_base64":"AAE=","headers":{"h":"v"}}`+"\n", "append", "recs", "--format", "records", "--server", url)
	require.NoError(t, err)
	assert.Equal(t, "appended 1 records to recs\n", out)

	_, err = run(t, ctx, "{\"n\":1}\nnot json\n", "append", "events", "--format", "ndjson", "--server", url)
	assert.ErrorContains(t, err, "line 2")

	out, err = run(t, ctx, "", "read", "words", "--server", url, "--text")
	require.NoError(t, err)
	assert.Equal(t, "alpha\nbeta\ngamma\n", out)

	out, err = run(t, ctx, "", "read", "events", "--from", "1", "--server", url)
	require.NoError(t, err)
	assert.Contains(t, out, `"offset":1`)
	assert.Contains(t, out, `"value":{"n":2}`)
	assert.NotContains(t, out, `"offset":0`)

	out, err = run(t, ctx, "", "read", "words", "--follow", "--limit", "2", "--server", url)
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(out, "\n"))

	out, err = run(t, ctx, "", "streams", "--server", url)
	require.NoError(t, err)
	assert.Contains(t, out, "words")
	assert.Contains(t, out, "events")

	_, err = run(t, ctx, "", "cursor", "set", "words", "me", "2", "--server", url)
	require.NoError(t, err)
	out, err = run(t, ctx, "", "cursor", "get", "words", "me", "--server", url)
	require.NoError(t, err)
	assert.Equal(t, "2\n", out)

	_, err = run(t, ctx, "", "read", "never-written", "--server", url)
	assert.ErrorContains(t, err, "not_found")

	// The stream lifecycle.
	out, err = run(t, ctx, "", "stream", "create", "cfg", "--content-type", "text/plain", "--ttl", "1h", "--server", url)
	require.NoError(t, err)
	assert.Equal(t, "created cfg\n", out)
	out, err = run(t, ctx, "", "stream", "create", "cfg", "--content-type", "text/plain", "--ttl", "1h", "--server", url)
	require.NoError(t, err)
	assert.Equal(t, "cfg exists with this configuration\n", out)
	_, err = run(t, ctx, "", "stream", "create", "cfg", "--server", url)
	assert.ErrorContains(t, err, "stream_exists")
	_, err = run(t, ctx, "", "stream", "create", "bad", "--ttl", "1500ms", "--server", url)
	assert.ErrorContains(t, err, "whole seconds")
	out, err = run(t, ctx, "", "stream", "fork", "words2", "words", "2", "--server", url)
	require.NoError(t, err)
	assert.Equal(t, "forked words2 from words at offset 2\n", out)
	out, err = run(t, ctx, "", "read", "words2", "--server", url, "--text")
	require.NoError(t, err)
	assert.Equal(t, "alpha\nbeta\n", out)
	_, err = run(t, ctx, "", "stream", "close", "words2", "--server", url)
	require.NoError(t, err)
	_, err = run(t, ctx, "gamma2\n", "append", "words2", "--server", url)
	assert.ErrorContains(t, err, "stream_closed")
	_, err = run(t, ctx, "", "stream", "delete", "words", "--server", url)
	require.NoError(t, err)
	_, err = run(t, ctx, "", "read", "words", "--server", url)
	assert.ErrorContains(t, err, "gone", "a fork still reads it")
	_, err = run(t, ctx, "", "stream", "delete", "words2", "--server", url)
	require.NoError(t, err)
	_, err = run(t, ctx, "", "read", "words", "--server", url)
	assert.ErrorContains(t, err, "not_found")
}

func TestVerify(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	url, stop := startServe(t, dir)
	// --post: one request and one journal entry per record (a session would
	// pipeline the three into one entry), so that there is an interior
	// entry to corrupt.
	_, err := run(t, context.Background(), "a\nb\nc\n", "append", "v", "--server", url, "--batch", "1", "--post")
	require.NoError(t, err)
	stop() // verify is offline

	out, err := run(t, context.Background(), "", "verify", "--data-dir", dir)
	require.NoError(t, err, out)
	assert.Contains(t, out, "every CRC valid")
	assert.Contains(t, out, "1 streams, 3 records")
	assert.Contains(t, out, "is consistent")

	segs, err := filepath.Glob(filepath.Join(dir, "journal", "*.seg"))
	require.NoError(t, err)
	require.NotEmpty(t, segs)
	seg := segs[len(segs)-1]
	orig, err := os.ReadFile(seg)
	require.NoError(t, err)

	t.Run("torn tail", func(t *testing.T) {
		torn := append(append([]byte(nil), orig...), []byte("BBJE garbage of a torn write")...)
		require.NoError(t, os.WriteFile(seg, torn, 0o600))
		out, err := run(t, context.Background(), "", "verify", "--data-dir", dir)
		require.NoError(t, err, out)
		assert.Contains(t, out, "torn tail would be truncated")
		data, err := os.ReadFile(seg)
		require.NoError(t, err)
		assert.Equal(t, torn, data, "a check-only verify modifies nothing")

		out, err = run(t, context.Background(), "", "verify", "--data-dir", dir, "--repair")
		require.NoError(t, err, out)
		assert.Contains(t, out, "torn tail truncated")
		data, err = os.ReadFile(seg)
		require.NoError(t, err)
		assert.Equal(t, orig, data)
	})
	t.Run("interior corruption", func(t *testing.T) {
		// Flip a payload byte of the first entry: later entries that were
		// acknowledged follow it, so it is not a torn tail.
		bad := append([]byte(nil), orig...)
		bad[32+64+2] ^= 0xff
		require.NoError(t, os.WriteFile(seg, bad, 0o600))
		out, err := run(t, context.Background(), "", "verify", "--data-dir", dir)
		var ee exitError
		require.True(t, errors.As(err, &ee), "%v\n%s", err, out)
		assert.Equal(t, 2, ee.code)
		assert.Contains(t, out, "PROBLEM")
		require.NoError(t, os.WriteFile(seg, orig, 0o600))
	})
}

// TestBench: `badbatch bench` runs bbbench from the checkout it is started
// in (here: --dry-run, which lists the suites without running them), and
// outside a checkout it says what it needs instead of failing obscurely.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("builds bbbench with the go command")
	}
	var out, errOut bytes.Buffer
	root := newRootCmd(strings.NewReader(""), &out, &errOut)
	root.SetArgs([]string{"bench", "--dry-run"})
	require.NoError(t, root.ExecuteContext(context.Background()), errOut.String())
	assert.Contains(t, errOut.String(), "(cd bench/peers && go test", "the dry run lists the peers' suite")

	t.Chdir(t.TempDir())
	_, err := run(t, context.Background(), "", "bench", "--quick")
	require.ErrorContains(t, err, "runs from a BadBatch source checkout")
}

// TestVerifyClusterNode: verify checks a stopped cluster node's directory
// (raft configuration entries in the journal, the store applied up to the
// stored commit index), and a standalone serve refuses it.
func TestVerifyClusterNode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	co := cluster.DefaultOptions()
	co.NodeID, co.ClusterAddr, co.Peers = 1, addr, map[uint64]string{1: addr}
	co.Secret = []byte("verify-cluster-node-secret")
	co.TickInterval = 5 * time.Millisecond
	n, err := cluster.Open(dir, co)
	require.NoError(t, err)
	require.Eventually(t, n.IsLeader, 10*time.Second, 5*time.Millisecond)
	for i := range 5 {
		_, err := n.Store().Append(context.Background(), "v", storage.Record{Value: []byte(fmt.Sprint(i))})
		require.NoError(t, err)
	}
	require.NoError(t, n.Close())

	out, err := run(t, context.Background(), "", "verify", "--data-dir", dir)
	require.NoError(t, err, out)
	assert.Contains(t, out, "cluster node 1")
	assert.Contains(t, out, "1 streams, 5 records")
	assert.Contains(t, out, "is consistent")

	_, err = run(t, context.Background(), "", "serve", "--data-dir", dir, "--addr", "127.0.0.1:0")
	require.ErrorIs(t, err, storage.ErrWrongMode)
}
