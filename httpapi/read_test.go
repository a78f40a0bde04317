package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi"
	"github.com/badbatch/badbatch/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func appendN(t *testing.T, ts *testServer, stream string, from, n int) {
	t.Helper()
	var b strings.Builder
	b.WriteString(`{"records":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"key":"k%d","value":{"n":%d}}`, from+i, from+i)
	}
	b.WriteString(`]}`)
	resp, body := ts.postJSON(stream, b.String())
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
}

func readPage(t *testing.T, ts *testServer, path string, headers ...string) (*http.Response, page) {
	t.Helper()
	resp, body := ts.do(http.MethodGet, path, nil, headers...)
	var p page
	if resp.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(body, &p), "%s", body)
	}
	return resp, p
}

func TestReadPositions(t *testing.T) {
	ts := startServer(t, serverConfig{})
	appendN(t, ts, "pos", 0, 10)
	cases := []struct {
		name      string
		query     string
		offsets   []uint64
		next      uint64
		immutable bool
	}{
		{"default earliest", "", []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 10, false},
		{"from offset with limit", "?from=3&limit=2", []uint64{3, 4}, 5, true},
		{"page that reaches the end", "?from=8&limit=2", []uint64{8, 9}, 10, false},
		{"earliest with limit", "?from=earliest&limit=3", []uint64{0, 1, 2}, 3, true},
		{"latest is empty", "?from=latest", nil, 10, false},
		{"beyond the end", "?from=50", nil, 50, false},
		{"from_time in the past", "?from_time=2000-01-01T00:00:00Z&limit=1", []uint64{0}, 1, true},
		{"from_time in the future", "?from_time=2999-01-01T00:00:00Z", nil, 10, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, p := readPage(t, ts, "/v1/streams/pos/records"+tc.query)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			var got []uint64
			for _, r := range p.Records {
				got = append(got, r.Offset)
			}
			assert.Equal(t, tc.offsets, got)
			assert.Equal(t, tc.next, p.NextOffset)
			assert.Equal(t, fmt.Sprint(tc.next), resp.Header.Get("Stream-Next-Offset"))
			if tc.immutable {
				assert.Equal(t, "public, max-age=60, immutable", resp.Header.Get("Cache-Control"))
				assert.NotEmpty(t, resp.Header.Get("ETag"))
			} else {
				assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
				assert.Empty(t, resp.Header.Get("ETag"))
			}
		})
	}
}

func TestReadETagRevalidation(t *testing.T) {
	ts := startServer(t, serverConfig{})
	appendN(t, ts, "etag", 0, 4)
	resp, body := ts.do(http.MethodGet, "/v1/streams/etag/records?from=0&limit=2", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	etag := resp.Header.Get("ETag")
	require.NotEmpty(t, etag)
	resp, _ = ts.do(http.MethodGet, "/v1/streams/etag/records?from=0&limit=2", nil, "If-None-Match", etag)
	assert.Equal(t, http.StatusNotModified, resp.StatusCode)
	appendN(t, ts, "etag", 4, 3)
	// The page is immutable: more appends do not change it.
	resp, body2 := ts.do(http.MethodGet, "/v1/streams/etag/records?from=0&limit=2", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, etag, resp.Header.Get("ETag"))
	assert.Equal(t, body, body2)
}

func TestReadErrors(t *testing.T) {
	ts := startServer(t, serverConfig{})
	appendN(t, ts, "s", 0, 1)
	cases := []struct {
		name   string
		path   string
		status int
		code   string
	}{
		{"never written", "/v1/streams/nope/records", 404, "not_found"},
		{"never written info", "/v1/streams/nope", 404, "not_found"},
		{"bad stream name", "/v1/streams/.x/records", 400, "invalid_stream"},
		{"bad from", "/v1/streams/s/records?from=-1", 400, "bad_request"},
		{"bad limit", "/v1/streams/s/records?limit=0", 400, "bad_request"},
		{"bad from_time", "/v1/streams/s/records?from_time=monday", 400, "bad_request"},
		{"from and from_time", "/v1/streams/s/records?from=0&from_time=2020-01-01T00:00:00Z", 400, "bad_request"},
		{"bad wait", "/v1/streams/s/records?wait=soon", 400, "bad_request"},
		{"bad from_seq", "/v1/records?from_seq=x", 400, "bad_request"},
		{"unknown route", "/v1/nothing", 404, "not_found"},
		{"bad Last-Event-ID", "/v1/streams/s/records", 400, "bad_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.name == "bad Last-Event-ID" {
				headers = []string{"Accept", "text/event-stream", "Last-Event-ID", "x"}
			}
			resp, body := ts.do(http.MethodGet, tc.path, nil, headers...)
			assert.Equal(t, tc.status, resp.StatusCode, "%s", body)
			assert.Equal(t, tc.code, decodeErr(t, body).Error.Code)
		})
	}
	t.Run("method not allowed", func(t *testing.T) {
		resp, body := ts.do(http.MethodDelete, "/v1/streams/s/records", nil)
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		assert.Equal(t, "method_not_allowed", decodeErr(t, body).Error.Code)
	})
}

