package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi/client"
)

// TestConformance runs every case of clients/conformance/cases against real
// `badbatch serve` processes, through the client's public API only
// (clients/conformance/README.md). BADBATCH_BIN names a server binary to
// use instead of building ./cmd/badbatch; CONFORMANCE_CASE runs only the
// case of that name.
func TestConformance(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(conformanceDir, "cases", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no cases under %s/cases", conformanceDir)
	}
	sort.Strings(paths)
	var cases []conformanceCase
	names := map[string]string{}
	for _, path := range paths {
		var c conformanceCase
		readJSON(t, path, &c)
		if c.Name == "" || len(c.Steps) == 0 {
			t.Fatalf("%s: a case needs a name and steps", path)
		}
		if other, dup := names[c.Name]; dup {
			t.Fatalf("%s: case name %q already used by %s", path, c.Name, other)
		}
		names[c.Name] = path
		if c.Profile == "" {
			c.Profile = "default"
		}
		if only := os.Getenv("CONFORMANCE_CASE"); only != "" && only != c.Name {
			continue
		}
		cases = append(cases, c)
	}
	srv := loadServers(t)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := &caseRun{t: t, srv: srv, c: c, runID: runID(), saved: map[string]any{}, tails: map[string]*tailHandle{}}
			defer r.closeTails()
			for i, st := range c.Steps {
				if !r.step(i, st) {
					return
				}
			}
		})
	}
}

type conformanceCase struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Profile     string `json:"profile"`
	Steps       []step `json:"steps"`
}

// step is one step; the arguments an op does not take must be absent.
type step struct {
	Op                 string          `json:"op"`
	ID                 string          `json:"id"`
	Token              string          `json:"token"`
	Stream             string          `json:"stream"`
	RawStream          bool            `json:"raw_stream"`
	Records            []inRecord      `json:"records"`
	ExpectedLastOffset json.RawMessage `json:"expected_last_offset"`
	IdempotencyKey     *string         `json:"idempotency_key"`
	StreamSeq          *string         `json:"stream_seq"`
	From               json.RawMessage `json:"from"`
	FromSeq            json.RawMessage `json:"from_seq"`
	Limit              int             `json:"limit"`
	Name               string          `json:"name"`
	Offset             json.RawMessage `json:"offset"`
	Tail               string          `json:"tail"`
	Count              int             `json:"count"`
	TimeoutMS          int             `json:"timeout_ms"`
	Expect             *expectation    `json:"expect"`
}

// inRecord is an input record R, and the expected record's shape too.
type inRecord struct {
	Key         *string           `json:"key"`
	Value       json.RawMessage   `json:"value"`
	ValueBase64 *string           `json:"value_base64"`
	ValueFill   *fill             `json:"value_fill"`
	Headers     map[string]string `json:"headers"`
	Timestamp   *string           `json:"timestamp"`
	// Expected records only.
	Offset json.RawMessage `json:"offset"`
	Stream *string         `json:"stream"`
	Seq    json.RawMessage `json:"seq"`
}

type fill struct {
	Text   string `json:"text"`
	Length int    `json:"length"`
}

func (f *fill) bytes() []byte {
	if f.Text == "" || f.Length <= 0 {
		return []byte{}
	}
	b := bytes.Repeat([]byte(f.Text), f.Length/len(f.Text)+1)
	return b[:f.Length]
}

type expectation struct {
	Error             string          `json:"error"`
	Status            int             `json:"status"`
	CurrentLastOffset json.RawMessage `json:"current_last_offset"`
	Result            map[string]any  `json:"result"`
	Records           *[]inRecord     `json:"records"`
	StreamsInclude    []string        `json:"streams_include"`
}

// caseRun is one run of one case.
type caseRun struct {
	t     *testing.T
	srv   *servers
	c     conformanceCase
	runID string
	saved map[string]any // step id -> the result, as JSON values
	tails map[string]*tailHandle
}

func runID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// stream applies the suffix rule.
func (r *caseRun) stream(name string, raw bool) string {
	if raw {
		return name
	}
	return name + "-" + r.runID
}

// failf reports a failed step with the case's name and the step.
func (r *caseRun) failf(i int, st step, format string, args ...any) {
	r.t.Helper()
	r.t.Errorf("case %s, step %d (%s): %s", r.c.Name, i, st.Op, fmt.Sprintf(format, args...))
}

