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
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Options configure a Client. New copies them; not safe for concurrent
// mutation.
type Options struct {
	// HTTPClient sends the requests. Nil means a client of its own whose
	// transport keeps up to 64 idle connections per host. New uses a copy
	// of it whose redirect policy also keeps the bearer token on a cluster
	// follower's redirect to its leader (see followLeader).
	HTTPClient *http.Client
	// Token is the bearer token ("" sends none).
	Token string
	// MaxRetries is how many times a retryable failure is retried (0: never).
	MaxRetries int
	// RetryBackoff is the first retry's delay; each retry doubles it, up to
	// MaxBackoff, with jitter. A longer Retry-After from the server wins,
	// up to MaxRetryAfter; beyond that the error is returned at once.
	RetryBackoff  time.Duration
	MaxBackoff    time.Duration
	MaxRetryAfter time.Duration
	// TailIdleTimeout ends and reopens a tail connection that received
	// nothing, not even the server's keep-alive, for this long.
	TailIdleTimeout time.Duration
	// UserAgent is sent with every request.
	UserAgent string
}

// DefaultOptions returns the defaults: 5 retries from 100ms to 5s.
func DefaultOptions() *Options {
	return &Options{
		MaxRetries:      5,
		RetryBackoff:    100 * time.Millisecond,
		MaxBackoff:      5 * time.Second,
		MaxRetryAfter:   30 * time.Second,
		TailIdleTimeout: time.Minute,
		UserAgent:       "badbatch-go-client/1",
	}
}

// Client talks to one BadBatch server. It is safe for concurrent use.
type Client struct {
	base *url.URL
	http *http.Client
	opts Options
}

// New returns a client of the server at baseURL (e.g. http://127.0.0.1:8080).
func New(baseURL string, opts *Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: base URL %q: want http(s)://host[:port]", ErrInvalidOptions, baseURL)
	}
	o := *DefaultOptions()
	if opts != nil {
		o = *opts
	}
	if o.MaxRetries < 0 || o.RetryBackoff < 0 || o.MaxBackoff < o.RetryBackoff || o.TailIdleTimeout <= 0 {
		return nil, fmt.Errorf("%w: retries %d, backoff %v..%v, tail idle %v", ErrInvalidOptions,
			o.MaxRetries, o.RetryBackoff, o.MaxBackoff, o.TailIdleTimeout)
	}
	var hc *http.Client
	if o.HTTPClient != nil {
		c := *o.HTTPClient
		hc = &c
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = 256
		tr.MaxIdleConnsPerHost = 64
		hc = &http.Client{Transport: tr}
	}
	hc.CheckRedirect = followLeader(hc.CheckRedirect)
	return &Client{base: u, http: hc, opts: o}, nil
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

// AppendOptions are an append's conditions (a plain value).
type AppendOptions struct {
	// IdempotencyKey identifies the append for dedupe; "" means a random
	// key (so that retries are still safe).
	IdempotencyKey string
	// ExpectedLastOffset, if set, makes the append conditional (-1: the
	// stream must be empty); a mismatch is ErrConflict with the current
	// offset in Error.CurrentLastOffset.
	ExpectedLastOffset *int64
}

// AppendResult is the server's answer to an append (a plain value).
type AppendResult struct {
	Stream      string `json:"stream"`
	FirstOffset uint64 `json:"first_offset"`
	LastOffset  uint64 `json:"last_offset"`
	Count       int    `json:"count"`
	FirstSeq    uint64 `json:"first_seq"`
	LastSeq     uint64 `json:"last_seq"`
	// Durability says what the acknowledgement means ("fsynced", ...).
	Durability string `json:"durability"`
	// Replayed is true when the server answered an earlier append with the
	// same idempotency key (nothing new was stored).
	Replayed bool `json:"replayed"`
}

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

