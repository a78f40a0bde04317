package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/badbatch/badbatch"
)

// Client talks to one BadBatch server. It is safe for concurrent use by
// many goroutines, and pools its connections: make one per server and
// share it.
type Client struct {
	base *url.URL
	http *http.Client
	s    settings

	// The http.Client of append sessions' WebSocket handshakes (wsHTTP).
	wsOnce   sync.Once
	wsClient *http.Client
}

// New returns a client of the server at baseURL (e.g.
// http://127.0.0.1:8080). opts may be nil (every default) or set only some
// fields; see Options. New never writes to opts. A bad URL or option is an
// *Error of kind invalid_options (errors.Is ErrInvalidOptions).
func New(baseURL string, opts *Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, newClientError(CodeInvalidOptions, fmt.Sprintf("base URL %q: want http(s)://host[:port]", baseURL), err)
	}
	s, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	var hc *http.Client
	if opts != nil && opts.HTTPClient != nil {
		c := *opts.HTTPClient
		hc = &c
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = 256
		tr.MaxIdleConnsPerHost = 64
		dialer := &net.Dialer{Timeout: s.connectTimeout, KeepAlive: 30 * time.Second}
		tr.DialContext = dialer.DialContext
		tr.TLSHandshakeTimeout = s.connectTimeout
		hc = &http.Client{Transport: tr}
	}
	hc.CheckRedirect = followLeader(hc.CheckRedirect)
	return &Client{base: u, http: hc, s: s}, nil
}

// headerLeaderID is set by a cluster follower on its redirect to the
// leader (307, Location: the same path on the leader).
const headerLeaderID = "Leader-Id"

// maxRedirects is net/http's default limit, kept by followLeader.
const maxRedirects = 10

// followLeader wraps a redirect policy (nil: net/http's default, at most 10
// redirects) so that a follower's redirect to its leader keeps the
// request's Authorization header. net/http drops that header on a redirect
// to another host, and a cluster's nodes are other hosts: without it every
// append sent to a follower would end in 401 on the leader. The header is
// kept only on an answer that names the leader (Leader-Id), and never from
// https to plain http.
func followLeader(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if next != nil {
			if err := next(req, via); err != nil {
				return err
			}
		} else if len(via) >= maxRedirects {
			return fmt.Errorf("client: stopped after %d redirects", maxRedirects)
		}
		prev := via[len(via)-1]
		auth := prev.Header.Get("Authorization")
		switch {
		case auth == "" || req.Header.Get("Authorization") != "":
		case req.Response == nil || req.Response.Header.Get(headerLeaderID) == "":
		case prev.URL.Scheme == "https" && req.URL.Scheme != "https":
		default:
			req.Header.Set("Authorization", auth)
		}
		return nil
	}
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Record is a record to append (a plain value: the client reads it during
// the call and keeps nothing). Value is JSON text when JSON is set (it
// reads back as JSON), else any bytes (sent and read back as base64).
type Record struct {
	Key       string
	Value     []byte
	JSON      bool
	Headers   map[string]string
	Timestamp time.Time // zero: the server's time
}

// JSONRecord returns a record whose value is v encoded as JSON.
func JSONRecord(key string, v any) (Record, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return Record{}, err
	}
	return Record{Key: key, Value: data, JSON: true}, nil
}

// StoredRecord is a committed record as read back; the caller owns it.
type StoredRecord struct {
	Record
	Stream string // set by ReadGlobal
	Offset uint64
	Seq    uint64
}

// AppendOptions are an append's conditions (badbatch.AppendOptions, a
// plain value): ExpectedLastOffset nil is no condition (a pointer to -1:
// the stream must be empty; a mismatch is ErrOffsetMismatch with the
// current last offset in Error.CurrentLastOffset), and IdempotencyKey ""
// is no key from the caller (the client then generates one, unless
// Options.GenerateIdempotencyKeys is off). StreamSeq "" is no label. A
// caller's key and a label are each 1 to 256 printable ASCII characters
// (0x20-0x7E), else the append is ErrInvalidOptions before any request.
type AppendOptions = badbatch.AppendOptions

// AppendResult is the server's answer to an append (badbatch.AppendResult,
// the same type as storage.AppendResult).
type AppendResult = badbatch.AppendResult

