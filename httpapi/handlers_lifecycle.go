package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/badbatch/badbatch/storage"
	"github.com/labstack/echo/v4"
)

// Headers of the stream lifecycle (the names the Durable Streams protocol
// uses too, so that one vocabulary covers both APIs).
const (
	headerProducerID          = "Producer-Id"
	headerProducerEpoch       = "Producer-Epoch"
	headerProducerSeq         = "Producer-Seq"
	headerProducerExpectedSeq = "Producer-Expected-Seq"
	headerProducerReceivedSeq = "Producer-Received-Seq"
	headerStreamClosed        = "Stream-Closed"
	headerStreamSeq           = "Stream-Seq"
)

// writeTarget checks the stream of a write (its name, the token's perm on
// it) and sends a follower's write to the leader.
func (s *Server) writeTarget(c echo.Context, perm Permission) (string, error) {
	stream := c.Param("stream")
	if err := storage.ValidateStreamName(stream); err != nil {
		return "", storeError(err)
	}
	if err := s.authorize(c, perm, stream); err != nil {
		return "", err
	}
	if err, done := s.leaderOnly(c); done {
		return "", err
	}
	return stream, nil
}

// maxCreateBody bounds the JSON body of PUT /v1/streams/{stream}.
const maxCreateBody = 4 << 10

// createBody is the body of PUT /v1/streams/{stream}; every field is
// optional.
type createBody struct {
	ContentType string     `json:"content_type"`
	TTLSeconds  *int64     `json:"ttl_seconds"`
	ExpiresAt   *time.Time `json:"expires_at"`
	Closed      bool       `json:"closed"`
	Fork        *struct {
		Stream string  `json:"stream"`
		Offset *uint64 `json:"offset"`
	} `json:"fork"`
}

// handleCreateStream creates a stream, or a fork of one: 201 with the
// stream's description when created, 200 when it existed with the same
// configuration, 409 stream_exists otherwise.
func (s *Server) handleCreateStream(c echo.Context) error {
	stream, err := s.writeTarget(c, PermAppend)
	if err != nil {
		return err
	}
	var b createBody
	if c.Request().ContentLength != 0 {
		if kind, aerr := classifyContentType(c.Request().Header.Get(echo.HeaderContentType)); aerr != nil {
			return aerr
		} else if kind != bodyJSON {
			return newError(http.StatusUnsupportedMediaType, CodeUnsupportedType, "a stream's configuration is application/json")
		}
		body, err := s.readBody(c, maxCreateBody)
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(body)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&b); err != nil {
				return badRequest("bad JSON body: %v", jsonErrorText(err))
			}
		}
	}
	cfg := storage.StreamConfig{ContentType: b.ContentType, Closed: b.Closed}
	if b.TTLSeconds != nil {
		if *b.TTLSeconds <= 0 || *b.TTLSeconds > maxTTLSeconds {
			return badRequest("ttl_seconds %d: want 1 to %d", *b.TTLSeconds, maxTTLSeconds)
		}
		cfg.TTL = time.Duration(*b.TTLSeconds) * time.Second
	}
	if b.ExpiresAt != nil {
		cfg.ExpiresAt = *b.ExpiresAt
	}
	ctx := c.Request().Context()
	status := http.StatusCreated
	if b.Fork != nil {
		if b.Fork.Offset == nil {
			return badRequest(`bad JSON body: a fork needs {"stream": S, "offset": N}`)
		}
		if err := s.authorize(c, PermRead, b.Fork.Stream); err != nil {
			return err
		}
		var fcfg *storage.StreamConfig
		if b.ContentType != "" || b.TTLSeconds != nil || b.ExpiresAt != nil || b.Closed {
			fcfg = &cfg
		}
		var res storage.AppendResult
		res, err = s.store.ForkStream(ctx, stream, b.Fork.Stream, *b.Fork.Offset, 0, fcfg)
		if err == nil && res.Replayed {
			status = http.StatusOK
		}
	} else {
		var res storage.CreateResult
		res, err = s.store.CreateStream(ctx, stream, cfg)
		if err == nil && !res.Created {
			status = http.StatusOK
		}
	}
	if err != nil {
		if err, done := s.clusterAppendError(c, err); done {
			return err
		}
		return storeError(err)
	}
	info, err := s.store.StreamInfo(ctx, stream)
	if err != nil {
		return storeError(err)
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(status, toStreamInfo(info))
}

