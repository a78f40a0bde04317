package httpapi

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
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

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 256

func (s *Server) handleAppend(c echo.Context) error {
	stream := c.Param("stream")
	if err := storage.ValidateStreamName(stream); err != nil {
		return storeError(err)
	}
	if err := s.authorize(c, PermAppend, stream); err != nil {
		return err
	}
	req := c.Request()
	var opts storage.AppendOptions
	if k := req.Header.Get(headerIdempotencyKey); k != "" {
		if len(k) > maxIdempotencyKey {
			return badRequest("Idempotency-Key longer than %d bytes", maxIdempotencyKey)
		}
		opts.IdempotencyKey = k
	}
	if v := req.Header.Get(headerExpectedLastOffset); v != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < -1 {
			return badRequest("Expected-Last-Offset %q: want an integer >= -1", v)
		}
		opts.HasExpectedLastOffset, opts.ExpectedLastOffset = true, n
	}
	kind, aerr := classifyContentType(req.Header.Get(echo.HeaderContentType))
	if aerr != nil {
		return aerr
	}
	body, err := s.readBody(c, s.opts.MaxRequestBytes)
	if err != nil {
		return err
	}
	recs, aerr := parseAppendBody(kind, body, req.Header.Get(headerRecordKey), s.opts.MaxRecordBytes)
	if aerr != nil {
		return aerr
	}

	start := time.Now()
	res, err := s.store.AppendWith(req.Context(), stream, opts, recs...)
	s.metrics.httpAppendLatency.Observe(time.Since(start).Seconds())
	if err != nil {
		aerr := storeError(err)
		if aerr.CurrentLastOffset != nil {
			c.Response().Header().Set(headerStreamNextOffset, strconv.FormatInt(*aerr.CurrentLastOffset+1, 10))
		}
		return aerr
	}
	s.metrics.appendBatch.Observe(float64(len(recs)))
	if !res.Replayed {
		n := 0
		for i := range recs {
			n += recordSize(&recs[i])
		}
		s.metrics.recordsAppended.Add(float64(len(recs)))
		s.metrics.bytesAppended.Add(float64(n))
	}
	h := c.Response().Header()
	h.Set(headerStreamNextOffset, strconv.FormatUint(res.LastOffset+1, 10))
	h.Set(headerDurability, res.Durability)
	h.Set(echo.HeaderCacheControl, "no-store")
	if res.Replayed {
		h.Set(headerIdempotentReplayed, "true")
	}
	return c.JSON(http.StatusCreated, appendResponse{
		Stream: res.Stream, FirstOffset: res.FirstOffset, LastOffset: res.LastOffset, Count: res.Count,
		FirstSeq: res.FirstSeq, LastSeq: res.LastSeq, Durability: res.Durability, Replayed: res.Replayed,
	})
}

// readBody reads a whole request body of at most limit bytes; more is a
// 413 in the API's shape.
func (s *Server) readBody(c echo.Context, limit int64) ([]byte, error) {
	req := c.Request()
	if req.ContentLength > limit {
		return nil, newError(http.StatusRequestEntityTooLarge, CodeTooLarge,
			"request body of %d bytes exceeds %d bytes", req.ContentLength, limit)
	}
	r := http.MaxBytesReader(c.Response(), req.Body, limit)
	var buf bytes.Buffer
	if req.ContentLength > 0 {
		buf.Grow(int(req.ContentLength))
	}
	if _, err := buf.ReadFrom(r); err != nil {
		if _, ok := err.(*http.MaxBytesError); ok {
			return nil, toAPIError(err)
		}
		return nil, badRequest("reading the body: %v", err)
	}
	return buf.Bytes(), nil
}
