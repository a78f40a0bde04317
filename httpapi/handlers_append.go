package httpapi

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/badbatch/badbatch/storage"
	"github.com/labstack/echo/v4"
)

// Headers of the append endpoint.
const (
	headerRecordKey          = "Record-Key"
	headerIdempotencyKey     = "Idempotency-Key"
	headerIdempotentReplayed = "Idempotent-Replayed"
	headerExpectedLastOffset = "Expected-Last-Offset"
	headerStreamNextOffset   = "Stream-Next-Offset"
	headerDurability         = "Durability"
)

// headerValue is h.Get(key) for a key already in canonical form (the
// constants above and echo's), without canonicalizing it again.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 256

// admitAppend checks what every append route checks first: the stream
// name, the caller's permission to append to it, and that this node leads
// (a follower answers 307 or no_leader). With done set, the request is
// answered with err.
func (s *Server) admitAppend(c echo.Context) (stream string, err error, done bool) {
	stream = c.Param("stream")
	if err := storage.ValidateStreamName(stream); err != nil {
		return "", storeError(err), true
	}
	if err := s.authorize(c, PermAppend, stream); err != nil {
		return "", err, true
	}
	if err, done := s.leaderOnly(c); done {
		return "", err, true
	}
	return stream, nil, false
}

func (s *Server) handleAppend(c echo.Context) error {
	stream, err, done := s.admitAppend(c)
	if done {
		return err
	}
	req := c.Request()
	// The scratch holds the expected offset, so that a conditional append
	// does not allocate it.
	sc := getAppendScratch()
	defer putAppendScratch(sc)
	var opts storage.AppendOptions
	if k := headerValue(req.Header, headerIdempotencyKey); k != "" {
		if len(k) > maxIdempotencyKey {
			return badRequest("Idempotency-Key longer than %d bytes", maxIdempotencyKey)
		}
		opts.IdempotencyKey = k
	}
	if v := headerValue(req.Header, headerExpectedLastOffset); v != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < -1 {
			return badRequest("Expected-Last-Offset %q: want an integer >= -1", v)
		}
		sc.expected = n
		opts.ExpectedLastOffset = &sc.expected
	}
	if aerr := lifecycleOptions(req.Header, &opts); aerr != nil {
		return aerr
	}
	kind, aerr := classifyContentType(headerValue(req.Header, echo.HeaderContentType))
	if aerr != nil {
		return aerr
	}
	// The body, the parsed records and the answer live in memory reused
	// across requests (sc); the records alias it until AppendWith returns
	// (the store copies them), the answer until it is written.
	body, err := s.readBodyInto(c, s.opts.MaxRequestBytes, sc.body[:0])
	sc.body = body[:0]
	if err != nil {
		return err
	}
	recs, aerr := sc.parse(kind, body, headerValue(req.Header, headerRecordKey), s.opts.MaxRecordBytes)
	if aerr != nil {
		return aerr
	}
	if kind == bodyBinary {
		if aerr := sc.mergeBinaryOptions(&opts, &sc.expected); aerr != nil {
			return aerr
		}
	}

	start := time.Now()
	res, err := s.store.AppendWith(req.Context(), stream, opts, recs...)
	s.metrics.httpAppendLatency.Observe(time.Since(start).Seconds())
	if err != nil {
		if err, done := s.clusterAppendError(c, err); done {
			return err
		}
		aerr := toAPIError(s.lifecycleError(c, err))
		if aerr.CurrentLastOffset != nil {
			c.Response().Header().Set(headerStreamNextOffset, strconv.FormatInt(*aerr.CurrentLastOffset+1, 10))
		}
		return aerr
	}
	s.metrics.appendBatch.Observe(float64(len(recs)))
	if !res.Replayed {
		n := 0
		for i := range recs {
			n += storage.RecordSize(&recs[i])
		}
		s.metrics.recordsAppended.Add(float64(len(recs)))
		s.metrics.bytesAppended.Add(float64(n))
	}
	// The header names are canonical already: assign the values directly,
	// three of them in one allocation (what Header.Set does, one by one).
	h := c.Response().Header()
	vals := make([]string, 3)
	vals[0], vals[1], vals[2] = strconv.FormatUint(res.LastOffset+1, 10), res.Durability, "no-store"
	h[headerStreamNextOffset] = vals[0:1:1]
	h[headerDurability] = vals[1:2:2]
	h[echo.HeaderCacheControl] = vals[2:3:3]
	if res.Replayed {
		h.Set(headerIdempotentReplayed, "true")
	}
	// c.JSON indents for ?pretty and in debug mode; leave those to it.
	if req.URL.RawQuery == "" && !c.Echo().Debug {
		if b, ok := appendResultJSON(sc.out[:0], &res); ok {
			sc.out = b
			return c.JSONBlob(http.StatusCreated, b)
		}
	}
	return c.JSON(http.StatusCreated, res)
}

// appendScratch is the reusable memory of one append request.
type appendScratch struct {
	parseScratch
	body     []byte // the request body
	out      []byte // the 201 answer
	expected int64  // the Expected-Last-Offset, pointed to by the store's AppendOptions
}

// maxPooledScratch bounds the buffers kept for reuse, so that one large
// batch does not pin its memory in the pool.
const maxPooledScratch = 64 << 10

var appendScratchPool = sync.Pool{New: func() any { return new(appendScratch) }}

func getAppendScratch() *appendScratch { return appendScratchPool.Get().(*appendScratch) }

func putAppendScratch(sc *appendScratch) {
	if cap(sc.body) > maxPooledScratch || cap(sc.buf) > maxPooledScratch || cap(sc.out) > maxPooledScratch {
		return
	}
	sc.one[0] = storage.Record{} // drop references into the request
	clear(sc.wire[:cap(sc.wire)])
	clear(sc.recs[:cap(sc.recs)])
	appendScratchPool.Put(sc)
}

// readBody reads a whole request body of at most limit bytes; more is a
// 413 in the API's shape.
func (s *Server) readBody(c echo.Context, limit int64) ([]byte, error) {
	return s.readBodyInto(c, limit, nil)
}

// readBodyInto is readBody appending to buf, which it returns grown (also
// on an error, for reuse).
func (s *Server) readBodyInto(c echo.Context, limit int64, buf []byte) ([]byte, error) {
	req := c.Request()
	if req.ContentLength > limit {
		return buf, newError(http.StatusRequestEntityTooLarge, CodeTooLarge,
			"request body of %d bytes exceeds %d bytes", req.ContentLength, limit)
	}
	r := http.MaxBytesReader(c.Response(), req.Body, limit)
	// Room for the announced length and one byte more, so that a body of
	// exactly that length ends in a read of 0 bytes and io.EOF, not in a
	// reallocation.
	if req.ContentLength > 0 {
		buf = slices.Grow(buf, int(req.ContentLength)+1)
	}
	buf, err := readAllInto(r, buf)
	if err != nil {
		if _, ok := err.(*http.MaxBytesError); ok {
			return buf, toAPIError(err)
		}
		return buf, badRequest("reading the body: %v", err)
	}
	return buf, nil
}
