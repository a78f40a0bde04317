package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/badbatch/badbatch"
)

// safety says which failures of a request may be retried without changing
// what the server stores (docs/clients/README.md, Retries never duplicate).
type safety uint8

const (
	// read: a GET. Retried after network errors, timeouts, 429, 500, 502,
	// 503 and 504.
	read safety = iota
	// idempotentWrite: an append under an idempotency key, a cursor PUT.
	// Retried like a read, but not after 500 (a bug is not fixed by
	// retrying a write).
	idempotentWrite
	// unsafeWrite: an append without a key, a cluster membership change.
	// Retried only when it surely stored nothing: the connection was
	// refused (or the dial failed), or the answer was 429 or 503 no_leader.
	// A 503 unavailable is not retried: a journal that failed mid-write or
	// a store closed under the append leaves its outcome unknown.
	unsafeWrite
)

// request is one call's request, sent once per attempt.
type request struct {
	method string
	path   string // escaped
	query  url.Values
	header http.Header
	body   []byte
	safety safety
	// timeout is added to RequestTimeout for one attempt (a long-poll's
	// wait).
	timeout time.Duration
	// status, when not nil, receives the status of a successful answer.
	status *int
}

// attemptError is an attempt's failure with what the retry decision needs.
type attemptError struct {
	err *Error
	// neverSent: the request surely never reached the server (the dial
	// failed).
	neverSent bool
}

// doJSON sends a request, with retries, and decodes a 2xx JSON answer into
// out (unless nil). Every error is an *Error, but the caller's own
// cancellation (ctx's context.Canceled).
func (c *Client) doJSON(ctx context.Context, r request, out any) error {
	for attempt := 0; ; attempt++ {
		ae := c.attempt(ctx, r, out)
		if ae == nil {
			return nil
		}
		if err := ctxError(ctx); err != nil {
			return err
		}
		delay, ok := c.retryDelay(ae, r.safety, attempt)
		if !ok {
			return ae.err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctxError(ctx)
		case <-t.C:
		}
	}
}

// ctxError is nil while ctx lives, context.Canceled when the caller
// cancelled it, and a timeout *Error when its deadline passed.
func ctxError(ctx context.Context) error {
	switch err := ctx.Err(); {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return newClientError(CodeTimeout, "the call's deadline passed", err)
	default:
		return err
	}
}

// attempt sends the request once, within RequestTimeout, and reads the
// whole answer.
func (c *Client) attempt(ctx context.Context, r request, out any) *attemptError {
	actx, cancel := context.WithTimeout(ctx, c.s.requestTimeout+r.timeout)
	defer cancel()
	req, err := c.newRequest(actx, r.method, r.path, r.query, r.header, r.body)
	if err != nil {
		return &attemptError{err: newClientError(CodeBadRequest, err.Error(), err)}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.networkError(actx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return c.networkError(actx, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return &attemptError{err: errorFromAnswer(resp, data)}
	}
	if r.status != nil {
		*r.status = resp.StatusCode
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &attemptError{err: &Error{Code: CodeInternal, Status: resp.StatusCode,
			Message: fmt.Sprintf("cannot decode the %d answer: %v", resp.StatusCode, err), cause: err}}
	}
	return nil
}

// maxAnswerBytes bounds an answer the client reads.
const maxAnswerBytes = 1 << 30

// networkError classifies a failure to send or to read: a timeout when the
// attempt's deadline passed, else a connection error.
func (c *Client) networkError(actx context.Context, err error) *attemptError {
	if errors.Is(actx.Err(), context.DeadlineExceeded) {
		return &attemptError{err: newClientError(CodeTimeout, fmt.Sprintf("no complete answer within RequestTimeout %v", c.s.requestTimeout), err)}
	}
	var op *net.OpError
	neverSent := errors.As(err, &op) && op.Op == "dial"
	return &attemptError{err: newClientError(CodeConnection, err.Error(), err), neverSent: neverSent}
}

// retryDelay decides whether a failed attempt is retried, and after how
// long: a full-jitter exponential backoff, or the server's Retry-After when
// that is longer.
func (c *Client) retryDelay(ae *attemptError, s safety, attempt int) (time.Duration, bool) {
	if attempt >= c.s.maxRetries || !retryable(ae, s) {
		return 0, false
	}
	if ae.err.RetryAfter > c.s.maxRetryAfter {
		return 0, false
	}
	return max(ae.err.RetryAfter, c.backoff(attempt)), true
}

// backoff is the full-jitter delay before retry number attempt+1: uniform
// in [0, min(MaxBackoff, RetryBackoff * 2^attempt)].
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.s.retryBackoff << min(attempt, 30)
	if ceiling > c.s.maxBackoff || ceiling <= 0 {
		ceiling = c.s.maxBackoff
	}
	return time.Duration(mrand.Int64N(int64(ceiling) + 1))
}

// retryable applies the retry rules of safety s to a failed attempt.
func retryable(ae *attemptError, s safety) bool {
	e := ae.err
	if ae.neverSent {
		return true
	}
	switch e.Status {
	case http.StatusTooManyRequests:
		return true // nothing was stored
	case http.StatusServiceUnavailable:
		// no_leader stores nothing; unavailable may have (outcome unknown).
		return e.Code == CodeNoLeader || s != unsafeWrite
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return s != unsafeWrite
	case http.StatusInternalServerError:
		return s == read
	case 0:
		return s != unsafeWrite && (e.Code == CodeConnection || e.Code == CodeTimeout)
	}
	return false
}

// errorFromAnswer is the *Error of an error answer.
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
		e.Code = badbatch.CodeOfStatus(resp.StatusCode)
		e.Message = strings.TrimSpace(string(data))
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	for _, f := range []struct {
		header string
		dst    **uint64
	}{{"Producer-Epoch", &e.ProducerEpoch}, {"Producer-Expected-Seq", &e.ExpectedSeq}, {"Producer-Received-Seq", &e.ReceivedSeq}} {
		if n, err := strconv.ParseUint(resp.Header.Get(f.header), 10, 64); err == nil {
			*f.dst = &n
		}
	}
	if v := resp.Header.Get("Retry-After"); v != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs >= 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			e.RetryAfter = max(time.Until(t), 0)
		}
	}
	return e
}
