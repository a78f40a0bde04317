package crashtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/badbatch/badbatch/httpapi/client"
)

// binDir holds the badbatch binary built once for the whole package.
var (
	binDir    string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain owns the directory of the binary and checks, after every test,
// that no goroutine outlived its test.
func TestMain(m *testing.M) {
	var err error
	binDir, err = os.MkdirTemp("", "badbatch-crashtest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(binDir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// badbatchBinary builds cmd/badbatch once (go build; no race detector, so
// timings are those of the real binary) and returns its path.
func badbatchBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "badbatch")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/badbatch/badbatch/cmd/badbatch")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build cmd/badbatch: %w\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	return freeAddrOn(t, "127.0.0.1")
}

// freeAddrOn returns ip with a port that was free on it a moment ago.
func freeAddrOn(t *testing.T, ip string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// childEnv is the environment without BADBATCH_* variables, which the
// binary would read as flags.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BADBATCH_") {
			env = append(env, kv)
		}
	}
	return env
}

// server runs `badbatch serve` as a child process on a loopback port.
type server struct {
	t       *testing.T
	bin     string
	dataDir string
	addr    string
	logPath string
	// args are extra serve flags; wrap prefixes the command (prlimit, ip
	// netns exec).
	args []string
	wrap []string
	// readQuery is added to the query of every read of readBack
	// ("consistency=any" for a cluster node's own applied state).
	readQuery string
	// token, when set, is sent as the bearer token of getJSON and post.
	token string

	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	client *http.Client
}

func newServer(t *testing.T, dataDir, logPath string, args ...string) *server {
	t.Helper()
	s := &server{
		t: t, bin: badbatchBinary(t), dataDir: dataDir, addr: freeAddr(t), logPath: logPath, args: args,
		client: &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 16, MaxConnsPerHost: 32, DisableCompression: true},
		},
	}
	t.Cleanup(func() {
		s.kill()
		s.client.CloseIdleConnections()
	})
	return s
}

func (s *server) url(p string) string { return "http://" + s.addr + p }

// start execs the server and waits for /readyz to answer 200. It returns
// the time from exec to that answer.
func (s *server) start() time.Duration {
	s.t.Helper()
	begin := s.launch()
	s.waitReady(begin, 30*time.Second)
	return time.Since(begin)
}

// launch execs the server and returns when the process has started (not
// when it is ready: a cluster node is ready only once it knows a leader,
// which takes a quorum).
func (s *server) launch() time.Time {
	s.t.Helper()
	require.Nil(s.t, s.cmd, "server already running")
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(s.t, err)
	argv := append(append([]string(nil), s.wrap...), s.bin, "serve", "--data-dir", s.dataDir, "--addr", s.addr, "--log-level", "warn")
	argv = append(argv, s.args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	begin := time.Now()
	require.NoError(s.t, cmd.Start())
	s.cmd, s.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		s.err = cmd.Wait()
		_ = logf.Close()
		close(exited)
	}(s.exited)
	return begin
}

// waitReady polls /readyz until it answers 200, failing the test if the
// process exits first or timeout passes since begin.
func (s *server) waitReady(begin time.Time, timeout time.Duration) {
	s.t.Helper()
	poll := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer poll.CloseIdleConnections()
	deadline := begin.Add(timeout)
	for {
		resp, err := poll.Get(s.url("/readyz"))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-s.exited:
			s.cmd = nil
			s.t.Fatalf("badbatch serve exited before it was ready: %v; log %s:\n%s", s.err, s.logPath, tail(s.logPath))
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("badbatch serve not ready after %v; log %s:\n%s", timeout, s.logPath, tail(s.logPath))
		}
		time.Sleep(time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
	s.client.CloseIdleConnections()
}

// stop asks for a graceful shutdown (SIGTERM) and returns the exit error.
func (s *server) stop() error {
	s.t.Helper()
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(time.Minute):
		s.kill()
		s.t.Fatal("badbatch serve did not stop within a minute of SIGTERM")
	}
	s.cmd = nil
	s.client.CloseIdleConnections()
	return s.err
}