func TestReadBelowRetentionIsGone(t *testing.T) {
	ts := startServer(t, serverConfig{wrap: func(s httpapi.Store) httpapi.Store {
		return &faultStore{Store: s, readErr: fmt.Errorf("%w: injected", storage.ErrGone)}
	}})
	appendN(t, ts, "s", 0, 1)
	for _, accept := range []string{"application/json", "application/x-ndjson", "text/event-stream"} {
		t.Run(accept, func(t *testing.T) {
			resp, body := ts.do(http.MethodGet, "/v1/streams/s/records?from=0", nil, "Accept", accept)
			assert.Equal(t, http.StatusGone, resp.StatusCode, "%s", body)
			assert.Equal(t, "gone", decodeErr(t, body).Error.Code)
		})
	}
}

func TestReadNDJSON(t *testing.T) {
	ts := startServer(t, serverConfig{})
	appendN(t, ts, "nd", 0, 5)
	resp, body := ts.do(http.MethodGet, "/v1/streams/nd/records?from=1&limit=3", nil, "Accept", "application/x-ndjson")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/x-ndjson", resp.Header.Get("Content-Type"))
	assert.Equal(t, "4", resp.Header.Get("Stream-Next-Offset"))
	sc := bufio.NewScanner(bytes.NewReader(body))
	var offsets []uint64
	for sc.Scan() {
		var r record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		assert.JSONEq(t, fmt.Sprintf(`{"n":%d}`, r.Offset), string(r.Value))
		offsets = append(offsets, r.Offset)
	}
	assert.Equal(t, []uint64{1, 2, 3}, offsets)
}