// step runs one step and checks its expectation. It reports whether the
// case may go on.
func (r *caseRun) step(i int, st step) bool {
	r.t.Helper()
	result, err := r.do(i, st)
	if errors.Is(err, errSetup) {
		r.failf(i, st, "%v", err)
		return false
	}
	ok := r.check(i, st, result, err)
	if ok && st.ID != "" {
		r.saved[st.ID] = result
	}
	return ok
}

var errSetup = errors.New("bad step")

// do runs the step's op. result is the op's result as JSON values (with
// "records" for ops that return records).
func (r *caseRun) do(i int, st step) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if st.Op == "restart" {
		r.srv.server(r.c.Profile).restart()
		return nil, nil
	}
	c, err := r.srv.client(r.c.Profile, st.Token)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSetup, err)
	}
	stream := r.stream(st.Stream, st.RawStream)
	switch st.Op {
	case "append":
		recs := make([]client.Record, len(st.Records))
		for j := range st.Records {
			if recs[j], err = toClientRecord(&st.Records[j]); err != nil {
				return nil, fmt.Errorf("%w: record %d: %v", errSetup, j, err)
			}
		}
		var opts client.AppendOptions
		if st.ExpectedLastOffset != nil {
			n, err := r.number(st.ExpectedLastOffset)
			if err != nil {
				return nil, err
			}
			opts.ExpectedLastOffset = &n
		}
		if st.IdempotencyKey != nil {
			opts.IdempotencyKey = *st.IdempotencyKey
		}
		if st.StreamSeq != nil {
			opts.StreamSeq = *st.StreamSeq
		}
		var res client.AppendResult
		if len(recs) == 1 {
			res, err = c.Append(ctx, stream, recs[0], &opts)
		} else {
			res, err = c.AppendBatch(ctx, stream, recs, &opts)
		}
		return asJSON(res), err
	case "read", "read_all":
		from, err := r.position(st.From)
		if err != nil {
			return nil, err
		}
		if st.Op == "read" {
			page, err := c.Read(ctx, stream, client.ReadRequest{From: from, Limit: st.Limit})
			return map[string]any{"next_offset": float64(page.NextOffset), "records": page.Records}, err
		}
		if st.Limit <= 0 {
			return nil, fmt.Errorf("%w: read_all needs a limit (the page size)", errSetup)
		}
		var all []client.StoredRecord
		for pages := 0; ; pages++ {
			if pages > 10000 {
				return nil, errors.New("read_all: more than 10,000 pages")
			}
			page, err := c.Read(ctx, stream, client.ReadRequest{From: from, Limit: st.Limit})
			if err != nil {
				return nil, err
			}
			if len(page.Records) == 0 {
				return map[string]any{"records": all}, nil
			}
			all = append(all, page.Records...)
			from = client.Offset(page.NextOffset)
		}
	case "read_global":
		seq, err := r.number(st.FromSeq)
		if err != nil {
			return nil, err
		}
		page, err := c.ReadGlobal(ctx, uint64(seq), st.Limit)
		return map[string]any{"next_seq": float64(page.NextSeq), "records": page.Records}, err
	case "streams":
		infos, err := c.Streams(ctx)
		return map[string]any{"streams": infos}, err
	case "stream_info":
		info, err := c.StreamInfo(ctx, stream)
		return asJSON(info), err
	case "set_cursor":
		off, err := r.number(st.Offset)
		if err != nil {
			return nil, err
		}
		return nil, c.SetCursor(ctx, stream, st.Name, uint64(off))
	case "cursor":
		off, err := c.Cursor(ctx, stream, st.Name)
		return map[string]any{"offset": float64(off)}, err
	case "tail_open":
		if _, dup := r.tails[st.Tail]; dup || st.Tail == "" {
			return nil, fmt.Errorf("%w: tail handle %q is empty or open already", errSetup, st.Tail)
		}
		from, err := r.position(st.From)
		if err != nil {
			return nil, err
		}
		if from == client.Latest {
			// The other runners' tails connect when opened; a Go
			// iter.Seq2 connects when the iteration starts, in the
			// drain goroutine, possibly after the case's next append.
			// Fix "latest" now, as a connection would.
			if info, err := c.StreamInfo(ctx, stream); err == nil {
				from = client.Offset(info.NextOffset)
			}
		}
		r.tails[st.Tail] = openTail(c, stream, from)
		return nil, nil
	case "tail_next":
		h, ok := r.tails[st.Tail]
		if !ok {
			return nil, fmt.Errorf("%w: no open tail %q", errSetup, st.Tail)
		}
		timeout := 10 * time.Second
		if st.TimeoutMS > 0 {
			timeout = time.Duration(st.TimeoutMS) * time.Millisecond
		}
		recs, err := h.next(st.Count, timeout)
		return map[string]any{"records": recs}, err
	case "tail_close":
		h, ok := r.tails[st.Tail]
		if !ok {
			return nil, fmt.Errorf("%w: no open tail %q", errSetup, st.Tail)
		}
		delete(r.tails, st.Tail)
		h.close()
		return nil, nil
	}
	return nil, fmt.Errorf("%w: unknown op %q", errSetup, st.Op)
}

