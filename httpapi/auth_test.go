package httpapi_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/badbatch/badbatch/httpapi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	tokReader   = "reader-token-0123456789"
	tokWriter   = "writer-token-0123456789"
	tokBoth     = "readwrite-token-0123456"
	tokAdmin    = "admin-token-0123456789a"
	tokPrefixed = "team-a-token-0123456789"
)

const tokensFile = `# badbatch tokens: TOKEN PERMISSIONS [PREFIXES]
reader-token-0123456789   read
writer-token-0123456789   append        *
readwrite-token-0123456   read,append
admin-token-0123456789a   admin
team-a-token-0123456789   read,append   team-a.,shared-
`

func authServer(t *testing.T, mutate func(*httpapi.Options)) *testServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(path, []byte(tokensFile), 0o600))
	tokens, err := httpapi.LoadTokens(path)
	require.NoError(t, err)
	require.Equal(t, 5, tokens.Len())
	return startServer(t, serverConfig{opts: func(o *httpapi.Options) {
		o.Tokens = tokens
		if mutate != nil {
			mutate(o)
		}
	}})
}

// TestAuthMatrix checks every route class against every kind of token.
func TestAuthMatrix(t *testing.T) {
	ts := authServer(t, nil)
	for _, s := range []string{"open", "team-a.x"} {
		resp, body := ts.postJSON(s, `{"value":1}`, "Authorization", "Bearer "+tokAdmin)
		require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	}
	require.NoError(t, ts.Store.SetCursor(context.Background(), "open", "c", 0))
	require.NoError(t, ts.Store.SetCursor(context.Background(), "team-a.x", "c", 0))

	type req struct {
		method, path, body string
	}
	appendTo := func(s string) req { return req{http.MethodPost, "/v1/streams/" + s + "/records", `{"value":2}`} }
	readFrom := func(s string) req { return req{http.MethodGet, "/v1/streams/" + s + "/records", ""} }
	routes := map[string]req{
		"append open":       appendTo("open"),
		"append team-a":     appendTo("team-a.x"),
		"read open":         readFrom("open"),
		"read team-a":       readFrom("team-a.x"),
		"info open":         {http.MethodGet, "/v1/streams/open", ""},
		"cursor put open":   {http.MethodPut, "/v1/streams/open/cursors/c", `{"offset":0}`},
		"cursor get team-a": {http.MethodGet, "/v1/streams/team-a.x/cursors/c", ""},
		"list":              {http.MethodGet, "/v1/streams", ""},
		"global":            {http.MethodGet, "/v1/records", ""},
		"metrics":           {http.MethodGet, "/metrics", ""},
		"healthz":           {http.MethodGet, "/healthz", ""},
		"readyz":            {http.MethodGet, "/readyz", ""},
		"openapi":           {http.MethodGet, "/v1/openapi.yaml", ""},
	}
	ok := func(r string) int {
		switch {
		case strings.HasPrefix(r, "append"):
			return http.StatusCreated
		default:
			return http.StatusOK
		}
	}
	public := map[string]bool{"healthz": true, "readyz": true, "openapi": true}
	// want[token][route] is the expected status; missing means 403 unless
	// the route is public.
	allow := map[string][]string{
		"none":      {},
		"unknown":   {},
		tokReader:   {"read open", "read team-a", "info open", "cursor put open", "cursor get team-a", "list", "global"},
		tokWriter:   {"append open", "append team-a"},
		tokBoth:     {"append open", "append team-a", "read open", "read team-a", "info open", "cursor put open", "cursor get team-a", "list", "global"},
		tokAdmin:    {"append open", "append team-a", "read open", "read team-a", "info open", "cursor put open", "cursor get team-a", "list", "global", "metrics"},
		tokPrefixed: {"append team-a", "read team-a", "cursor get team-a", "list", "global"},
	}
	for token, allowed := range allow {
		allowedSet := map[string]bool{}
		for _, r := range allowed {
			allowedSet[r] = true
		}
		for name, r := range routes {
			t.Run(tokenName(token)+"/"+name, func(t *testing.T) {
				var headers []string
				switch token {
				case "none":
				case "unknown":
					headers = []string{"Authorization", "Bearer not-a-known-token-at-all"}
				default:
					headers = []string{"Authorization", "Bearer " + token}
				}
				if r.body != "" {
					headers = append(headers, "Content-Type", "application/json")
				}
				before := ts.snapshot()
				var body []byte
				if r.body != "" {
					body = []byte(r.body)
				}
				resp, respBody := ts.do(r.method, r.path, body, headers...)
				want := http.StatusForbidden
				switch {
				case public[name] || allowedSet[name]:
					want = ok(name)
				case token == "none" || token == "unknown":
					want = http.StatusUnauthorized
				}
				require.Equal(t, want, resp.StatusCode, "%s", respBody)
				if want >= 400 {
					e := decodeErr(t, respBody)
					assert.Equal(t, map[int]string{401: "unauthorized", 403: "forbidden"}[want], e.Error.Code)
					assert.Equal(t, before, ts.snapshot(), "a refused request changed the store")
				}
				if want == http.StatusUnauthorized {
					assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
				}
			})
		}
	}
}

