package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi"
	"github.com/badbatch/badbatch/httpapi/client"
	"github.com/badbatch/badbatch/storage"
	"github.com/badbatch/badbatch/storage/cluster"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	legacy "github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clusterNode is one node of an in-process cluster: a cluster.Node over
// the TCP transport on loopback, served by a real httpapi.Server.
type clusterNode struct {
	id     uint64
	node   *cluster.Node
	srv    *httpapi.Server
	url    string
	served chan error
}

func (n *clusterNode) close(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, n.srv.Shutdown(ctx))
	<-n.served
	require.NoError(t, n.node.Close())
}

func loopbackListeners(t testing.TB, n int) []net.Listener {
	ls := make([]net.Listener, n)
	for i := range ls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ls[i] = l
	}
	return ls
}

// startCluster starts n nodes and waits for a leader.
func startCluster(t *testing.T, n int) []*clusterNode {
	httpLs := loopbackListeners(t, n)
	clusterLs := loopbackListeners(t, n)
	peers := map[uint64]string{}
	for i, l := range clusterLs {
		peers[uint64(i+1)] = l.Addr().String()
		_ = l.Close() // the transport listens there
	}
	nodes := make([]*clusterNode, n)
	for i := range n {
		id := uint64(i + 1)
		co := cluster.DefaultOptions()
		co.NodeID, co.ClusterAddr, co.Peers = id, peers[id], peers
		co.HTTPURL = "http://" + httpLs[i].Addr().String()
		co.Secret = []byte("httpapi-cluster-test-secret")
		co.TickInterval = 10 * time.Millisecond
		co.Logger = quietLogger()
		so := storage.DefaultOptions()
		so.Logger = quietLogger()
		co.Store = so
		node, err := cluster.Open(t.TempDir(), co)
		require.NoError(t, err)
		opts := httpapi.DefaultOptions()
		opts.Addr = httpLs[i].Addr().String()
		opts.Logger = quietLogger()
		opts.Cluster = node
		srv, err := httpapi.New(node.Store(), opts)
		require.NoError(t, err)
		cn := &clusterNode{id: id, node: node, srv: srv, url: co.HTTPURL, served: make(chan error, 1)}
		go func(l net.Listener) { cn.served <- srv.Serve(l) }(httpLs[i])
		nodes[i] = cn
	}
	t.Cleanup(func() {
		for _, cn := range nodes {
			if cn != nil {
				cn.close(t)
			}
		}
	})
	require.Eventually(t, func() bool { return leaderOf(nodes) != nil }, 15*time.Second, 10*time.Millisecond)
	return nodes
}

func leaderOf(nodes []*clusterNode) *clusterNode {
	for _, n := range nodes {
		if n != nil && n.node.IsLeader() {
			return n
		}
	}
	return nil
}

func followerOf(nodes []*clusterNode) *clusterNode {
	for _, n := range nodes {
		if n != nil && !n.node.IsLeader() {
			return n
		}
	}
	return nil
}