// AppendBatch appends records atomically, as NDJSON.
func (c *Client) AppendBatch(ctx context.Context, stream string, recs []Record, opts *AppendOptions) (AppendResult, error) {
	if len(recs) == 0 {
		return AppendResult{}, fmt.Errorf("%w: empty batch", ErrBadRequest)
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	for i := range recs {
		w, err := toWire(&recs[i])
		if err != nil {
			return AppendResult{}, fmt.Errorf("%w: record %d: %w", ErrBadRequest, i, err)
		}
		if err := enc.Encode(w); err != nil {
			return AppendResult{}, fmt.Errorf("%w: record %d: %w", ErrBadRequest, i, err)
		}
	}
	h := http.Header{}
	h.Set("Content-Type", "application/x-ndjson")
	key := ""
	if opts != nil {
		key = opts.IdempotencyKey
		if opts.ExpectedLastOffset != nil {
			h.Set("Expected-Last-Offset", strconv.FormatInt(*opts.ExpectedLastOffset, 10))
		}
	}
	if key == "" {
		key = randomKey()
	}
	h.Set("Idempotency-Key", key)
	var res AppendResult
	err := c.doJSON(ctx, http.MethodPost, "/v1/streams/"+url.PathEscape(stream)+"/records", nil, h, body.Bytes(), &res)
	return res, err
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

// Position is where a read or tail starts. The zero value is Earliest. An
// immutable value, safe to share.
type Position struct {
	kind   int // 0 earliest, 1 latest, 2 offset
	offset uint64
}

// Earliest is the first retained record; Latest is the next record to be
// appended (only new records).
var (
	Earliest = Position{}
	Latest   = Position{kind: 1}
)

// Offset is the position of a given offset.
func Offset(n uint64) Position { return Position{kind: 2, offset: n} }

func (p Position) String() string {
	switch p.kind {
	case 1:
		return "latest"
	case 2:
		return strconv.FormatUint(p.offset, 10)
	}
	return "earliest"
}

// ReadRequest selects a page (a plain value).
type ReadRequest struct {
	From     Position
	FromTime time.Time // if set, overrides From
	Limit    int       // 0: the server's default
	Wait     time.Duration
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
			return nil, fmt.Errorf("client: record at offset %d: %w", ws[i].Offset, err)
		}
		out[i] = r
	}
	return out, nil
}

// Read reads one page of a stream.
func (c *Client) Read(ctx context.Context, stream string, req ReadRequest) (Page, error) {
	q := url.Values{}
	if !req.FromTime.IsZero() {
		q.Set("from_time", req.FromTime.Format(time.RFC3339Nano))
	} else {
		q.Set("from", req.From.String())
	}
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
	if err := c.doJSON(ctx, http.MethodGet, "/v1/streams/"+url.PathEscape(stream)+"/records", q, nil, nil, &wp); err != nil {
		return Page{}, err
	}
	recs, err := convertRecords(wp.Records)
	return Page{Records: recs, NextOffset: wp.NextOffset}, err
}

// GlobalPage is a page of the global log; the caller owns it.
type GlobalPage struct {
	Records []StoredRecord
	NextSeq uint64
}

