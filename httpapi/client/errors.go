package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/badbatch/badbatch"
)

// Error kinds (docs/clients/README.md, Errors): the server's error codes,
// and three made on the client's side.
const (
	CodeBadRequest         = badbatch.CodeBadRequest
	CodeInvalidStream      = badbatch.CodeInvalidStream
	CodeUnauthorized       = badbatch.CodeUnauthorized
	CodeForbidden          = badbatch.CodeForbidden
	CodeNotFound           = badbatch.CodeNotFound
	CodeMethodNotAllowed   = badbatch.CodeMethodNotAllowed
	CodeOffsetMismatch     = badbatch.CodeOffsetMismatch
	CodeMembershipConflict = badbatch.CodeMembershipConflict
	CodeGone               = badbatch.CodeGone
	CodeTooLarge           = badbatch.CodeTooLarge
	CodeUnsupportedType    = badbatch.CodeUnsupportedType
	CodeRateLimited        = badbatch.CodeRateLimited
	CodeInternal           = badbatch.CodeInternal
	CodeUnavailable        = badbatch.CodeUnavailable
	CodeNoLeader           = badbatch.CodeNoLeader
	CodeNotLeader          = badbatch.CodeNotLeader
	CodeNotCluster         = badbatch.CodeNotCluster
	CodeStreamClosed       = badbatch.CodeStreamClosed
	CodeStreamExists       = badbatch.CodeStreamExists
	CodeProducerSeqGap     = badbatch.CodeProducerSeqGap
	CodeProducerFenced     = badbatch.CodeProducerFenced
	CodeStreamSeq          = badbatch.CodeStreamSeq
	CodeInvalidOptions     = badbatch.CodeInvalidOptions
	CodeConnection         = badbatch.CodeConnection
	CodeTimeout            = badbatch.CodeTimeout
)

// Sentinel errors, one per error kind, matched by errors.Is against an
// *Error of that kind.
var (
	ErrBadRequest         = errors.New("client: bad_request")
	ErrInvalidStream      = errors.New("client: invalid_stream")
	ErrUnauthorized       = errors.New("client: unauthorized")
	ErrForbidden          = errors.New("client: forbidden")
	ErrNotFound           = errors.New("client: not_found")
	ErrMethodNotAllowed   = errors.New("client: method_not_allowed")
	ErrOffsetMismatch     = errors.New("client: offset_mismatch")
	ErrMembershipConflict = errors.New("client: membership_conflict")
	ErrGone               = errors.New("client: gone")
	ErrTooLarge           = errors.New("client: too_large")
	ErrUnsupportedType    = errors.New("client: unsupported_type")
	ErrRateLimited        = errors.New("client: rate_limited")
	ErrInternal           = errors.New("client: internal")
	ErrUnavailable        = errors.New("client: unavailable")
	ErrNoLeader           = errors.New("client: no_leader")
	ErrNotLeader          = errors.New("client: not_leader")
	ErrNotCluster         = errors.New("client: not_cluster")
	ErrStreamClosed       = errors.New("client: stream_closed")
	ErrStreamExists       = errors.New("client: stream_exists")
	ErrProducerSeqGap     = errors.New("client: producer_seq_gap")
	ErrProducerFenced     = errors.New("client: producer_fenced")
	ErrStreamSeq          = errors.New("client: stream_seq")
	// ErrInvalidOptions: a bad option value, reported by New before any
	// request.
	ErrInvalidOptions = errors.New("client: invalid_options")
	// ErrConnection: the server could not be reached, or the connection
	// broke, after the retries.
	ErrConnection = errors.New("client: connection")
	// ErrTimeout: a per-call deadline (the caller's context) or the
	// per-attempt RequestTimeout passed.
	ErrTimeout = errors.New("client: timeout")
)

