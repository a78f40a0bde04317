package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/badbatch/badbatch/storage"
	"github.com/labstack/echo/v4"
)

// readQuery is a parsed GET .../records query.
type readQuery struct {
	// fromKind is "offset", "earliest", "latest" or "time".
	fromKind string
	from     uint64
	fromTime time.Time
	limit    int
	wait     time.Duration
}

func (s *Server) parseReadQuery(c echo.Context) (readQuery, error) {
	q := readQuery{fromKind: "earliest", limit: s.opts.DefaultReadLimit}
	from, fromTime := c.QueryParam("from"), c.QueryParam("from_time")
	if from != "" && fromTime != "" {
		return q, badRequest("give from or from_time, not both")
	}
	switch from {
	case "", "earliest":
	case "latest":
		q.fromKind = "latest"
	default:
		n, err := strconv.ParseUint(from, 10, 64)
		if err != nil {
			return q, badRequest("from=%q: want an offset, earliest or latest", from)
		}
		q.fromKind, q.from = "offset", n
	}
	if fromTime != "" {
		t, err := time.Parse(time.RFC3339Nano, fromTime)
		if err != nil {
			return q, badRequest("from_time=%q: want RFC 3339", fromTime)
		}
		q.fromKind, q.fromTime = "time", t
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return q, badRequest("limit=%q: want an integer >= 1", v)
		}
		q.limit = min(n, s.opts.MaxReadLimit)
	}
	if v := c.QueryParam("wait"); v != "" {
		d, err := parseWait(v)
		if err != nil {
			return q, badRequest("wait=%q: want a duration such as 30s or a number of seconds", v)
		}
		q.wait = min(d, s.opts.MaxWait)
	}
	return q, nil
}

// parseWait accepts a Go duration ("30s", "1m") or plain seconds ("30").
func parseWait(v string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n < 0 || n > 1e6 {
			return 0, errors.New("out of range")
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errors.New("bad duration")
	}
	return d, nil
}

// resolveStart turns a query's from/from_time into an offset.
func (s *Server) resolveStart(c echo.Context, stream string, q readQuery) (uint64, error) {
	switch q.fromKind {
	case "offset":
		return q.from, nil
	case "time":
		recs, err := s.store.ReadFromTime(c.Request().Context(), stream, q.fromTime, 1)
		if err != nil {
			return 0, err
		}
		if len(recs) > 0 {
			return recs[0].Offset, nil
		}
		fallthrough // nothing at or after the time yet: start at the live end
	case "latest":
		info, err := s.store.StreamInfo(c.Request().Context(), stream)
		return info.NextOffset, err
	default:
		info, err := s.store.StreamInfo(c.Request().Context(), stream)
		return info.FirstOffset, err
	}
}

// accepts reports which representation the Accept header asks for.
func acceptKind(h string) string {
	for _, part := range strings.Split(h, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case mediaSSE:
			return mediaSSE
		case mediaNDJSON, "application/ndjson", "application/jsonl":
			return mediaNDJSON
		case mediaJSON:
			return mediaJSON
		case mediaRecords:
			return mediaRecords
		}
	}
	return mediaJSON
}

func (s *Server) handleRead(c echo.Context) error {
	stream := c.Param("stream")
	if err := storage.ValidateStreamName(stream); err != nil {
		return storeError(err)
	}
	if err := s.authorize(c, PermRead, stream); err != nil {
		return err
	}
	q, err := s.parseReadQuery(c)
	if err != nil {
		return err
	}
	kind := acceptKind(c.Request().Header.Get(echo.HeaderAccept))
	if kind == mediaSSE {
		return s.serveSSE(c, stream, q)
	}
	from, err := s.resolveStart(c, stream, q)
	if err != nil {
		return storeError(err)
	}
	ctx := c.Request().Context()
	// Read one record more than the page: if it exists the page does not
	// reach the live end, and a full page of committed records never
	// changes while retained.
	recs, err := s.store.Read(ctx, stream, from, q.limit+1)
	if err != nil {
		return storeError(err)
	}
	if len(recs) == 0 && q.wait > 0 {
		tctx, done, ok := s.beginTail(c.Request())
		if !ok {
			return newError(http.StatusServiceUnavailable, CodeUnavailable, "shutting down")
		}
		s.metrics.subscribers.WithLabelValues("longpoll").Inc()
		liftDeadlines(c, q.wait+s.opts.WriteTimeout)
		recs, err = s.nextBatch(tctx, stream, from, q.limit+1, q.wait)
		s.metrics.subscribers.WithLabelValues("longpoll").Dec()
		done()
		// A closed stream answers at once: nothing more will come.
		if err != nil && !errors.Is(err, tctx.Err()) && !errors.Is(err, storage.ErrStreamClosed) {
			return storeError(err)
		}
	}
	immutable := len(recs) > q.limit
	if immutable {
		recs = recs[:q.limit]
	}
	next := from
	if len(recs) > 0 {
		next = recs[len(recs)-1].Offset + 1
	}
	s.metrics.observeRead(recs)
	h := c.Response().Header()
	h.Set(headerStreamNextOffset, strconv.FormatUint(next, 10))
	h.Set("Vary", "Accept, Accept-Encoding")

	var body []byte
	contentType := echo.MIMEApplicationJSON
	switch kind {
	case mediaNDJSON:
		contentType = mediaNDJSON
		body, err = encodeNDJSON(recs)
	case mediaRecords:
		contentType = mediaRecords
		body = encodeBinaryPage(recs, next)
	default:
		body, err = marshalJSON(pageResponse{Records: toOutRecords(recs, false), NextOffset: next})
	}
	if err != nil {
		return err
	}
	if !immutable {
		h.Set(echo.HeaderCacheControl, "no-store")
		return c.Blob(http.StatusOK, contentType, body)
	}
	etag := pageETag(body)
	h.Set("ETag", etag)
	h.Set(echo.HeaderCacheControl, "public, max-age=60, immutable")
	if etagMatches(c.Request().Header.Get("If-None-Match"), etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, contentType, body)
}

