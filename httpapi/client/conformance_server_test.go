package client_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi/client"
)

// The server side of the conformance runner (clients/conformance/README.md,
// The server): the binary, one `badbatch serve` per profile, restarts.

// conformanceDir is clients/conformance, from this package's directory,
// or BADBATCH_CONFORMANCE_DIR (to run other cases against this client).
var conformanceDir = func() string {
	if dir := os.Getenv("BADBATCH_CONFORMANCE_DIR"); dir != "" {
		return dir
	}
	return "../../clients/conformance"
}()

// profile is one entry of servers.json.
type profile struct {
	Tokens bool     `json:"tokens"`
	Args   []string `json:"args"`
	// ClientOptions are options (vocabulary names) for every client of the
	// profile's server.
	ClientOptions struct {
		MaxRetries *int `json:"max_retries"`
	} `json:"client_options"`
}

// serverBinary returns BADBATCH_BIN, or builds ./cmd/badbatch once into
// dir.
func serverBinary(t *testing.T, dir string) string {
	if bin := os.Getenv("BADBATCH_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(dir, "badbatch")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/badbatch")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the server: %v\n%s", err, out)
	}
	return bin
}

// process is one `badbatch serve` of a profile: its data directory and
// port survive restarts.
type process struct {
	t       *testing.T
	name    string
	bin     string
	dataDir string
	addr    string
	args    []string

	cmd    *exec.Cmd
	log    *bytes.Buffer
	exited chan error
}

func startProcess(t *testing.T, name, bin string, p profile, tokensFile string) *process {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("profile %s: free port: %v", name, err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	pr := &process{t: t, name: name, bin: bin, dataDir: t.TempDir(), addr: addr}
	pr.args = []string{"serve", "--addr", addr, "--data-dir", pr.dataDir, "--log-level", "warn"}
	if p.Tokens {
		pr.args = append(pr.args, "--tokens-file", tokensFile)
	}
	pr.args = append(pr.args, p.Args...)
	pr.start()
	return pr
}

func (p *process) URL() string { return "http://" + p.addr }

// start runs the server and waits for GET /readyz to answer 200.
func (p *process) start() {
	p.t.Helper()
	p.log = &bytes.Buffer{}
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("profile %s: starting %s: %v", p.name, p.bin, err)
	}
	p.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan<- error) { exited <- cmd.Wait() }(p.cmd, p.exited)
	deadline := time.Now().Add(30 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	for {
		resp, err := hc.Get(p.URL() + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-p.exited:
			p.exited <- err
			p.t.Fatalf("profile %s: the server exited (%v) before it was ready:\n%s", p.name, err, p.log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("profile %s: not ready after 30 s:\n%s", p.name, p.log)
		}
	}
}

// stop sends SIGTERM and waits for the process to exit (SIGKILL after
// 30 s).
func (p *process) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		p.t.Errorf("profile %s: no exit 30 s after SIGTERM:\n%s", p.name, p.log)
	}
	p.cmd = nil
}

func (p *process) restart() {
	p.t.Helper()
	p.stop()
	p.start()
}

// servers starts the profiles' servers on first use and builds one client
// per (profile, token).
type servers struct {
	t          *testing.T
	bin        string
	profiles   map[string]profile
	tokens     map[string]string
	tokensFile string

	mu      sync.Mutex
	running map[string]*process
	clients map[string]*client.Client
}

func loadServers(t *testing.T) *servers {
	s := &servers{t: t, running: map[string]*process{}, clients: map[string]*client.Client{}}
	readJSON(t, filepath.Join(conformanceDir, "servers.json"), &s.profiles)
	readJSON(t, filepath.Join(conformanceDir, "tokens.json"), &s.tokens)
	abs, err := filepath.Abs(filepath.Join(conformanceDir, "tokens.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s.tokensFile = abs
	s.bin = serverBinary(t, t.TempDir())
	t.Cleanup(s.close)
	return s
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// server returns the profile's running server.
func (s *servers) server(name string) *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.running[name]; ok {
		return p
	}
	prof, ok := s.profiles[name]
	if !ok {
		s.t.Fatalf("profile %q is not in servers.json", name)
	}
	p := startProcess(s.t, name, s.bin, prof, s.tokensFile)
	s.running[name] = p
	return p
}

// client returns the client of a profile's server for a token name ("":
// admin on a profile with tokens).
func (s *servers) client(profileName, tokenName string) (*client.Client, error) {
	p := s.server(profileName)
	prof := s.profiles[profileName]
	if tokenName == "" && prof.Tokens {
		tokenName = "admin"
	}
	key := profileName + "/" + tokenName
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[key]; ok {
		return c, nil
	}
	o := &client.Options{MaxRetries: prof.ClientOptions.MaxRetries}
	if tokenName != "" {
		tok, ok := s.tokens[tokenName]
		if !ok {
			return nil, fmt.Errorf("token %q is not in tokens.json", tokenName)
		}
		o.Token = tok
	}
	c, err := client.New(p.URL(), o)
	if err != nil {
		return nil, err
	}
	s.clients[key] = c
	return c, nil
}

func (s *servers) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		c.Close()
	}
	for _, p := range s.running {
		p.stop()
	}
}
