package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Tail follows a stream live over Server-Sent Events, from the given
// position, and yields every record once, in offset order. When the
// connection drops (network error, server restart, 429/5xx, idle for
// TailIdleTimeout) it reconnects with backoff and resumes after the last
// record it yielded (Last-Event-ID), so the sequence has no gap and no
// duplicate. Latest and Time positions are resolved to an offset before
// the first connection, so a reconnect before the first record misses
// nothing either. It retries transient failures for as long as ctx lives.
//
// The sequence ends after yielding a non-nil error: ctx's error when ctx
// ends (an *Error of kind timeout for a deadline), or an error that a
// retry cannot fix (ErrNotFound, ErrGone, ErrForbidden, ErrUnauthorized,
// and any other 4xx answer but 429). It also ends, with no error, once a
// closed stream's last record was yielded (the server's "closed" event).
// Breaking out of the loop closes the connection.
func (c *Client) Tail(ctx context.Context, stream string, from Position) iter.Seq2[StoredRecord, error] {
	return func(yield func(StoredRecord, error) bool) {
		t := &tailer{c: c, stream: stream, from: from}
		failures := 0
		for {
			progressed, err := t.connect(ctx, yield)
			if t.stopped || errors.Is(err, errTailEnded) {
				return
			}
			if cerr := ctxError(ctx); cerr != nil {
				yield(StoredRecord{}, cerr)
				return
			}
			if progressed {
				failures = 0
			}
			if !tailRetryable(err) {
				yield(StoredRecord{}, err)
				return
			}
			delay := c.backoff(failures)
			var apiErr *Error
			if errors.As(err, &apiErr) && apiErr.RetryAfter > delay {
				delay = min(apiErr.RetryAfter, c.s.maxRetryAfter)
			}
			failures++
			timer := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				timer.Stop()
				yield(StoredRecord{}, ctxError(ctx))
				return
			case <-timer.C:
			}
		}
	}
}

// tailRetryable reports whether a tail reconnects after err: after network
// failures and 429/5xx answers, not after an answer that a retry cannot
// change.
func tailRetryable(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return true // a broken connection
	}
	switch {
	case e.Status == 0:
		return e.Code == CodeConnection || e.Code == CodeTimeout
	case e.Status == http.StatusTooManyRequests, e.Status >= 500:
		return true
	}
	return false
}

type tailer struct {
	c       *Client
	stream  string
	from    Position
	last    uint64
	hasLast bool
	stopped bool // the consumer broke out of the loop
}

// resolve turns a Latest or Time position into the offset it means now,
// so that a reconnect before the first record resumes there.
func (t *tailer) resolve(ctx context.Context) error {
	switch t.from.kind {
	case positionLatest:
		info, err := t.c.StreamInfo(ctx, t.stream)
		if err != nil {
			return err
		}
		t.from = Offset(info.NextOffset)
	case positionTime:
		page, err := t.c.Read(ctx, t.stream, ReadRequest{From: t.from, Limit: 1})
		if err != nil {
			return err
		}
		next := page.NextOffset
		if len(page.Records) > 0 {
			next = page.Records[0].Offset
		}
		t.from = Offset(next)
	}
	return nil
}

// connect opens one SSE connection and yields its records until it ends.
// It reports whether it yielded anything, and why it ended.
func (t *tailer) connect(ctx context.Context, yield func(StoredRecord, error) bool) (bool, error) {
	if !t.hasLast {
		if err := t.resolve(ctx); err != nil {
			return false, err
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := url.Values{}
	t.from.query(q)
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
		return false, t.c.networkError(cctx, err).err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return false, errorFromAnswer(resp, data)
	}
	// The idle watchdog: any line from the server (records or keep-alive
	// comments) resets it; silence for TailIdleTimeout drops the
	// connection, and the loop reconnects.
	idle := time.AfterFunc(t.c.s.tailIdleTimeout, cancel)
	defer idle.Stop()

	progressed := false
	r := bufio.NewReaderSize(resp.Body, 64<<10)
	var id, event string
	var data strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if cctx.Err() != nil && ctx.Err() == nil {
				return progressed, newClientError(CodeTimeout, fmt.Sprintf("tail idle for %v: reconnecting", t.c.s.tailIdleTimeout), err)
			}
			return progressed, newClientError(CodeConnection, err.Error(), err)
		}
		idle.Reset(t.c.s.tailIdleTimeout)
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

// errTailEnded ends a tail cleanly: the stream is closed and every record
// was delivered.
var errTailEnded = errors.New("client: the stream is closed")

// dispatch handles one complete event: a record (returned), an error
// event (returned as the error), or a record already seen (skip).
func (t *tailer) dispatch(id, event, data string) (StoredRecord, bool, error) {
	if event == "closed" {
		return StoredRecord{}, false, errTailEnded
	}
	if event == "error" {
		var body struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		e := &Error{Code: CodeInternal, Message: data}
		if json.Unmarshal([]byte(data), &body) == nil && body.Error.Code != "" {
			e.Code, e.Message = body.Error.Code, body.Error.Message
		}
		e.Status = statusOfKind(e.Code)
		return StoredRecord{}, false, e
	}
	var w wireStored
	if err := json.Unmarshal([]byte(data), &w); err != nil {
		return StoredRecord{}, false, newClientError(CodeInternal, fmt.Sprintf("bad SSE record %q: %v", id, err), err)
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