func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestClusterHTTP: any node serves any request; followers redirect
// appends; the Go client follows; reads are linearizable on followers;
// consistency is validated; /v1/cluster names the leader.
func TestClusterHTTP(t *testing.T) {
	nodes := startCluster(t, 3)
	ld, f := leaderOf(nodes), followerOf(nodes)
	require.Eventually(t, func() bool {
		_, url := f.node.Leader()
		return url == ld.url
	}, 10*time.Second, 10*time.Millisecond, "the follower learned the leader's URL")

	// A raw POST to a follower: 307 to the same path on the leader.
	req, _ := http.NewRequest(http.MethodPost, f.url+"/v1/streams/c/records?x=1", bytes.NewReader([]byte(`{"value":1}`)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := noRedirect().Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	assert.Equal(t, ld.url+"/v1/streams/c/records?x=1", resp.Header.Get("Location"))
	assert.Equal(t, fmt.Sprint(ld.id), resp.Header.Get("Leader-Id"))

	// The Go client, pointed at a follower, just works.
	c, err := client.New(f.url, nil)
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	for i := range 10 {
		res, err := c.Append(ctx, "c", client.Record{Value: []byte(fmt.Sprint(i))}, nil)
		require.NoError(t, err)
		assert.Equal(t, uint64(i), res.FirstOffset)
	}
	// A linearizable read on every node sees all ten at once.
	for _, n := range nodes {
		resp, err := http.Get(n.url + "/v1/streams/c")
		require.NoError(t, err)
		var info struct {
			NextOffset uint64 `json:"next_offset"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&info))
		_ = resp.Body.Close()
		assert.Equal(t, uint64(10), info.NextOffset, "node %d", n.id)
		assert.NotEmpty(t, resp.Header.Get("Applied-Index"), "node %d", n.id)
	}
	resp, err = http.Get(f.url + "/v1/streams/c?consistency=any")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Get(f.url + "/v1/streams/c?consistency=strong")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	st, err := c.ClusterStatus(ctx)
	require.NoError(t, err)
	assert.Equal(t, ld.id, st.LeaderID)
	assert.Len(t, st.Nodes, 3)
	resp, err = http.Get(f.url + "/readyz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Get(ld.url + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Contains(t, string(metrics), "badbatch_cluster_is_leader 1")
	assert.Contains(t, string(metrics), "badbatch_cluster_healthy_members 3")

	// The cluster routes match the OpenAPI contract.
	doc := loadOpenAPI(t)
	doc.Servers = openapi3.Servers{{URL: f.url}}
	router, err := legacy.NewRouter(doc)
	require.NoError(t, err)
	for _, path := range []string{"/v1/cluster", "/v1/streams/c"} {
		req, _ := http.NewRequest(http.MethodGet, f.url+path, nil)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		route, params, err := router.FindRoute(req)
		require.NoError(t, err)
		assert.NoError(t, openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
			Status: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		}), path)
	}
}

// TestClusterNoLeader: with the majority gone, appends answer 503
// no_leader with Retry-After, linearizable reads too, consistency=any
// still reads, and /readyz turns 503.
func TestClusterNoLeader(t *testing.T) {
	nodes := startCluster(t, 3)
	ld := leaderOf(nodes)
	c, err := client.New(ld.url, nil)
	require.NoError(t, err)
	_, err = c.Append(context.Background(), "n", client.Record{Value: []byte("x")}, nil)
	require.NoError(t, err)
	c.Close()
	var survivor *clusterNode
	for i, n := range nodes {
		if n == ld {
			survivor = n
			continue
		}
		n.close(t)
		nodes[i] = nil
	}
	// CheckQuorum: the lone leader steps down within an election timeout.
	require.Eventually(t, func() bool { return !survivor.node.IsLeader() }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		resp, err := http.Post(survivor.url+"/v1/streams/n/records", "application/json", bytes.NewReader([]byte(`{"value":1}`)))
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" &&
			bytes.Contains(body, []byte(`"no_leader"`))
	}, 10*time.Second, 20*time.Millisecond)
	resp, err := http.Get(survivor.url + "/v1/streams/n")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	resp, err = http.Get(survivor.url + "/v1/streams/n?consistency=any")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a stale read still answers")
	resp, err = http.Get(survivor.url + "/readyz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

// TestClusterRoutesStandalone: the cluster routes answer 404 not_cluster
// on a standalone server, and ?consistency is still validated.
func TestClusterRoutesStandalone(t *testing.T) {
	ts := startServer(t, serverConfig{})
	resp, body := ts.do(http.MethodGet, "/v1/cluster", nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "not_cluster", decodeErr(t, body).Error.Code)
	resp, _ = ts.do(http.MethodGet, "/v1/streams?consistency=any", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = ts.do(http.MethodGet, "/v1/streams?consistency=eventual", nil)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}
