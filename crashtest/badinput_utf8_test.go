package crashtest

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBadInputInvalidUTF8InJSONValue: JSON text must be UTF-8 (RFC 8259
// 8.1; docs/http-api.md: bad JSON answers 400). Raw bytes that are not
// UTF-8 inside a JSON string once got 201 and were stored as U+FFFD, so the
// record did not read back as sent. They must answer 400 bad_request and
// store nothing.
func TestBadInputInvalidUTF8InJSONValue(t *testing.T) {
	dir := t.TempDir()
	srv := newServer(t, filepath.Join(dir, "data"), filepath.Join(dir, "serve.log"))
	srv.start()
	tests := []struct {
		name, contentType, body string
	}{
		{"JSON record", "application/json", "{\"records\":[{\"value\":\"\xff\xfe\"}]}"},
		{"NDJSON line", "application/x-ndjson", "{\"value\":\"\xff\"}\n"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := fmt.Sprintf("u%d", i)
			status, body, _, err := srv.post(stream, tt.contentType, []byte(tt.body), nil)
			require.NoError(t, err)
			assert.Equal(t, http.StatusBadRequest, status, "%s", body)
			streams, err := srv.streams()
			require.NoError(t, err)
			for _, st := range streams {
				assert.NotEqual(t, stream, st.Stream, "a rejected append created its stream")
			}
		})
	}
	require.NoError(t, srv.stop())
}
