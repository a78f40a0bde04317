package bench_test

// The Durable Streams protocol (/v1/stream/{name}, httpapi/durable.go)
// against the protocol's reference server, and beside BadBatch's native API
// (/v1/streams/{s}/records) on the same kind of server: appends, catch-up
// reads and SSE fan-out. The load generator is the same Go code in this
// process for every contender, on 127.0.0.1 only.
//
// BadBatch is this process's server over the real store with SyncAlways
// (startBadBatch, as BenchmarkHTTPAppend). The reference is
// @durable-streams/server 0.3.7 with its file store, pinned by
// conformance/durable-streams/package-lock.json and started as a child
// process (node ref-server.mjs): it writes and fdatasyncs every append
// before answering. Its rows are skipped, with the reason on the benchmark
// output (notRun), when node or its node_modules (npm ci in
// conformance/durable-streams) are missing.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

const (
	dsMsgLen      = 100    // bytes of every message, its JSON quotes included
	dsConns       = 16     // keep-alive connections of the append benchmark
	dsReadMsgs    = 100000 // messages of the stream a catch-up read reads
	dsFillBatch   = 1000   // messages per append while filling that stream
	dsReadPage    = 1000   // limit= of the native read (the protocol's page is 1000 too)
	dsSubscribers = 100    // SSE subscribers of the fan-out
	dsFanoutBatch = 100    // messages per append of the fan-out's producer
)

// dsContender is one server and API of the comparison.
type dsContender struct {
	impl string // badbatch or reference
	api  string // protocol (/v1/stream/{name}) or native (/v1/streams/{s}/records)
}

func (c dsContender) name() string { return "impl=" + c.impl + "/api=" + c.api }

var dsContenders = []dsContender{
	{"badbatch", "protocol"},
	{"badbatch", "native"},
	{"reference", "protocol"},
}

// dsMessage is message i: a JSON string of exactly dsMsgLen bytes, quotes
// included, `"@` then 19 digits (i, or a send time in Unix nanoseconds),
// then padding. The same bytes are sent as application/octet-stream to the
// append benchmark and as a JSON value elsewhere; readers count messages by
// their `"@`.
func dsMessage(i int64) []byte {
	b := make([]byte, 0, dsMsgLen)
	b = append(b, `"@`...)
	b = fmt.Appendf(b, "%019d", i)
	b = append(b, ':')
	for len(b) < dsMsgLen-1 {
		b = append(b, 'x')
	}
	return append(b, '"')
}

var dsMark = []byte(`"@`)

// dsJSONArray is a protocol append of n messages on a JSON stream.
func dsJSONArray(n int, at func(j int) int64) []byte {
	b := make([]byte, 0, n*(dsMsgLen+1)+2)
	b = append(b, '[')
	for j := 0; j < n; j++ {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, dsMessage(at(j))...)
	}
	return append(b, ']')
}

// dsNDJSON is a native append of n records whose values are the messages.
func dsNDJSON(n int, at func(j int) int64) []byte {
	b := make([]byte, 0, n*(dsMsgLen+12))
	for j := 0; j < n; j++ {
		b = append(b, `{"value":`...)
		b = append(b, dsMessage(at(j))...)
		b = append(b, "}\n"...)
	}
	return b
}

// notRun skips b and prints why in the form of a failure ("--- SKIP: name"
// and the reason indented below), which go test prints only with -v for a
// skipped benchmark: bbbench reads it into the report's "not run" cell, and
// a person running go test sees it.
func notRun(b *testing.B, why string) {
	b.Helper()
	fmt.Printf("--- SKIP: %s\n    %s\n", b.Name(), why)
	b.SkipNow()
}

// refServer is the reference server, a node child process.
type refServer struct {
	benchServer
	notRun string // why it is not running; "" when it is
}

// startReference starts conformance/durable-streams/ref-server.mjs with its
// file store in a temporary directory, or says why it cannot. The server
// fails b when node and the packages are there but the server does not
// start.
func startReference(b *testing.B) refServer {
	b.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		return refServer{notRun: "node is not installed (no node in PATH)"}
	}
	dir := filepath.Join(repoRoot(b), "conformance", "durable-streams")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@durable-streams", "server", "package.json")); err != nil {
		return refServer{notRun: "the reference server is not installed: run npm ci in conformance/durable-streams"}
	}
	cmd := exec.Command(node, "ref-server.mjs", "--port", "0", "--data-dir", filepath.Join(b.TempDir(), "ref"))
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	stderr := &tailBuffer{max: 4 << 10}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the reference server: %v", err)
	}
	// Read its URL, then keep draining stdout: node blocks on a full pipe.
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			if first && strings.HasPrefix(sc.Text(), "http") {
				urls <- strings.TrimSpace(sc.Text())
				first = false
			}
		}
		close(urls)
	}()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	var url string
	select {
	case url = <-urls:
	case <-time.After(30 * time.Second):
	}
	if url == "" {
		stop()
		b.Fatalf("the reference server did not start (no URL on its output in 30 s):\n%s", stderr.String())
	}
	return refServer{benchServer: benchServer{url: url, stop: stop}}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// dsServers starts each contender's server once for a benchmark function:
