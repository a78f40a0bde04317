package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/badbatch/badbatch/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClassifyContentType(t *testing.T) {
	cases := []struct {
		header string
		kind   bodyKind
		status int // 0: accepted
	}{
		{"", bodyRaw, 0},
		{"application/json", bodyJSON, 0},
		{"Application/JSON; charset=UTF-8", bodyJSON, 0},
		{"application/x-ndjson", bodyNDJSON, 0},
		{"application/jsonl", bodyNDJSON, 0},
		{"text/plain; charset=latin1", bodyRaw, 0},
		{"application/octet-stream", bodyRaw, 0},
		{"application/json; charset=iso-8859-1", 0, http.StatusUnsupportedMediaType},
		{"multipart/form-data; boundary=x", 0, http.StatusUnsupportedMediaType},
		{"application/x-www-form-urlencoded", 0, http.StatusUnsupportedMediaType},
		{"not a type;;", 0, http.StatusUnsupportedMediaType},
	}
	for _, tc := range cases {
		t.Run(tc.header, func(t *testing.T) {
			kind, err := classifyContentType(tc.header)
			if tc.status != 0 {
				require.NotNil(t, err)
				assert.Equal(t, tc.status, err.Status)
				assert.Equal(t, CodeUnsupportedType, err.Code)
				return
			}
			require.Nil(t, err)
			assert.Equal(t, tc.kind, kind)
		})
	}
}

func TestParseAppendBodyRecords(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 600, time.UTC)
	cases := []struct {
		name string
		kind bodyKind
		body string
		want []storage.Record
	}{
		{"single", bodyJSON, `{"key":"k","value":{"b": 2, "a": [1, 2]}}`,
			[]storage.Record{{Key: []byte("k"), Value: []byte(`{"b":2,"a":[1,2]}`), JSON: true}}},
		{"batch", bodyJSON, `{"records":[{"value_base64":"aGk="},{"headers":{"x":"y"},"timestamp":"2024-01-02T03:04:05.0000006Z"}]}`,
			[]storage.Record{{Value: []byte("hi")}, {Headers: map[string]string{"x": "y"}, Timestamp: ts}}},
		{"ndjson with CRLF and blank lines", bodyNDJSON, "{\"value\":1}\r\n\r\n  \n{\"value\":true}",
			[]storage.Record{{Value: []byte("1"), JSON: true}, {Value: []byte("true"), JSON: true}}},
		{"raw", bodyRaw, "{not json}", []storage.Record{{Value: []byte("{not json}"), Key: []byte("rk")}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := parseAppendBody(tc.kind, []byte(tc.body), "rk", 1<<20)
			require.Nil(t, err)
			require.Len(t, recs, len(tc.want))
			for i := range tc.want {
				assert.Equal(t, string(tc.want[i].Key), string(recs[i].Key))
				assert.Equal(t, string(tc.want[i].Value), string(recs[i].Value))
				assert.Equal(t, tc.want[i].JSON, recs[i].JSON)
				assert.Equal(t, tc.want[i].Headers, recs[i].Headers)
				assert.True(t, tc.want[i].Timestamp.Equal(recs[i].Timestamp))
			}
		})
	}
}

func TestParseAppendBodyErrors(t *testing.T) {
	cases := []struct {
		name   string
		kind   bodyKind
		body   string
		status int
		msg    string
	}{
		{"ndjson line number", bodyNDJSON, "{\"value\":1}\n{\"value\":2}\n{oops}\n", 400, "line 3"},
		{"second record named", bodyJSON, `{"records":[{},{"value":1,"value_base64":""}]}`, 400, "record 1"},
		{"empty header name", bodyJSON, `{"headers":{"":"v"}}`, 400, "empty header name"},
		{"zero timestamp", bodyJSON, `{"timestamp":"0001-01-01T00:00:00Z"}`, 400, "zero time"},
		{"record size counts headers", bodyJSON, `{"headers":{"` + strings.Repeat("h", 20) + `":"v"}}`, 413, "at most 16"},
		{"url-safe base64", bodyJSON, `{"value_base64":"-_8="}`, 400, "value_base64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAppendBody(tc.kind, []byte(tc.body), "", 16)
			require.NotNil(t, err)
			assert.Equal(t, tc.status, err.Status)
			assert.Contains(t, err.Message, tc.msg)
		})
	}
}

