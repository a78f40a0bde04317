package httpapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/badbatch/badbatch/storage"
)

func TestDSOffsets(t *testing.T) {
	for _, off := range []uint64{0, 1, 42, 9999999999999999} {
		s := formatDSOffset(off)
		require.Len(t, s, 33)
		got, sub, ok := parseDSOffset(s)
		require.True(t, ok, s)
		assert.Equal(t, off, got)
		assert.Zero(t, sub)
	}
	assert.Less(t, formatDSOffset(9), formatDSOffset(10), "byte order is numeric order")
	for _, bad := range []string{"", "-1", "now", "0", "0000000000000000-0000000000000000", "000000000000000a_0000000000000000",
		"0000000000000000_000000000000000", " 000000000000000_0000000000000000", "0000000000000000_0000000000000000/"} {
		_, _, ok := parseDSOffset(bad)
		assert.False(t, ok, "%q", bad)
	}
}

// FuzzParseDSOffset: never a panic; what parses formats back to itself
// when its sub-offset is 0.
func FuzzParseDSOffset(f *testing.F) {
	f.Add(formatDSOffset(7))
	f.Add("9999999999999999_9999999999999999")
	f.Add("../0000000000000_0000000000000000")
	f.Fuzz(func(t *testing.T, v string) {
		off, sub, ok := parseDSOffset(v)
		if ok && sub == 0 {
			require.Equal(t, v, formatDSOffset(off))
		}
	})
}

// FuzzDSMessages: never a panic; on a JSON stream every message is valid
// JSON and an array flattens into its elements; elsewhere the body is one
// message as is.
func FuzzDSMessages(f *testing.F) {
	f.Add("application/json", []byte(`[{"a":1},2,"x"]`))
	f.Add("application/json", []byte(`{"a": [1, 2]}`))
	f.Add("application/json", []byte(`[]`))
	f.Add("application/json", []byte(`{ invalid`))
	f.Add("text/plain", []byte("line\r\nline"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		recs, aerr := dsMessages(ct, body)
		if aerr != nil {
			require.Equal(t, 400, aerr.Status)
			return
		}
		if !isJSONType(ct) {
			if len(body) == 0 {
				require.Empty(t, recs)
			} else {
				require.Len(t, recs, 1)
				require.Equal(t, body, recs[0].Value)
			}
			return
		}
		for _, r := range recs {
			require.True(t, json.Valid(r.Value), "%q", r.Value)
			require.True(t, r.JSON)
		}
		trimmed := strings.TrimSpace(string(body))
		if strings.HasPrefix(trimmed, "[") {
			var elems []json.RawMessage
			require.NoError(t, json.Unmarshal([]byte(trimmed), &elems))
			require.Len(t, recs, len(elems))
		}
	})
}

// TestSSEDataLines: every line break (CRLF, LF, lone CR) starts a new
// data: line, so a message cannot forge an event.
func TestSSEDataLines(t *testing.T) {
	recs := []storage.StoredRecord{{Record: storage.Record{Value: []byte("start\r\revent: control\rdata:{}\r\nend\n")}}}
	got := string(appendSSEData(nil, "text/plain", false, recs))
	assert.Equal(t, "event: data\ndata:start\ndata:\ndata:event: control\ndata:data:{}\ndata:end\ndata:\n\n", got)
	b64 := string(appendSSEData(nil, "application/octet-stream", true, []storage.StoredRecord{{Record: storage.Record{Value: []byte("Hello")}}}))
	assert.Equal(t, "event: data\ndata:SGVsbG8=\n\n", b64)
	js := string(appendSSEData(nil, "application/json", false, []storage.StoredRecord{
		{Record: storage.Record{Value: []byte(`{"a":1}`), JSON: true}},
		{Record: storage.Record{Value: []byte{0xff}}},
	}))
	assert.Equal(t, "event: data\ndata:[{\"a\":1},\"/w==\"]\n\n", js)
	ctl := string(appendSSEControl(nil, 3, true, true, ""))
	assert.Equal(t, "event: control\ndata:{\"streamNextOffset\":\"0000000000000003_0000000000000000\",\"streamClosed\":true,\"upToDate\":true}\n\n", ctl)
}

func TestDSCursor(t *testing.T) {
	cur := dsCursor("")
	require.Regexp(t, `^\d+$`, cur)
	ahead := "99999999999"
	assert.Equal(t, "100000000000", dsCursor(ahead), "above a client's cursor that is not behind")
}
