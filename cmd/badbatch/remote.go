package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/badbatch/badbatch/httpapi/client"
	"github.com/spf13/cobra"
)

type clientFlags struct {
	server  string
	token   string
	retries int
}

func addClientFlags(cmd *cobra.Command, f *clientFlags) {
	fs := cmd.Flags()
	fs.StringVar(&f.server, "server", "http://127.0.0.1:8080", "server URL")
	fs.StringVar(&f.token, "token", "", "bearer token")
	fs.IntVar(&f.retries, "retries", 5, "retries of a failed request (appends are retried under one idempotency key)")
}

func (f *clientFlags) client() (*client.Client, error) {
	return client.New(f.server, &client.Options{Token: f.token, MaxRetries: new(f.retries)})
}

type appendFlags struct {
	clientFlags
	format     string
	batch      int
	batchBytes int
	progress   string
	post       bool
}

func newAppendCmd() *cobra.Command {
	f := appendFlags{}
	cmd := &cobra.Command{
		Use:   "append STREAM [FILE]",
		Short: "Append lines or NDJSON from stdin or FILE, in batches",
		Long: `Append the lines of FILE (or stdin) to STREAM, in atomic batches.

--format lines stores each line as raw bytes; ndjson stores each line as a JSON
value (it reads back as JSON); records reads each line as an API record
{"key","value"|"value_base64","headers","timestamp"}; auto (the default) picks
ndjson when the first line is JSON, else lines. Every batch carries an
idempotency key, so a retried batch is never stored twice. On a terminal a
progress bar is drawn on stderr.

Batches go over one append session (a WebSocket, GET .../append) without
waiting for each other's answers; a dropped connection is reopened and the
unanswered batches are resent under their keys. --post sends each batch as a
POST and waits for its answer before the next.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error { return runAppend(cmd, args, &f) },
	}
	addClientFlags(cmd, &f.clientFlags)
	fs := cmd.Flags()
	fs.StringVar(&f.format, "format", "auto", "input format: auto, lines, ndjson or records")
	fs.IntVar(&f.batch, "batch", 1000, "records per append request")
	fs.IntVar(&f.batchBytes, "batch-bytes", 4<<20, "bytes per append request")
	fs.StringVar(&f.progress, "progress", "auto", "progress bar: auto (on a terminal), always or never")
	fs.BoolVar(&f.post, "post", false, "append with one POST per batch instead of an append session")
	withEnvHelp(fs)
	return cmd
}

func runAppend(cmd *cobra.Command, args []string, f *appendFlags) error {
	stream := args[0]
	if f.batch < 1 || f.batchBytes < 1 {
		return errors.New("--batch and --batch-bytes must be positive")
	}
	var in io.Reader = cmd.InOrStdin()
	total := int64(-1)
	if len(args) == 2 && args[1] != "-" {
		file, err := os.Open(args[1])
		if err != nil {
			return err
		}
		defer file.Close()
		if st, err := file.Stat(); err == nil && st.Mode().IsRegular() {
			total = st.Size()
		}
		in = file
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	defer c.Close()

	bar := newProgress(cmd.ErrOrStderr(), total, f.progress)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	format := f.format
	var (
		batch      []client.Record
		batchBytes int
		line       int
		sent       int
	)
	// With a session, batches are sent without waiting; pend holds the
	// unanswered ones, oldest first, with their line ranges.
	var sess *client.Session
	if !f.post {
		if sess, err = c.OpenSession(cmd.Context(), stream, nil); err != nil {
			return fmt.Errorf("opening an append session (or use --post): %w", err)
		}
		defer sess.Close()
	}
	type pendingBatch struct {
		p           *client.Pending
		first, last int
	}
	var pend []pendingBatch
	settle := func(wait bool) error {
		for len(pend) > 0 {
			b := pend[0]
			if !wait {
				select {
				case <-b.p.Done():
				default:
					return nil
				}
			}
			res, err := b.p.Wait(cmd.Context())
			if err != nil {
				return fmt.Errorf("appending lines %d-%d (%d records appended before): %w", b.first, b.last, sent, err)
			}
			sent += res.Count
			pend = pend[1:]
		}
		return nil
	}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if sess != nil {
			// Send encodes the batch before it returns: batch is reusable.
			p, err := sess.Send(cmd.Context(), batch, nil)
			if err != nil {
				return fmt.Errorf("appending lines %d-%d (%d records appended before): %w", line-len(batch)+1, line, sent, err)
			}
			pend = append(pend, pendingBatch{p, line - len(batch) + 1, line})
			batch, batchBytes = batch[:0], 0
			return settle(false)
		}
		res, err := c.AppendBatch(cmd.Context(), stream, batch, nil)
		if err != nil {
			return fmt.Errorf("appending lines %d-%d (%d records appended before): %w", line-len(batch)+1, line, sent, err)
		}
		sent += res.Count
		batch, batchBytes = batch[:0], 0
		return nil
	}
	for sc.Scan() {
		line++
		text := sc.Bytes()
		bar.add(int64(len(text)) + 1)
		if format == "auto" {
			format = "lines"
			if json.Valid(text) {
				format = "ndjson"
			}
		}
		if format != "lines" && len(strings.TrimSpace(string(text))) == 0 {
			continue
		}
		rec, err := lineRecord(format, text)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		batch = append(batch, rec)
		batchBytes += len(rec.Value) + len(rec.Key)
		if len(batch) >= f.batch || batchBytes >= f.batchBytes {
			if err := flush(); err != nil {
				return err
			}
			bar.records(sent)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	if err := settle(true); err != nil {
		return err
	}
	bar.records(sent)
	bar.done()
	fmt.Fprintf(cmd.OutOrStdout(), "appended %d records to %s\n", sent, stream)
	return nil
}

// lineRecord turns one input line into a record.
func lineRecord(format string, text []byte) (client.Record, error) {
	switch format {
	case "lines":
		return client.Record{Value: append([]byte(nil), text...)}, nil
	case "ndjson":
		if !json.Valid(text) {
			return client.Record{}, errors.New("not a JSON value (use --format lines for text)")
		}
		return client.Record{Value: append([]byte(nil), text...), JSON: true}, nil
	case "records":
		var w struct {
			Key         string            `json:"key"`
			Value       json.RawMessage   `json:"value"`
			ValueBase64 *string           `json:"value_base64"`
			Headers     map[string]string `json:"headers"`
			Timestamp   *time.Time        `json:"timestamp"`
		}
		if err := json.Unmarshal(text, &w); err != nil {
			return client.Record{}, err
		}
		rec := client.Record{Key: w.Key, Headers: w.Headers}
		if w.Timestamp != nil {
			rec.Timestamp = *w.Timestamp
		}
		switch {
		case w.Value != nil && w.ValueBase64 != nil:
			return rec, errors.New("both value and value_base64")
		case w.Value != nil:
			rec.Value, rec.JSON = w.Value, true
		case w.ValueBase64 != nil:
			v, err := base64.StdEncoding.DecodeString(*w.ValueBase64)
			if err != nil {
				return rec, fmt.Errorf("value_base64: %w", err)
			}
			rec.Value = v
		}
		return rec, nil
	}
	return client.Record{}, fmt.Errorf("--format %q: want auto, lines, ndjson or records", format)
}

// outRecord is how read prints a record: the API's record shape, one per line.
type outRecord struct {
	Offset      uint64            `json:"offset"`
	Seq         uint64            `json:"seq"`
	Timestamp   time.Time         `json:"timestamp"`
	Key         string            `json:"key,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	Value       json.RawMessage   `json:"value,omitempty"`
	ValueBase64 *string           `json:"value_base64,omitempty"`
	Text        *string           `json:"text,omitempty"`
}

func printRecord(w *bufio.Writer, r *client.StoredRecord, asText bool) error {
	if asText {
		w.Write(r.Value)
		return w.WriteByte('\n')
	}
	o := outRecord{Offset: r.Offset, Seq: r.Seq, Timestamp: r.Timestamp, Key: r.Key, Headers: r.Headers}
	if r.JSON {
		o.Value = r.Value
	} else {
		v := base64.StdEncoding.EncodeToString(r.Value)
		o.ValueBase64 = &v
		if utf8.Valid(r.Value) {
			s := string(r.Value)
			o.Text = &s
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(o)
}

type readFlags struct {
	clientFlags
	from   string
	limit  int
	follow bool
	text   bool
}

func newReadCmd() *cobra.Command {
	f := readFlags{}
	cmd := &cobra.Command{
		Use:   "read STREAM",
		Short: "Print a stream's records as NDJSON, from --from; --follow tails it live",
		Args:  cobra.ExactArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return runRead(cmd, args[0], &f) },
	}
	addReadFlags(cmd, &f, "earliest")
	return cmd
}

func newTailCmd() *cobra.Command {
	f := readFlags{}
	cmd := &cobra.Command{
		Use:   "tail STREAM",
		Short: "Follow a stream live from its end (read --follow --from latest)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.follow = true
			return runRead(cmd, args[0], &f)
		},
	}
	addReadFlags(cmd, &f, "latest")
	return cmd
}

func addReadFlags(cmd *cobra.Command, f *readFlags, from string) {
	addClientFlags(cmd, &f.clientFlags)
	fs := cmd.Flags()
	fs.StringVar(&f.from, "from", from, "start: an offset, earliest, latest or an RFC 3339 time")
	fs.IntVar(&f.limit, "limit", 0, "stop after this many records (0: no limit)")
	if cmd.Name() == "read" {
		fs.BoolVarP(&f.follow, "follow", "f", false, "keep following new records (SSE, resumes after disconnects)")
	}
	fs.BoolVar(&f.text, "text", false, "print only each record's value, one per line")
	withEnvHelp(fs)
}

func parsePosition(s string) (client.Position, error) {
	switch s {
	case "earliest", "":
		return client.Earliest, nil
	case "latest":
		return client.Latest, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return client.Time(t), nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return client.Position{}, fmt.Errorf("--from %q: want an offset, earliest, latest or an RFC 3339 time", s)
	}
	return client.Offset(n), nil
}

func runRead(cmd *cobra.Command, stream string, f *readFlags) error {
	from, err := parsePosition(f.from)
	if err != nil {
		return err
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	defer c.Close()
	out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
	defer out.Flush()
	n := 0
	if f.follow {
		for rec, err := range c.Tail(cmd.Context(), stream, from) {
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return nil // interrupted
				}
				return err
			}
			if err := printRecord(out, &rec, f.text); err != nil {
				return err
			}
			if err := out.Flush(); err != nil {
				return err
			}
			if n++; f.limit > 0 && n >= f.limit {
				return nil
			}
		}
		return nil
	}
	for {
		req := client.ReadRequest{From: from, Limit: 1000}
		if f.limit > 0 {
			req.Limit = min(req.Limit, f.limit-n)
		}
		page, err := c.Read(cmd.Context(), stream, req)
		if err != nil {
			return err
		}
		for i := range page.Records {
			if err := printRecord(out, &page.Records[i], f.text); err != nil {
				return err
			}
		}
		n += len(page.Records)
		if len(page.Records) == 0 || (f.limit > 0 && n >= f.limit) {
			return nil
		}
		from = client.Offset(page.NextOffset)
	}
}

