package client_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/badbatch/badbatch/httpapi/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRedirectToLeaderKeepsToken: a cluster follower answers an append
// with 307 to the leader, which is another host. net/http drops the
// Authorization header on such a redirect, so every append sent to a
// follower of a cluster with tokens ended in 401 (found by the process
// tests once the nodes had addresses of their own). The client keeps the
// token when the answer names the leader (Leader-Id), and only then.
func TestRedirectToLeaderKeepsToken(t *testing.T) {
	const token = "tok-0123456789abcdefghij"
	var leaderSaw atomic.Value
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaderSaw.Store(r.Header.Get("Authorization"))
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"code":"unauthorized","message":"missing bearer token"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"stream":"s","first_offset":0,"last_offset":0,"count":1,"durability":"fsynced"}`)
	}))
	defer leader.Close()
	// The leader by another name than the follower's 127.0.0.1: net/http
	// compares host names, not addresses.
	_, port, err := net.SplitHostPort(strings.TrimPrefix(leader.URL, "http://"))
	require.NoError(t, err)
	leaderURL := "http://localhost:" + port

	for _, tc := range []struct {
		name     string
		leaderID string
		want     string // what the leader sees
		ok       bool
	}{
		{"follower names its leader", "2", "Bearer " + token, true},
		{"a redirect that names no leader", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			follower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.leaderID != "" {
					w.Header().Set("Leader-Id", tc.leaderID)
				}
				w.Header().Set("Location", leaderURL+r.URL.RequestURI())
				w.WriteHeader(http.StatusTemporaryRedirect)
			}))
			defer follower.Close()
			o := client.DefaultOptions()
			o.Token, o.MaxRetries = token, new(0)
			c, err := client.New(follower.URL, o)
			require.NoError(t, err)
			defer c.Close()
			leaderSaw.Store("")
			res, err := c.Append(context.Background(), "s", client.Record{Value: []byte("v")}, nil)
			assert.Equal(t, tc.want, leaderSaw.Load())
			if tc.ok {
				require.NoError(t, err)
				assert.Equal(t, 1, res.Count)
			} else {
				assert.ErrorIs(t, err, client.ErrUnauthorized)
			}
		})
	}
}

// TestRedirectPolicyOfACallersClient: the caller's own redirect policy
// still decides, and New leaves the caller's http.Client as it was.
func TestRedirectPolicyOfACallersClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Leader-Id", "2")
		w.Header().Set("Location", "/elsewhere")
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	var asked atomic.Int64
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		asked.Add(1)
		return http.ErrUseLastResponse
	}}
	before := reflect.ValueOf(hc.CheckRedirect).Pointer()
	o := client.DefaultOptions()
	o.HTTPClient, o.MaxRetries = hc, new(0)
	c, err := client.New(srv.URL, o)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Append(context.Background(), "s", client.Record{Value: []byte("v")}, nil)
	var apiErr *client.Error
	require.ErrorAs(t, err, &apiErr, "the 307 is the answer")
	assert.Equal(t, http.StatusTemporaryRedirect, apiErr.Status)
	assert.EqualValues(t, 1, asked.Load(), "the caller's policy was asked")
	assert.Equal(t, before, reflect.ValueOf(hc.CheckRedirect).Pointer(), "the caller's client is not modified")
}