// ReadGlobal reads the global log (all streams in commit order) from fromSeq.
func (c *Client) ReadGlobal(ctx context.Context, fromSeq uint64, limit int) (GlobalPage, error) {
	q := url.Values{"from_seq": {strconv.FormatUint(fromSeq, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var wp struct {
		Records []wireStored `json:"records"`
		NextSeq uint64       `json:"next_seq"`
	}
	if err := c.doJSON(ctx, http.MethodGet, "/v1/records", q, nil, nil, &wp); err != nil {
		return GlobalPage{}, err
	}
	recs, err := convertRecords(wp.Records)
	return GlobalPage{Records: recs, NextSeq: wp.NextSeq}, err
}

// StreamInfo describes a stream (a plain value).
type StreamInfo struct {
	Stream        string     `json:"stream"`
	FirstOffset   uint64     `json:"first_offset"`
	NextOffset    uint64     `json:"next_offset"`
	Records       uint64     `json:"records"`
	Bytes         uint64     `json:"bytes"`
	LastTimestamp *time.Time `json:"last_timestamp"`
}

// Streams lists the streams the token may read.
func (c *Client) Streams(ctx context.Context) ([]StreamInfo, error) {
	var out struct {
		Streams []StreamInfo `json:"streams"`
	}
	err := c.doJSON(ctx, http.MethodGet, "/v1/streams", nil, nil, nil, &out)
	return out.Streams, err
}

// StreamInfo describes one stream (ErrNotFound if never written).
func (c *Client) StreamInfo(ctx context.Context, stream string) (StreamInfo, error) {
	var out StreamInfo
	err := c.doJSON(ctx, http.MethodGet, "/v1/streams/"+url.PathEscape(stream), nil, nil, nil, &out)
	return out, err
}

// SetCursor stores a named cursor of a stream.
func (c *Client) SetCursor(ctx context.Context, stream, name string, offset uint64) error {
	h := http.Header{"Content-Type": {"application/json"}}
	body := []byte(`{"offset":` + strconv.FormatUint(offset, 10) + `}`)
	return c.doJSON(ctx, http.MethodPut, "/v1/streams/"+url.PathEscape(stream)+"/cursors/"+url.PathEscape(name), nil, h, body, nil)
}

// Cursor reads a named cursor (ErrNotFound if never set).
func (c *Client) Cursor(ctx context.Context, stream, name string) (uint64, error) {
	var out struct {
		Offset uint64 `json:"offset"`
	}
	err := c.doJSON(ctx, http.MethodGet, "/v1/streams/"+url.PathEscape(stream)+"/cursors/"+url.PathEscape(name), nil, nil, nil, &out)
	return out.Offset, err
}

func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, h http.Header, body []byte) (*http.Request, error) {
	u := *c.base
	u.Path = c.base.Path + path
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
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	if c.opts.UserAgent != "" {
		req.Header.Set("User-Agent", c.opts.UserAgent)
	}
	return req, nil
}

// doJSON sends a request, with retries, and decodes a 2xx JSON answer
// into out (unless nil).
func (c *Client) doJSON(ctx context.Context, method, path string, q url.Values, h http.Header, body []byte, out any) error {
	var lastErr error
	for attempt := 0; ; attempt++ {
		req, err := c.newRequest(ctx, method, path, q, h, body)
		if err != nil {
			return err
		}
		resp, err := c.http.Do(req)
		if err == nil {
			err = decodeAnswer(resp, out)
			if err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		lastErr = err
		delay, ok := c.retryDelay(err, attempt)
		if !ok {
			return lastErr
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// retryDelay decides whether a failed attempt is retried, and after how long.
func (c *Client) retryDelay(err error, attempt int) (time.Duration, bool) {
	if attempt >= c.opts.MaxRetries {
		return 0, false
	}
	backoff := c.opts.RetryBackoff << min(attempt, 30)
	if backoff > c.opts.MaxBackoff || backoff <= 0 {
		backoff = c.opts.MaxBackoff
	}
	if backoff > 0 {
		backoff = backoff/2 + time.Duration(mrand.Int64N(int64(backoff/2)+1))
	}
	var apiErr *Error
	if errors.As(err, &apiErr) {
		if !retryable(apiErr.Status) {
			return 0, false
		}
		if apiErr.RetryAfter > c.opts.MaxRetryAfter {
			return 0, false
		}
		return max(backoff, apiErr.RetryAfter), true
	}
	// A network error: the request may or may not have reached the server;
	// appends carry an idempotency key, so resending is safe.
	return backoff, true
}

// decodeAnswer reads and closes resp, decoding a 2xx JSON body into out,
// or returning the *Error of an error answer.
func decodeAnswer(resp *http.Response, out any) error {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil || len(data) == 0 {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("client: decoding a %d answer: %w", resp.StatusCode, err)
		}
		return nil
	}
	return errorFromAnswer(resp, data)
}

func errorFromAnswer(resp *http.Response, data []byte) *Error {
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	var body struct {
		Error struct {
			Code              string `json:"code"`
			Message           string `json:"message"`
			CurrentLastOffset *int64 `json:"current_last_offset"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.CurrentLastOffset = body.Error.Code, body.Error.Message, body.Error.CurrentLastOffset
	} else {
		e.Message = strings.TrimSpace(string(data))
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	if v := resp.Header.Get("Retry-After"); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		}
	}
	return e
}