// BadBatch (one server per contender, so that each has a store of its own)
// or the reference. The returned stop stops them all.
func dsServers(b *testing.B) (map[dsContender]refServer, func()) {
	b.Helper()
	servers := map[dsContender]refServer{}
	for _, c := range dsContenders {
		if c.impl == "reference" {
			servers[c] = startReference(b)
		} else {
			servers[c] = refServer{benchServer: startBadBatch(b)}
		}
	}
	return servers, func() {
		for _, s := range servers {
			if s.stop != nil {
				s.stop()
			}
		}
	}
}

// dsDo sends one request and fails unless the answer's status is one of
// want; it returns the answer with its body read into body (reset first).
func dsDo(c *http.Client, method, url, contentType string, payload []byte, body *bytes.Buffer, want ...int) (*http.Response, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if body == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	} else {
		body.Reset()
		_, err = body.ReadFrom(resp.Body)
	}
	if err != nil {
		return nil, err
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return resp, nil
		}
	}
	return nil, fmt.Errorf("%s %s: status %d, want %v", method, url, resp.StatusCode, want)
}

// dsCreate creates a stream of content type ct: PUT through the protocol,
// PUT /v1/streams/{s} natively (a native stream has no content type).
func dsCreate(c *http.Client, base string, api, stream, ct string) error {
	if api == "native" {
		_, err := dsDo(c, http.MethodPut, base+"/v1/streams/"+stream, "", nil, nil, http.StatusCreated, http.StatusOK)
		return err
	}
	_, err := dsDo(c, http.MethodPut, base+"/v1/stream/"+stream, ct, nil, nil, http.StatusCreated, http.StatusOK)
	return err
}

// dsAppendBatch appends n messages in one request: a JSON array through
// the protocol, NDJSON natively.
func dsAppendBatch(c *http.Client, base, api, stream string, n int, at func(j int) int64) error {
	if api == "native" {
		_, err := dsDo(c, http.MethodPost, base+"/v1/streams/"+stream+"/records", "application/x-ndjson", dsNDJSON(n, at), nil, http.StatusCreated)
		return err
	}
	_, err := dsDo(c, http.MethodPost, base+"/v1/stream/"+stream, "application/json", dsJSONArray(n, at), nil, http.StatusNoContent, http.StatusOK)
	return err
}

// BenchmarkDurableStreamsAppend: one op is one HTTP request appending one
// 100-byte message (application/octet-stream, one message per request) to
// one stream, sent over 16 concurrent keep-alive connections, the same load
// generator for every contender. impl=badbatch/api=protocol is POST
// /v1/stream/{name} on BadBatch (the stream created by PUT, answered 204
// after the store's fsync); api=native is BadBatch's own POST
// /v1/streams/{s}/records of the same body (201 after the fsync);
// impl=reference is @durable-streams/server 0.3.7 with its file store (a
// node child process), which writes each append to the stream's segment
// file and fdatasyncs it before answering, one append at a time per stream;
// impl=echo-noop is the yardstick, an echo handler that stores nothing. The
// load generator is rawLoad (wrk-like) for all of them.
func BenchmarkDurableStreamsAppend(b *testing.B) {
	servers, stop := dsServers(b)
	defer stop()
	for _, ct := range dsContenders {
		srv := servers[ct]
		c := loadClient(dsConns)
		defer c.CloseIdleConnections()
		warm := false
		b.Run(fmt.Sprintf("%s/conns=%d/size=%dB", ct.name(), dsConns, dsMsgLen), func(b *testing.B) {
			if srv.notRun != "" {
				notRun(b, srv.notRun)
			}
			url, want := srv.url+"/v1/stream/bench", http.StatusNoContent
			if ct.api == "native" {
				url, want = srv.url+"/v1/streams/bench/records", http.StatusCreated
			}
			addr, req := rawRequest(url, "application/octet-stream", dsMessage(0))
			if !warm {
				if ct.api == "protocol" {
					if err := dsCreate(c, srv.url, ct.api, "bench", "application/octet-stream"); err != nil {
						b.Fatal(err)
					}
				}
				rawLoad(b, addr, req, want, dsConns, 2*dsConns)
				warm = true
			}
			dsAppendRun(b, addr, req, want)
		})
	}
	// The yardstick: an echo handler that reads the body and answers,
	// storing nothing, under the same load.
	b.Run(fmt.Sprintf("impl=echo-noop/conns=%d/size=%dB", dsConns, dsMsgLen), func(b *testing.B) {
		s := startEchoNoop(b)
		defer s.stop()
		addr, req := rawRequest(s.url+"/v1/streams/bench/records", "application/octet-stream", dsMessage(0))
		rawLoad(b, addr, req, http.StatusCreated, dsConns, 2*dsConns)
		dsAppendRun(b, addr, req, http.StatusCreated)
	})
}

