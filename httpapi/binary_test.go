package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi"
	"github.com/badbatch/badbatch/httpapi/wire"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const mediaRecords = wire.MediaType

func postBinary(ts *testServer, stream string, b *wire.Batch, headers ...string) (*http.Response, []byte) {
	ts.t.Helper()
	return ts.do(http.MethodPost, "/v1/streams/"+stream+"/records", wire.AppendBatch(nil, b),
		append([]string{"Content-Type", mediaRecords}, headers...)...)
}

// TestBinaryAppendAndRead: a binary batch appends with its raw bytes,
// headers, timestamps and empty key/value, and reads back identical in
// both the binary and the JSON representation.
func TestBinaryAppendAndRead(t *testing.T) {
	ts := startServer(t, serverConfig{})
	ts1 := time.Date(2026, 12, 5, 21, 30, 0, 987654321, time.UTC)
	in := []wire.Record{
		{Key: []byte("k1"), Value: []byte{0, 1, 0xfe, 0xff}, Headers: map[string]string{"a": "1", "b": ""}, Timestamp: ts1},
		{Value: []byte(`{"x":[1,2]}`), JSON: true},
		{}, // empty key and value
	}
	resp, body := postBinary(ts, "bin", &wire.Batch{Records: in})
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	var res appendResult
	require.NoError(t, json.Unmarshal(body, &res))
	assert.Equal(t, 3, res.Count)
	assert.Equal(t, "3", resp.Header.Get("Stream-Next-Offset"))

	resp, body = ts.do(http.MethodGet, "/v1/streams/bin/records?limit=2", nil, "Accept", mediaRecords)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.Equal(t, mediaRecords, resp.Header.Get("Content-Type"))
	assert.Equal(t, "2", resp.Header.Get("Stream-Next-Offset"))
	assert.NotEmpty(t, resp.Header.Get("ETag"), "a full page below the live end is immutable")
	p, err := wire.DecodePage(body)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), p.NextOffset)
	require.Len(t, p.Records, 2)

	resp, body = ts.do(http.MethodGet, "/v1/streams/bin/records?from=2", nil, "Accept", mediaRecords)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	p2, err := wire.DecodePage(body)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), p2.NextOffset)
	all := append(p.Records, p2.Records...)
	require.Len(t, all, 3)
	for i, r := range all {
		assert.Equal(t, uint64(i), r.Offset)
		assert.Equal(t, res.FirstSeq+uint64(i), r.Seq)
		assert.Equal(t, string(in[i].Key), string(r.Key))
		assert.Equal(t, string(in[i].Value), string(r.Value))
		assert.Equal(t, in[i].JSON, r.JSON)
		assert.Equal(t, len(in[i].Headers), len(r.Headers))
		for k, v := range in[i].Headers {
			assert.Equal(t, v, r.Headers[k])
		}
		assert.False(t, r.Timestamp.IsZero())
	}
	assert.True(t, ts1.Equal(all[0].Timestamp), "client timestamp kept: %v", all[0].Timestamp)

	// The JSON read of the same records.
	resp, body = ts.do(http.MethodGet, "/v1/streams/bin/records", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var pg page
	require.NoError(t, json.Unmarshal(body, &pg))
	require.Len(t, pg.Records, 3)
	assert.JSONEq(t, `{"x":[1,2]}`, string(pg.Records[1].Value))
	assert.True(t, ts1.Equal(pg.Records[0].Timestamp))
}

// TestBinaryAppendOptions: the batch's own idempotency key and expected
// last offset work as the headers do, and giving one twice is a 400.
func TestBinaryAppendOptions(t *testing.T) {
	ts := startServer(t, serverConfig{})
	empty := int64(-1)
	b := wire.Batch{IdempotencyKey: "once", ExpectedLastOffset: &empty, Records: []wire.Record{{Value: []byte("v")}}}
	resp, body := postBinary(ts, "opt", &b)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	resp, body = postBinary(ts, "opt", &b)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", body)
	assert.Equal(t, "true", resp.Header.Get("Idempotent-Replayed"))

	b.IdempotencyKey = ""
	resp, body = postBinary(ts, "opt", &b)
	require.Equal(t, http.StatusConflict, resp.StatusCode, "%s", body)
	e := decodeErr(t, body)
	assert.Equal(t, httpapi.CodeOffsetMismatch, e.Error.Code)
	require.NotNil(t, e.Error.CurrentLastOffset)
	assert.Equal(t, int64(0), *e.Error.CurrentLastOffset)

	before := ts.snapshot()
	resp, body = postBinary(ts, "opt", &b, "Expected-Last-Offset", "0")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", body)
	b.IdempotencyKey = "k"
	b.ExpectedLastOffset = nil
	resp, body = postBinary(ts, "opt", &b, "Idempotency-Key", "k")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", body)
	assert.Equal(t, before, ts.snapshot())
}

// TestBinaryBadInput: malformed binary bodies are a 400 in the API's error
// shape, oversize ones a 413, and nothing is stored.
func TestBinaryBadInput(t *testing.T) {
	ts := startServer(t, serverConfig{opts: func(o *httpapi.Options) {
		o.MaxRecordBytes = 100
		o.MaxRequestBytes = 1000
	}})
	_, body := postBinary(ts, "bad", &wire.Batch{Records: []wire.Record{{Value: []byte("seed")}}})
	require.Contains(t, string(body), `"count":1`)
	before := ts.snapshot()
	good := wire.AppendBatch(nil, &wire.Batch{Records: []wire.Record{{Value: []byte("v")}, {Value: []byte("w")}}})
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
	}{
		{"truncated", good[:len(good)-2], http.StatusBadRequest},
		{"trailing", append(append([]byte(nil), good...), 9), http.StatusBadRequest},
		{"bad magic", []byte("XXXX"), http.StatusBadRequest},
		{"empty body", nil, http.StatusBadRequest},
		{"empty batch", wire.AppendBatch(nil, &wire.Batch{}), http.StatusBadRequest},
		{"record too large", wire.AppendBatch(nil, &wire.Batch{Records: []wire.Record{{Value: make([]byte, 101)}}}), http.StatusRequestEntityTooLarge},
		{"request too large", wire.AppendBatch(nil, &wire.Batch{Records: []wire.Record{
			{Value: make([]byte, 90)}, {Value: make([]byte, 90)}, {Value: make([]byte, 90)}, {Value: make([]byte, 90)},
			{Value: make([]byte, 90)}, {Value: make([]byte, 90)}, {Value: make([]byte, 90)}, {Value: make([]byte, 90)},
			{Value: make([]byte, 90)}, {Value: make([]byte, 90)}, {Value: make([]byte, 90)}}}), http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.do(http.MethodPost, "/v1/streams/bad/records", tc.body,
				"Content-Type", mediaRecords, "Content-Length", strconv.Itoa(len(tc.body)))
			require.Equal(t, tc.status, resp.StatusCode, "%s", body)
			decodeErr(t, body)
		})
	}
	assert.Equal(t, before, ts.snapshot())
}