// FuzzParseAppendBody checks that parsing never panics, that what it
// accepts respects the limits, and that accepted records survive a round
// trip through the wire format unchanged. Seeds: testdata/fuzz/FuzzParseAppendBody.
func FuzzParseAppendBody(f *testing.F) {
	f.Add(uint8(bodyJSON), []byte(`{"records":[{"key":"a","value":{"x":[1,2]}},{"value_base64":"AAE="}]}`))
	f.Add(uint8(bodyNDJSON), []byte("{\"value\":1}\n{\"headers\":{\"a\":\"b\"},\"timestamp\":\"2024-01-01T00:00:00Z\"}\n"))
	f.Add(uint8(bodyRaw), []byte("raw"))
	const maxRecord = 256
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		k := bodyKind(kind % 3)
		recs, err := parseAppendBody(k, body, "key", maxRecord)
		if k != bodyRaw && err == nil {
			// Differential: what the scanner accepts, encoding/json accepts,
			// with the same records.
			ref, rerr := refParseAppendBody(k, body, maxRecord)
			if rerr != nil {
				t.Fatalf("scanner accepted what encoding/json rejects (%v): %q", rerr, body)
			}
			if !sameRecords(recs, ref) {
				t.Fatalf("scanner and encoding/json disagree on %q:\n%+v\n%+v", body, recs, ref)
			}
		}
		if err != nil {
			if err.Status != http.StatusBadRequest && err.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d for a body error", err.Status)
			}
			if err.Message == "" {
				t.Fatal("error without a message")
			}
			return
		}
		if len(recs) == 0 {
			t.Fatal("accepted an empty batch")
		}
		var wire bytes.Buffer
		for i := range recs {
			r := &recs[i]
			if storage.RecordSize(r) > maxRecord {
				t.Fatalf("record %d of %d bytes accepted", i, storage.RecordSize(r))
			}
			if r.JSON && !json.Valid(r.Value) {
				t.Fatalf("record %d: JSON flag on invalid JSON %q", i, r.Value)
			}
			w := map[string]any{"key": string(r.Key)}
			if r.JSON {
				w["value"] = json.RawMessage(r.Value)
			} else {
				w["value_base64"] = base64.StdEncoding.EncodeToString(r.Value)
			}
			if r.Headers != nil {
				w["headers"] = r.Headers
			}
			if !r.Timestamp.IsZero() {
				w["timestamp"] = r.Timestamp.Format(time.RFC3339Nano)
			}
			if merr := appendJSONLine(&wire, w); merr != nil {
				t.Fatalf("re-encoding record %d: %v", i, merr)
			}
		}
		if k == bodyRaw || !utf8Clean(recs) {
			return // keys that are not UTF-8 do not survive JSON strings
		}
		again, aerr := parseAppendBody(bodyNDJSON, wire.Bytes(), "", maxRecord*4)
		if aerr != nil {
			t.Fatalf("re-parsing %q: %v", wire.Bytes(), aerr)
		}
		if len(again) != len(recs) {
			t.Fatalf("round trip: %d records, then %d", len(recs), len(again))
		}
		for i := range recs {
			a, b := recs[i], again[i]
			if !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Value, b.Value) || a.JSON != b.JSON ||
				!a.Timestamp.Equal(b.Timestamp) || len(a.Headers) != len(b.Headers) {
				t.Fatalf("round trip of record %d: %+v became %+v", i, a, b)
			}
			for hk, hv := range a.Headers {
				if b.Headers[hk] != hv {
					t.Fatalf("round trip of record %d: header %q", i, hk)
				}
			}
		}
	})
}

func utf8Clean(recs []storage.Record) bool {
	for _, r := range recs {
		if !utf8.Valid(r.Key) {
			return false
		}
		for k, v := range r.Headers {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return false
			}
		}
	}
	return true
}

func TestRateLimiterRefill(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newRateLimiter(2, 2) // 2 per second, burst 2
	for i := 0; i < 2; i++ {
		ok, _ := l.allow("a", now)
		require.True(t, ok)
	}
	ok, retry := l.allow("a", now)
	require.False(t, ok)
	assert.Equal(t, 500*time.Millisecond, retry)
	now = now.Add(500 * time.Millisecond)
	ok, _ = l.allow("a", now)
	assert.True(t, ok, "one token refilled after half a second")
	ok, _ = l.allow("b", now)
	assert.True(t, ok, "keys are independent")
}

func TestRateLimiterSweep(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newRateLimiter(1, 1)
	for i := 0; i < maxBuckets; i++ {
		l.allow(strings.Repeat("k", 1)+string(rune('a'+i%26))+time.Duration(i).String(), now)
	}
	now = now.Add(time.Hour)
	l.allow("new", now)
	l.mu.Lock()
	n := len(l.mu.buckets)
	l.mu.Unlock()
	assert.Equal(t, 1, n, "refilled buckets are dropped when the map is full")
}

func sameRecords(a, b []storage.Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !bytes.Equal(x.Key, y.Key) || !bytes.Equal(x.Value, y.Value) || x.JSON != y.JSON ||
			!x.Timestamp.Equal(y.Timestamp) || len(x.Headers) != len(y.Headers) {
			return false
		}
		for k, v := range x.Headers {
			if yv, ok := y.Headers[k]; !ok || yv != v {
				return false
			}
		}
	}
	return true
}