func encodeNDJSON(recs []storage.StoredRecord) ([]byte, error) {
	var buf bytes.Buffer
	for i := range recs {
		if err := appendJSONLine(&buf, toOutRecord(&recs[i], false)); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// pageETag is a strong validator of a page's exact bytes.
func pageETag(body []byte) string {
	h := fnv.New64a()
	_, _ = h.Write(body)
	return fmt.Sprintf(`"%016x"`, h.Sum64())
}

func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, part := range strings.Split(header, ",") {
		p := strings.TrimSpace(part)
		if p == "*" || strings.TrimPrefix(p, "W/") == etag {
			return true
		}
	}
	return false
}

func (s *Server) handleGlobal(c echo.Context) error {
	if err := s.authorize(c, PermRead, ""); err != nil {
		return err
	}
	var from uint64
	if v := c.QueryParam("from_seq"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return badRequest("from_seq=%q: want an integer >= 0", v)
		}
		from = n
	}
	limit := s.opts.DefaultReadLimit
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return badRequest("limit=%q: want an integer >= 1", v)
		}
		limit = min(n, s.opts.MaxReadLimit)
	}
	recs, err := s.store.ReadGlobal(c.Request().Context(), from, limit)
	if err != nil {
		return storeError(err)
	}
	next := from
	if len(recs) > 0 {
		next = recs[len(recs)-1].Seq + 1
	}
	visible := recs[:0:0]
	for i := range recs {
		if s.visibleStream(c, recs[i].Stream) {
			visible = append(visible, recs[i])
		}
	}
	s.metrics.observeRead(visible)
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	body, err := marshalJSON(globalResponse{Records: toOutRecords(visible, true), NextSeq: next})
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
}

func (s *Server) handleStreams(c echo.Context) error {
	if err := s.authorize(c, PermRead, ""); err != nil {
		return err
	}
	infos, err := s.store.Streams(c.Request().Context())
	if err != nil {
		return storeError(err)
	}
	out := streamsResponse{Streams: make([]streamInfoResponse, 0, len(infos))}
	for _, i := range infos {
		if s.visibleStream(c, i.Stream) {
			out.Streams = append(out.Streams, toStreamInfo(i))
		}
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, out)
}

func (s *Server) streamInfo(c echo.Context) (storage.StreamInfo, error) {
	stream := c.Param("stream")
	if err := storage.ValidateStreamName(stream); err != nil {
		return storage.StreamInfo{}, storeError(err)
	}
	if err := s.authorize(c, PermRead, stream); err != nil {
		return storage.StreamInfo{}, err
	}
	info, err := s.store.StreamInfo(c.Request().Context(), stream)
	if err != nil {
		return info, storeError(err)
	}
	h := c.Response().Header()
	h.Set(headerStreamNextOffset, strconv.FormatUint(info.NextOffset, 10))
	h.Set(echo.HeaderCacheControl, "no-store")
	return info, nil
}

func (s *Server) handleStreamInfo(c echo.Context) error {
	info, err := s.streamInfo(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toStreamInfo(info))
}

func (s *Server) handleStreamHead(c echo.Context) error {
	if _, err := s.streamInfo(c); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

func (s *Server) cursorParams(c echo.Context, perm Permission) (string, string, error) {
	stream, name := c.Param("stream"), c.Param("name")
	if err := storage.ValidateStreamName(stream); err != nil {
		return "", "", storeError(err)
	}
	if err := storage.ValidateStreamName(name); err != nil {
		// invalid_stream, like a bad stream name: both are names of the
		// same syntax (docs/clients/README.md, Errors).
		return "", "", newError(http.StatusBadRequest, CodeInvalidStream, "invalid cursor name %q: want %s", name, storage.NamePattern)
	}
	return stream, name, s.authorize(c, perm, stream)
}

func (s *Server) handleGetCursor(c echo.Context) error {
	stream, name, err := s.cursorParams(c, PermRead)
	if err != nil {
		return err
	}
	off, err := s.store.Cursor(c.Request().Context(), stream, name)
	if err != nil {
		return storeError(err)
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, cursorResponse{Stream: stream, Name: name, Offset: off})
}

// maxCursorBody bounds a cursor PUT body.
const maxCursorBody = 4 << 10

func (s *Server) handlePutCursor(c echo.Context) error {
	stream, name, err := s.cursorParams(c, PermRead)
	if err != nil {
		return err
	}
	if err, done := s.leaderOnly(c); done {
		return err
	}
	if kind, aerr := classifyContentType(c.Request().Header.Get(echo.HeaderContentType)); aerr != nil {
		return aerr
	} else if kind != bodyJSON {
		return newError(http.StatusUnsupportedMediaType, CodeUnsupportedType, "a cursor body is application/json")
	}
	body, err := s.readBody(c, maxCursorBody)
	if err != nil {
		return err
	}
	var cb cursorBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cb); err != nil {
		return badRequest("bad JSON body: %v", jsonErrorText(err))
	}
	if cb.Offset == nil {
		return badRequest(`bad JSON body: want {"offset": N}`)
	}
	if err := s.store.SetCursor(c.Request().Context(), stream, name, *cb.Offset); err != nil {
		if err, done := s.clusterAppendError(c, err); done {
			return err
		}
		return storeError(err)
	}
	return c.JSON(http.StatusOK, cursorResponse{Stream: stream, Name: name, Offset: *cb.Offset})
}
