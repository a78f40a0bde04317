package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/badbatch/badbatch"
	"github.com/badbatch/badbatch/storage"
	"github.com/badbatch/badbatch/storage/cluster"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Cluster is what the server needs of a cluster node. *cluster.Node
// implements it; nil in Options means standalone. Implementations must be
// safe for concurrent use.
type Cluster interface {
	Status() cluster.Status
	IsLeader() bool
	Ready() bool
	AppliedIndex() uint64
	// ReadIndex returns once this node has applied everything committed
	// before the call (a linearizable read may follow).
	ReadIndex(ctx context.Context) error
	AddNode(ctx context.Context, id uint64, clusterAddr, url string) (cluster.JoinInfo, error)
	RemoveNode(ctx context.Context, id uint64) error
	// JoinToken is the bearer token a joining node presents (derived from
	// the cluster secret).
	JoinToken() string
}

var _ Cluster = (*cluster.Node)(nil)

// Cluster error codes and headers.
const (
	// CodeNoLeader (503, with Retry-After): no leader is known, or the
	// leader changed before the append was replicated (nothing stored).
	CodeNoLeader = badbatch.CodeNoLeader
	// CodeNotCluster (404): the cluster routes on a standalone server.
	CodeNotCluster = badbatch.CodeNotCluster
	// headerAppliedIndex tells, on every read in cluster mode, how far the
	// answering node had applied the log.
	headerAppliedIndex = "Applied-Index"
	headerLeaderID     = "Leader-Id"
)

// readIndexTimeout bounds the wait of a linearizable read for a leader.
const readIndexTimeout = 5 * time.Second

// noLeader is the 503 for a request that needs a leader while none is
// known.
func noLeader(c echo.Context, msg string) error {
	c.Response().Header().Set("Retry-After", "1")
	return newError(http.StatusServiceUnavailable, CodeNoLeader, "%s", msg)
}

// toLeader answers a request that only the leader serves: 307 to the
// leader's URL (same path and query; clients resend the body), or 503
// no_leader while none is known.
func (s *Server) toLeader(c echo.Context) error {
	st := s.opts.Cluster.Status()
	if st.LeaderID == 0 || st.LeaderID == st.NodeID || st.LeaderURL == "" {
		return noLeader(c, "no leader is known; retry shortly")
	}
	h := c.Response().Header()
	h.Set(echo.HeaderLocation, strings.TrimRight(st.LeaderURL, "/")+c.Request().URL.RequestURI())
	h.Set(headerLeaderID, strconv.FormatUint(st.LeaderID, 10))
	return c.JSON(http.StatusTemporaryRedirect, errorBody{Error: &apiError{
		Code: CodeNotLeader, Message: "node " + strconv.FormatUint(st.NodeID, 10) + " is a follower; the leader is node " + strconv.FormatUint(st.LeaderID, 10),
	}})
}

// leaderOnly sends the request to the leader unless this node is it (or
// the server is standalone). It returns (nil, false) to go on.
func (s *Server) leaderOnly(c echo.Context) (error, bool) {
	if s.opts.Cluster == nil || s.opts.Cluster.IsLeader() {
		return nil, false
	}
	return s.toLeader(c), true
}

// clusterAppendError maps the cluster's append errors: ErrNotLeader and
// ErrNotCommitted stored nothing, so the client is sent to the leader (or
// told to retry). ok is false for any other error.
func (s *Server) clusterAppendError(c echo.Context, err error) (error, bool) {
	if s.opts.Cluster == nil {
		return nil, false
	}
	if errors.Is(err, storage.ErrNotLeader) || errors.Is(err, storage.ErrNotCommitted) {
		return s.toLeader(c), true
	}
	return nil, false
}

// consistency is route middleware for reads: it validates ?consistency=
// (linearizable, the default, or any) and, in cluster mode, makes a
// linearizable read wait for raft's ReadIndex, then names the applied
// index in the answer.
func (s *Server) consistency(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		mode := c.QueryParam("consistency")
		switch mode {
		case "", "linearizable", "any":
		default:
			return badRequest("consistency %q: want linearizable or any", mode)
		}
		if cl := s.opts.Cluster; cl != nil {
			if mode != "any" {
				if st := cl.Status(); st.LeaderID == 0 {
					return noLeader(c, "a linearizable read needs a leader and none is known (or read with consistency=any)")
				}
				ctx, cancel := context.WithTimeout(c.Request().Context(), readIndexTimeout)
				err := cl.ReadIndex(ctx)
				cancel()
				if err != nil {
					return noLeader(c, "a linearizable read needs a leader: "+err.Error()+" (or read with consistency=any)")
				}
			}
			c.Response().Header().Set(headerAppliedIndex, strconv.FormatUint(cl.AppliedIndex(), 10))
		}
		return next(c)
	}
}

