package crashtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clusterNet wires the nodes of a procCluster together.
type clusterNet interface {
	// addrs allocates node id's addresses.
	addrs(t *testing.T, id uint64) nodeAddrs
	// name says which network ran, for the log.
	name() string
}

// partitionNet is a clusterNet that can cut a node off from the others.
// The test still reaches every node's HTTP port: only the cluster traffic
// between the nodes is cut.
type partitionNet interface {
	clusterNet
	// isolate cuts node id's cluster traffic to and from every other node.
	isolate(t *testing.T, id uint64)
	// heal undoes isolate.
	heal(t *testing.T, id uint64)
}

// nodeAddrs are one node's addresses and how its process is started.
type nodeAddrs struct {
	http    string // the HTTP listen address (host:port)
	cluster string // the cluster address peers dial
	listen  string // where the cluster port listens, when not cluster
	// wrap prefixes the command (ip netns exec NS).
	wrap []string
}

// loopbackNet is the default: node N listens on 127.0.0.(10+N), free
// ports found at run time. A loopback address of its own makes each node
// another host to an HTTP client, as on a real network: net/http, for one,
// drops the Authorization header on a redirect to another host.
type loopbackNet struct{}

func (loopbackNet) addrs(t *testing.T, id uint64) nodeAddrs {
	t.Helper()
	require.Less(t, id, uint64(200), "node ids up to 199")
	ip := fmt.Sprintf("127.0.0.%d", 10+id)
	return nodeAddrs{http: freeAddrOn(t, ip), cluster: freeAddrOn(t, ip)}
}

func (loopbackNet) name() string { return "loopback (127.0.0.(10+N) for node N)" }

// newPartitionNet returns the network namespaces when they can be used (as
// root, with `ip netns`), else the TCP proxies on loopback.
// BADBATCH_CLUSTER_NET=netns or =proxy chooses one: netns then fails the
// test if it cannot be set up.
func newPartitionNet(t *testing.T) partitionNet {
	t.Helper()
	want := os.Getenv("BADBATCH_CLUSTER_NET")
	switch want {
	case "", "netns", "proxy":
	default:
		t.Fatalf("BADBATCH_CLUSTER_NET=%q: want netns or proxy", want)
	}
	if want != "proxy" {
		n, err := newNetnsNet(t)
		if err == nil {
			return n
		}
		require.NotEqual(t, "netns", want, "BADBATCH_CLUSTER_NET=netns: %v", err)
		t.Logf("network namespaces unavailable (%v): TCP proxies on loopback instead", err)
	}
	return newProxyNet(t)
}

// The network namespaces. Each node runs in a namespace of its own with two
// links, each a veth pair into a bridge in the root namespace:
//
//	root namespace                              namespace of node N
//	bridge bbC<tag> (no address)   <-veth->   10.231.0.N/25       cluster port :7000
//	bridge bbH<tag> 10.231.0.254   <-veth->   10.231.0.(128+N)/25  HTTP port :8080
//
// The cluster bridge carries only node-to-node raft traffic; the test
// reaches the HTTP ports through the other bridge. isolate sets node N's
// cluster veth down in the root namespace: N keeps answering HTTP but
// exchanges nothing with its peers. 10.231.0.0/24 is the tests' own range,
// inside this machine only; a file lock serializes the test runs that use
// it, and each run first removes what a killed run may have left behind.
type netnsNet struct {
	tag  string
	lock *os.File
	mu   sync.Mutex
	made map[uint64]bool
}

const (
	netnsLock      = "/tmp/badbatch-crashtest-netns.lock"
	netnsPrefix    = "bbns-"
	netnsClientGW  = "10.231.0.254"
	netnsClusterPt = 7000
	netnsHTTPPort  = 8080
)