func TestLongPoll(t *testing.T) {
	ts := startServer(t, serverConfig{})
	appendN(t, ts, "lp", 0, 1)
	t.Run("records arrive", func(t *testing.T) {
		type result struct {
			resp *http.Response
			p    page
		}
		done := make(chan result, 1)
		go func() {
			resp, body := ts.do(http.MethodGet, "/v1/streams/lp/records?from=1&wait=30s", nil)
			var p page
			_ = json.Unmarshal(body, &p)
			done <- result{resp, p}
		}()
		// Appending until the poll answers makes the test independent of
		// whether the poll started waiting before the first append.
		for i := 1; ; i++ {
			appendN(t, ts, "lp", i, 1)
			select {
			case r := <-done:
				require.Equal(t, http.StatusOK, r.resp.StatusCode)
				require.NotEmpty(t, r.p.Records)
				assert.Equal(t, uint64(1), r.p.Records[0].Offset)
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	t.Run("times out empty", func(t *testing.T) {
		resp, p := readPage(t, ts, "/v1/streams/lp/records?from=latest&wait=0.05")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Empty(t, p.Records)
		assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	})
}

func TestGlobalRead(t *testing.T) {
	ts := startServer(t, serverConfig{})
	appendN(t, ts, "a", 0, 2)
	appendN(t, ts, "b", 0, 1)
	appendN(t, ts, "a", 2, 1)
	resp, body := ts.do(http.MethodGet, "/v1/records?from_seq=0&limit=10", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var g struct {
		Records []record `json:"records"`
		NextSeq uint64   `json:"next_seq"`
	}
	require.NoError(t, json.Unmarshal(body, &g))
	require.Len(t, g.Records, 4)
	var streams []string
	for i, r := range g.Records {
		streams = append(streams, fmt.Sprintf("%s/%d", r.Stream, r.Offset))
		if i > 0 {
			assert.Greater(t, r.Seq, g.Records[i-1].Seq)
		}
	}
	assert.Equal(t, []string{"a/0", "a/1", "b/0", "a/2"}, streams)
	assert.Equal(t, g.Records[3].Seq+1, g.NextSeq)

	resp, body = ts.do(http.MethodGet, fmt.Sprintf("/v1/records?from_seq=%d&limit=1", g.Records[2].Seq), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.Unmarshal(body, &g))
	require.Len(t, g.Records, 1)
	assert.Equal(t, "b", g.Records[0].Stream)
}

func TestStreamsInfoAndHead(t *testing.T) {
	ts := startServer(t, serverConfig{})
	appendN(t, ts, "one", 0, 3)
	appendN(t, ts, "two", 0, 1)

	resp, body := ts.do(http.MethodGet, "/v1/streams", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var list struct {
		Streams []struct {
			Stream        string  `json:"stream"`
			NextOffset    uint64  `json:"next_offset"`
			Records       uint64  `json:"records"`
			Bytes         uint64  `json:"bytes"`
			LastTimestamp *string `json:"last_timestamp"`
		} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list.Streams, 2)
	assert.Equal(t, "one", list.Streams[0].Stream)
	assert.Equal(t, uint64(3), list.Streams[0].NextOffset)
	assert.Equal(t, uint64(3), list.Streams[0].Records)
	assert.NotNil(t, list.Streams[0].LastTimestamp)

	resp, body = ts.do(http.MethodGet, "/v1/streams/two", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), `"next_offset":1`)
	assert.Equal(t, "1", resp.Header.Get("Stream-Next-Offset"))

	resp, body = ts.do(http.MethodHead, "/v1/streams/one", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "3", resp.Header.Get("Stream-Next-Offset"))
	assert.Empty(t, body)
	resp, _ = ts.do(http.MethodHead, "/v1/streams/never", nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestCursors(t *testing.T) {
	ts := startServer(t, serverConfig{})
	appendN(t, ts, "cur", 0, 3)
	path := "/v1/streams/cur/cursors/reader-1"

	resp, body := ts.do(http.MethodGet, path, nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "%s", body)
	assert.Equal(t, "not_found", decodeErr(t, body).Error.Code)

	resp, body = ts.do(http.MethodPut, path, []byte(`{"offset":2}`), "Content-Type", "application/json")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	resp, body = ts.do(http.MethodGet, path, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.JSONEq(t, `{"stream":"cur","name":"reader-1","offset":2}`, string(body))

	bad := []struct {
		name, contentType, body, path string
		status                        int
		code                          string
	}{
		{"not json", "text/plain", `{"offset":1}`, path, 415, "unsupported_type"},
		{"bad json", "application/json", `{"offset":`, path, 400, "bad_request"},
		{"no offset", "application/json", `{}`, path, 400, "bad_request"},
		{"negative", "application/json", `{"offset":-1}`, path, 400, "bad_request"},
		{"bad name", "application/json", `{"offset":1}`, "/v1/streams/cur/cursors/_x", 400, "invalid_stream"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.do(http.MethodPut, tc.path, []byte(tc.body), "Content-Type", tc.contentType)
			assert.Equal(t, tc.status, resp.StatusCode, "%s", body)
			assert.Equal(t, tc.code, decodeErr(t, body).Error.Code)
			off, err := ts.Store.Cursor(context.Background(), "cur", "reader-1")
			require.NoError(t, err)
			assert.Equal(t, uint64(2), off, "the cursor changed")
		})
	}
}

func TestHealthAndReady(t *testing.T) {
	ts := startServer(t, serverConfig{})
	resp, _ := ts.do(http.MethodGet, "/healthz", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = ts.do(http.MethodGet, "/readyz", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	failed := startServer(t, serverConfig{wrap: func(s httpapi.Store) httpapi.Store {
		return &faultStore{Store: s, notReady: true}
	}})
	resp, body := failed.do(http.MethodGet, "/readyz", nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "unavailable", decodeErr(t, body).Error.Code)
	resp, _ = failed.do(http.MethodGet, "/healthz", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a failed store is still a live process")
}