func (r *caseRun) closeTails() {
	for name, h := range r.tails {
		h.close()
		delete(r.tails, name)
	}
}

// asJSON turns a result into JSON values (map[string]any, float64, ...).
func asJSON(v any) map[string]any {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		panic(err)
	}
	return out
}

// position reads a "from": "earliest", "latest", an offset (or a
// reference), or {"time": RFC 3339}.
func (r *caseRun) position(raw json.RawMessage) (client.Position, error) {
	if raw == nil {
		return client.Earliest, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "earliest":
			return client.Earliest, nil
		case "latest":
			return client.Latest, nil
		}
		return client.Position{}, fmt.Errorf("%w: from %q", errSetup, s)
	}
	var tm struct {
		Time *string `json:"time"`
	}
	if json.Unmarshal(raw, &tm) == nil && tm.Time != nil {
		t, err := time.Parse(time.RFC3339Nano, *tm.Time)
		if err != nil {
			return client.Position{}, fmt.Errorf("%w: from time: %v", errSetup, err)
		}
		return client.Time(t), nil
	}
	n, err := r.number(raw)
	if err != nil {
		return client.Position{}, err
	}
	if n < 0 {
		return client.Position{}, fmt.Errorf("%w: from %d", errSetup, n)
	}
	return client.Offset(uint64(n)), nil
}

// number reads a number or a reference {"ref": "ID.field", "plus": N}.
func (r *caseRun) number(raw json.RawMessage) (int64, error) {
	if raw == nil {
		return 0, fmt.Errorf("%w: a number is missing", errSetup)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("%w: %v", errSetup, err)
	}
	v, err := r.resolve(v)
	if err != nil {
		return 0, err
	}
	f, ok := v.(float64)
	if !ok || f != float64(int64(f)) {
		return 0, fmt.Errorf("%w: %s is not an integer", errSetup, raw)
	}
	return int64(f), nil
}

// resolve replaces references, anywhere in v, by their values.
func (r *caseRun) resolve(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["ref"].(string); ok {
			id, field, ok := strings.Cut(ref, ".")
			res, found := r.saved[id].(map[string]any)
			if !ok || !found {
				return nil, fmt.Errorf("%w: reference %q: no saved result %q", errSetup, ref, id)
			}
			val, ok := res[field].(float64)
			if !ok {
				return nil, fmt.Errorf("%w: reference %q: field %q is not a number in %v", errSetup, ref, field, res)
			}
			if plus, ok := x["plus"].(float64); ok {
				val += plus
			}
			return val, nil
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			rv, err := r.resolve(e)
			if err != nil {
				return nil, err
			}
			out[k] = rv
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			rv, err := r.resolve(e)
			if err != nil {
				return nil, err
			}
			out[i] = rv
		}
		return out, nil
	}
	return v, nil
}

func toClientRecord(in *inRecord) (client.Record, error) {
	var rec client.Record
	if in.Key != nil {
		rec.Key = *in.Key
	}
	rec.Headers = in.Headers
	n := 0
	if in.Value != nil {
		var buf bytes.Buffer
		if err := json.Compact(&buf, in.Value); err != nil {
			return rec, err
		}
		rec.Value, rec.JSON = buf.Bytes(), true
		n++
	}
	if in.ValueBase64 != nil {
		v, err := base64.StdEncoding.DecodeString(*in.ValueBase64)
		if err != nil {
			return rec, err
		}
		rec.Value = v
		n++
	}
	if in.ValueFill != nil {
		rec.Value = in.ValueFill.bytes()
		n++
	}
	if n > 1 {
		return rec, errors.New("more than one of value, value_base64, value_fill")
	}
	if in.Timestamp != nil {
		t, err := time.Parse(time.RFC3339Nano, *in.Timestamp)
		if err != nil {
			return rec, err
		}
		rec.Timestamp = t
	}
	return rec, nil
}

