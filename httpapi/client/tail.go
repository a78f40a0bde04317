package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Tail follows a stream live over Server-Sent Events, from the given
// position, and yields every record once, in offset order. When the
// connection drops (network error, server restart, 429/5xx) it reconnects
// with backoff and resumes after the last record it yielded (Last-Event-ID),
// so the sequence has no gap and no duplicate. It retries transient
// failures for as long as ctx lives.
//
// The sequence ends after yielding a non-nil error: ctx's error when ctx
// ends, or a permanent failure (ErrNotFound, ErrGone, ErrUnauthorized, ...).
// Breaking out of the loop closes the connection.
func (c *Client) Tail(ctx context.Context, stream string, from Position) iter.Seq2[StoredRecord, error] {
	return func(yield func(StoredRecord, error) bool) {
		t := &tailer{c: c, stream: stream, from: from}
		failures := 0
		for {
			progressed, err := t.connect(ctx, yield)
			if t.stopped {
				return
			}
			if ctx.Err() != nil {
				yield(StoredRecord{}, ctx.Err())
				return
			}
			if progressed {
				failures = 0
			}
			delay, ok := c.tailRetryDelay(err, failures)
			if !ok {
				yield(StoredRecord{}, err)
				return
			}
			failures++
			timer := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				timer.Stop()
				yield(StoredRecord{}, ctx.Err())
				return
			case <-timer.C:
			}
		}
	}
}

// tailRetryDelay is retryDelay without a retry limit (a tail retries
// transient errors until its context ends).
func (c *Client) tailRetryDelay(err error, failures int) (time.Duration, bool) {
	var apiErr *Error
	if errors.As(err, &apiErr) && !retryable(apiErr.Status) {
		return 0, false
	}
	backoff := c.opts.RetryBackoff << min(failures, 30)
	if backoff > c.opts.MaxBackoff || backoff <= 0 {
		backoff = c.opts.MaxBackoff
	}
	if apiErr != nil && apiErr.RetryAfter > backoff {
		backoff = min(apiErr.RetryAfter, c.opts.MaxRetryAfter)
	}
	return backoff, true
}

type tailer struct {
	c       *Client
	stream  string
	from    Position
	last    uint64
	hasLast bool
	stopped bool // the consumer broke out of the loop
}

// connect opens one SSE connection and yields its records until it ends.
// It reports whether it yielded anything, and why it ended.
func (t *tailer) connect(ctx context.Context, yield func(StoredRecord, error) bool) (bool, error) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := url.Values{"from": {t.from.String()}}
	h := http.Header{"Accept": {"text/event-stream"}}
	if t.hasLast {
		h.Set("Last-Event-ID", strconv.FormatUint(t.last, 10))
	}
	req, err := t.c.newRequest(cctx, http.MethodGet, "/v1/streams/"+url.PathEscape(t.stream)+"/records", q, h, nil)
	if err != nil {
		return false, err
	}
	resp, err := t.c.http.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, decodeAnswer(resp, nil)
	}
	// The idle watchdog: any line from the server (records or keep-alive
	// comments) resets it; silence for TailIdleTimeout drops the
	// connection, and the loop reconnects.
	idle := time.AfterFunc(t.c.opts.TailIdleTimeout, cancel)
	defer idle.Stop()

	progressed := false
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	var id, event string
	var data strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if cctx.Err() != nil && ctx.Err() == nil {
				return progressed, fmt.Errorf("client: tail idle for %v: reconnecting", t.c.opts.TailIdleTimeout)
			}
			return progressed, err
		}
		idle.Reset(t.c.opts.TailIdleTimeout)
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "":
			if data.Len() == 0 {
				id, event = "", ""
				continue
			}
			rec, stop, err := t.dispatch(id, event, data.String())
			id, event = "", ""
			data.Reset()
			if err != nil {
				return progressed, err
			}
			if stop {
				continue
			}
			progressed = true
			if !yield(rec, nil) {
				t.stopped = true
				return progressed, nil
			}
		case field == "id":
			id = value
		case field == "event":
			event = value
		case field == "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(value)
		}
	}
}

// dispatch handles one complete event: a record (returned), an error
// event (returned as the error), or a record already seen (skip).
func (t *tailer) dispatch(id, event, data string) (StoredRecord, bool, error) {
	if event == "error" {
		var body struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		e := &Error{Status: http.StatusOK, Code: "internal", Message: data}
		if json.Unmarshal([]byte(data), &body) == nil && body.Error.Code != "" {
			e.Code, e.Message = body.Error.Code, body.Error.Message
		}
		// Map the code to its status so retryable() sees unavailability.
		for status, s := range statusSentinels {
			if e.Is(s) {
				e.Status = status
				break
			}
		}
		return StoredRecord{}, false, e
	}
	var w wireStored
	if err := json.Unmarshal([]byte(data), &w); err != nil {
		return StoredRecord{}, false, fmt.Errorf("client: bad SSE record %q: %w", id, err)
	}
	if t.hasLast && w.Offset <= t.last {
		return StoredRecord{}, true, nil // a duplicate after a reconnect
	}
	rec, err := w.record()
	if err != nil {
		return rec, false, err
	}
	t.last, t.hasLast = w.Offset, true
	return rec, false, nil
}
