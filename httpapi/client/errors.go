package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors, matched by errors.Is against an *Error.
var (
	ErrBadRequest      = errors.New("client: bad request")
	ErrUnauthorized    = errors.New("client: unauthorized")
	ErrForbidden       = errors.New("client: forbidden")
	ErrNotFound        = errors.New("client: not found")
	ErrConflict        = errors.New("client: expected last offset mismatch")
	ErrGone            = errors.New("client: offset below retention")
	ErrTooLarge        = errors.New("client: record or request too large")
	ErrUnsupportedType = errors.New("client: unsupported content type")
	ErrRateLimited     = errors.New("client: rate limited")
	ErrUnavailable     = errors.New("client: server unavailable")
	ErrInternal        = errors.New("client: internal server error")
	// ErrInvalidOptions is returned by New.
	ErrInvalidOptions = errors.New("client: invalid options")
)

// Error is an error answer of the server. Immutable once returned; safe to
// share.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code and Message are the API error's fields.
	Code    string
	Message string
	// RequestID is the server's X-Request-Id, for its logs.
	RequestID string
	// RetryAfter is the server's Retry-After (429, 503), if any.
	RetryAfter time.Duration
	// CurrentLastOffset is the stream's last offset on a 409 (-1: empty).
	CurrentLastOffset *int64
}

func (e *Error) Error() string {
	return fmt.Sprintf("badbatch: %d %s: %s", e.Status, e.Code, e.Message)
}

var codeSentinels = map[string]error{
	"bad_request":        ErrBadRequest,
	"invalid_stream":     ErrBadRequest,
	"method_not_allowed": ErrBadRequest,
	"unauthorized":       ErrUnauthorized,
	"forbidden":          ErrForbidden,
	"not_found":          ErrNotFound,
	"offset_mismatch":    ErrConflict,
	"gone":               ErrGone,
	"too_large":          ErrTooLarge,
	"unsupported_type":   ErrUnsupportedType,
	"rate_limited":       ErrRateLimited,
	"unavailable":        ErrUnavailable,
	"internal":           ErrInternal,
}

var statusSentinels = map[int]error{
	http.StatusBadRequest:            ErrBadRequest,
	http.StatusUnauthorized:          ErrUnauthorized,
	http.StatusForbidden:             ErrForbidden,
	http.StatusNotFound:              ErrNotFound,
	http.StatusConflict:              ErrConflict,
	http.StatusGone:                  ErrGone,
	http.StatusRequestEntityTooLarge: ErrTooLarge,
	http.StatusUnsupportedMediaType:  ErrUnsupportedType,
	http.StatusTooManyRequests:       ErrRateLimited,
	http.StatusServiceUnavailable:    ErrUnavailable,
	http.StatusBadGateway:            ErrUnavailable,
	http.StatusGatewayTimeout:        ErrUnavailable,
}

// Is matches the sentinel of the error's code (or, for an answer without
// our error shape, of its status).
func (e *Error) Is(target error) bool {
	if s, ok := codeSentinels[e.Code]; ok {
		return s == target
	}
	if s, ok := statusSentinels[e.Status]; ok {
		return s == target
	}
	return e.Status >= 500 && target == ErrInternal
}

// retryable reports whether a request that got this status may be retried.
func retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}