// dsAppendRun times b.N appends of req over dsConns connections (rawLoad)
// and reports appends/s, p50 and p99.
func dsAppendRun(b *testing.B, addr string, req []byte, want int) {
	b.ReportAllocs()
	b.SetBytes(dsMsgLen)
	b.ResetTimer()
	start := time.Now()
	h := rawLoad(b, addr, req, want, dsConns, b.N)
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "appends/s")
	b.ReportMetric(float64(h.ValueAtQuantile(50)), "p50-ns")
	b.ReportMetric(float64(h.ValueAtQuantile(99)), "p99-ns")
}

// BenchmarkDurableStreamsRead: one op is one catch-up read of a stream of
// 100,000 messages of 100 bytes (JSON strings, 10 MB), from its start until
// the server says the reader is up to date, by one sequential reader on one
// keep-alive connection; messages/s is messages received per second. The
// stream is filled just before, through the same API, in appends of 1,000
// messages. api=protocol is GET /v1/stream/{name}?offset=-1 on an
// application/json stream, then ?offset=<Stream-Next-Offset> until an
// answer carries Stream-Up-To-Date: true: BadBatch answers at most 1,000
// messages a page, the reference answers everything after the offset in
// one body. api=native is BadBatch's GET
// /v1/streams/{s}/records?from=N&limit=1000 (JSON pages, each record with
// its offset, seq and timestamp) until the next offset stops moving (one
// last, empty page). The reader counts the messages in each body without
// decoding it; every catch-up must count 100,000.
func BenchmarkDurableStreamsRead(b *testing.B) {
	servers, stop := dsServers(b)
	defer stop()
	for _, ct := range dsContenders {
		srv := servers[ct]
		c := loadClient(1)
		defer c.CloseIdleConnections()
		filled := false
		b.Run(fmt.Sprintf("%s/msgs=%d/size=%dB", ct.name(), dsReadMsgs, dsMsgLen), func(b *testing.B) {
			if srv.notRun != "" {
				notRun(b, srv.notRun)
			}
			if !filled {
				if err := dsCreate(c, srv.url, ct.api, "read", "application/json"); err != nil {
					b.Fatal(err)
				}
				for done := 0; done < dsReadMsgs; done += dsFillBatch {
					if err := dsAppendBatch(c, srv.url, ct.api, "read", dsFillBatch, func(j int) int64 { return int64(done + j) }); err != nil {
						b.Fatal(err)
					}
				}
				filled = true
			}
			var body bytes.Buffer
			read := func() (int, error) {
				if ct.api == "native" {
					return dsCatchUpNative(c, srv.url, "read", &body)
				}
				return dsCatchUpProtocol(c, srv.url, "read", &body)
			}
			b.ReportAllocs()
			b.SetBytes(dsReadMsgs * dsMsgLen)
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				n, err := read()
				if err != nil {
					b.Fatal(err)
				}
				if n != dsReadMsgs {
					b.Fatalf("catch-up read %d messages, want %d", n, dsReadMsgs)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)*dsReadMsgs/el.Seconds(), "messages/s")
		})
	}
}

// dsCatchUpProtocol reads a stream from offset -1 until Stream-Up-To-Date
// and returns the messages read.
func dsCatchUpProtocol(c *http.Client, base, stream string, body *bytes.Buffer) (int, error) {
	n, off := 0, "-1"
	for {
		resp, err := dsDo(c, http.MethodGet, base+"/v1/stream/"+stream+"?offset="+off, "", nil, body, http.StatusOK)
		if err != nil {
			return n, err
		}
		n += bytes.Count(body.Bytes(), dsMark)
		if resp.Header.Get("Stream-Up-To-Date") == "true" {
			return n, nil
		}
		next := resp.Header.Get("Stream-Next-Offset")
		if next == "" || next == off {
			return n, fmt.Errorf("offset %s: Stream-Next-Offset %q and not up to date", off, next)
		}
		off = next
	}
}

// dsCatchUpNative reads a stream's pages from offset 0 until the next
// offset stops moving and returns the messages read.
func dsCatchUpNative(c *http.Client, base, stream string, body *bytes.Buffer) (int, error) {
	n, from := 0, "0"
	for {
		resp, err := dsDo(c, http.MethodGet, base+"/v1/streams/"+stream+"/records?limit="+strconv.Itoa(dsReadPage)+"&from="+from, "", nil, body, http.StatusOK)
		if err != nil {
			return n, err
		}
		n += bytes.Count(body.Bytes(), dsMark)
		next := resp.Header.Get("Stream-Next-Offset")
		if next == "" {
			return n, errors.New("no Stream-Next-Offset")
		}
		if next == from {
			return n, nil
		}
		from = next
	}
}