var kindSentinels = map[string]error{
	CodeBadRequest:         ErrBadRequest,
	CodeInvalidStream:      ErrInvalidStream,
	CodeUnauthorized:       ErrUnauthorized,
	CodeForbidden:          ErrForbidden,
	CodeNotFound:           ErrNotFound,
	CodeMethodNotAllowed:   ErrMethodNotAllowed,
	CodeOffsetMismatch:     ErrOffsetMismatch,
	CodeMembershipConflict: ErrMembershipConflict,
	CodeGone:               ErrGone,
	CodeTooLarge:           ErrTooLarge,
	CodeUnsupportedType:    ErrUnsupportedType,
	CodeRateLimited:        ErrRateLimited,
	CodeInternal:           ErrInternal,
	CodeUnavailable:        ErrUnavailable,
	CodeNoLeader:           ErrNoLeader,
	CodeNotLeader:          ErrNotLeader,
	CodeNotCluster:         ErrNotCluster,
	CodeStreamClosed:       ErrStreamClosed,
	CodeStreamExists:       ErrStreamExists,
	CodeProducerSeqGap:     ErrProducerSeqGap,
	CodeProducerFenced:     ErrProducerFenced,
	CodeStreamSeq:          ErrStreamSeq,
	CodeInvalidOptions:     ErrInvalidOptions,
	CodeConnection:         ErrConnection,
	CodeTimeout:            ErrTimeout,
}

// Error is every error the client returns but the caller's own
// cancellation (context.Canceled): an error answer of the server, or a
// kind made on the client's side (invalid_options, connection, timeout,
// and bad_request for a record the client cannot encode). Immutable once
// returned; safe to share.
type Error struct {
	// Code is the error kind: the server's code, or one of
	// CodeInvalidOptions, CodeConnection, CodeTimeout. An answer without
	// the API's error shape gets the kind of its status (502 and 504:
	// unavailable), and one the client cannot decode is internal.
	Code string
	// Message is the server's message, or the client's explanation.
	Message string
	// Status is the HTTP status (0 for an error made on the client's side).
	Status int
	// CurrentLastOffset is the stream's last offset on offset_mismatch
	// (-1: empty); nil otherwise.
	CurrentLastOffset *int64
	// ProducerEpoch is the producer's current epoch on producer_fenced and
	// producer_seq_gap; ExpectedSeq and ReceivedSeq are the seq the server
	// wanted and the one it got on producer_seq_gap. Nil otherwise.
	ProducerEpoch, ExpectedSeq, ReceivedSeq *uint64
	// RetryAfter is the server's Retry-After (429, 503), if any.
	RetryAfter time.Duration
	// RequestID is the server's X-Request-Id, for its logs.
	RequestID string
	// cause is the underlying error of a client-side kind (the network
	// error, context.DeadlineExceeded, ...), for errors.Is and errors.As.
	cause error
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("badbatch client: %s: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("badbatch: %d %s: %s", e.Status, e.Code, e.Message)
}

// Is matches the sentinel of the error's kind.
func (e *Error) Is(target error) bool {
	s, ok := kindSentinels[e.Code]
	return ok && s == target
}

// Unwrap returns the cause of a client-side error (nil for a server's
// answer).
func (e *Error) Unwrap() error { return e.cause }

func newClientError(code, message string, cause error) *Error {
	return &Error{Code: code, Message: message, cause: cause}
}

// statusOfKind is the HTTP status the server answers with a kind (an SSE
// error event carries the code only).
func statusOfKind(code string) int {
	switch code {
	case CodeBadRequest, CodeInvalidStream:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden, CodeProducerFenced:
		return http.StatusForbidden
	case CodeNotFound, CodeNotCluster:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeOffsetMismatch, CodeMembershipConflict, CodeStreamClosed, CodeStreamExists, CodeProducerSeqGap, CodeStreamSeq:
		return http.StatusConflict
	case CodeGone:
		return http.StatusGone
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupportedType:
		return http.StatusUnsupportedMediaType
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeUnavailable, CodeNoLeader:
		return http.StatusServiceUnavailable
	case CodeNotLeader:
		return http.StatusTemporaryRedirect
	}
	return http.StatusInternalServerError
}