func newNetnsNet(t *testing.T) (*netnsNet, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, errors.New("not root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, err
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns list: %w: %s", err, out)
	}
	f, err := os.OpenFile(netnsLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", netnsLock, err)
	}
	n := &netnsNet{tag: fmt.Sprintf("%05d", os.Getpid()%100000), lock: f, made: map[uint64]bool{}}
	n.removeAll(t)
	setup := [][]string{
		{"link", "add", n.clusterBridge(), "type", "bridge"},
		{"link", "set", n.clusterBridge(), "up"},
		{"link", "add", n.clientBridge(), "type", "bridge"},
		{"addr", "add", netnsClientGW + "/25", "dev", n.clientBridge()},
		{"link", "set", n.clientBridge(), "up"},
	}
	for _, args := range setup {
		if err := ipCmd(args...); err != nil {
			n.removeAll(t)
			n.unlock()
			return nil, err
		}
	}
	t.Cleanup(func() {
		n.removeAll(t)
		n.unlock()
	})
	return n, nil
}

func (n *netnsNet) unlock() {
	_ = syscall.Flock(int(n.lock.Fd()), syscall.LOCK_UN)
	_ = n.lock.Close()
}

func (n *netnsNet) clusterBridge() string { return "bbC" + n.tag }
func (n *netnsNet) clientBridge() string  { return "bbH" + n.tag }

// clusterVeth and clientVeth name node id's veths in the root namespace
// (the namespace's end adds "p").
func (n *netnsNet) clusterVeth(id uint64) string { return fmt.Sprintf("bbc%s%d", n.tag, id) }
func (n *netnsNet) clientVeth(id uint64) string  { return fmt.Sprintf("bbh%s%d", n.tag, id) }
func (n *netnsNet) ns(id uint64) string          { return fmt.Sprintf("%s%s-%d", netnsPrefix, n.tag, id) }

func (n *netnsNet) name() string {
	return "network namespaces (" + netnsPrefix + n.tag + "-N, bridges " + n.clusterBridge() + " and " + n.clientBridge() + ", 10.231.0.0/24)"
}

func (n *netnsNet) addrs(t *testing.T, id uint64) nodeAddrs {
	t.Helper()
	require.Less(t, id, uint64(100), "node ids up to 99")
	ns := n.ns(id)
	clusterIP, clientIP := fmt.Sprintf("10.231.0.%d", id), fmt.Sprintf("10.231.0.%d", 128+id)
	cv, hv := n.clusterVeth(id), n.clientVeth(id)
	steps := [][]string{
		{"netns", "add", ns},
		{"link", "add", cv, "type", "veth", "peer", "name", cv + "p", "netns", ns},
		{"link", "set", cv, "master", n.clusterBridge(), "up"},
		{"link", "add", hv, "type", "veth", "peer", "name", hv + "p", "netns", ns},
		{"link", "set", hv, "master", n.clientBridge(), "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "addr", "add", clusterIP + "/25", "dev", cv + "p"},
		{"-n", ns, "link", "set", cv + "p", "up"},
		{"-n", ns, "addr", "add", clientIP + "/25", "dev", hv + "p"},
		{"-n", ns, "link", "set", hv + "p", "up"},
	}
	n.mu.Lock()
	n.made[id] = true
	n.mu.Unlock()
	for _, args := range steps {
		require.NoError(t, ipCmd(args...))
	}
	return nodeAddrs{
		http:    fmt.Sprintf("%s:%d", clientIP, netnsHTTPPort),
		cluster: fmt.Sprintf("%s:%d", clusterIP, netnsClusterPt),
		wrap:    []string{"ip", "netns", "exec", ns},
	}
}

func (n *netnsNet) isolate(t *testing.T, id uint64) {
	t.Helper()
	require.NoError(t, ipCmd("link", "set", n.clusterVeth(id), "down"))
}

func (n *netnsNet) heal(t *testing.T, id uint64) {
	t.Helper()
	require.NoError(t, ipCmd("link", "set", n.clusterVeth(id), "up"))
}

// removeAll deletes every namespace and link of this test's prefixes: this
// run's, and any a killed run left (the lock is held, so no other run is
// using them).
func (n *netnsNet) removeAll(t *testing.T) {
	// Links first (a veth's deletion takes its peer in the namespace with
	// it), then the namespaces.
	out, _ := exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if len(name) >= 4 && (strings.HasPrefix(name, "bbC") || strings.HasPrefix(name, "bbH") || strings.HasPrefix(name, "bbc") || strings.HasPrefix(name, "bbh")) && isDigits(name[3:]) {
			if err := ipCmd("link", "del", name); err != nil {
				t.Logf("cleanup: %v", err)
			}
		}
	}
	out, _ = exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], netnsPrefix) {
			if err := ipCmd("netns", "del", f[0]); err != nil {
				t.Logf("cleanup: %v", err)
			}
		}
	}
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// ipCmd runs `ip ARGS...`.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// The TCP proxies, for when network namespaces are unavailable. Node N's
// cluster port listens on a loopback port of its own (--cluster-listen-addr)
// and the membership names a proxy in front of it, so every connection to N
// passes through N's proxy. Connections between two nodes are one per
// direction (storage/cluster/transport/doc.go), and the proxy reads the
// dialer's node id from the hello that opens each one (its fixed part:
// "BBCT", then from as a little-endian u64 at bytes 16 to 24), so it can
// cut the links of one node in both directions and refuse new ones.
type proxyNet struct {
	mu      sync.Mutex
	proxies map[uint64]*proxy
	cut     map[uint64]bool
	wg      sync.WaitGroup
}