func (s *Server) notCluster() error {
	return newError(http.StatusNotFound, CodeNotCluster, "this server runs standalone (start it with --peers or --join)")
}

// handleClusterStatus is GET /v1/cluster.
func (s *Server) handleClusterStatus(c echo.Context) error {
	if s.opts.Cluster == nil {
		return s.notCluster()
	}
	if err := s.authorize(c, PermRead, ""); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.opts.Cluster.Status())
}

// maxJoinBody bounds POST /v1/cluster/nodes.
const maxJoinBody = 4 << 10

// handleAddNode is POST /v1/cluster/nodes: add a node as a learner (it is
// promoted once caught up). Admin, or a joining node's join token.
func (s *Server) handleAddNode(c echo.Context) error {
	cl := s.opts.Cluster
	if cl == nil {
		return s.notCluster()
	}
	if !s.isJoinToken(c) {
		if err := s.authorize(c, PermAdmin, ""); err != nil {
			return err
		}
	}
	body, err := s.readBody(c, maxJoinBody)
	if err != nil {
		return err
	}
	var jr cluster.JoinRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&jr); err != nil {
		return badRequest("bad JSON body: %v", jsonErrorText(err))
	}
	if jr.ID == 0 || jr.ClusterAddr == "" {
		return badRequest(`want {"id": N, "cluster_addr": "host:port", "url": "http://..."} with a non-zero id`)
	}
	if err, done := s.leaderOnly(c); done {
		return err
	}
	info, err := cl.AddNode(c.Request().Context(), jr.ID, jr.ClusterAddr, jr.URL)
	if err != nil {
		return s.membershipError(c, err)
	}
	return c.JSON(http.StatusOK, info)
}

// handleRemoveNode is DELETE /v1/cluster/nodes/:id. Admin.
func (s *Server) handleRemoveNode(c echo.Context) error {
	cl := s.opts.Cluster
	if cl == nil {
		return s.notCluster()
	}
	if err := s.authorize(c, PermAdmin, ""); err != nil {
		return err
	}
	id, err := strconv.ParseUint(c.Param("id"), 10, 64)
	if err != nil || id == 0 {
		return badRequest("node id %q: want a positive integer", c.Param("id"))
	}
	if err, done := s.leaderOnly(c); done {
		return err
	}
	if err := cl.RemoveNode(c.Request().Context(), id); err != nil {
		return s.membershipError(c, err)
	}
	return c.JSON(http.StatusOK, cl.Status())
}

func (s *Server) membershipError(c echo.Context, err error) error {
	switch {
	case errors.Is(err, storage.ErrNotLeader):
		return s.toLeader(c)
	case errors.Is(err, cluster.ErrBadConfig):
		return newError(http.StatusConflict, CodeMembershipConflict, "%s", err.Error())
	default:
		return storeError(err)
	}
}

// isJoinToken reports whether the request carries the cluster's join
// token (compared in constant time).
func (s *Server) isJoinToken(c echo.Context) bool {
	tok, ok := bearerToken(c.Request())
	want := s.opts.Cluster.JoinToken()
	return ok && want != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(want)) == 1
}

// registerClusterMetrics adds the cluster gauges to the server's registry,
// read from the node's status at scrape time.
func (s *Server) registerClusterMetrics() {
	cl := s.opts.Cluster
	gauge := func(name, help string, f func(st cluster.Status) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "badbatch", Subsystem: "cluster", Name: name, Help: help},
			func() float64 { return f(cl.Status()) })
	}
	for _, c := range []prometheus.Collector{
		gauge("term", "The raft term this node is in.", func(st cluster.Status) float64 { return float64(st.Term) }),
		gauge("leader_id", "The id of the leader this node knows (0: none).", func(st cluster.Status) float64 { return float64(st.LeaderID) }),
		gauge("is_leader", "1 on the leader, else 0.", func(st cluster.Status) float64 {
			if st.LeaderID != 0 && st.LeaderID == st.NodeID {
				return 1
			}
			return 0
		}),
		gauge("commit_index", "The highest log index this node knows committed.", func(st cluster.Status) float64 { return float64(st.CommitIndex) }),
		gauge("applied_index", "The highest log index this node's store applied.", func(st cluster.Status) float64 { return float64(st.AppliedIndex) }),
		gauge("members", "Members of the configuration (voters and learners).", func(st cluster.Status) float64 { return float64(len(st.Nodes)) }),
		gauge("healthy_members", "Members this node has a live authenticated connection to, itself included.", func(st cluster.Status) float64 {
			n := 0
			for _, m := range st.Nodes {
				if m.Healthy {
					n++
				}
			}
			return float64(n)
		}),
	} {
		if err := s.metrics.registry.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				s.logger.Warn("cluster metrics", "err", err)
			}
		}
	}
}
