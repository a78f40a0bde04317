package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type infoBody struct {
	Stream      string `json:"stream"`
	NextOffset  uint64 `json:"next_offset"`
	ContentType string `json:"content_type"`
	Closed      bool   `json:"closed"`
	TTLSeconds  int64  `json:"ttl_seconds"`
	ForkedFrom  string `json:"forked_from"`
	ForkOffset  uint64 `json:"fork_offset"`
}

func decodeInfo(t *testing.T, body []byte) infoBody {
	t.Helper()
	var i infoBody
	require.NoError(t, json.Unmarshal(body, &i), "%s", body)
	return i
}

func TestStreamLifecycleHTTP(t *testing.T) {
	ts := startServer(t, serverConfig{})
	defer ts.Close()
	js := []string{"Content-Type", "application/json"}

	// Create, again with the same configuration, then another.
	resp, body := ts.do(http.MethodPut, "/v1/streams/s", []byte(`{"content_type":"text/plain","ttl_seconds":3600}`), js...)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	info := decodeInfo(t, body)
	assert.Equal(t, "text/plain", info.ContentType)
	assert.Equal(t, int64(3600), info.TTLSeconds)
	resp, body = ts.do(http.MethodPut, "/v1/streams/s", []byte(`{"content_type":"text/plain","ttl_seconds":3600}`), js...)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	resp, body = ts.do(http.MethodPut, "/v1/streams/s", []byte(`{"content_type":"text/csv"}`), js...)
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "stream_exists", decodeErr(t, body).Error.Code)
	resp, _ = ts.do(http.MethodPut, "/v1/streams/empty", nil)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "no body: the defaults")

	// Bad input changes nothing.
	for _, bad := range []string{`{"ttl_seconds":0}`, `{"ttl_seconds":-1}`, `{"nope":1}`, `{`, `{"fork":{"stream":"s"}}`} {
		resp, body = ts.do(http.MethodPut, "/v1/streams/bad", []byte(bad), js...)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %s", bad, body)
	}
	resp, _ = ts.do(http.MethodPut, "/v1/streams/bad", []byte(`{}`), "Content-Type", "text/plain")
	assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
	resp, _ = ts.do(http.MethodGet, "/v1/streams/bad", nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	// Idempotent producer headers.
	prod := func(epoch, seq string) (*http.Response, []byte) {
		return ts.postJSON("s", `{"value":1}`, "Producer-Id", "p1", "Producer-Epoch", epoch, "Producer-Seq", seq)
	}
	resp, body = prod("0", "0")
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	resp, body = prod("0", "0")
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	assert.Equal(t, "true", resp.Header.Get("Idempotent-Replayed"))
	resp, body = prod("0", "2")
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "producer_seq_gap", decodeErr(t, body).Error.Code)
	assert.Equal(t, "1", resp.Header.Get("Producer-Expected-Seq"))
	assert.Equal(t, "2", resp.Header.Get("Producer-Received-Seq"))
	resp, _ = prod("1", "0")
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	resp, body = prod("0", "1")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "producer_fenced", decodeErr(t, body).Error.Code)
	assert.Equal(t, "1", resp.Header.Get("Producer-Epoch"))
	resp, _ = ts.postJSON("s", `{"value":1}`, "Producer-Id", "p1", "Producer-Epoch", "0")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "partial producer headers")
	resp, _ = ts.postJSON("s", `{"value":1}`, "Producer-Id", "p1", "Producer-Epoch", "x", "Producer-Seq", "0")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// Fork at offset 1, then close the source with a final append.
	resp, body = ts.do(http.MethodPut, "/v1/streams/f", []byte(`{"fork":{"stream":"s","offset":1}}`), js...)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	info = decodeInfo(t, body)
	assert.Equal(t, "s", info.ForkedFrom)
	assert.Equal(t, uint64(1), info.ForkOffset)
	assert.Equal(t, "text/plain", info.ContentType)
	resp, body = ts.postJSON("s", `{"value":"last"}`, "Stream-Closed", "true")
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	resp, body = ts.postJSON("s", `{"value":"more"}`)
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "stream_closed", decodeErr(t, body).Error.Code)
	resp, body = ts.do(http.MethodPost, "/v1/streams/s/close", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "closing again: %s", body)
	assert.True(t, decodeInfo(t, body).Closed)
	resp, body = ts.do(http.MethodGet, "/v1/streams/s/records?from=earliest&wait=5s", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	resp, body = ts.do(http.MethodGet, "/v1/streams/s/records?from=3&wait=30s", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "a long-poll at the end of a closed stream answers at once: %s", body)

	// Delete: the source has a fork, so it is soft-deleted (410).
	resp, _ = ts.do(http.MethodDelete, "/v1/streams/s", nil)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp, body = ts.do(http.MethodGet, "/v1/streams/s", nil)
	require.Equal(t, http.StatusGone, resp.StatusCode)
	assert.Equal(t, "gone", decodeErr(t, body).Error.Code)
	resp, body = ts.do(http.MethodGet, "/v1/streams/f/records?from=earliest", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	resp, _ = ts.do(http.MethodDelete, "/v1/streams/f", nil)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	for _, name := range []string{"s", "f"} {
		resp, _ = ts.do(http.MethodGet, "/v1/streams/"+name, nil)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, name)
	}
	resp, _ = ts.do(http.MethodDelete, "/v1/streams/f", nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}
