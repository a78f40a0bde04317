package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/badbatch/badbatch/storage"
	"github.com/labstack/echo/v4"
)

// The Durable Streams protocol (docs/durable-streams.md) at
// /v1/stream/{name}, over the same streams as the native API. A protocol
// message is one record: each element of a JSON append (flattened one
// level) on an application/json stream, the whole body of an append on any
// other stream. Offsets are "%016d_%016d": the record offset, then a
// sub-offset that is always 0 in an offset the server hands out.

// Headers of the protocol.
const (
	headerDSUpToDate      = "Stream-Up-To-Date"
	headerDSCursor        = "Stream-Cursor"
	headerDSTTL           = "Stream-Ttl"
	headerDSExpiresAt     = "Stream-Expires-At"
	headerDSForkedFrom    = "Stream-Forked-From"
	headerDSForkOffset    = "Stream-Fork-Offset"
	headerDSForkSubOffset = "Stream-Fork-Sub-Offset"
	headerDSSSEEncoding   = "Stream-Sse-Data-Encoding"
)

// dsExposeHeaders are the answer headers a browser page may read.
const dsExposeHeaders = "Stream-Next-Offset, Stream-Up-To-Date, Stream-Cursor, Stream-Closed, Stream-TTL, " +
	"Stream-Expires-At, Stream-SSE-Data-Encoding, Producer-Epoch, Producer-Seq, Producer-Expected-Seq, " +
	"Producer-Received-Seq, ETag, Location, Content-Type"

const dsAllowHeaders = "Content-Type, Authorization, If-None-Match, Last-Event-ID, Stream-TTL, Stream-Expires-At, " +
	"Stream-Closed, Stream-Seq, Producer-Id, Producer-Epoch, Producer-Seq, Stream-Forked-From, Stream-Fork-Offset, " +
	"Stream-Fork-Sub-Offset"

// dsReadLimit is the most messages one catch-up read answers.
const dsReadLimit = 1000

// formatDSOffset is a record offset as a protocol offset: fixed width, so
// that offsets compare byte-wise as they compare as numbers.
func formatDSOffset(off uint64) string {
	var b [33]byte
	s := strconv.AppendUint(b[:0], off, 10)
	out := make([]byte, 0, 33)
	for range 16 - len(s) {
		out = append(out, '0')
	}
	out = append(out, s...)
	return string(append(out, "_0000000000000000"...))
}

// parseDSOffset parses "%016d_%016d" and returns the record offset and the
// sub-offset.
func parseDSOffset(v string) (off, sub uint64, ok bool) {
	if len(v) != 33 || v[16] != '_' {
		return 0, 0, false
	}
	for i := 0; i < 33; i++ {
		if i != 16 && (v[i] < '0' || v[i] > '9') {
			return 0, 0, false
		}
	}
	off, err1 := strconv.ParseUint(v[:16], 10, 64)
	sub, err2 := strconv.ParseUint(v[17:], 10, 64)
	return off, sub, err1 == nil && err2 == nil
}

// mediaType is a content type's media type, lower case ("" for none).
func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	}
	return mt
}

func isJSONType(ct string) bool { return mediaType(ct) == "application/json" }

// sseBase64 reports whether SSE carries a stream's data as base64: every
// type but text/* and application/json.
func sseBase64(ct string) bool {
	mt := mediaType(ct)
	return !strings.HasPrefix(mt, "text/") && mt != "application/json"
}

// dsCommon sets the headers of every protocol answer, errors included.
func dsCommon(c echo.Context) {
	h := c.Response().Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", dsExposeHeaders)
}

// handleDS routes the protocol's methods on /v1/stream/{name}.
func (s *Server) handleDS(c echo.Context) error {
	dsCommon(c)
	if c.Request().Method == http.MethodOptions {
		h := c.Response().Header()
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", dsAllowHeaders)
		h.Set("Access-Control-Max-Age", "600")
		return c.NoContent(http.StatusNoContent)
	}
	name := c.Param("name")
	if err := storage.ValidateStreamName(name); err != nil {
		return storeError(err)
	}
	switch c.Request().Method {
	case http.MethodPut:
		return s.dsCreate(c, name)
	case http.MethodPost:
		return s.dsAppend(c, name)
	case http.MethodGet:
		return s.dsRead(c, name)
	case http.MethodHead:
		return s.dsHead(c, name)
	case http.MethodDelete:
		if err := s.authorize(c, PermAdmin, name); err != nil {
			return err
		}
		if err, done := s.leaderOnly(c); done {
			return err
		}
		if err := s.store.DeleteStream(c.Request().Context(), name); err != nil {
			return storeError(err)
		}
		return c.NoContent(http.StatusNoContent)
	}
	return newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s is not a Durable Streams method", c.Request().Method)
}

