package cluster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// JoinRequest is the body of POST /v1/cluster/nodes: the node to add.
type JoinRequest struct {
	ID          uint64 `json:"id"`
	ClusterAddr string `json:"cluster_addr"`
	URL         string `json:"url,omitempty"`
}

// joinTimeout bounds the whole join request, elections included.
const joinTimeout = 30 * time.Second

// requestJoin asks the member at o.Join to add this node as a learner. It
// follows redirects to the leader and retries while there is none.
func requestJoin(o *Options) (JoinInfo, error) {
	body, _ := json.Marshal(JoinRequest{ID: o.NodeID, ClusterAddr: o.ClusterAddr, URL: o.HTTPURL})
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	target := strings.TrimRight(o.Join, "/") + "/v1/cluster/nodes"
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: keepJoinToken(JoinToken(o.Secret))}
	var last error
	for attempt := 0; ctx.Err() == nil; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return JoinInfo{}, fmt.Errorf("%w: join %s: %w", ErrBadConfig, o.Join, err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+JoinToken(o.Secret))
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			_ = resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated:
				var info JoinInfo
				if err := json.Unmarshal(b, &info); err != nil {
					return JoinInfo{}, fmt.Errorf("cluster: join %s: bad answer: %w", o.Join, err)
				}
				return info, nil
			case resp.StatusCode >= 500:
				last = fmt.Errorf("cluster: join %s: %s: %s", o.Join, resp.Status, b)
			default:
				return JoinInfo{}, fmt.Errorf("%w: join %s refused: %s: %s", ErrBadConfig, o.Join, resp.Status, b)
			}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(min(attempt+1, 10)) * 200 * time.Millisecond):
		}
	}
	return JoinInfo{}, fmt.Errorf("cluster: join %s: gave up after %v: %w", o.Join, joinTimeout, last)
}

// maxJoinRedirects bounds the redirects of one join request (net/http's
// default).
const maxJoinRedirects = 10

// keepJoinToken is the join request's redirect policy: a member that is not
// the leader answers 307 to the leader, with Leader-Id, and the leader is
// another host, on which net/http drops the Authorization header. It puts
// the join token back on such a redirect (never from https to http).
func keepJoinToken(token string) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxJoinRedirects {
			return fmt.Errorf("stopped after %d redirects", maxJoinRedirects)
		}
		prev := via[len(via)-1]
		if req.Response != nil && req.Response.Header.Get("Leader-Id") != "" &&
			(prev.URL.Scheme != "https" || req.URL.Scheme == "https") {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return nil
	}
}

// journalHasEntries reports whether the journal directory dir holds a
// segment.
func journalHasEntries(fs vfs.FS, dir string) (bool, error) {
	names, err := fs.List(dir)
	if err != nil {
		return false, err
	}
	for _, name := range names {
		if strings.HasSuffix(name, ".seg") {
			return true, nil
		}
	}
	return false, nil
}

// JoinToken is the bearer token a joining node presents to POST
// /v1/cluster/nodes: an HMAC-SHA256 of a fixed label under the cluster
// secret, so that only holders of the secret can add nodes when the HTTP
// API runs without tokens of its own.
func JoinToken(secret []byte) string {
	mac := hmac.New(sha256.New, secret)
	_, _ = io.WriteString(mac, "badbatch-join-v1")
	return hex.EncodeToString(mac.Sum(nil))
}

// JoinToken returns this cluster's join token.
func (n *Node) JoinToken() string { return JoinToken(n.opts.Secret) }

// AppliedIndex returns the highest log index this node's store applied.
func (n *Node) AppliedIndex() uint64 { return n.store.AppliedIndex() }
