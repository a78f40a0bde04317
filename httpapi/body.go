package httpapi

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/badbatch/badbatch/httpapi/wire"
	"github.com/badbatch/badbatch/storage"
)

// Media types the append endpoint understands. Any other type is a raw
// body, except the ones rejectedTypes names.
const (
	mediaJSON   = "application/json"
	mediaNDJSON = "application/x-ndjson"
	mediaSSE    = "text/event-stream"
)

// bodyKind is how an append body is to be parsed.
type bodyKind int

const (
	bodyRaw bodyKind = iota
	bodyJSON
	bodyNDJSON
	bodyBinary // mediaRecords (binary.go)
)

// classifyContentType decides how to parse an append body. It rejects with
// 415 what cannot be a record: malformed types, non-UTF-8 JSON, forms and
// multipart bodies (storing a form envelope is never what the sender meant).
func classifyContentType(header string) (bodyKind, *apiError) {
	// The exact spellings clients send almost always; mime.ParseMediaType
	// would return the same type and no parameters, at the cost of a map.
	switch header {
	case mediaJSON:
		return bodyJSON, nil
	case mediaNDJSON:
		return bodyNDJSON, nil
	case mediaRecords:
		return bodyBinary, nil
	}
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
	case mt == mediaRecords:
		return bodyBinary, nil
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

// parseScratch holds the memory parse needs, so that the append
// handler can reuse it across requests (appendScratchPool). The records a
// parse returns alias it (and the body): the store copies them before
// AppendWith returns, and only then may the scratch be reused.
type parseScratch struct {
	buf []byte            // decoded value_base64 and compacted JSON values
	one [1]storage.Record // the records of a single-record body

	// Binary bodies (binary.go): the decoded records, their conversion,
	// and the batch options the body carried.
	wire   []wire.Record
	recs   []storage.Record
	binary binaryOptions
}

// parse turns an append request body into records, in sc's memory. It
// checks everything the store would otherwise reject for a malformed
// request, so that bad input never reaches the store. recordKey is the
// Record-Key header (raw bodies only); maxRecord bounds key + value +
// headers of one record.
func (sc *parseScratch) parse(kind bodyKind, body []byte, recordKey string, maxRecord int) ([]storage.Record, *apiError) {
	sc.one[0] = storage.Record{}
	sc.binary = binaryOptions{}
	switch kind {
	case bodyBinary:
		return sc.parseBinaryBody(body, maxRecord)
	case bodyJSON:
		return sc.parseJSONBody(body, maxRecord)
	case bodyNDJSON:
		return sc.parseNDJSONBody(body, maxRecord)
	default:
		rec := storage.Record{Value: body}
		if recordKey != "" {
			rec.Key = []byte(recordKey)
		}
		if err := checkRecordSize(&rec, maxRecord, 0); err != nil {
			return nil, err
		}
		sc.one[0] = rec
		return sc.one[:], nil
	}
}

// scratchBuf returns sc.buf emptied, with room for n bytes.
func (sc *parseScratch) scratchBuf(n int) []byte {
	return slices.Grow(sc.buf[:0], n)
}

func (sc *parseScratch) parseJSONBody(body []byte, maxRecord int) ([]storage.Record, *apiError) {
	s := scanner{data: body}
	if s.peek() != '{' {
		return nil, badRequest("bad JSON body: want an object, {\"records\":[...]} or one record")
	}
	buf := sc.scratchBuf(len(body))
	defer func() { sc.buf = buf }()
	var single recordFields
	var recs []storage.Record
	hasRecords := false
	err := s.object(func(key []byte) (int, error) {
		if string(key) != "records" {
			return s.recordField(&single, key, &buf)
		}
		hasRecords = true
		if err := s.expect('['); err != nil {
			return 0, err
		}
		if s.peek() == ']' {
			s.pos++
			return fieldRecords, nil
		}
		for {
			var rf recordFields
			if err := s.record(&rf, &buf); err != nil {
				return 0, fmt.Errorf("record %d: %w", len(recs), err)
			}
			rec, aerr := rf.toRecord(maxRecord, len(recs), &buf)
			if aerr != nil {
				return 0, aerr
			}
			recs = append(recs, rec)
			switch s.peek() {
			case ',':
				s.pos++
			case ']':
				s.pos++
				return fieldRecords, nil
			default:
				return 0, s.errorf("want ',' or ']' after record %d", len(recs)-1)
			}
		}
	})
	if err != nil {
		var aerr *apiError
		if errors.As(err, &aerr) {
			return nil, aerr
		}
		return nil, badRequest("bad JSON body: %v", err)
	}
	if !s.atEnd() {
		return nil, badRequest("bad JSON body: data after the top-level value")
	}
	if !hasRecords {
		rec, aerr := single.toRecord(maxRecord, 0, &buf)
		if aerr != nil {
			return nil, aerr
		}
		sc.one[0] = rec
		return sc.one[:], nil
	}
	if single.any() {
		return nil, badRequest(`bad JSON body: "records" cannot be mixed with record fields`)
	}
	if len(recs) == 0 {
		return nil, badRequest("empty batch: no records")
	}
	return recs, nil
}

func (sc *parseScratch) parseNDJSONBody(body []byte, maxRecord int) ([]storage.Record, *apiError) {
	recs := make([]storage.Record, 0, bytes.Count(body, []byte{'\n'})+1)
	buf := sc.scratchBuf(len(body))
	defer func() { sc.buf = buf }()
	line := 0
	for len(body) > 0 {
		var text []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			text, body = body[:i], body[i+1:]
		} else {
			text, body = body, nil
		}
		line++
		s := scanner{data: text}
		if s.atEnd() {
			continue // a blank line
		}
		var rf recordFields
		if err := s.record(&rf, &buf); err != nil {
			return nil, badRequest("bad NDJSON body: line %d: %v", line, err)
		}
		if !s.atEnd() {
			return nil, badRequest("bad NDJSON body: line %d: more than one value", line)
		}
		rec, err := rf.toRecord(maxRecord, len(recs), &buf)
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

// toRecord checks one parsed record and converts it. index names the record
// in error messages. A decoded value_base64 is appended to *buf and aliases
// it (the store copies it before Append returns).
func (r *recordFields) toRecord(maxRecord, index int, buf *[]byte) (storage.Record, *apiError) {
	var rec storage.Record
	if r.hasKey {
		rec.Key = r.key
	}
	switch {
	case r.hasValue && r.hasB64:
		return rec, badRequest("record %d: both value and value_base64", index)
	case r.hasValue:
		rec.Value, rec.JSON = r.value, true
	case r.hasB64:
		start := len(*buf)
		*buf = slices.Grow(*buf, base64.StdEncoding.DecodedLen(len(r.valueBase64)))
		n, err := base64.StdEncoding.Decode((*buf)[start:cap(*buf)], r.valueBase64)
		if err != nil {
			return rec, badRequest("record %d: bad value_base64: %v", index, err)
		}
		*buf = (*buf)[:start+n]
		rec.Value = (*buf)[start : start+n : start+n]
	}
	if r.hasTime {
		ts, err := time.Parse(time.RFC3339Nano, string(r.timestamp))
		if err != nil {
			return rec, badRequest("record %d: bad timestamp %q: want RFC 3339", index, r.timestamp)
		}
		if ts.IsZero() {
			return rec, badRequest("record %d: timestamp %q is the zero time", index, r.timestamp)
		}
		rec.Timestamp = ts
	}
	for k := range r.headers {
		if k == "" {
			return rec, badRequest("record %d: empty header name", index)
		}
	}
	if len(r.headers) > 0 {
		rec.Headers = r.headers
	}
	if err := checkRecordSize(&rec, maxRecord, index); err != nil {
		return rec, err
	}
	return rec, nil
}

func checkRecordSize(r *storage.Record, maxRecord, index int) *apiError {
	if n := storage.RecordSize(r); n > maxRecord {
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