// dsMessages splits a body into records: on a JSON stream a JSON array is
// flattened one level (each element one message) and any other JSON value
// is one message; on any other stream the body is one message.
func dsMessages(ct string, body []byte) ([]storage.Record, *apiError) {
	if !isJSONType(ct) {
		if len(body) == 0 {
			return nil, nil
		}
		return []storage.Record{{Value: body}}, nil
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, nil
	}
	if !json.Valid(trimmed) {
		return nil, badRequest("the body is not valid JSON")
	}
	if trimmed[0] != '[' {
		return []storage.Record{{Value: compactJSON(trimmed), JSON: true}}, nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(trimmed, &elems); err != nil {
		return nil, badRequest("the body is not valid JSON: %v", err)
	}
	recs := make([]storage.Record, len(elems))
	for i, e := range elems {
		recs[i] = storage.Record{Value: compactJSON(e), JSON: true}
	}
	return recs, nil
}

func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

// dsConfig reads the configuration headers of a PUT.
func dsConfig(h http.Header) (storage.StreamConfig, *apiError) {
	var cfg storage.StreamConfig
	ct := h.Get(echo.HeaderContentType)
	if strings.TrimSpace(ct) == "" {
		ct = "application/octet-stream"
	}
	cfg.ContentType = strings.ToLower(strings.TrimSpace(ct))
	ttl, exp := h.Get(headerDSTTL), h.Get(headerDSExpiresAt)
	if ttl != "" && exp != "" {
		return cfg, badRequest("Stream-TTL and Stream-Expires-At are exclusive")
	}
	if ttl != "" {
		n, err := parseCounter(ttl)
		if err != nil || (len(ttl) > 1 && ttl[0] == '0') || n > maxTTLSeconds {
			return cfg, badRequest("Stream-TTL %q: want whole seconds", ttl)
		}
		cfg.TTL = time.Duration(n) * time.Second
	}
	if exp != "" {
		t, err := time.Parse(time.RFC3339Nano, exp)
		if err != nil {
			return cfg, badRequest("Stream-Expires-At %q: want an RFC 3339 time", exp)
		}
		cfg.ExpiresAt = t
	}
	switch strings.ToLower(h.Get(headerStreamClosed)) {
	case "", "false":
	case "true":
		cfg.Closed = true
	default:
		return cfg, badRequest("Stream-Closed: want true or false")
	}
	return cfg, nil
}

// dsCreate is PUT: create a stream (201), find it as configured (200), or
// refuse another configuration (409); fork headers make a fork.
func (s *Server) dsCreate(c echo.Context, name string) error {
	if err := s.authorize(c, PermAppend, name); err != nil {
		return err
	}
	if err, done := s.leaderOnly(c); done {
		return err
	}
	req := c.Request()
	cfg, aerr := dsConfig(req.Header)
	if aerr != nil {
		return aerr
	}
	body, err := s.readBody(c, s.opts.MaxRequestBytes)
	if err != nil {
		return err
	}
	recs, aerr := dsMessages(cfg.ContentType, body)
	if aerr != nil {
		return aerr
	}
	ctx := req.Context()
	status := http.StatusCreated
	if req.Header.Get(headerDSForkedFrom) != "" || req.Header.Get(headerDSForkSubOffset) != "" || req.Header.Get(headerDSForkOffset) != "" {
		existed, err := s.dsFork(c, name, cfg, recs)
		if err != nil {
			return err
		}
		if existed {
			status = http.StatusOK
		}
	} else {
		res, err := s.store.CreateStream(ctx, name, cfg, recs...)
		if err != nil {
			return s.dsError(c, name, err)
		}
		if !res.Created {
			status = http.StatusOK
		}
	}
	info, err := s.store.StreamInfo(ctx, name)
	if err != nil {
		return storeError(err)
	}
	h := c.Response().Header()
	if status == http.StatusCreated {
		scheme := "http"
		if req.TLS != nil {
			scheme = "https"
		}
		h.Set(echo.HeaderLocation, scheme+"://"+req.Host+req.URL.EscapedPath())
	}
	s.dsStreamHeaders(h, &info)
	return c.NoContent(status)
}

// dsFork creates name as a fork named by the Stream-Forked-From (a path
// or a URL ending in /v1/stream/{source}), Stream-Fork-Offset (default:
// the source's end) and Stream-Fork-Sub-Offset headers. A sub-offset
// counts messages into the append at the offset on a JSON stream, and
// bytes into it on any other (the fork then starts with that prefix of the
// append as its own first message).
func (s *Server) dsFork(c echo.Context, name string, cfg storage.StreamConfig, recs []storage.Record) (existed bool, err error) {
	h := c.Request().Header
	from := h.Get(headerDSForkedFrom)
	if from == "" {
		return false, badRequest("Stream-Fork-Offset and Stream-Fork-Sub-Offset need Stream-Forked-From")
	}
	source := from
	if i := strings.LastIndex(from, "/v1/stream/"); i >= 0 {
		source = from[i+len("/v1/stream/"):]
	}
	if err := storage.ValidateStreamName(source); err != nil {
		return false, storeError(err)
	}
	if err := s.authorize(c, PermRead, source); err != nil {
		return false, err
	}
	ctx := c.Request().Context()
	src, err := s.store.StreamInfo(ctx, source)
	if errors.Is(err, storage.ErrStreamDeleted) {
		return false, newError(http.StatusConflict, CodeStreamExists, "%v", err)
	}
	if err != nil {
		return false, storeError(err)
	}
	offset := src.NextOffset
	offHeader := h.Get(headerDSForkOffset)
	if offHeader != "" {
		off, sub, ok := parseDSOffset(offHeader)
		if !ok || sub != 0 {
			return false, badRequest("Stream-Fork-Offset %q: want an offset of the source", offHeader)
		}
		offset = off
	}
	if offset > src.NextOffset {
		return false, badRequest("Stream-Fork-Offset is past the source's end")
	}
	var sub uint64
	if v := h.Get(headerDSForkSubOffset); v != "" {
		n, err := parseCounter(v)
		if err != nil {
			return false, badRequest("Stream-Fork-Sub-Offset %q: want a count", v)
		}
		if n > 0 && offHeader == "" {
			return false, badRequest("Stream-Fork-Sub-Offset needs Stream-Fork-Offset")
		}
		switch {
		case n == 0:
		case isJSONType(src.ContentType):
			// Messages are records: n messages into the append.
			if offset+n > src.NextOffset {
				return false, badRequest("Stream-Fork-Sub-Offset is past the source's end")
			}
			offset += n
		default:
			sub = n // bytes into the append at offset
		}
	}
	if ct := h.Get(echo.HeaderContentType); ct != "" && mediaType(ct) != mediaType(src.ContentType) {
		return false, newError(http.StatusConflict, CodeStreamExists, "a fork has its source's content type %q", src.ContentType)
	}
	var fcfg *storage.StreamConfig
	if cfg.TTL > 0 || !cfg.ExpiresAt.IsZero() {
		fcfg = &cfg
		fcfg.ContentType = src.ContentType
	}
	res, err := s.store.ForkStream(ctx, name, source, offset, sub, fcfg, recs...)
	if err != nil {
		return false, s.dsError(c, name, err)
	}
	if cfg.Closed && !res.Replayed {
		if _, err := s.store.CloseStream(ctx, name, storage.AppendOptions{}); err != nil {
			return false, s.dsError(c, name, err)
		}
	}
	return res.Replayed, nil
}

// dsStreamHeaders sets the stream's description headers.
func (s *Server) dsStreamHeaders(h http.Header, info *storage.StreamInfo) {
	h.Set(echo.HeaderContentType, info.ContentType)
	h.Set(headerStreamNextOffset, formatDSOffset(info.NextOffset))
	if info.Closed {
		h.Set(headerStreamClosed, "true")
	}
}

// dsError is storeError with the protocol's extra answer headers: a
// closed stream's end, a producer's epoch and seqs.
func (s *Server) dsError(c echo.Context, name string, err error) error {
	if errors.Is(err, storage.ErrStreamClosed) {
		h := c.Response().Header()
		h.Set(headerStreamClosed, "true")
		if info, ierr := s.store.StreamInfo(c.Request().Context(), name); ierr == nil {
			h.Set(headerStreamNextOffset, formatDSOffset(info.NextOffset))
		}
	}
	return s.lifecycleError(c, err)
}

// dsAppend is POST: append messages, close (Stream-Closed: true, with or
// without a final append), as an idempotent producer or not.
func (s *Server) dsAppend(c echo.Context, name string) error {
	if err := s.authorize(c, PermAppend, name); err != nil {
		return err
	}
	if err, done := s.leaderOnly(c); done {
		return err
	}
	req := c.Request()
	ctx := req.Context()
	var opts storage.AppendOptions
	if aerr := lifecycleOptions(req.Header, &opts); aerr != nil {
		return aerr
	}
	if opts.Producer != nil && opts.Producer.ID == "" {
		return badRequest("Producer-Id is empty")
	}
	opts.MustExist = true
	body, err := s.readBody(c, s.opts.MaxRequestBytes)
	if err != nil {
		return err
	}
	info, err := s.store.StreamInfo(ctx, name)
	if err != nil {
		return storeError(err)
	}
	var res storage.AppendResult
	closeOnly := opts.Close && len(body) == 0
	if closeOnly {
		res, err = s.store.CloseStream(ctx, name, opts)
	} else {
		ct := req.Header.Get(echo.HeaderContentType)
		if ct == "" {
			return badRequest("an append needs a Content-Type")
		}
		if mediaType(ct) != mediaType(info.ContentType) {
			return newError(http.StatusConflict, CodeUnsupportedType, "Content-Type %q: the stream's is %q", ct, info.ContentType)
		}
		if len(body) == 0 {
			return badRequest("an empty append")
		}
		recs, aerr := dsMessages(info.ContentType, body)
		if aerr != nil {
			return aerr
		}
		if len(recs) == 0 {
			return badRequest("an empty JSON array appends nothing")
		}
		res, err = s.store.AppendWith(ctx, name, opts, recs...)
	}
	if err != nil {
		if err, done := s.clusterAppendError(c, err); done {
			return err
		}
		return s.dsError(c, name, err)
	}
	h := c.Response().Header()
	after, err := s.store.StreamInfo(ctx, name)
	if err == nil {
		h.Set(headerStreamNextOffset, formatDSOffset(after.NextOffset))
		if after.Closed {
			h.Set(headerStreamClosed, "true")
		}
	}
	if p := opts.Producer; p != nil {
		h.Set(headerProducerEpoch, strconv.FormatUint(p.Epoch, 10))
		h.Set(headerProducerSeq, strconv.FormatUint(res.ProducerSeq, 10))
		if !res.Replayed && !closeOnly {
			return c.NoContent(http.StatusOK)
		}
	}
	return c.NoContent(http.StatusNoContent)
}

// dsHead is HEAD: the stream's description, no body; it does not slide a
// TTL.
func (s *Server) dsHead(c echo.Context, name string) error {
	if err := s.authorize(c, PermRead, name); err != nil {
		return err
	}
	info, err := s.store.StreamInfo(c.Request().Context(), name)
	if err != nil {
		return storeError(err)
	}
	h := c.Response().Header()
	s.dsStreamHeaders(h, &info)
	h.Set(echo.HeaderCacheControl, "no-store")
	if info.TTLSeconds > 0 {
		h.Set(headerDSTTL, strconv.FormatInt(info.TTLSeconds, 10))
	}
	if !info.ExpiresAt.IsZero() {
		h.Set(headerDSExpiresAt, info.ExpiresAt.UTC().Format(time.RFC3339Nano))
	}
	return c.NoContent(http.StatusOK)
}

// dsCursorEpoch starts the long-poll cursor's 20 s intervals.
var dsCursorEpoch = time.Date(2024, 10, 9, 0, 0, 0, 0, time.UTC)

// dsCursor is the Stream-Cursor of a live answer: the current 20 s
// interval, or above the client's, so that a CDN never answers a
// long-poll from a cache entry the client has already seen.
func dsCursor(client string) string {
	cur := uint64(time.Since(dsCursorEpoch) / (20 * time.Second))
	if n, err := strconv.ParseUint(client, 10, 64); err == nil && n >= cur {
		cur = n + 1
	}
	return strconv.FormatUint(cur, 10)
}

// dsRead is GET: a catch-up read, a long-poll or an SSE tail.
func (s *Server) dsRead(c echo.Context, name string) error {
	if err := s.authorize(c, PermRead, name); err != nil {
		return err
	}
	req := c.Request()
	ctx := req.Context()
	q := req.URL.Query()
	offsets, live := q["offset"], q.Get("live")
	if len(offsets) > 1 {
		return badRequest("one offset")
	}
	if live != "" && live != "long-poll" && live != "sse" {
		return badRequest("live=%q: want long-poll or sse", live)
	}
	if live != "" && len(offsets) == 0 {
		return badRequest("live=%s needs an offset", live)
	}
	info, err := s.store.StreamInfo(ctx, name)
	if err != nil {
		return storeError(err)
	}
	from := info.FirstOffset
	now := false
	if len(offsets) == 1 {
		switch v := offsets[0]; v {
		case "-1":
		case "now":
			from, now = info.NextOffset, true
		default:
			off, sub, ok := parseDSOffset(v)
			if !ok || sub != 0 {
				return badRequest("offset %q: want -1, now or an offset this server gave", v)
			}
			if off > info.NextOffset {
				return badRequest("offset %q is past the stream's end", v)
			}
			from = off
		}
	}
	if live == "sse" {
		return s.dsSSE(c, name, &info, from)
	}
	recs, err := s.store.Read(ctx, name, from, dsReadLimit)
	if err != nil {
		return storeError(err)
	}
	h := c.Response().Header()
	if live == "long-poll" {
		h.Set(headerDSCursor, dsCursor(q.Get("cursor")))
	}
	if len(recs) == 0 && live == "long-poll" {
		if !info.Closed {
			tctx, done, ok := s.beginTail(req)
			if !ok {
				return newError(http.StatusServiceUnavailable, CodeUnavailable, "shutting down")
			}
			liftDeadlines(c, s.opts.LongPollTimeout+s.opts.WriteTimeout)
			recs, err = s.nextBatch(tctx, name, from, dsReadLimit, s.opts.LongPollTimeout)
			done()
			if err != nil && !errors.Is(err, tctx.Err()) && !errors.Is(err, storage.ErrStreamClosed) {
				return storeError(err)
			}
		}
		if len(recs) == 0 {
			if cur, err := s.store.StreamInfo(ctx, name); err == nil {
				info = cur
			}
			h.Set(headerStreamNextOffset, formatDSOffset(from))
			h.Set(headerDSUpToDate, "true")
			if info.Closed {
				h.Set(headerStreamClosed, "true")
			}
			return c.NoContent(http.StatusNoContent)
		}
	}
	next := from + uint64(len(recs))
	if cur, err := s.store.StreamInfo(ctx, name); err == nil {
		info = cur
	}
	upToDate := next >= info.NextOffset
	h.Set(echo.HeaderContentType, info.ContentType)
	h.Set(headerStreamNextOffset, formatDSOffset(next))
	if upToDate {
		h.Set(headerDSUpToDate, "true")
		if info.Closed {
			h.Set(headerStreamClosed, "true")
		}
	}
	etag := `"` + name + ":" + strconv.FormatUint(from, 10) + ":" + strconv.FormatUint(next, 10)
	if upToDate && info.Closed {
		etag += ":c"
	}
	etag += `"`
	h.Set("ETag", etag)
	switch {
	case now || upToDate:
		h.Set(echo.HeaderCacheControl, "no-store")
	default:
		h.Set(echo.HeaderCacheControl, "public, max-age=60")
	}
	if inm := req.Header.Get("If-None-Match"); inm != "" && inm == etag {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, info.ContentType, dsBody(info.ContentType, recs))
}

// dsBody is the answer body of records: a JSON array of the messages on a
// JSON stream, the values back to back on any other.
func dsBody(ct string, recs []storage.StoredRecord) []byte {
	var b []byte
	if !isJSONType(ct) {
		for i := range recs {
			b = append(b, recs[i].Value...)
		}
		return b
	}
	b = append(b, '[')
	for i := range recs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONMessage(b, &recs[i])
	}
	return append(b, ']')
}

