package httpapi

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	gjson "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/badbatch/badbatch/storage"
)

// The JSON decoders the hand-written scanner (jsonscan.go) is compared with
// in BenchmarkAppendBodyDecoders (docs/decisions/0022-json-scanner.md).
// Each decodes the body into the record shape R, with unknown fields
// rejected (duplicates and case-insensitive keys are rejected by default in
// the v2 API), and builds the records the append handler passes on.

// wireRecord is R for reflection-based decoders.
type wireRecord struct {
	Key         *string           `json:"key"`
	Value       jsontext.Value    `json:"value"`
	ValueBase64 []byte            `json:"value_base64"`
	Timestamp   *string           `json:"timestamp"`
	Headers     map[string]string `json:"headers"`
}

// wireBody is a JSON body: {"records":[R...]} or one R.
type wireBody struct {
	Records    []wireRecord `json:"records"`
	wireRecord `json:",inline"`
}

func (w *wireRecord) record() storage.Record {
	r := storage.Record{Headers: w.Headers}
	if w.Key != nil {
		r.Key = []byte(*w.Key)
	}
	if w.Value != nil {
		r.Value, r.JSON = w.Value, true
	} else {
		r.Value = w.ValueBase64
	}
	return r
}

// unmarshalFunc is a v2-style Unmarshal with the options applied.
type unmarshalFunc func(data []byte, v any) error

// libraryDecoders maps a decoder's name to its Unmarshal; the
// GOEXPERIMENT=jsonv2 build adds encoding/json/v2.
var libraryDecoders = map[string]unmarshalFunc{
	"go-json-experiment": func(data []byte, v any) error {
		return gjson.Unmarshal(data, v, gjson.RejectUnknownMembers(true))
	},
}

func decodeWithLibrary(unmarshal unmarshalFunc, kind bodyKind, body []byte) ([]storage.Record, error) {
	if kind == bodyNDJSON {
		recs := make([]storage.Record, 0, bytes.Count(body, []byte{'\n'})+1)
		for line := range bytes.SplitSeq(body, []byte{'\n'}) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var w wireRecord
			if err := unmarshal(line, &w); err != nil {
				return nil, err
			}
			recs = append(recs, w.record())
		}
		return recs, nil
	}
	var w wireBody
	if err := unmarshal(body, &w); err != nil {
		return nil, err
	}
	if w.Records == nil {
		return []storage.Record{w.wireRecord.record()}, nil
	}
	recs := make([]storage.Record, len(w.Records))
	for i := range w.Records {
		recs[i] = w.Records[i].record()
	}
	return recs, nil
}

// appendBodies are the real append bodies: one record, and batches of 100
// records of about 110 bytes as NDJSON and as {"records":[...]}.
func appendBodies() []struct {
	name string
	kind bodyKind
	body []byte
	n    int
} {
	line := func(i int) string {
		s := fmt.Sprintf(`{"key":"order-%04d","value":{"id":%d,"customer":"c-%03d","amount":1999,"currency":"EUR","note":"x"}}`, i, i, i%1000)
		return s + strings.Repeat(" ", max(0, 110-len(s)))
	}
	var nd, batch bytes.Buffer
	batch.WriteString(`{"records":[`)
	for i := range 100 {
		nd.WriteString(line(i) + "\n")
		if i > 0 {
			batch.WriteByte(',')
		}
		batch.WriteString(line(i))
	}
	batch.WriteString(`]}`)
	return []struct {
		name string
		kind bodyKind
		body []byte
		n    int
	}{
		{"body=one-record", bodyJSON, []byte(line(0)), 1},
		{"body=ndjson/records=100", bodyNDJSON, nd.Bytes(), 100},
		{"body=json-batch/records=100", bodyJSON, batch.Bytes(), 100},
	}
}

// TestLibraryDecodersAgree: the benchmark compares like with like.
func TestLibraryDecodersAgree(t *testing.T) {
	for _, b := range appendBodies() {
		want, aerr := parseAppendBody(b.kind, b.body, "", 1<<20)
		if aerr != nil {
			t.Fatal(aerr)
		}
		for name, unmarshal := range libraryDecoders {
			got, err := decodeWithLibrary(unmarshal, b.kind, b.body)
			if err != nil {
				t.Fatalf("%s %s: %v", b.name, name, err)
			}
			if !sameRecords(want, got) {
				t.Errorf("%s %s: records differ from the scanner's", b.name, name)
			}
		}
	}
}

// BenchmarkAppendBodyDecoders compares the scanner with the libraries on
// the real append bodies; one op decodes one body.
func BenchmarkAppendBodyDecoders(b *testing.B) {
	for _, body := range appendBodies() {
		b.Run(body.name+"/decoder=scanner", func(b *testing.B) {
			var sc parseScratch
			b.ReportAllocs()
			b.SetBytes(int64(len(body.body)))
			for b.Loop() {
				if _, err := sc.parse(body.kind, body.body, "", 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
		for name, unmarshal := range libraryDecoders {
			b.Run(body.name+"/decoder="+name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body.body)))
				for b.Loop() {
					if _, err := decodeWithLibrary(unmarshal, body.kind, body.body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
