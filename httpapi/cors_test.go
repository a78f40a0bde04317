package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/badbatch/badbatch/httpapi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const corsOrigin = "http://app.example:3000"

func preflight(ts *testServer, origin, method, headers string) *http.Response {
	resp, _ := ts.do(http.MethodOptions, "/v1/streams/s/records", nil,
		"Origin", origin, "Access-Control-Request-Method", method, "Access-Control-Request-Headers", headers)
	return resp
}

func headerSet(v string) map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Split(v, ",") {
		m[strings.ToLower(strings.TrimSpace(f))] = true
	}
	return m
}

// TestCORS: with CORSOrigins, a preflight from a listed origin allows the
// API's methods and request headers without a token; simple answers (errors
// included) carry Access-Control-Allow-Origin and expose the headers clients
// read. An unlisted origin gets no CORS headers.
func TestCORS(t *testing.T) {
	ts := authServer(t, func(o *httpapi.Options) { o.CORSOrigins = []string{corsOrigin} })

	resp := preflight(ts, corsOrigin, "POST", "authorization,content-type,idempotency-key,expected-last-offset")
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, corsOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
	methods := headerSet(resp.Header.Get("Access-Control-Allow-Methods"))
	for _, m := range []string{"get", "head", "post", "put", "delete"} {
		assert.True(t, methods[m], "method %s in %v", m, methods)
	}
	allowed := headerSet(resp.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"Authorization", "Content-Type", "Idempotency-Key", "Expected-Last-Offset",
		"Last-Event-ID", "Record-Key", "Accept"} {
		assert.True(t, allowed[strings.ToLower(h)], "header %s in %v", h, allowed)
	}
	assert.NotEmpty(t, resp.Header.Get("Access-Control-Max-Age"))

	// A simple request: the answer names the origin and exposes the headers.
	resp, body := ts.postJSON("s", `{"value":1}`, "Origin", corsOrigin, "Authorization", "Bearer "+tokAdmin)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	assert.Equal(t, corsOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
	exposed := headerSet(resp.Header.Get("Access-Control-Expose-Headers"))
	for _, h := range []string{"Stream-Next-Offset", "Durability", "Idempotent-Replayed", "Retry-After",
		"Leader-Id", "Location", "ETag", "Applied-Index"} {
		assert.True(t, exposed[strings.ToLower(h)], "exposed %s in %v", h, exposed)
	}
	// An error answer too, so that a page can read the error.
	resp, _ = ts.do(http.MethodGet, "/v1/streams/s/records", nil, "Origin", corsOrigin)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, corsOrigin, resp.Header.Get("Access-Control-Allow-Origin"))

	// Another origin: no CORS headers, so the browser refuses.
	resp = preflight(ts, "http://evil.example", "POST", "authorization")
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Headers"))
	resp, _ = ts.do(http.MethodGet, "/v1/streams", nil, "Origin", "http://evil.example", "Authorization", "Bearer "+tokAdmin)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
}

func TestCORSAnyOrigin(t *testing.T) {
	ts := startServer(t, serverConfig{opts: func(o *httpapi.Options) { o.CORSOrigins = []string{"*"} }})
	resp := preflight(ts, "http://anything.example", "PUT", "content-type")
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	resp, body := ts.postJSON("s", `{"value":1}`, "Origin", "http://anything.example")
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	assert.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
}

// TestCORSOff: without CORSOrigins (the default) no answer carries CORS
// headers (echo still answers OPTIONS with Allow, which no browser takes
// for a CORS grant).
func TestCORSOff(t *testing.T) {
	ts := startServer(t, serverConfig{})
	resp := preflight(ts, corsOrigin, "POST", "content-type")
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Headers"))
	resp, body := ts.postJSON("s", `{"value":1}`, "Origin", corsOrigin)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Empty(t, resp.Header.Get("Access-Control-Expose-Headers"))
}

func TestCORSRejectsBadOrigin(t *testing.T) {
	st := openStore(t, t.TempDir(), nil, nil)
	defer st.Close()
	o := httpapi.DefaultOptions()
	o.CORSOrigins = []string{"http://a.example, http://b.example"}
	_, err := httpapi.New(st, o)
	require.ErrorIs(t, err, httpapi.ErrInvalidOptions)
}