// appendJSONMessage appends a record as one JSON message: its value when
// it is JSON, a base64 string otherwise (a record appended through the
// native API with a binary value).
func appendJSONMessage(b []byte, r *storage.StoredRecord) []byte {
	if r.JSON {
		return append(b, r.Value...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, r.Value)
	return append(b, '"')
}

// dsSSE tails a stream as the protocol's Server-Sent Events: each batch of
// messages is one "data" event, followed by a "control" event with the
// next offset; a closed stream ends with a control event that says so.
func (s *Server) dsSSE(c echo.Context, name string, info *storage.StreamInfo, from uint64) error {
	req := c.Request()
	ctx, done, ok := s.beginTail(req)
	if !ok {
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "shutting down")
	}
	defer done()
	s.metrics.subscribers.WithLabelValues("sse").Inc()
	defer s.metrics.subscribers.WithLabelValues("sse").Dec()
	ct := info.ContentType
	b64 := sseBase64(ct)
	res := c.Response()
	h := res.Header()
	h.Set(echo.HeaderContentType, mediaSSE)
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set("X-Accel-Buffering", "no")
	if b64 {
		h.Set(headerDSSSEEncoding, "base64")
	}
	rc := http.NewResponseController(res)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	res.WriteHeader(http.StatusOK)
	cursor := req.URL.Query().Get("cursor")
	first := true
	var buf []byte
	for {
		var recs []storage.StoredRecord
		var err error
		if first {
			recs, err = s.store.Read(ctx, name, from, s.opts.TailBatch)
		} else {
			recs, err = s.nextBatch(ctx, name, from, s.opts.TailBatch, s.opts.HeartbeatInterval)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, storage.ErrStreamClosed) {
			return nil // the stream went away (deleted, expired): end the tail
		}
		buf = buf[:0]
		if len(recs) > 0 {
			buf = appendSSEData(buf, ct, b64, recs)
			from += uint64(len(recs))
		}
		cur, ierr := s.store.StreamInfo(ctx, name)
		if ierr != nil {
			return nil
		}
		upToDate := from >= cur.NextOffset
		closed := upToDate && cur.Closed
		if len(recs) > 0 || first || closed {
			buf = appendSSEControl(buf, from, upToDate, closed, cursor)
		} else {
			buf = append(buf, ": keep-alive\n\n"...)
		}
		first = false
		if s.opts.WriteTimeout > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		}
		if _, werr := res.Write(buf); werr != nil {
			return nil
		}
		res.Flush()
		if closed {
			return nil
		}
	}
}

