package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDurableStreamsAndNativeAPI: one set of streams under two APIs. A
// close or a delete made through either is seen by both, and records
// read back through the other.
func TestDurableStreamsAndNativeAPI(t *testing.T) {
	ts := startServer(t, serverConfig{})
	defer ts.Close()
	js := []string{"Content-Type", "application/json"}

	resp, body := ts.do(http.MethodPut, "/v1/stream/j", []byte(`[{"a":1},{"b":2}]`), js...)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	assert.Equal(t, "0000000000000002_0000000000000000", resp.Header.Get("Stream-Next-Offset"))
	assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))

	// A native append of a JSON value is one more message.
	resp, body = ts.postJSON("j", `{"value":{"c":3}}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	resp, body = ts.do(http.MethodGet, "/v1/stream/j?offset=-1", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `[{"a":1},{"b":2},{"c":3}]`, string(body))
	assert.Equal(t, "true", resp.Header.Get("Stream-Up-To-Date"))
	resp, body = ts.do(http.MethodGet, "/v1/streams/j/records?from=1", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), `"value":{"b":2}`)

	// Closed through the protocol: the native append is refused.
	resp, _ = ts.do(http.MethodPost, "/v1/stream/j", nil, "Stream-Closed", "true")
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp, body = ts.postJSON("j", `{"value":4}`)
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "stream_closed", decodeErr(t, body).Error.Code)

	// Closed natively: the protocol's append is refused with its headers.
	resp, _ = ts.do(http.MethodPut, "/v1/stream/t", []byte("x"), "Content-Type", "text/plain")
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	resp, _ = ts.do(http.MethodPost, "/v1/streams/t/close", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = ts.do(http.MethodPost, "/v1/stream/t", []byte("y"), "Content-Type", "text/plain")
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "true", resp.Header.Get("Stream-Closed"))
	assert.Equal(t, "0000000000000001_0000000000000000", resp.Header.Get("Stream-Next-Offset"))

	// Deleted through the protocol: 404 on the native routes.
	resp, _ = ts.do(http.MethodDelete, "/v1/stream/t", nil)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp, _ = ts.do(http.MethodGet, "/v1/streams/t", nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	// Bad input changes nothing.
	for _, q := range []string{"?offset=", "?offset=a&offset=b", "?offset=0000000000000009_0000000000000000", "?offset=0000000000000000_0000000000000001", "?live=sse", "?offset=-1&live=x"} {
		resp, _ = ts.do(http.MethodGet, "/v1/stream/j"+q, nil)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, q)
	}
	for _, h := range [][]string{{"Stream-TTL", "00060"}, {"Stream-TTL", "1e3"}, {"Stream-Expires-At", "soon"}, {"Stream-TTL", "5", "Stream-Expires-At", "2030-01-01T00:00:00Z"}} {
		resp, _ = ts.do(http.MethodPut, "/v1/stream/bad", nil, h...)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%v", h)
	}
	resp, _ = ts.do(http.MethodHead, "/v1/stream/bad", nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = ts.do(http.MethodPut, "/v1/stream/b", []byte("x"), "Content-Type", "text/plain")
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	for _, tc := range []struct {
		headers []string
		body    string
		status  int
	}{
		{[]string{"Content-Type", "application/json"}, "x", http.StatusConflict},
		{nil, "x", http.StatusBadRequest},
		{[]string{"Content-Type", "text/plain"}, "", http.StatusBadRequest},
		{[]string{"Content-Type", "text/plain", "Producer-Id", "p", "Producer-Epoch", "0"}, "x", http.StatusBadRequest},
		{[]string{"Content-Type", "text/plain", "Producer-Id", "p", "Producer-Epoch", "0", "Producer-Seq", "-1"}, "x", http.StatusBadRequest},
	} {
		var b []byte
		if tc.body != "" {
			b = []byte(tc.body)
		}
		resp, _ = ts.do(http.MethodPost, "/v1/stream/b", b, tc.headers...)
		assert.Equal(t, tc.status, resp.StatusCode, "%v %q", tc.headers, tc.body)
	}
	resp, body = ts.do(http.MethodGet, "/v1/stream/b", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "x", string(body), "nothing was stored by the refusals")
}
