package client

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
)

// ClusterStatus is GET /v1/cluster: a cluster node's view of the cluster.
type ClusterStatus struct {
	NodeID       uint64 `json:"node_id"`
	ClusterID    uint64 `json:"cluster_id"`
	LeaderID     uint64 `json:"leader_id"` // 0 while no leader is known
	LeaderURL    string `json:"leader_url,omitempty"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	Role         string `json:"role"`
	Nodes        []struct {
		ID          uint64 `json:"id"`
		URL         string `json:"url"`
		ClusterAddr string `json:"cluster_addr"`
		Role        string `json:"role"`
		MatchIndex  uint64 `json:"match_index"`
		Healthy     bool   `json:"healthy"`
	} `json:"nodes"`
	Error string `json:"error,omitempty"`
}

// ClusterStatus returns the answering node's view of the cluster (a
// standalone server answers 404 not_cluster).
func (c *Client) ClusterStatus(ctx context.Context) (ClusterStatus, error) {
	var st ClusterStatus
	err := c.doJSON(ctx, request{method: http.MethodGet, path: "/v1/cluster", safety: read}, &st)
	return st, err
}

// AddNode adds node id, reachable by peers at clusterAddr and by clients
// at url, as a learner; the leader promotes it to voter once it caught up.
// Start the node itself with --join. Needs the admin permission.
func (c *Client) AddNode(ctx context.Context, id uint64, clusterAddr, url string) error {
	body, err := json.Marshal(map[string]any{"id": id, "cluster_addr": clusterAddr, "url": url})
	if err != nil {
		return err
	}
	h := http.Header{"Content-Type": []string{"application/json"}}
	return c.doJSON(ctx, request{method: http.MethodPost, path: "/v1/cluster/nodes", header: h, body: body, safety: unsafeWrite}, nil)
}

// RemoveNode removes node id from the cluster. Needs the admin permission.
func (c *Client) RemoveNode(ctx context.Context, id uint64) error {
	return c.doJSON(ctx, request{method: http.MethodDelete, path: "/v1/cluster/nodes/" + strconv.FormatUint(id, 10), safety: unsafeWrite}, nil)
}
