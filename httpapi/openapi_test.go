package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/badbatch/badbatch/httpapi"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenAPIDocsCopyIsIdentical(t *testing.T) {
	docs, err := os.ReadFile(filepath.Join("..", "docs", "openapi.yaml"))
	require.NoError(t, err)
	assert.Equal(t, string(httpapi.OpenAPI), string(docs), "docs/openapi.yaml must be a copy of httpapi/openapi.yaml")
}

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPI)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()))
	return doc
}

// TestResponsesMatchOpenAPI sends real requests, success and error, and
// validates every response (status, headers, body) against the document.
func TestResponsesMatchOpenAPI(t *testing.T) {
	doc := loadOpenAPI(t)
	ts := authServer(t, func(o *httpapi.Options) {
		o.RateLimit = 0.001
		o.RateBurst = 1000
	})
	doc.Servers = openapi3.Servers{{URL: ts.URL}}
	router, err := legacy.NewRouter(doc)
	require.NoError(t, err)
	admin := []string{"Authorization", "Bearer " + tokAdmin}
	reader := []string{"Authorization", "Bearer " + tokReader}
	jsonCT := []string{"Content-Type", "application/json"}
	cat := func(xs ...[]string) []string {
		var out []string
		for _, x := range xs {
			out = append(out, x...)
		}
		return out
	}
	cases := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
	}{
		{"append batch", "POST", "/v1/streams/oa/records", `{"records":[{"key":"a","value":{"x":1}},{"value_base64":"AAE="}]}`, cat(admin, jsonCT), 201},
		{"append single", "POST", "/v1/streams/oa/records", `{"value":"s","headers":{"h":"v"},"timestamp":"2024-05-01T00:00:00Z"}`, cat(admin, jsonCT), 201},
		{"append ndjson", "POST", "/v1/streams/oa/records", "{\"value\":1}\n{\"value\":2}\n", cat(admin, []string{"Content-Type", "application/x-ndjson"}), 201},
		{"append raw", "POST", "/v1/streams/oa/records", "raw bytes", cat(admin, []string{"Content-Type", "application/octet-stream", "Record-Key", "k"}), 201},
		{"append idempotent", "POST", "/v1/streams/oa/records", `{"value":1}`, cat(admin, jsonCT, []string{"Idempotency-Key", "i1"}), 201},
		{"append replayed", "POST", "/v1/streams/oa/records", `{"value":1}`, cat(admin, jsonCT, []string{"Idempotency-Key", "i1"}), 201},
		{"append conflict", "POST", "/v1/streams/oa/records", `{"value":1}`, cat(admin, jsonCT, []string{"Expected-Last-Offset", "0"}), 409},
		{"append bad json", "POST", "/v1/streams/oa/records", `{`, cat(admin, jsonCT), 400},
		{"append forbidden", "POST", "/v1/streams/oa/records", `{"value":1}`, cat(reader, jsonCT), 403},
		{"append unauthorized", "POST", "/v1/streams/oa/records", `{"value":1}`, jsonCT, 401},
		{"append unsupported", "POST", "/v1/streams/oa/records", `a=b`, cat(admin, []string{"Content-Type", "application/x-www-form-urlencoded"}), 415},
		{"read page", "GET", "/v1/streams/oa/records?from=0&limit=2", "", reader, 200},
		{"read live end", "GET", "/v1/streams/oa/records?from=latest", "", reader, 200},
		{"read not found", "GET", "/v1/streams/nope/records", "", reader, 404},
		{"read bad limit", "GET", "/v1/streams/oa/records?limit=0", "", reader, 400},
		{"global", "GET", "/v1/records?from_seq=0&limit=3", "", reader, 200},
		{"streams", "GET", "/v1/streams", "", reader, 200},
		{"stream info", "GET", "/v1/streams/oa", "", reader, 200},
		{"stream info not found", "GET", "/v1/streams/nope", "", reader, 404},
		{"head", "HEAD", "/v1/streams/oa", "", reader, 200},
		{"cursor put", "PUT", "/v1/streams/oa/cursors/c1", `{"offset":3}`, cat(reader, jsonCT), 200},
		{"cursor get", "GET", "/v1/streams/oa/cursors/c1", "", reader, 200},
		{"cursor not found", "GET", "/v1/streams/oa/cursors/zz", "", reader, 404},
		{"healthz", "GET", "/healthz", "", nil, 200},
		{"readyz", "GET", "/readyz", "", nil, 200},
		{"metrics", "GET", "/metrics", "", admin, 200},
		{"openapi", "GET", "/v1/openapi.yaml", "", nil, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = bytes.NewReader([]byte(tc.body))
			}
			req, err := http.NewRequest(tc.method, ts.URL+tc.path, body)
			require.NoError(t, err)
			for i := 0; i+1 < len(tc.headers); i += 2 {
				req.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			respBody, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode, "%s", respBody)

			route, params, err := router.FindRoute(req)
			require.NoError(t, err)
			input := &openapi3filter.ResponseValidationInput{
				RequestValidationInput: &openapi3filter.RequestValidationInput{
					Request: req, PathParams: params, Route: route,
					Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
				},
				Status: resp.StatusCode,
				Header: resp.Header,
				Body:   io.NopCloser(bytes.NewReader(respBody)),
				Options: &openapi3filter.Options{
					IncludeResponseStatus: true,
				},
			}
			assert.NoError(t, openapi3filter.ValidateResponse(context.Background(), input))
		})
	}
}