// check compares the step's outcome with its expectation.
func (r *caseRun) check(i int, st step, result any, err error) bool {
	r.t.Helper()
	e := st.Expect
	if e == nil || e.Error == "" {
		if err != nil {
			r.failf(i, st, "want success, got error %v", err)
			return false
		}
	}
	if e == nil {
		return true
	}
	if e.Error != "" {
		return r.checkError(i, st, err)
	}
	ok := true
	res, _ := result.(map[string]any)
	if e.Result != nil {
		want, rerr := r.resolve(e.Result)
		if rerr != nil {
			r.failf(i, st, "%v", rerr)
			return false
		}
		for field, w := range want.(map[string]any) {
			if field == "stream" {
				if s, isString := w.(string); isString {
					w = r.stream(s, st.RawStream)
				}
			}
			got, present := res[field]
			if !present || !sameValue(field, got, w) {
				r.failf(i, st, "result field %q: got %s, want %s\n  whole result: %s", field, show(got), show(w), show(res))
				ok = false
			}
		}
	}
	if e.Records != nil {
		var got []client.StoredRecord
		switch v := res["records"].(type) {
		case []client.StoredRecord:
			got = v
		default:
			r.failf(i, st, "op %s returns no records", st.Op)
			return false
		}
		ok = r.checkRecords(i, st, got, *e.Records) && ok
	}
	if e.StreamsInclude != nil {
		infos, _ := res["streams"].([]client.StreamInfo)
		var names []string
		for _, info := range infos {
			names = append(names, info.Stream)
		}
		for _, w := range e.StreamsInclude {
			if !slices.Contains(names, r.stream(w, false)) {
				r.failf(i, st, "streams: %q missing from %v", r.stream(w, false), names)
				ok = false
			}
		}
	}
	return ok
}

func (r *caseRun) checkError(i int, st step, err error) bool {
	r.t.Helper()
	e := st.Expect
	if err == nil {
		r.failf(i, st, "want error %s, got success", e.Error)
		return false
	}
	var apiErr *client.Error
	if !errors.As(err, &apiErr) {
		r.failf(i, st, "want error %s, got %T %v", e.Error, err, err)
		return false
	}
	ok := true
	if apiErr.Code != e.Error {
		r.failf(i, st, "error kind: got %s, want %s (%v)", apiErr.Code, e.Error, err)
		ok = false
	}
	if e.Status != 0 && apiErr.Status != e.Status {
		r.failf(i, st, "status: got %d, want %d (%v)", apiErr.Status, e.Status, err)
		ok = false
	}
	if e.CurrentLastOffset != nil {
		want, nerr := r.number(e.CurrentLastOffset)
		switch {
		case nerr != nil:
			r.failf(i, st, "%v", nerr)
			ok = false
		case apiErr.CurrentLastOffset == nil:
			r.failf(i, st, "current_last_offset: missing, want %d (%v)", want, err)
			ok = false
		case *apiErr.CurrentLastOffset != want:
			r.failf(i, st, "current_last_offset: got %d, want %d", *apiErr.CurrentLastOffset, want)
			ok = false
		}
	}
	return ok
}

// checkRecords compares records with expected records: exactly that many,
// in order, each field the expected record gives.
func (r *caseRun) checkRecords(i int, st step, got []client.StoredRecord, want []inRecord) bool {
	r.t.Helper()
	if len(got) != len(want) {
		offsets := make([]uint64, len(got))
		for j := range got {
			offsets[j] = got[j].Offset
		}
		r.failf(i, st, "got %d records (offsets %v), want %d", len(got), offsets, len(want))
		return false
	}
	ok := true
	for j := range want {
		if problems := r.recordDiff(&got[j], &want[j]); len(problems) > 0 {
			r.failf(i, st, "record %d (offset %d):\n  %s", j, got[j].Offset, strings.Join(problems, "\n  "))
			ok = false
		}
	}
	return ok
}