// appendSSEData appends one "data" event holding recs: a JSON array on a
// JSON stream, base64 on a binary one, the text split into data: lines on
// every line break (CRLF, LF or a lone CR) otherwise.
func appendSSEData(buf []byte, ct string, b64 bool, recs []storage.StoredRecord) []byte {
	buf = append(buf, "event: data\n"...)
	payload := dsBody(ct, recs)
	if b64 && !isJSONType(ct) {
		buf = append(buf, "data:"...)
		buf = base64.StdEncoding.AppendEncode(buf, payload)
		return append(buf, "\n\n"...)
	}
	for {
		i := bytes.IndexAny(payload, "\r\n")
		if i < 0 {
			buf = append(append(append(buf, "data:"...), payload...), '\n')
			break
		}
		buf = append(append(append(buf, "data:"...), payload[:i]...), '\n')
		if payload[i] == '\r' && i+1 < len(payload) && payload[i+1] == '\n' {
			i++
		}
		payload = payload[i+1:]
	}
	return append(buf, '\n')
}

// appendSSEControl appends a "control" event: flat JSON on one line.
func appendSSEControl(buf []byte, next uint64, upToDate, closed bool, cursor string) []byte {
	buf = append(buf, "event: control\ndata:{\"streamNextOffset\":\""...)
	buf = append(buf, formatDSOffset(next)...)
	buf = append(buf, '"')
	if closed {
		buf = append(buf, `,"streamClosed":true`...)
	} else {
		buf = append(buf, `,"streamCursor":"`...)
		buf = append(buf, dsCursor(cursor)...)
		buf = append(buf, '"')
	}
	if upToDate {
		buf = append(buf, `,"upToDate":true`...)
	}
	return append(buf, "}\n\n"...)
}