// Append appends one record.
func (c *Client) Append(ctx context.Context, stream string, rec Record, opts *AppendOptions) (AppendResult, error) {
	return c.AppendBatch(ctx, stream, []Record{rec}, opts)
}

type wireRecord struct {
	Key         *string           `json:"key,omitempty"`
	Value       json.RawMessage   `json:"value,omitempty"`
	ValueBase64 *string           `json:"value_base64,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Timestamp   string            `json:"timestamp,omitempty"`
}

// AppendBatch appends records atomically, as NDJSON: all of them get
// consecutive offsets, or none is stored.
//
// Retries never duplicate: the append is retried only under an idempotency
// key (the caller's, or one generated for this call and sent on every
// attempt); without one it is retried only when it surely never reached
// the server (connection refused, 429, 503 no_leader).
func (c *Client) AppendBatch(ctx context.Context, stream string, recs []Record, opts *AppendOptions) (AppendResult, error) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	for i := range recs {
		w, err := toWire(&recs[i])
		if err == nil {
			err = enc.Encode(w)
		}
		if err != nil {
			return AppendResult{}, newClientError(CodeBadRequest, fmt.Sprintf("record %d: %v", i, err), err)
		}
	}
	h := http.Header{}
	h.Set("Content-Type", "application/x-ndjson")
	key := ""
	if opts != nil {
		key = opts.IdempotencyKey
		if err := checkIdempotencyKey(key); err != nil {
			return AppendResult{}, err
		}
		if err := lifecycleHeaders(h, opts); err != nil {
			return AppendResult{}, err
		}
	}
	if key == "" && c.s.generateIdempotencyKeys {
		key = randomKey()
	}
	safety := unsafeWrite
	if opts != nil && opts.Producer != nil {
		safety = idempotentWrite // the server deduplicates by producer seq
	}
	if key != "" {
		h.Set("Idempotency-Key", key)
		safety = idempotentWrite
	}
	var res AppendResult
	err := c.doJSON(ctx, request{method: http.MethodPost, path: "/v1/streams/" + url.PathEscape(stream) + "/records",
		header: h, body: body.Bytes(), safety: safety}, &res)
	return res, err
}

// lifecycleHeaders sets the headers of an append's conditions.
func lifecycleHeaders(h http.Header, opts *AppendOptions) error {
	if opts.MustExist {
		return mustExistRefused()
	}
	if err := checkExpectedLastOffset(opts.ExpectedLastOffset); err != nil {
		return err
	}
	if opts.ExpectedLastOffset != nil {
		h.Set("Expected-Last-Offset", strconv.FormatInt(*opts.ExpectedLastOffset, 10))
	}
	if p := opts.Producer; p != nil {
		if p.ID == "" {
			return newClientError(CodeInvalidOptions, "a Producer needs an ID", nil)
		}
		h.Set("Producer-Id", p.ID)
		h.Set("Producer-Epoch", strconv.FormatUint(p.Epoch, 10))
		h.Set("Producer-Seq", strconv.FormatUint(p.Seq, 10))
	}
	if opts.Close {
		h.Set("Stream-Closed", "true")
	}
	if opts.StreamSeq != "" {
		if !printableLabel(opts.StreamSeq) {
			return newClientError(CodeInvalidOptions, "StreamSeq: want 1 to 256 printable ASCII characters", nil)
		}
		h.Set("Stream-Seq", opts.StreamSeq)
	}
	return nil
}

// mustExistRefused is the answer to AppendOptions.MustExist, which no
// HTTP append carries.
func mustExistRefused() error {
	return newClientError(CodeInvalidOptions, "MustExist is not part of the HTTP API: create the stream with CreateStream first", nil)
}

// checkExpectedLastOffset refuses an expected last offset below -1 (-1 is
// an empty stream; nil is no condition), before any request.
func checkExpectedLastOffset(p *int64) error {
	if p != nil && *p < -1 {
		return newClientError(CodeInvalidOptions, fmt.Sprintf("ExpectedLastOffset %d: want -1 (an empty stream) or an offset", *p), nil)
	}
	return nil
}

// checkIdempotencyKey refuses a caller's idempotency key that is not 1 to
// 256 printable ASCII characters, before any request ("" is no key).
func checkIdempotencyKey(key string) error {
	if key != "" && !printableLabel(key) {
		return newClientError(CodeInvalidOptions, "IdempotencyKey: want 1 to 256 printable ASCII characters", nil)
	}
	return nil
}

// printableLabel reports whether s is 1 to 256 printable ASCII characters
// (0x20-0x7E), the rule every client applies to a Stream-Seq label and to
// an idempotency key.
func printableLabel(s string) bool {
	if len(s) == 0 || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// StreamConfig is a stream's configuration (badbatch.StreamConfig): its
// content type, TTL or expiry time, and whether it starts closed.
type StreamConfig = badbatch.StreamConfig

// CreateStream creates a stream with cfg. It returns true when it created
// it, false when the stream existed with the same configuration (nothing
// changed); another configuration is ErrStreamExists. Safe to retry.
func (c *Client) CreateStream(ctx context.Context, stream string, cfg StreamConfig) (bool, error) {
	body := map[string]any{}
	if cfg.ContentType != "" {
		body["content_type"] = cfg.ContentType
	}
	if cfg.TTL > 0 {
		if cfg.TTL%time.Second != 0 {
			return false, newClientError(CodeInvalidOptions, "a TTL is whole seconds over HTTP", nil)
		}
		body["ttl_seconds"] = int64(cfg.TTL / time.Second)
	}
	if !cfg.ExpiresAt.IsZero() {
		body["expires_at"] = cfg.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	if cfg.Closed {
		body["closed"] = true
	}
	return c.putStream(ctx, stream, body)
}

// ForkStream creates stream as a fork of source at offset: it reads
// source's records below offset, then its own. cfg nil takes the source's
// configuration (only its content type, TTL and expiry are sent). Safe to
// retry: a repeat answers ErrStreamExists.
func (c *Client) ForkStream(ctx context.Context, stream, source string, offset uint64, cfg *StreamConfig) error {
	body := map[string]any{"fork": map[string]any{"stream": source, "offset": offset}}
	if cfg != nil {
		body["content_type"] = cfg.ContentType
		if cfg.TTL > 0 {
			body["ttl_seconds"] = int64(cfg.TTL / time.Second)
		}
		if !cfg.ExpiresAt.IsZero() {
			body["expires_at"] = cfg.ExpiresAt.UTC().Format(time.RFC3339Nano)
		}
	}
	_, err := c.putStream(ctx, stream, body)
	return err
}

func (c *Client) putStream(ctx context.Context, stream string, body map[string]any) (bool, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return false, newClientError(CodeInvalidOptions, err.Error(), err)
	}
	h := http.Header{"Content-Type": {"application/json"}}
	var status int
	err = c.doJSON(ctx, request{method: http.MethodPut, path: "/v1/streams/" + url.PathEscape(stream),
		header: h, body: b, safety: idempotentWrite, status: &status}, nil)
	return status == http.StatusCreated, err
}

// CloseStream closes a stream: appends are refused afterwards
// (ErrStreamClosed) and tails end after its last record. Closing a closed
// stream again succeeds. To close with a final append atomically, append
// with AppendOptions.Close.
func (c *Client) CloseStream(ctx context.Context, stream string) error {
	return c.doJSON(ctx, request{method: http.MethodPost, path: "/v1/streams/" + url.PathEscape(stream) + "/close",
		safety: idempotentWrite}, nil)
}

// DeleteStream deletes a stream (ErrNotFound when there is none). A
// stream with forks is soft-deleted: it answers ErrGone until its last
// fork is deleted. Not retried after an unknown outcome: a repeat of a
// delete that took effect answers ErrNotFound.
func (c *Client) DeleteStream(ctx context.Context, stream string) error {
	return c.doJSON(ctx, request{method: http.MethodDelete, path: "/v1/streams/" + url.PathEscape(stream),
		safety: unsafeWrite}, nil)
}

func toWire(r *Record) (wireRecord, error) {
	w := wireRecord{Headers: r.Headers}
	if r.Key != "" {
		k := r.Key
		w.Key = &k
	}
	if r.JSON {
		if !json.Valid(r.Value) {
			return w, errors.New("JSON flag on a value that is not JSON")
		}
		w.Value = r.Value
	} else {
		v := base64.StdEncoding.EncodeToString(r.Value)
		w.ValueBase64 = &v
	}
	if !r.Timestamp.IsZero() {
		w.Timestamp = r.Timestamp.Format(time.RFC3339Nano)
	}
	return w, nil
}

func randomKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Position is where a read or tail starts: Earliest (the zero value),
// Latest, Offset(n) or Time(t). An immutable value, safe to share.
type Position struct {
	kind   positionKind
	offset uint64
	time   time.Time
}

type positionKind uint8

const (
	positionEarliest positionKind = iota
	positionLatest
	positionOffset
	positionTime
)

// Earliest is the first retained record; Latest is the next offset to be
// written (only new records).
var (
	Earliest = Position{}
	Latest   = Position{kind: positionLatest}
)

// Offset is the position of a given offset.
func Offset(n uint64) Position { return Position{kind: positionOffset, offset: n} }

// Time is the position of the first record whose timestamp is at or after t.
func Time(t time.Time) Position { return Position{kind: positionTime, time: t} }

func (p Position) String() string {
	switch p.kind {
	case positionLatest:
		return "latest"
	case positionOffset:
		return strconv.FormatUint(p.offset, 10)
	case positionTime:
		return p.time.UTC().Format(time.RFC3339Nano)
	}
	return "earliest"
}

// query sets the position's query parameter (from, or from_time).
func (p Position) query(q url.Values) {
	if p.kind == positionTime {
		q.Set("from_time", p.time.UTC().Format(time.RFC3339Nano))
		return
	}
	q.Set("from", p.String())
}

// ReadRequest selects a page (a plain value).
type ReadRequest struct {
	From  Position
	Limit int // 0: the server's default (100)
	// Wait, when the page would be empty, makes the server wait up to this
	// long (at most 60 s) for the first record (a long-poll).
	Wait time.Duration
}

// Page is a page of a stream; the caller owns it.
type Page struct {
	Records []StoredRecord
	// NextOffset is where the next page starts.
	NextOffset uint64
}

type wireStored struct {
	Stream      string            `json:"stream"`
	Offset      uint64            `json:"offset"`
	Seq         uint64            `json:"seq"`
	Timestamp   time.Time         `json:"timestamp"`
	Key         *string           `json:"key"`
	KeyBase64   *string           `json:"key_base64"`
	Headers     map[string]string `json:"headers"`
	Value       json.RawMessage   `json:"value"`
	ValueBase64 *string           `json:"value_base64"`
}

func (w *wireStored) record() (StoredRecord, error) {
	r := StoredRecord{Stream: w.Stream, Offset: w.Offset, Seq: w.Seq}
	r.Timestamp, r.Headers = w.Timestamp, w.Headers
	switch {
	case w.Key != nil:
		r.Key = *w.Key
	case w.KeyBase64 != nil:
		k, err := base64.StdEncoding.DecodeString(*w.KeyBase64)
		if err != nil {
			return r, err
		}
		r.Key = string(k)
	}
	if w.ValueBase64 != nil {
		v, err := base64.StdEncoding.DecodeString(*w.ValueBase64)
		if err != nil {
			return r, err
		}
		r.Value = v
	} else if w.Value != nil {
		r.Value, r.JSON = []byte(w.Value), true
	}
	return r, nil
}

func convertRecords(ws []wireStored) ([]StoredRecord, error) {
	out := make([]StoredRecord, len(ws))
	for i := range ws {
		r, err := ws[i].record()
		if err != nil {
			return nil, newClientError(CodeInternal, fmt.Sprintf("record at offset %d: %v", ws[i].Offset, err), err)
		}
		out[i] = r
	}
	return out, nil
}

// Read reads one page of a stream.
func (c *Client) Read(ctx context.Context, stream string, req ReadRequest) (Page, error) {
	q := url.Values{}
	req.From.query(q)
	if req.Limit > 0 {
		q.Set("limit", strconv.Itoa(req.Limit))
	}
	if req.Wait > 0 {
		q.Set("wait", req.Wait.String())
	}
	var wp struct {
		Records    []wireStored `json:"records"`
		NextOffset uint64       `json:"next_offset"`
	}
	if err := c.doJSON(ctx, request{method: http.MethodGet, path: "/v1/streams/" + url.PathEscape(stream) + "/records", query: q, safety: read, timeout: req.Wait}, &wp); err != nil {
		return Page{}, err
	}
	recs, err := convertRecords(wp.Records)
	return Page{Records: recs, NextOffset: wp.NextOffset}, err
}

// GlobalPage is a page of the global log; the caller owns it.
type GlobalPage struct {
	// Records each name their Stream.
	Records []StoredRecord
	// NextSeq is where the next page starts.
	NextSeq uint64
}

// ReadGlobal reads the global log (all streams the token may read, in
// commit order) from fromSeq. limit 0: the server's default.
func (c *Client) ReadGlobal(ctx context.Context, fromSeq uint64, limit int) (GlobalPage, error) {
	q := url.Values{"from_seq": {strconv.FormatUint(fromSeq, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var wp struct {
		Records []wireStored `json:"records"`
		NextSeq uint64       `json:"next_seq"`
	}
	if err := c.doJSON(ctx, request{method: http.MethodGet, path: "/v1/records", query: q, safety: read}, &wp); err != nil {
		return GlobalPage{}, err
	}
	recs, err := convertRecords(wp.Records)
	return GlobalPage{Records: recs, NextSeq: wp.NextSeq}, err
}

// StreamInfo describes a stream (badbatch.StreamInfo, the same type as
// storage.StreamInfo). LastTimestamp is the zero time when the stream has
// no record.
type StreamInfo = badbatch.StreamInfo

// Streams lists the streams the token may read, sorted by name.
func (c *Client) Streams(ctx context.Context) ([]StreamInfo, error) {
	var out struct {
		Streams []StreamInfo `json:"streams"`
	}
	err := c.doJSON(ctx, request{method: http.MethodGet, path: "/v1/streams", safety: read}, &out)
	return out.Streams, err
}

// StreamInfo describes one stream (ErrNotFound if never written).
func (c *Client) StreamInfo(ctx context.Context, stream string) (StreamInfo, error) {
	var out StreamInfo
	err := c.doJSON(ctx, request{method: http.MethodGet, path: "/v1/streams/" + url.PathEscape(stream), safety: read}, &out)
	return out, err
}

// SetCursor stores the named consumer cursor of a stream (ErrNotFound if
// the stream was never written; ErrBadRequest for an offset beyond the
// stream's next offset). Setting a cursor is idempotent, so it is retried
// like a read.
func (c *Client) SetCursor(ctx context.Context, stream, name string, offset uint64) error {
	h := http.Header{"Content-Type": {"application/json"}}
	body := []byte(`{"offset":` + strconv.FormatUint(offset, 10) + `}`)
	return c.doJSON(ctx, request{method: http.MethodPut, path: "/v1/streams/" + url.PathEscape(stream) + "/cursors/" + url.PathEscape(name),
		header: h, body: body, safety: idempotentWrite}, nil)
}

// Cursor reads a named cursor (ErrNotFound if never set).
func (c *Client) Cursor(ctx context.Context, stream, name string) (uint64, error) {
	var out struct {
		Offset uint64 `json:"offset"`
	}
	err := c.doJSON(ctx, request{method: http.MethodGet, path: "/v1/streams/" + url.PathEscape(stream) + "/cursors/" + url.PathEscape(name), safety: read}, &out)
	return out.Offset, err
}

// newRequest builds one attempt's request.
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, h http.Header, body []byte) (*http.Request, error) {
	// path is escaped (url.PathEscape of each name): RawPath keeps it so,
	// and Path is its unescaped form, as net/url wants.
	u := *c.base
	unescaped, err := url.PathUnescape(path)
	if err != nil {
		return nil, err
	}
	u.Path = c.base.Path + unescaped
	u.RawPath = c.base.EscapedPath() + path
	if q != nil {
		u.RawQuery = q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if c.s.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.s.token)
	}
	req.Header.Set("User-Agent", c.s.userAgent)
	return req, nil
}