func newProxyNet(t *testing.T) *proxyNet {
	n := &proxyNet{proxies: map[uint64]*proxy{}, cut: map[uint64]bool{}}
	t.Cleanup(n.close)
	return n
}

func (n *proxyNet) name() string {
	return "TCP proxies on loopback (one in front of each cluster port)"
}

// proxy forwards to one node's cluster port.
type proxy struct {
	to      uint64
	ln      net.Listener
	backend string
	// conns are the open links, by the dialer's node id.
	conns map[net.Conn]uint64
}

func (n *proxyNet) addrs(t *testing.T, id uint64) nodeAddrs {
	t.Helper()
	ip := fmt.Sprintf("127.0.0.%d", 10+id)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	require.NoError(t, err)
	p := &proxy{to: id, ln: ln, backend: freeAddrOn(t, ip), conns: map[net.Conn]uint64{}}
	n.mu.Lock()
	n.proxies[id] = p
	n.mu.Unlock()
	n.wg.Go(func() { n.accept(p) })
	return nodeAddrs{http: freeAddrOn(t, ip), cluster: ln.Addr().String(), listen: p.backend}
}

func (n *proxyNet) accept(p *proxy) {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		n.wg.Go(func() { n.forward(p, c) })
	}
}

// helloFrom reads the fixed part of a transport hello and returns it with
// the dialer's node id.
func helloFrom(c net.Conn) ([]byte, uint64, error) {
	const fixed = 68
	b := make([]byte, fixed)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, 0, err
	}
	_ = c.SetReadDeadline(time.Time{})
	if string(b[:4]) != "BBCT" {
		return nil, 0, fmt.Errorf("not a hello: % x", b[:4])
	}
	return b, binary.LittleEndian.Uint64(b[16:24]), nil
}

func (n *proxyNet) forward(p *proxy, c net.Conn) {
	hello, from, err := helloFrom(c)
	if err != nil {
		c.Close()
		return
	}
	b, err := net.DialTimeout("tcp", p.backend, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	n.mu.Lock()
	if n.cut[from] || n.cut[p.to] || p.conns == nil {
		n.mu.Unlock()
		c.Close()
		b.Close()
		return
	}
	p.conns[c], p.conns[b] = from, from
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(p.conns, c)
		delete(p.conns, b)
		n.mu.Unlock()
		c.Close()
		b.Close()
	}()
	if _, err := b.Write(hello); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-closes are not forwarded: the first side to end ends both.
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(b, c)
	go pipe(c, b)
	<-done
	<-done
}

func (n *proxyNet) isolate(t *testing.T, id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[id] = true
	for _, p := range n.proxies {
		for c, from := range p.conns {
			if from == id || p.to == id {
				c.Close()
			}
		}
	}
}

func (n *proxyNet) heal(t *testing.T, id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.cut, id)
}

// close stops every proxy and waits for its goroutines.
func (n *proxyNet) close() {
	n.mu.Lock()
	for _, p := range n.proxies {
		p.ln.Close()
		for c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
	n.mu.Unlock()
	n.wg.Wait()
}
