package httpapi

// The first implementation of body parsing, on encoding/json, kept as the
// reference that FuzzParseAppendBody compares the hand-written scanner
// with: whatever the scanner accepts, encoding/json must accept with the
// same records.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/badbatch/badbatch/storage"
)

func refParseAppendBody(kind bodyKind, body []byte, maxRecord int) ([]storage.Record, *apiError) {
	switch kind {
	case bodyJSON:
		return refParseJSONBody(body, maxRecord)
	case bodyNDJSON:
		return refParseNDJSONBody(body, maxRecord)
	}
	return nil, badRequest("raw")
}

// refWireRecord is R in the API: one record as a client sends it.
type refWireRecord struct {
	Key         *string           `json:"key"`
	Value       json.RawMessage   `json:"value"`
	ValueBase64 *string           `json:"value_base64"`
	Headers     map[string]string `json:"headers"`
	Timestamp   *string           `json:"timestamp"`
}

func (w *refWireRecord) empty() bool {
	return w.Key == nil && w.Value == nil && w.ValueBase64 == nil && w.Headers == nil && w.Timestamp == nil
}

// refWireBody is a JSON append body: either {"records":[R,...]} or one R.
type refWireBody struct {
	Records *[]refWireRecord `json:"records"`
	refWireRecord
}

func refParseJSONBody(body []byte, maxRecord int) ([]storage.Record, *apiError) {
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return nil, badRequest("bad JSON body: want an object, {\"records\":[...]} or one record")
	}
	var wb refWireBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&wb); err != nil {
		return nil, badRequest("bad JSON body: %v", jsonErrorText(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest("bad JSON body: data after the top-level value")
	}
	if wb.Records == nil {
		rec, err := wb.refWireRecord.toRecord(maxRecord, 0)
		if err != nil {
			return nil, err
		}
		return []storage.Record{rec}, nil
	}
	if !wb.refWireRecord.empty() {
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

func refParseNDJSONBody(body []byte, maxRecord int) ([]storage.Record, *apiError) {
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
		var wr refWireRecord
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
func (w *refWireRecord) toRecord(maxRecord, index int) (storage.Record, *apiError) {
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