func tokenName(tok string) string {
	if i := strings.Index(tok, "-token"); i > 0 {
		return tok[:i]
	}
	return tok
}

func TestPrefixedTokenSeesOnlyItsStreams(t *testing.T) {
	ts := authServer(t, nil)
	for _, s := range []string{"open", "team-a.x", "shared-1"} {
		resp, body := ts.postJSON(s, `{"value":1}`, "Authorization", "Bearer "+tokAdmin)
		require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	}
	resp, body := ts.do(http.MethodGet, "/v1/streams", nil, "Authorization", "Bearer "+tokPrefixed)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), `"team-a.x"`)
	assert.Contains(t, string(body), `"shared-1"`)
	assert.NotContains(t, string(body), `"open"`)

	resp, body = ts.do(http.MethodGet, "/v1/records", nil, "Authorization", "Bearer "+tokPrefixed)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), `"stream":"team-a.x"`)
	assert.NotContains(t, string(body), `"stream":"open"`)
	assert.Contains(t, string(body), `"next_seq":3`, "next_seq covers the records filtered out")
}

func TestParseTokensErrors(t *testing.T) {
	cases := map[string]string{
		"empty":         "# nothing\n",
		"short token":   "short read\n",
		"unknown perm":  "abcdefghijklmnopq write\n",
		"missing perms": "abcdefghijklmnopq\n",
		"too many":      "abcdefghijklmnopq read a b\n",
		"duplicate":     "abcdefghijklmnopq read\nabcdefghijklmnopq append\n",
		"empty prefix":  "abcdefghijklmnopq read a,,b\n",
		"non-ascii":     "abcdefghijklmnopé read\n",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := httpapi.ParseTokens(strings.NewReader(text))
			assert.ErrorIs(t, err, httpapi.ErrTokensFile)
		})
	}
}

func TestRateLimit(t *testing.T) {
	// One token per 1000 seconds: after the burst, the next request is
	// refused whatever the machine's speed.
	ts := authServer(t, func(o *httpapi.Options) {
		o.RateLimit = 0.001
		o.RateBurst = 3
	})
	get := func(token string) *http.Response {
		resp, body := ts.do(http.MethodGet, "/v1/streams", nil, "Authorization", "Bearer "+token)
		if resp.StatusCode == http.StatusTooManyRequests {
			assert.Equal(t, "rate_limited", decodeErr(t, body).Error.Code)
		}
		return resp
	}
	for i := 0; i < 3; i++ {
		require.Equal(t, http.StatusOK, get(tokReader).StatusCode, "request %d is within the burst", i)
	}
	resp := get(tokReader)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, secs, 1)
	// Another token has its own bucket.
	assert.Equal(t, http.StatusOK, get(tokBoth).StatusCode)
	// Requests without a valid token are limited per client IP.
	for i := 0; i < 3; i++ {
		r, _ := ts.do(http.MethodGet, "/v1/streams", nil)
		require.Equal(t, http.StatusUnauthorized, r.StatusCode)
	}
	r, _ := ts.do(http.MethodGet, "/v1/streams", nil)
	assert.Equal(t, http.StatusTooManyRequests, r.StatusCode)
	// Health checks are never limited.
	r, _ = ts.do(http.MethodGet, "/healthz", nil)
	assert.Equal(t, http.StatusOK, r.StatusCode)
}

func TestCheckListen(t *testing.T) {
	cases := []struct {
		addr           string
		auth, insecure bool
		ok             bool
	}{
		{"127.0.0.1:8080", false, false, true},
		{"localhost:8080", false, false, true},
		{"[::1]:8080", false, false, true},
		{"0.0.0.0:8080", false, false, false},
		{":8080", false, false, false},
		{"192.0.2.1:8080", false, false, false},
		{"0.0.0.0:8080", true, false, true},
		{"0.0.0.0:8080", false, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			err := httpapi.CheckListen(tc.addr, tc.auth, tc.insecure)
			if tc.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, httpapi.ErrInsecureListen)
			}
		})
	}
}