// recordDiff lists how rec differs from the fields w gives.
func (r *caseRun) recordDiff(rec *client.StoredRecord, w *inRecord) []string {
	var out []string
	add := func(field string, got, want any) {
		out = append(out, fmt.Sprintf("%s: got %s, want %s", field, show(got), show(want)))
	}
	if w.Offset != nil {
		if n, err := r.number(w.Offset); err != nil || uint64(n) != rec.Offset {
			add("offset", rec.Offset, string(w.Offset))
		}
	}
	if w.Seq != nil {
		if n, err := r.number(w.Seq); err != nil || uint64(n) != rec.Seq {
			add("seq", rec.Seq, string(w.Seq))
		}
	}
	if w.Stream != nil && rec.Stream != r.stream(*w.Stream, false) {
		add("stream", rec.Stream, r.stream(*w.Stream, false))
	}
	if w.Key != nil && rec.Key != *w.Key {
		add("key", rec.Key, *w.Key)
	}
	if w.Headers != nil && !reflect.DeepEqual(nonNil(rec.Headers), w.Headers) {
		add("headers", rec.Headers, w.Headers)
	}
	if w.Timestamp != nil {
		t, err := time.Parse(time.RFC3339Nano, *w.Timestamp)
		if err != nil || !t.Equal(rec.Timestamp) {
			add("timestamp", rec.Timestamp.Format(time.RFC3339Nano), *w.Timestamp)
		}
	}
	switch {
	case w.Value != nil:
		var gotV, wantV any
		if !rec.JSON {
			add("value", "binary "+base64.StdEncoding.EncodeToString(rec.Value), json.RawMessage(w.Value))
		} else if json.Unmarshal(rec.Value, &gotV) != nil || json.Unmarshal(w.Value, &wantV) != nil || !reflect.DeepEqual(gotV, wantV) {
			add("value", json.RawMessage(rec.Value), json.RawMessage(w.Value))
		}
	case w.ValueBase64 != nil:
		want, err := base64.StdEncoding.DecodeString(*w.ValueBase64)
		if rec.JSON || err != nil || !bytes.Equal(rec.Value, want) {
			add("value", describe(rec), *w.ValueBase64)
		}
	case w.ValueFill != nil:
		if want := w.ValueFill.bytes(); rec.JSON || !bytes.Equal(rec.Value, want) {
			add("value", describe(rec), fmt.Sprintf("%d bytes of %q repeated", w.ValueFill.Length, w.ValueFill.Text))
		}
	}
	return out
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// describe shows a record's value briefly.
func describe(rec *client.StoredRecord) string {
	if rec.JSON {
		return "JSON " + string(rec.Value)
	}
	s := base64.StdEncoding.EncodeToString(rec.Value)
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Sprintf("binary, %d bytes: %s", len(rec.Value), s)
}

// sameValue compares a result field with its expected value: numbers as
// numbers, timestamps as instants, the rest as JSON values.
func sameValue(field string, got, want any) bool {
	if gs, ok := got.(string); ok && strings.HasSuffix(field, "timestamp") {
		ws, ok := want.(string)
		if !ok {
			return false
		}
		gt, err1 := time.Parse(time.RFC3339Nano, gs)
		wt, err2 := time.Parse(time.RFC3339Nano, ws)
		return err1 == nil && err2 == nil && gt.Equal(wt)
	}
	return reflect.DeepEqual(got, want)
}

func show(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(data) > 400 {
		return string(data[:400]) + "..."
	}
	return string(data)
}

// tailHandle is an open tail: a goroutine drains the iterator into a
// channel, so that tail_next can wait with a timeout.
type tailHandle struct {
	cancel context.CancelFunc
	items  chan tailItem
	done   chan struct{}
	err    error // the error that ended the tail, once seen
}

type tailItem struct {
	rec client.StoredRecord
	err error
}

func openTail(c *client.Client, stream string, from client.Position) *tailHandle {
	ctx, cancel := context.WithCancel(context.Background())
	h := &tailHandle{cancel: cancel, items: make(chan tailItem), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for rec, err := range c.Tail(ctx, stream, from) {
			select {
			case h.items <- tailItem{rec, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return h
}

// next takes count records, or the error that ended the tail.
func (h *tailHandle) next(count int, timeout time.Duration) ([]client.StoredRecord, error) {
	if h.err != nil {
		return nil, h.err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var recs []client.StoredRecord
	for len(recs) < count {
		select {
		case it := <-h.items:
			if it.err != nil {
				h.err = it.err
				return recs, it.err
			}
			recs = append(recs, it.rec)
		case <-timer.C:
			return recs, fmt.Errorf("tail_next: %d of %d records within %v", len(recs), count, timeout)
		}
	}
	return recs, nil
}

func (h *tailHandle) close() {
	h.cancel()
	<-h.done
}