// alive reports whether the process is still running.
func (s *server) alive() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// tail returns the end of a log file.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// verify runs `badbatch verify` (check-only, on a copy) and returns its
// output and error.
func verifyDataDir(t *testing.T, dataDir string) (string, error) {
	t.Helper()
	cmd := exec.Command(badbatchBinary(t), "verify", "--data-dir", dataDir, "--work-dir", t.TempDir())
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// apiError is the error body of the HTTP API.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// appendReply is the 201 body of an append, as the Go client decodes it.
type appendReply = client.AppendResult

type wireRecord struct {
	Stream      string  `json:"stream"`
	Offset      uint64  `json:"offset"`
	Seq         uint64  `json:"seq"`
	Value       any     `json:"value"`
	ValueBase64 *string `json:"value_base64"`
}

func (r wireRecord) payload() (string, error) {
	if r.ValueBase64 != nil {
		b, err := base64.StdEncoding.DecodeString(*r.ValueBase64)
		return string(b), err
	}
	b, err := json.Marshal(r.Value)
	return string(b), err
}

type streamInfo struct {
	Stream      string `json:"stream"`
	FirstOffset uint64 `json:"first_offset"`
	NextOffset  uint64 `json:"next_offset"`
	Records     uint64 `json:"records"`
	Bytes       uint64 `json:"bytes"`
}

// getJSON GETs p and decodes a 200 answer into v.
func (s *server) getJSON(p string, v any) error {
	req, err := http.NewRequest(http.MethodGet, s.url(p), nil)
	if err != nil {
		return err
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", p, resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}

// withReadQuery adds s.readQuery to the query of p.
func (s *server) withReadQuery(p string) string {
	switch {
	case s.readQuery == "":
		return p
	case strings.Contains(p, "?"):
		return p + "&" + s.readQuery
	default:
		return p + "?" + s.readQuery
	}
}

// streams lists the streams.
func (s *server) streams() ([]streamInfo, error) {
	var out struct {
		Streams []streamInfo `json:"streams"`
	}
	err := s.getJSON(s.withReadQuery("/v1/streams"), &out)
	return out.Streams, err
}

// readBack reads every stream from its first offset, and the global log.
func (s *server) readBack() (map[string][]readRecord, []readRecord, error) {
	list, err := s.streams()
	if err != nil {
		return nil, nil, err
	}
	streams := map[string][]readRecord{}
	for _, info := range list {
		var recs []readRecord
		for from := info.FirstOffset; from < info.NextOffset; {
			var page struct {
				Records    []wireRecord `json:"records"`
				NextOffset uint64       `json:"next_offset"`
			}
			if err := s.getJSON(s.withReadQuery(fmt.Sprintf("/v1/streams/%s/records?from=%d&limit=500", url.PathEscape(info.Stream), from)), &page); err != nil {
				return nil, nil, err
			}
			if len(page.Records) == 0 {
				return nil, nil, fmt.Errorf("stream %s: empty page at %d, next offset %d", info.Stream, from, info.NextOffset)
			}
			for _, r := range page.Records {
				p, err := r.payload()
				if err != nil {
					return nil, nil, fmt.Errorf("stream %s offset %d: %w", info.Stream, r.Offset, err)
				}
				recs = append(recs, readRecord{stream: info.Stream, offset: r.Offset, seq: r.Seq, payload: p})
			}
			from = page.NextOffset
		}
		if uint64(len(recs)) != info.NextOffset-info.FirstOffset {
			return nil, nil, fmt.Errorf("stream %s: read %d records, info says %d", info.Stream, len(recs), info.NextOffset-info.FirstOffset)
		}
		streams[info.Stream] = recs
	}
	var global []readRecord
	for from := uint64(0); ; {
		var page struct {
			Records []wireRecord `json:"records"`
			NextSeq uint64       `json:"next_seq"`
		}
		if err := s.getJSON(s.withReadQuery(fmt.Sprintf("/v1/records?from_seq=%d&limit=500", from)), &page); err != nil {
			return nil, nil, err
		}
		if len(page.Records) == 0 {
			break
		}
		for _, r := range page.Records {
			p, err := r.payload()
			if err != nil {
				return nil, nil, fmt.Errorf("global seq %d: %w", r.Seq, err)
			}
			global = append(global, readRecord{stream: r.Stream, offset: r.Offset, seq: r.Seq, payload: p})
		}
		from = page.NextSeq
	}
	return streams, global, nil
}

// post sends an append and returns the status, body and any transport
// error.
func (s *server) post(stream, contentType string, body []byte, hdr map[string]string) (int, []byte, http.Header, error) {
	req, err := http.NewRequest(http.MethodPost, s.url("/v1/streams/"+stream+"/records"), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, b, resp.Header, nil
}
