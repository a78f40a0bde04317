package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/badbatch/badbatch"
	"github.com/badbatch/badbatch/storage"
)

// outRecord is a stored record as the API returns it. A JSON value is
// returned as JSON ("value"), anything else as base64 ("value_base64"). A
// key is a string ("key") when it is valid UTF-8, else "key_base64".
type outRecord struct {
	Stream      string            `json:"stream,omitempty"`
	Offset      uint64            `json:"offset"`
	Seq         uint64            `json:"seq"`
	Timestamp   string            `json:"timestamp"`
	Key         *string           `json:"key,omitempty"`
	KeyBase64   *string           `json:"key_base64,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Value       json.RawMessage   `json:"value,omitempty"`
	ValueBase64 *string           `json:"value_base64,omitempty"`
}

// toOutRecord converts a stored record; withStream names its stream (global
// reads).
func toOutRecord(r *storage.StoredRecord, withStream bool) outRecord {
	o := outRecord{
		Offset:    r.Offset,
		Seq:       r.Seq,
		Timestamp: r.Timestamp.UTC().Format(time.RFC3339Nano),
		Headers:   r.Headers,
	}
	if withStream {
		o.Stream = r.Stream
	}
	if len(r.Key) > 0 {
		if utf8.Valid(r.Key) {
			k := string(r.Key)
			o.Key = &k
		} else {
			k := base64.StdEncoding.EncodeToString(r.Key)
			o.KeyBase64 = &k
		}
	}
	if r.JSON && json.Valid(r.Value) {
		o.Value = json.RawMessage(r.Value)
	} else {
		v := base64.StdEncoding.EncodeToString(r.Value)
		o.ValueBase64 = &v
	}
	return o
}

func toOutRecords(recs []storage.StoredRecord, withStream bool) []outRecord {
	out := make([]outRecord, len(recs))
	for i := range recs {
		out[i] = toOutRecord(&recs[i], withStream)
	}
	return out
}

// appendResultJSON appends the JSON encoding/json gives a (the 201 body of
// an append, then the newline of json.Encoder.Encode) to dst without
// reflection. ok is false when a string field holds a byte that
// encoding/json would escape (never the case for a valid stream name and
// the store's durability values); the caller then falls back to
// encoding/json.
func appendResultJSON(dst []byte, a *badbatch.AppendResult) (_ []byte, ok bool) {
	if !plainJSONString(a.Stream) || !plainJSONString(a.Durability) {
		return dst, false
	}
	dst = append(dst, `{"stream":"`...)
	dst = append(dst, a.Stream...)
	dst = append(dst, `","first_offset":`...)
	dst = strconv.AppendUint(dst, a.FirstOffset, 10)
	dst = append(dst, `,"last_offset":`...)
	dst = strconv.AppendUint(dst, a.LastOffset, 10)
	dst = append(dst, `,"count":`...)
	dst = strconv.AppendInt(dst, int64(a.Count), 10)
	dst = append(dst, `,"first_seq":`...)
	dst = strconv.AppendUint(dst, a.FirstSeq, 10)
	dst = append(dst, `,"last_seq":`...)
	dst = strconv.AppendUint(dst, a.LastSeq, 10)
	dst = append(dst, `,"durability":"`...)
	dst = append(dst, a.Durability...)
	dst = append(dst, `","replayed":`...)
	dst = strconv.AppendBool(dst, a.Replayed)
	dst = append(dst, "}\n"...)
	return dst, true
}

// plainJSONString reports whether encoding/json (HTML escaping on) writes
// s between quotes unchanged: printable ASCII but '"', '\\', '<', '>', '&'.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// pageResponse is the JSON body of a stream read.
type pageResponse struct {
	Records    []outRecord `json:"records"`
	NextOffset uint64      `json:"next_offset"`
}

// globalResponse is the JSON body of a global read.
type globalResponse struct {
	Records []outRecord `json:"records"`
	NextSeq uint64      `json:"next_seq"`
}

// streamInfoResponse describes one stream.
type streamInfoResponse struct {
	Stream        string  `json:"stream"`
	FirstOffset   uint64  `json:"first_offset"`
	NextOffset    uint64  `json:"next_offset"`
	Records       uint64  `json:"records"`
	Bytes         uint64  `json:"bytes"`
	LastTimestamp *string `json:"last_timestamp"`
	ContentType   string  `json:"content_type"`
	Closed        bool    `json:"closed"`
	TTLSeconds    int64   `json:"ttl_seconds,omitempty"`
	ExpiresAt     string  `json:"expires_at,omitempty"`
	ForkedFrom    string  `json:"forked_from,omitempty"`
	ForkOffset    uint64  `json:"fork_offset,omitempty"`
}

func toStreamInfo(i storage.StreamInfo) streamInfoResponse {
	o := streamInfoResponse{Stream: i.Stream, FirstOffset: i.FirstOffset, NextOffset: i.NextOffset, Records: i.Records, Bytes: i.Bytes,
		ContentType: i.ContentType, Closed: i.Closed, TTLSeconds: i.TTLSeconds, ForkedFrom: i.ForkedFrom, ForkOffset: i.ForkOffset}
	if !i.ExpiresAt.IsZero() {
		o.ExpiresAt = i.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	if !i.LastTimestamp.IsZero() {
		ts := i.LastTimestamp.UTC().Format(time.RFC3339Nano)
		o.LastTimestamp = &ts
	}
	return o
}

type streamsResponse struct {
	Streams []streamInfoResponse `json:"streams"`
}

type cursorBody struct {
	Offset *uint64 `json:"offset"`
}

type cursorResponse struct {
	Stream string `json:"stream"`
	Name   string `json:"name"`
	Offset uint64 `json:"offset"`
}

// marshalJSON encodes v like json.Marshal but without HTML escaping, so a
// JSON value reads back byte for byte as it was stored ("<", ">" and "&"
// stay themselves).
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// appendJSONLine appends v's JSON and a newline to buf (NDJSON).
func appendJSONLine(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
