package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProgressLine(t *testing.T) {
	start := time.Unix(100, 0)
	cases := []struct {
		name  string
		total int64
		bytes int64
		recs  int
		want  string
	}{
		{"known size", 1000, 420, 12, "[############..................]  42%  12 records  0.0 MB/s"},
		{"complete", 1000, 1000, 30, "[##############################] 100%  30 records  0.0 MB/s"},
		{"unknown size", -1, 3 << 20, 7, "7 records  3.0 MiB read  1.6 MB/s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := newProgress(&buf, tc.total, "always")
			p.start = start
			p.add(tc.bytes)
			p.recs = tc.recs
			assert.Equal(t, tc.want, p.line(start.Add(2*time.Second)))
		})
	}
}

func TestProgressOnlyOnTerminal(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, 10, "auto")
	p.add(5)
	p.records(1)
	p.done()
	assert.Empty(t, buf.String(), "a buffer is not a terminal")

	p = newProgress(&buf, 10, "always")
	p.add(10)
	p.records(3)
	p.done()
	require.True(t, strings.HasPrefix(buf.String(), "\r["))
	assert.True(t, strings.HasSuffix(buf.String(), "\n"))
}

func TestLineRecord(t *testing.T) {
	cases := []struct {
		format, line string
		value        string
		json         bool
		key          string
		err          string
	}{
		{"lines", "plain text", "plain text", false, "", ""},
		{"ndjson", `{"a":1}`, `{"a":1}`, true, "", ""},
		{"ndjson", `{"a":`, "", false, "", "not a JSON value"},
		{"records", `{"key":"k","value":[1]}`, `[1]`, true, "k", ""},
		{"records", `{"value_base64":"aGk="}`, "hi", false, "", ""},
		{"records", `{"value":1,"value_base64":"aGk="}`, "", false, "", "both"},
		{"xml", `<a/>`, "", false, "", "want auto"},
	}
	for _, tc := range cases {
		t.Run(tc.format+"/"+tc.line, func(t *testing.T) {
			rec, err := lineRecord(tc.format, []byte(tc.line))
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.value, string(rec.Value))
			assert.Equal(t, tc.json, rec.JSON)
			assert.Equal(t, tc.key, rec.Key)
		})
	}
}
