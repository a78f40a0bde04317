package httpapi

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"testing"
)

// BenchmarkParseAppendBody: one op parses one body of 1,000 records of 100
// bytes (value_base64) or of small JSON values.
func BenchmarkParseAppendBody(b *testing.B) {
	value := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("v"), 100))
	bodies := map[string]func(i int) string{
		"value_base64": func(int) string { return `{"value_base64":"` + value + `"}` },
		"json":         func(i int) string { return fmt.Sprintf(`{"key":"k%d","value":{"n":%d,"s":"some text here"}}`, i, i) },
	}
	for _, name := range []string{"value_base64", "json"} {
		var nd, batch bytes.Buffer
		batch.WriteString(`{"records":[`)
		for i := 0; i < 1000; i++ {
			line := bodies[name](i)
			nd.WriteString(line + "\n")
			if i > 0 {
				batch.WriteByte(',')
			}
			batch.WriteString(line)
		}
		batch.WriteString(`]}`)
		for _, tc := range []struct {
			format string
			kind   bodyKind
			body   []byte
		}{{"ndjson", bodyNDJSON, nd.Bytes()}, {"json-batch", bodyJSON, batch.Bytes()}} {
			b.Run(fmt.Sprintf("format=%s/value=%s/records=1000", tc.format, name), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(tc.body)))
				for b.Loop() {
					if _, err := parseAppendBody(tc.kind, tc.body, "", 1<<20); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}