// BenchmarkDurableStreamsFanout: 100 SSE subscribers tail one stream while
// one producer appends to it as fast as it can, 100 messages of 100 bytes
// (JSON strings carrying the producer's send time) per request, each
// append answered after the server's fsync. One op is one append of 100
// messages (a whole batch, so that a short run does not measure smaller
// appends); messages/s counts deliveries (messages x subscribers) per
// second, and the latency is from the producer sending the append to a
// subscriber parsing the message. api=protocol: the stream is
// application/json, created by PUT; the producer POSTs JSON arrays to
// /v1/stream/{name}; subscribers GET ?offset=-1&live=sse ("data" events
// holding a JSON array of messages, then a "control" event). api=native:
// BadBatch's PUT /v1/streams/{s}, NDJSON appends to /records, and
// subscribers GET /records?from=0 with Accept: text/event-stream (one
// event per record, its JSON with offset, seq and timestamp). A fresh
// stream per benchmark run.
func BenchmarkDurableStreamsFanout(b *testing.B) {
	servers, stop := dsServers(b)
	defer stop()
	for _, ct := range dsContenders {
		srv := servers[ct]
		run := 0
		b.Run(fmt.Sprintf("%s/subscribers=%d/batch=%d", ct.name(), dsSubscribers, dsFanoutBatch), func(b *testing.B) {
			if srv.notRun != "" {
				notRun(b, srv.notRun)
			}
			run++
			stream := fmt.Sprintf("fan-%d", run)
			pc := loadClient(1)
			defer pc.CloseIdleConnections()
			if err := dsCreate(pc, srv.url, ct.api, stream, "application/json"); err != nil {
				b.Fatal(err)
			}
			tailURL := srv.url + "/v1/stream/" + stream + "?offset=-1&live=sse"
			if ct.api == "native" {
				tailURL = srv.url + "/v1/streams/" + stream + "/records?from=0"
			}
			total := b.N * dsFanoutBatch
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sc := loadClient(dsSubscribers)
			defer sc.CloseIdleConnections()
			var delivered atomic.Int64
			hists := make([]*hdrhistogram.Histogram, dsSubscribers)
			var wg sync.WaitGroup
			errs := make(chan error, dsSubscribers)
			ready := make(chan struct{}, dsSubscribers)
			for i := range hists {
				hists[i] = hdrhistogram.New(1, int64(60*time.Second), 3)
				wg.Add(1)
				go func(h *hdrhistogram.Histogram) {
					defer wg.Done()
					errs <- dsTail(ctx, sc, tailURL, total, h, &delivered, ready)
				}(hists[i])
			}
			for range hists {
				<-ready
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				now := time.Now().UnixNano()
				if err := dsAppendBatch(pc, srv.url, ct.api, stream, dsFanoutBatch, func(int) int64 { return now }); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			for range hists {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			all := hdrhistogram.New(1, int64(60*time.Second), 3)
			for _, h := range hists {
				all.Merge(h)
			}
			b.ReportMetric(float64(delivered.Load())/el.Seconds(), "messages/s")
			b.ReportMetric(float64(all.ValueAtQuantile(50)), "p50-ns")
			b.ReportMetric(float64(all.ValueAtQuantile(99)), "p99-ns")
		})
	}
}

// dsTail reads want messages from an SSE tail (either API's: it reads the
// messages in every data line), recording each one's lag from the send
// time it carries.
func dsTail(ctx context.Context, c *http.Client, url string, want int, h *hdrhistogram.Histogram, delivered *atomic.Int64, ready chan<- struct{}) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		ready <- struct{}{}
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	ready <- struct{}{}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("tail: status %d", resp.StatusCode)
	}
	r := bufio.NewReaderSize(resp.Body, 1<<20)
	got := 0
	for got < want {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("tail after %d messages: %w", got, err)
		}
		if !bytes.HasPrefix(line, []byte("data:")) {
			continue
		}
		now := time.Now().UnixNano()
		for {
			i := bytes.Index(line, dsMark)
			if i < 0 {
				break
			}
			line = line[i+len(dsMark):]
			if len(line) < 19 {
				return errors.New("tail: a message cut short")
			}
			sent, ok := dsDigits(line[:19])
			if !ok {
				return fmt.Errorf("tail: a message without a send time: %q", line[:19])
			}
			_ = h.RecordValue(max(now-sent, 1))
			got++
		}
	}
	delivered.Add(int64(got))
	return nil
}

// dsDigits parses decimal digits without allocating.
func dsDigits(d []byte) (int64, bool) {
	var v int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}
