package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/badbatch/badbatch/httpapi"
	"github.com/badbatch/badbatch/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendBodies(t *testing.T) {
	ts := startServer(t, serverConfig{})
	cases := []struct {
		name        string
		contentType string
		body        string
		headers     []string
		want        []record // Offset, Key, Value / ValueBase64, Headers are checked
	}{
		{
			name: "json batch", contentType: "application/json",
			body: `{"records":[{"key":"k1","value":{"a":1}},{"value_base64":"AAEC","headers":{"h":"v"}}]}`,
			want: []record{{Key: strp("k1"), Value: json.RawMessage(`{"a":1}`)}, {ValueBase64: strp("AAEC"), Headers: map[string]string{"h": "v"}}},
		},
		{
			name: "single json record", contentType: "application/json; charset=utf-8",
			body: `{"value": [1, 2,  3], "timestamp":"2024-01-02T03:04:05Z"}`,
			want: []record{{Value: json.RawMessage(`[1,2,3]`)}},
		},
		{
			name: "json null and string values", contentType: "application/json",
			body: `{"records":[{"value":null},{"value":"text"},{}]}`,
			want: []record{{Value: json.RawMessage(`null`)}, {Value: json.RawMessage(`"text"`)}, {ValueBase64: strp("")}},
		},
		{
			name: "ndjson", contentType: "application/x-ndjson",
			body: ndjson(`{"value":1}`, ``, `{"key":"b","value_base64":"aGk="}`),
			want: []record{{Value: json.RawMessage(`1`)}, {Key: strp("b"), ValueBase64: strp("aGk=")}},
		},
		{
			name: "raw text with Record-Key", contentType: "text/plain", body: "hello\nworld",
			headers: []string{"Record-Key", "rk"},
			want:    []record{{Key: strp("rk"), ValueBase64: strp(base64.StdEncoding.EncodeToString([]byte("hello\nworld")))}},
		},
		{
			name: "raw without content type", body: "\x00\x01",
			want: []record{{ValueBase64: strp("AAE=")}},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := "bodies-" + strconv.Itoa(i)
			headers := append([]string{}, tc.headers...)
			if tc.contentType != "" {
				headers = append(headers, "Content-Type", tc.contentType)
			}
			resp, body := ts.do(http.MethodPost, "/v1/streams/"+stream+"/records", []byte(tc.body), headers...)
			require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
			var res appendResult
			require.NoError(t, json.Unmarshal(body, &res))
			assert.Equal(t, stream, res.Stream)
			assert.Equal(t, len(tc.want), res.Count)
			assert.Equal(t, uint64(0), res.FirstOffset)
			assert.Equal(t, uint64(len(tc.want)-1), res.LastOffset)
			assert.Equal(t, "fsynced", res.Durability)
			assert.Equal(t, "fsynced", resp.Header.Get("Durability"))
			assert.Equal(t, strconv.Itoa(len(tc.want)), resp.Header.Get("Stream-Next-Offset"))

			resp, body = ts.do(http.MethodGet, "/v1/streams/"+stream+"/records?from=0", nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
			var p page
			require.NoError(t, json.Unmarshal(body, &p))
			require.Len(t, p.Records, len(tc.want))
			assert.Equal(t, uint64(len(tc.want)), p.NextOffset)
			for j, w := range tc.want {
				got := p.Records[j]
				assert.Equal(t, uint64(j), got.Offset)
				assert.Equal(t, w.Key, got.Key)
				assert.Equal(t, string(w.Value), string(got.Value))
				assert.Equal(t, w.ValueBase64, got.ValueBase64)
				assert.Equal(t, w.Headers, got.Headers)
				assert.False(t, got.Timestamp.IsZero())
			}
		})
	}
}

