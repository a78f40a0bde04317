package cluster

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestJoinThroughFollower: --join names a member that is not the leader;
// it answers 307 to the leader, another host. net/http dropped the join
// token on that redirect, so the join was refused with 401 (found by the
// process tests once the nodes had addresses of their own). The join
// token must reach the leader.
func TestJoinThroughFollower(t *testing.T) {
	want := "Bearer " + JoinToken(testSecret)
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Header.Get("Authorization") != want {
			http.Error(w, `{"error":{"code":"unauthorized"}}`, http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(JoinInfo{ClusterID: 7, Members: []member{{ID: 1, ClusterAddr: "127.0.0.1:1"}}})
	}))
	defer leader.Close()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(leader.URL, "http://"))
	require.NoError(t, err)
	follower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Leader-Id", "1")
		w.Header().Set("Location", "http://localhost:"+port+r.URL.RequestURI())
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	defer follower.Close()

	o := DefaultOptions()
	o.NodeID, o.ClusterAddr, o.Secret, o.Join = 4, "127.0.0.1:4", testSecret, follower.URL
	c, err := o.withDefaults()
	require.NoError(t, err)
	info, err := requestJoin(&c)
	require.NoError(t, err)
	assert.EqualValues(t, 7, info.ClusterID)
}