func newStreamsCmd() *cobra.Command {
	f := clientFlags{}
	asJSON := false
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "List the streams",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			defer c.Close()
			infos, err := c.Streams(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				return enc.Encode(infos)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STREAM\tFIRST\tNEXT\tRECORDS\tBYTES\tLAST WRITE")
			for _, i := range infos {
				last := "-"
				if !i.LastTimestamp.IsZero() {
					last = i.LastTimestamp.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", i.Stream, i.FirstOffset, i.NextOffset, i.Records, i.Bytes, last)
			}
			return tw.Flush()
		},
	}
	addClientFlags(cmd, &f)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	withEnvHelp(cmd.Flags())
	return cmd
}

func newCursorCmd() *cobra.Command {
	f := clientFlags{}
	cmd := &cobra.Command{
		Use:   "cursor get STREAM NAME | cursor set STREAM NAME OFFSET",
		Short: "Read or store a named consumer cursor",
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 3 && args[0] == "get", len(args) == 4 && args[0] == "set":
				return nil
			}
			return errors.New("usage: cursor get STREAM NAME | cursor set STREAM NAME OFFSET")
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if args[0] == "get" {
				off, err := c.Cursor(cmd.Context(), args[1], args[2])
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), off)
				return nil
			}
			off, err := strconv.ParseUint(args[3], 10, 64)
			if err != nil {
				return fmt.Errorf("OFFSET %q: %w", args[3], err)
			}
			return c.SetCursor(cmd.Context(), args[1], args[2], off)
		},
	}
	addClientFlags(cmd, &f)
	withEnvHelp(cmd.Flags())
	return cmd
}