func TestAppendKeepsClientTimestamp(t *testing.T) {
	ts := startServer(t, serverConfig{})
	resp, body := ts.postJSON("ts", `{"value":1,"timestamp":"2024-01-02T03:04:05.5Z"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	_, body = ts.do(http.MethodGet, "/v1/streams/ts/records", nil)
	var p page
	require.NoError(t, json.Unmarshal(body, &p))
	require.Len(t, p.Records, 1)
	assert.Equal(t, "2024-01-02T03:04:05.5Z", p.Records[0].Timestamp.UTC().Format("2006-01-02T15:04:05.999999999Z07:00"))
}

// TestBadAppendsChangeNothing sends every kind of bad append and checks the
// status, the error shape and that the store's contents are unchanged.
func TestBadAppendsChangeNothing(t *testing.T) {
	ts := startServer(t, serverConfig{opts: func(o *httpapi.Options) {
		o.MaxRecordBytes = 1024
		o.MaxRequestBytes = 8192
	}})
	resp, body := ts.postJSON("existing", `{"records":[{"value":1},{"value":2}]}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	before := ts.snapshot()

	big := strings.Repeat("x", 2000)
	cases := []struct {
		name        string
		stream      string
		contentType string
		body        string
		status      int
		code        string
	}{
		{"bad json", "existing", "application/json", `{"value":`, 400, "bad_request"},
		{"bad json in batch", "existing", "application/json", `{"records":[{"value":1},{"value":}]}`, 400, "bad_request"},
		{"json not an object", "existing", "application/json", `[{"value":1}]`, 400, "bad_request"},
		{"json null", "existing", "application/json", `null`, 400, "bad_request"},
		{"trailing data", "existing", "application/json", `{"value":1} {"value":2}`, 400, "bad_request"},
		{"unknown field", "existing", "application/json", `{"vaule":1}`, 400, "bad_request"},
		{"records mixed with fields", "existing", "application/json", `{"records":[{"value":1}],"value":2}`, 400, "bad_request"},
		{"empty batch", "existing", "application/json", `{"records":[]}`, 400, "bad_request"},
		{"bad base64", "existing", "application/json", `{"value_base64":"!!!"}`, 400, "bad_request"},
		{"bad base64 in second record", "existing", "application/json", `{"records":[{"value":1},{"value_base64":"a"}]}`, 400, "bad_request"},
		{"value and value_base64", "existing", "application/json", `{"value":1,"value_base64":"AA=="}`, 400, "bad_request"},
		{"bad timestamp", "existing", "application/json", `{"value":1,"timestamp":"yesterday"}`, 400, "bad_request"},
		{"bad ndjson line", "existing", "application/x-ndjson", ndjson(`{"value":1}`, `{"value":`), 400, "bad_request"},
		{"empty ndjson", "existing", "application/x-ndjson", "\n\n", 400, "bad_request"},
		{"bad stream name", "-bad", "application/json", `{"value":1}`, 400, "invalid_stream"},
		{"stream name too long", strings.Repeat("a", 201), "application/json", `{"value":1}`, 400, "invalid_stream"},
		{"record too large", "existing", "application/json", `{"value":"` + big + `"}`, 413, "too_large"},
		{"raw record too large", "existing", "application/octet-stream", big, 413, "too_large"},
		{"request too large", "existing", "application/x-ndjson", strings.Repeat(`{"value":"`+strings.Repeat("y", 500)+`"}`+"\n", 20), 413, "too_large"},
		{"multipart", "existing", "multipart/form-data; boundary=x", "--x--", 415, "unsupported_type"},
		{"form", "existing", "application/x-www-form-urlencoded", "a=b", 415, "unsupported_type"},
		{"json in utf-16", "existing", "application/json; charset=utf-16", `{"value":1}`, 415, "unsupported_type"},
		{"malformed content type", "existing", "application/json; =", `{"value":1}`, 415, "unsupported_type"},
		{"bad expected offset", "existing", "application/json", `{"value":1}`, 400, "bad_request"},
		{"offset mismatch", "existing", "application/json", `{"value":1}`, 409, "offset_mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			headers := []string{"Content-Type", tc.contentType}
			switch tc.name {
			case "bad expected offset":
				headers = append(headers, "Expected-Last-Offset", "-2")
			case "offset mismatch":
				headers = append(headers, "Expected-Last-Offset", "0")
			}
			resp, body := ts.do(http.MethodPost, "/v1/streams/"+tc.stream+"/records", []byte(tc.body), headers...)
			assert.Equal(t, tc.status, resp.StatusCode, "%s", body)
			e := decodeErr(t, body)
			assert.Equal(t, tc.code, e.Error.Code)
			assert.Equal(t, "application/json", strings.Split(resp.Header.Get("Content-Type"), ";")[0])
			assert.Equal(t, before, ts.snapshot(), "the store changed")
		})
	}
}