// maxTTLSeconds bounds ttl_seconds (and the protocol's Stream-TTL): about
// 290 years, below time.Duration's limit.
const maxTTLSeconds = 1 << 33

// handleDeleteStream deletes a stream: 204, 404 when there is none, 410
// when it was deleted already but forks still read it.
func (s *Server) handleDeleteStream(c echo.Context) error {
	stream, err := s.writeTarget(c, PermAdmin)
	if err != nil {
		return err
	}
	if err := s.store.DeleteStream(c.Request().Context(), stream); err != nil {
		if err, done := s.clusterAppendError(c, err); done {
			return err
		}
		return storeError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// handleCloseStream closes a stream (no more appends; tails end after its
// last record): 200 with its description. Closing a closed stream again
// is a 200 too. A final append that closes atomically is a POST of records
// with Stream-Closed: true.
func (s *Server) handleCloseStream(c echo.Context) error {
	stream, err := s.writeTarget(c, PermAppend)
	if err != nil {
		return err
	}
	var opts storage.AppendOptions
	if aerr := lifecycleOptions(c.Request().Header, &opts); aerr != nil {
		return aerr
	}
	if v := headerValue(c.Request().Header, headerExpectedLastOffset); v != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < -1 {
			return badRequest("Expected-Last-Offset %q: want an integer >= -1", v)
		}
		opts.ExpectedLastOffset = &n
	}
	ctx := c.Request().Context()
	if _, err := s.store.CloseStream(ctx, stream, opts); err != nil {
		if err, done := s.clusterAppendError(c, err); done {
			return err
		}
		return s.lifecycleError(c, err)
	}
	info, err := s.store.StreamInfo(ctx, stream)
	if err != nil {
		return storeError(err)
	}
	return c.JSON(http.StatusOK, toStreamInfo(info))
}

// lifecycleOptions reads the append headers of the lifecycle: an
// idempotent producer (Producer-Id, Producer-Epoch, Producer-Seq: all
// three or none) and Stream-Closed: true.
func lifecycleOptions(h http.Header, opts *storage.AppendOptions) *apiError {
	id, epoch, seq := headerValue(h, headerProducerID), headerValue(h, headerProducerEpoch), headerValue(h, headerProducerSeq)
	if id != "" || epoch != "" || seq != "" {
		if id == "" || epoch == "" || seq == "" {
			return badRequest("an idempotent producer sends Producer-Id, Producer-Epoch and Producer-Seq together")
		}
		e, err1 := parseCounter(epoch)
		n, err2 := parseCounter(seq)
		if err1 != nil || err2 != nil {
			return badRequest("Producer-Epoch %q and Producer-Seq %q: want integers from 0 to 2^53-1", epoch, seq)
		}
		opts.Producer = &storage.Producer{ID: id, Epoch: e, Seq: n}
	}
	if v := headerValue(h, headerStreamSeq); v != "" {
		if len(v) > maxIdempotencyKey {
			return badRequest("Stream-Seq longer than %d bytes", maxIdempotencyKey)
		}
		opts.StreamSeq = v
	}
	if v := headerValue(h, headerStreamClosed); v != "" {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			opts.Close = true
		case "false":
		default:
			return badRequest("Stream-Closed %q: want true or false", v)
		}
	}
	return nil
}

// parseCounter parses a non-negative decimal integer of at most 2^53-1
// (what every client language holds exactly).
func parseCounter(v string) (uint64, error) {
	if v == "" || len(v) > 16 || strings.TrimLeft(v, "0123456789") != "" {
		return 0, fmt.Errorf("not a counter")
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > 1<<53-1 {
		return 0, fmt.Errorf("not a counter")
	}
	return n, nil
}

// lifecycleError is storeError with the producer's answer headers: the
// current epoch on 403 producer_fenced, the expected and received seq on
// 409 producer_seq_gap.
func (s *Server) lifecycleError(c echo.Context, err error) error {
	var pe *storage.ProducerError
	if errors.As(err, &pe) {
		h := c.Response().Header()
		h.Set(headerProducerEpoch, strconv.FormatUint(pe.Epoch, 10))
		if errors.Is(err, storage.ErrProducerSeqGap) {
			h.Set(headerProducerExpectedSeq, strconv.FormatUint(pe.ExpectedSeq, 10))
			h.Set(headerProducerReceivedSeq, strconv.FormatUint(pe.Seq, 10))
		}
	}
	return storeError(err)
}
