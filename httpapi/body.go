package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/badbatch/badbatch/storage"
)

// Media types the append endpoint understands. Any other type is a raw
// body, except the ones rejectedTypes names.
const (
	mediaJSON   = "application/json"
	mediaNDJSON = "application/x-ndjson"
	mediaSSE    = "text/event-stream"
)

// wireRecord is R in the API: one record as a client sends it.
type wireRecord struct {
	Key         *string           `json:"key"`
	Value       json.RawMessage   `json:"value"`
	ValueBase64 *string           `json:"value_base64"`
	Headers     map[string]string `json:"headers"`
	Timestamp   *string           `json:"timestamp"`
}

func (w *wireRecord) empty() bool {
	return w.Key == nil && w.Value == nil && w.ValueBase64 == nil && w.Headers == nil && w.Timestamp == nil
}

// wireBody is a JSON append body: either {"records":[R,...]} or one R.
type wireBody struct {
	Records *[]wireRecord `json:"records"`
	wireRecord
}

// bodyKind is how an append body is to be parsed.
type bodyKind int

const (
	bodyRaw bodyKind = iota
	bodyJSON
	bodyNDJSON
)

// classifyContentType decides how to parse an append body. It rejects with
// 415 what cannot be a record: malformed types, non-UTF-8 JSON, forms and
// multipart bodies (storing a form envelope is never what the sender meant).
func classifyContentType(header string) (bodyKind, *apiError) {
	if strings.TrimSpace(header) == "" {
		return bodyRaw, nil
	}
	mt, params, err := mime.ParseMediaType(header)
	if err != nil {
		return 0, newError(http.StatusUnsupportedMediaType, CodeUnsupportedType, "malformed Content-Type %q", header)
	}
	var kind bodyKind
	switch {
	case mt == mediaJSON:
		kind = bodyJSON
	case mt == mediaNDJSON || mt == "application/ndjson" || mt == "application/jsonl":
		kind = bodyNDJSON
	case strings.HasPrefix(mt, "multipart/") || mt == "application/x-www-form-urlencoded":
		return 0, newError(http.StatusUnsupportedMediaType, CodeUnsupportedType,
			"Content-Type %s is not accepted: send the bytes as application/octet-stream", mt)
	default:
		return bodyRaw, nil
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return 0, newError(http.StatusUnsupportedMediaType, CodeUnsupportedType, "charset %q: JSON must be UTF-8", cs)
	}
	return kind, nil
}

// parseAppendBody turns an append request body into records. It checks
// everything the store would otherwise reject for a malformed request, so
// that bad input never reaches the store. recordKey is the Record-Key header
// (raw bodies only); maxRecord bounds key + value + headers of one record.
func parseAppendBody(kind bodyKind, body []byte, recordKey string, maxRecord int) ([]storage.Record, *apiError) {
	switch kind {
	case bodyJSON:
		return parseJSONBody(body, maxRecord)
	case bodyNDJSON:
		return parseNDJSONBody(body, maxRecord)
	default:
		rec := storage.Record{Value: body}
		if recordKey != "" {
			rec.Key = []byte(recordKey)
		}
		if err := checkRecordSize(&rec, maxRecord, 0); err != nil {
			return nil, err
		}
		return []storage.Record{rec}, nil
	}
}