func TestRequestTooLargeChunked(t *testing.T) {
	ts := startServer(t, serverConfig{opts: func(o *httpapi.Options) { o.MaxRequestBytes = 1000 }})
	// An io.Reader of unknown length is sent chunked: no Content-Length
	// precheck, the limit trips while reading.
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/v1/streams/s/records", strings.NewReader(strings.Repeat("z", 5000)))
	require.NoError(t, err)
	req.ContentLength = -1
	req.Body = readerOnly{strings.NewReader(strings.Repeat("z", 5000))}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Empty(t, ts.snapshot().Records)
}

func TestIdempotencyKey(t *testing.T) {
	ts := startServer(t, serverConfig{})
	resp, body := ts.postJSON("idem", `{"records":[{"value":1},{"value":2}]}`, "Idempotency-Key", "k-1")
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	assert.Empty(t, resp.Header.Get("Idempotent-Replayed"))
	var first appendResult
	require.NoError(t, json.Unmarshal(body, &first))

	resp, body = ts.postJSON("idem", `{"records":[{"value":1},{"value":2}]}`, "Idempotency-Key", "k-1")
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	assert.Equal(t, "true", resp.Header.Get("Idempotent-Replayed"))
	var again appendResult
	require.NoError(t, json.Unmarshal(body, &again))
	assert.True(t, again.Replayed)
	again.Replayed = false
	assert.Equal(t, first, again)

	info, err := ts.Store.StreamInfo(context.Background(), "idem")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), info.NextOffset, "the repeat appended nothing")
}

func TestExpectedLastOffset(t *testing.T) {
	ts := startServer(t, serverConfig{})
	resp, body := ts.postJSON("occ", `{"value":1}`, "Expected-Last-Offset", "-1")
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	resp, body = ts.postJSON("occ", `{"value":2}`, "Expected-Last-Offset", "0")
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)

	resp, body = ts.postJSON("occ", `{"value":3}`, "Expected-Last-Offset", "0")
	require.Equal(t, http.StatusConflict, resp.StatusCode, "%s", body)
	e := decodeErr(t, body)
	assert.Equal(t, "offset_mismatch", e.Error.Code)
	require.NotNil(t, e.Error.CurrentLastOffset)
	assert.Equal(t, int64(1), *e.Error.CurrentLastOffset)
	assert.Equal(t, "2", resp.Header.Get("Stream-Next-Offset"))

	resp, body = ts.postJSON("occ-empty", `{"value":3}`, "Expected-Last-Offset", "5")
	require.Equal(t, http.StatusConflict, resp.StatusCode, "%s", body)
	e = decodeErr(t, body)
	require.NotNil(t, e.Error.CurrentLastOffset)
	assert.Equal(t, int64(-1), *e.Error.CurrentLastOffset)
}

func TestAppendUnavailable(t *testing.T) {
	ts := startServer(t, serverConfig{wrap: func(s httpapi.Store) httpapi.Store {
		return &faultStore{Store: s, appendErr: fmt.Errorf("%w: injected fsync error", storage.ErrUnavailable)}
	}})
	resp, body := ts.postJSON("s", `{"value":1}`)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", body)
	assert.Equal(t, "unavailable", decodeErr(t, body).Error.Code)
}

type readerOnly struct{ r *strings.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r readerOnly) Close() error               { return nil }

func strp(s string) *string { return &s }
