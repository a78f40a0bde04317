package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/badbatch/badbatch"
	"github.com/badbatch/badbatch/storage"
	"github.com/labstack/echo/v4"
)

// Error codes: the "code" field of every error answer (badbatch.Code*,
// shared with the clients). They never change meaning; clients switch on
// them.
const (
	CodeBadRequest         = badbatch.CodeBadRequest         // 400 malformed input
	CodeInvalidStream      = badbatch.CodeInvalidStream      // 400 bad stream name
	CodeUnauthorized       = badbatch.CodeUnauthorized       // 401 no or unknown token
	CodeForbidden          = badbatch.CodeForbidden          // 403 token lacks the permission or prefix
	CodeNotFound           = badbatch.CodeNotFound           // 404 stream or cursor never written, unknown route
	CodeMethodNotAllowed   = badbatch.CodeMethodNotAllowed   // 405
	CodeOffsetMismatch     = badbatch.CodeOffsetMismatch     // 409 Expected-Last-Offset mismatch
	CodeMembershipConflict = badbatch.CodeMembershipConflict // 409 cluster membership change refused
	CodeStreamClosed       = badbatch.CodeStreamClosed       // 409 append to a closed stream
	CodeStreamExists       = badbatch.CodeStreamExists       // 409 create with another configuration
	CodeProducerSeqGap     = badbatch.CodeProducerSeqGap     // 409 producer seq skips one
	CodeProducerFenced     = badbatch.CodeProducerFenced     // 403 producer epoch fenced
	CodeStreamSeq          = badbatch.CodeStreamSeq          // 409 Stream-Seq not above the last
	CodeGone               = badbatch.CodeGone               // 410 offset below retention
	CodeTooLarge           = badbatch.CodeTooLarge           // 413 record or request too large
	CodeUnsupportedType    = badbatch.CodeUnsupportedType    // 415 unsupported content type
	CodeRateLimited        = badbatch.CodeRateLimited        // 429, with Retry-After
	CodeInternal           = badbatch.CodeInternal           // 500
	CodeUnavailable        = badbatch.CodeUnavailable        // 503 journal failed, closed or not ready
	CodeNotLeader          = badbatch.CodeNotLeader          // 307 cluster mode: a follower's redirect
)

// apiError is an error answer. It implements error so handlers can return it.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// CurrentLastOffset is set on 409: the stream's last offset (-1: empty).
	CurrentLastOffset *int64 `json:"current_last_offset,omitempty"`
	cause             error
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }
func (e *apiError) Unwrap() error { return e.cause }

type errorBody struct {
	Error *apiError `json:"error"`
}

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, CodeBadRequest, format, args...)
}

// storeError maps a storage error onto an API error.
func storeError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	e := &apiError{Message: err.Error(), cause: err}
	var mismatch *storage.OffsetMismatchError
	switch {
	case errors.As(err, &mismatch):
		e.Status, e.Code = http.StatusConflict, CodeOffsetMismatch
		cur := mismatch.Current
		e.CurrentLastOffset = &cur
	case errors.Is(err, storage.ErrStreamClosed):
		e.Status, e.Code = http.StatusConflict, CodeStreamClosed
	case errors.Is(err, storage.ErrStreamExists):
		e.Status, e.Code = http.StatusConflict, CodeStreamExists
	case errors.Is(err, storage.ErrStreamSeq):
		e.Status, e.Code = http.StatusConflict, CodeStreamSeq
	case errors.Is(err, storage.ErrProducerSeqGap):
		e.Status, e.Code = http.StatusConflict, CodeProducerSeqGap
	case errors.Is(err, storage.ErrProducerFenced):
		e.Status, e.Code = http.StatusForbidden, CodeProducerFenced
	case errors.Is(err, storage.ErrInvalidStream):
		e.Status, e.Code = http.StatusBadRequest, CodeInvalidStream
	case errors.Is(err, storage.ErrInvalidArgument):
		e.Status, e.Code = http.StatusBadRequest, CodeBadRequest
	case errors.Is(err, storage.ErrTooLarge):
		e.Status, e.Code = http.StatusRequestEntityTooLarge, CodeTooLarge
	case errors.Is(err, storage.ErrNotFound):
		e.Status, e.Code = http.StatusNotFound, CodeNotFound
	case errors.Is(err, storage.ErrGone):
		e.Status, e.Code = http.StatusGone, CodeGone
	case errors.Is(err, storage.ErrUnavailable), errors.Is(err, storage.ErrClosed):
		e.Status, e.Code = http.StatusServiceUnavailable, CodeUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The client went away or the server is shutting down.
		e.Status, e.Code = http.StatusServiceUnavailable, CodeUnavailable
	default:
		e.Status, e.Code = http.StatusInternalServerError, CodeInternal
	}
	return e
}

// toAPIError turns any handler error into an API error.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		msg := http.StatusText(he.Code)
		if s, ok := he.Message.(string); ok && s != "" {
			msg = s
		}
		return &apiError{Status: he.Code, Code: badbatch.CodeOfStatus(he.Code), Message: msg, cause: err}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body exceeds %d bytes", mbe.Limit)
	}
	return storeError(err)
}

// errorHandler is the echo HTTPErrorHandler: every error leaves in our shape.
func (s *Server) errorHandler(err error, c echo.Context) {
	ae := toAPIError(err)
	s.metrics.errors.WithLabelValues(ae.Code).Inc()
	if ae.Status >= 500 {
		s.logger.Error("request failed", "request_id", requestID(c), "method", c.Request().Method,
			"path", c.Request().URL.Path, "status", ae.Status, "err", err)
	}
	if c.Response().Committed {
		return
	}
	if ae.Code == CodeInternal {
		// Details go to the log, not to the client.
		ae = &apiError{Status: ae.Status, Code: ae.Code, Message: "internal error; see the server log for request " + requestID(c)}
	}
	if ae.Status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="badbatch"`)
	}
	retryAfterUnavailable(c, ae)
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.Status)
		return
	}
	_ = c.JSON(ae.Status, errorBody{Error: ae})
}