func parseJSONBody(body []byte, maxRecord int) ([]storage.Record, *apiError) {
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return nil, badRequest("bad JSON body: want an object, {\"records\":[...]} or one record")
	}
	var wb wireBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&wb); err != nil {
		return nil, badRequest("bad JSON body: %v", jsonErrorText(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest("bad JSON body: data after the top-level value")
	}
	if wb.Records == nil {
		rec, err := wb.wireRecord.toRecord(maxRecord, 0)
		if err != nil {
			return nil, err
		}
		return []storage.Record{rec}, nil
	}
	if !wb.wireRecord.empty() {
		return nil, badRequest(`bad JSON body: "records" cannot be mixed with record fields`)
	}
	if len(*wb.Records) == 0 {
		return nil, badRequest("empty batch: no records")
	}
	recs := make([]storage.Record, len(*wb.Records))
	for i := range *wb.Records {
		rec, err := (*wb.Records)[i].toRecord(maxRecord, i)
		if err != nil {
			return nil, err
		}
		recs[i] = rec
	}
	return recs, nil
}

func parseNDJSONBody(body []byte, maxRecord int) ([]storage.Record, *apiError) {
	recs := make([]storage.Record, 0, bytes.Count(body, []byte{'\n'})+1)
	line := 0
	for len(body) > 0 {
		var text []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			text, body = body[:i], body[i+1:]
		} else {
			text, body = body, nil
		}
		line++
		text = bytes.TrimSpace(text)
		if len(text) == 0 {
			continue
		}
		var wr wireRecord
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&wr); err != nil {
			return nil, badRequest("bad NDJSON body: line %d: %v", line, jsonErrorText(err))
		}
		if dec.More() {
			return nil, badRequest("bad NDJSON body: line %d: more than one value", line)
		}
		rec, err := wr.toRecord(maxRecord, len(recs))
		if err != nil {
			err.Message = "line " + strconv.Itoa(line) + ": " + err.Message
			return nil, err
		}
		recs = append(recs, rec)
	}
	if len(recs) == 0 {
		return nil, badRequest("empty batch: no records")
	}
	return recs, nil
}

// toRecord checks one wire record and converts it. index names the record
// in error messages.
func (w *wireRecord) toRecord(maxRecord, index int) (storage.Record, *apiError) {
	var rec storage.Record
	if w.Key != nil {
		rec.Key = []byte(*w.Key)
	}
	switch {
	case w.Value != nil && w.ValueBase64 != nil:
		return rec, badRequest("record %d: both value and value_base64", index)
	case w.Value != nil:
		var buf bytes.Buffer
		buf.Grow(len(w.Value))
		if err := json.Compact(&buf, w.Value); err != nil {
			return rec, badRequest("record %d: bad JSON value: %v", index, err)
		}
		rec.Value, rec.JSON = buf.Bytes(), true
	case w.ValueBase64 != nil:
		v, err := base64.StdEncoding.DecodeString(*w.ValueBase64)
		if err != nil {
			return rec, badRequest("record %d: bad value_base64: %v", index, err)
		}
		rec.Value = v
	}
	if w.Timestamp != nil {
		ts, err := time.Parse(time.RFC3339Nano, *w.Timestamp)
		if err != nil {
			return rec, badRequest("record %d: bad timestamp %q: want RFC 3339", index, *w.Timestamp)
		}
		if ts.IsZero() {
			return rec, badRequest("record %d: timestamp %q is the zero time", index, *w.Timestamp)
		}
		rec.Timestamp = ts
	}
	for k := range w.Headers {
		if k == "" {
			return rec, badRequest("record %d: empty header name", index)
		}
	}
	if len(w.Headers) > 0 {
		rec.Headers = w.Headers
	}
	if err := checkRecordSize(&rec, maxRecord, index); err != nil {
		return rec, err
	}
	return rec, nil
}

// recordSize is what MaxRecordBytes counts: key, value and headers.
func recordSize(r *storage.Record) int {
	n := len(r.Key) + len(r.Value)
	for k, v := range r.Headers {
		n += len(k) + len(v)
	}
	return n
}

func checkRecordSize(r *storage.Record, maxRecord, index int) *apiError {
	if n := recordSize(r); n > maxRecord {
		return newError(http.StatusRequestEntityTooLarge, CodeTooLarge,
			"record %d: %d bytes (key + value + headers), at most %d", index, n, maxRecord)
	}
	return nil
}

// jsonErrorText shortens encoding/json errors for clients.
func jsonErrorText(err error) string {
	if errors.Is(err, io.EOF) {
		return "empty body"
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of JSON"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
