package crashtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Limits the bad-input server runs with, small so that bodies over them
// are cheap to send.
const (
	badMaxRequest = 1 << 20
	badMaxRecord  = 256 << 10
)

// rawExchange writes req on a new connection (closing the write side when
// closeWrite is set) and returns the status line's code (0 if the server
// closed without answering).
func rawExchange(t *testing.T, addr, req string, closeWrite bool) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	_, err = io.WriteString(conn, req)
	require.NoError(t, err)
	if closeWrite {
		require.NoError(t, conn.(*net.TCPConn).CloseWrite())
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestBadInput sends hostile requests to the real binary, bounded in count
// and time, and checks that each gets its documented refusal (in the API's
// error shape where the API answers), that none changes stored data (the
// stream list and the global log are compared before and after), and that
// the server is still up and serving at the end. Slow-header clients
// (slowloris) must be cut by the server's ReadHeaderTimeout (10 s, the
// default) while other clients are served.
func TestBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := newServer(t, filepath.Join(dir, "data"), filepath.Join(dir, "serve.log"),
		"--max-request-bytes", fmt.Sprint(badMaxRequest), "--max-record-bytes", fmt.Sprint(badMaxRecord))
	srv.start()
	// Some data to protect.
	for i := range 20 {
		status, body, _, err := srv.post(fmt.Sprintf("s%d", i%2), "application/json", []byte(fmt.Sprintf(`{"records":[{"value":{"n":%d}},{"value":"x"}]}`, i)), nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, status, "%s", body)
	}
	snapshot := func() ([]streamInfo, []readRecord) {
		list, err := srv.streams()
		require.NoError(t, err)
		_, global, err := srv.readBack()
		require.NoError(t, err)
		return list, global
	}
	beforeStreams, beforeGlobal := snapshot()

	// Slow-header clients run while everything else is sent.
	var slow sync.WaitGroup
	slowCut := make(chan time.Duration, 3)
	for range 3 {
		slow.Go(func() {
			conn, err := net.DialTimeout("tcp", srv.addr, 5*time.Second)
			if err != nil {
				slowCut <- -1
				return
			}
			defer conn.Close()
			start := time.Now()
			_, _ = io.WriteString(conn, "POST /v1/streams/s0/records HTTP/1.1\r\nHost: x\r\n")
			buf := make([]byte, 1)
			// One header byte a second, for at most 30 s.
			for time.Since(start) < 30*time.Second {
				if _, err := conn.Write([]byte("X")); err != nil {
					break
				}
				_ = conn.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := conn.Read(buf); err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						continue
					}
					break // closed by the server (or answered 408)
				}
			}
			slowCut <- time.Since(start)
		})
	}

	big := strings.Repeat("b", badMaxRequest+1)
	bigRecord := strings.Repeat("r", badMaxRecord+1)
	long := strings.Repeat("a", 201)
	tests := []struct {
		name        string
		stream      string
		contentType string
		body        string
		hdr         map[string]string
		status      int
		code        string
	}{
		{"invalid UTF-8 in a JSON key", "s0", "application/json", "{\"value\":1,\"\xc3\x28\":2}", nil, 400, "bad_request"},
		{"truncated JSON", "s0", "application/json", `{"records":[{"value":1}`, nil, 400, "bad_request"},
		{"NDJSON with one bad line", "s0", "application/x-ndjson", "{\"value\":1}\n{\"value\":\n{\"value\":3}\n", nil, 400, "bad_request"},
		{"value and value_base64", "s0", "application/json", `{"value":1,"value_base64":"AA=="}`, nil, 400, "bad_request"},
		{"bad base64", "s0", "application/json", `{"value_base64":"!!!"}`, nil, 400, "bad_request"},
		{"empty records", "s0", "application/json", `{"records":[]}`, nil, 400, "bad_request"},
		{"bad timestamp", "s0", "application/json", `{"value":1,"timestamp":"yesterday"}`, nil, 400, "bad_request"},
		{"stream name with a space", "bad%20name", "application/json", `{"value":1}`, nil, 400, "invalid_stream"},
		{"stream name starting with a dot", ".hidden", "application/json", `{"value":1}`, nil, 400, "invalid_stream"},
		{"stream name of 201 bytes", long, "application/json", `{"value":1}`, nil, 400, "invalid_stream"},
		{"stream name with UTF-8", "%C3%A9t%C3%A9", "application/json", `{"value":1}`, nil, 400, "invalid_stream"},
		{"bad Expected-Last-Offset", "s0", "application/json", `{"value":1}`, map[string]string{"Expected-Last-Offset": "abc"}, 400, "bad_request"},
		{"Expected-Last-Offset below -1", "s0", "application/json", `{"value":1}`, map[string]string{"Expected-Last-Offset": "-2"}, 400, "bad_request"},
		{"wrong Expected-Last-Offset", "s0", "application/json", `{"value":1}`, map[string]string{"Expected-Last-Offset": "3"}, 409, "offset_mismatch"},
		{"Idempotency-Key over 256 bytes", "s0", "application/json", `{"value":1}`, map[string]string{"Idempotency-Key": strings.Repeat("k", 257)}, 400, "bad_request"},
		{"body over the request limit", "s0", "application/octet-stream", big, nil, 413, "too_large"},
		{"record over the record limit", "s0", "application/octet-stream", bigRecord, nil, 413, "too_large"},
		{"JSON record over the record limit", "s0", "application/json", `{"key":"` + bigRecord + `"}`, nil, 413, "too_large"},
		{"multipart form", "s0", "multipart/form-data; boundary=x", "--x\r\n\r\nhello\r\n--x--\r\n", nil, 415, "unsupported_type"},
		{"urlencoded form", "s0", "application/x-www-form-urlencoded", "a=b", nil, 415, "unsupported_type"},
		{"JSON in latin1", "s0", "application/json; charset=latin1", `{"value":1}`, nil, 415, "unsupported_type"},
		{"malformed content type", "s0", "application/json; ===", `{"value":1}`, nil, 415, "unsupported_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _, err := srv.post(tt.stream, tt.contentType, []byte(tt.body), tt.hdr)
			require.NoError(t, err)
			assert.Equal(t, tt.status, status, "%s", body)
			e := errorBody(t, body)
			assert.Equal(t, tt.code, e.Error.Code, "%s", body)
		})
	}

	t.Run("huge header", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, srv.url("/v1/streams/s0/records"), strings.NewReader("x"))
		require.NoError(t, err)
		req.Header.Set("X-Huge", strings.Repeat("h", 200<<10))
		resp, err := srv.client.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	})
	t.Run("Content-Length over the limit, body never sent", func(t *testing.T) {
		req := fmt.Sprintf("POST /v1/streams/s0/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\nabc", 2*badMaxRequest)
		assert.Equal(t, http.StatusRequestEntityTooLarge, rawExchange(t, srv.addr, req, false))
	})
	t.Run("truncated chunked body", func(t *testing.T) {
		req := "POST /v1/streams/s0/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nonly a few bytes of the 256 announced"
		status := rawExchange(t, srv.addr, req, true)
		assert.NotEqual(t, http.StatusCreated, status)
		t.Logf("answered %d", status)
	})
	t.Run("malformed chunk size", func(t *testing.T) {
		req := "POST /v1/streams/s0/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
		status := rawExchange(t, srv.addr, req, false)
		assert.Equal(t, http.StatusBadRequest, status)
	})
	t.Run("request line garbage", func(t *testing.T) {
		status := rawExchange(t, srv.addr, "\x00\x01\x02 GARBAGE\r\n\r\n", false)
		assert.Equal(t, http.StatusBadRequest, status)
	})
	t.Run("bad read queries", func(t *testing.T) {
		for _, q := range []string{"/v1/streams/s0/records?from=-1", "/v1/streams/s0/records?limit=abc", "/v1/records?from_seq=x", "/v1/streams/s0/records?from_time=never"} {
			status, body := getStatus(t, srv, q)
			assert.Equal(t, http.StatusBadRequest, status, "%s: %s", q, body)
			errorBody(t, body)
		}
	})

	// Meanwhile normal clients are served despite the slow ones.
	status, _ := getStatus(t, srv, "/healthz")
	assert.Equal(t, http.StatusOK, status)
	slow.Wait()
	close(slowCut)
	for d := range slowCut {
		require.GreaterOrEqual(t, d, time.Duration(0), "slow client could not connect")
		assert.Less(t, d, 30*time.Second, "a slow-header client was never cut off")
		t.Logf("slow-header client cut after %v", d.Round(100*time.Millisecond))
	}

	require.True(t, srv.alive(), "the server died; log:\n%s", tail(srv.logPath))
	afterStreams, afterGlobal := snapshot()
	assert.Equal(t, beforeStreams, afterStreams, "bad input changed the stream list")
	assert.Equal(t, beforeGlobal, afterGlobal, "bad input changed the global log")
	bs, _ := json.Marshal(afterStreams)
	assert.False(t, bytes.Contains(bs, []byte(`"bad`)), "no stream was created by bad input")
	require.NoError(t, srv.stop())
}
