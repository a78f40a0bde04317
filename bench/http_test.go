package bench_test

// The HTTP API under load from a Go load generator in the same process, on
// 127.0.0.1 only. Server and load generator share the machine's cores, so
// the figures are a lower bound of what a separate client machine would
// see. Every BadBatch server runs the real store with SyncAlways: an append
// is acknowledged only after its journal entry is fsynced.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/badbatch/badbatch/storage"
	"github.com/labstack/echo/v4"
)

const (
	httpConns    = 64  // keep-alive connections of the single-record benchmark
	httpValueLen = 100 // bytes of each record's value
)

// benchServer is a server on 127.0.0.1 for one benchmark.
type benchServer struct {
	url  string
	stop func()
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
}

// startBadBatch serves the HTTP API over a real store (SyncAlways).
func startBadBatch(b *testing.B) benchServer {
	b.Helper()
	srv, _ := startClientServer(b)
	return srv
}

// startEchoNoop serves an echo handler that reads the body and answers a
// small JSON object: the floor of what any echo-based API can do.
func startEchoNoop(b *testing.B) benchServer {
	b.Helper()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	var n atomic.Uint64
	e.POST("/v1/streams/:stream/records", func(c echo.Context) error {
		if _, err := io.Copy(io.Discard, c.Request().Body); err != nil {
			return err
		}
		off := n.Add(1) - 1
		return c.JSON(http.StatusCreated, map[string]any{"stream": c.Param("stream"), "first_offset": off, "last_offset": off, "count": 1})
	})
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	return serveLoopback(b, srv.Serve, srv.Shutdown, func() {})
}

// serveLoopback runs serve on a fresh 127.0.0.1 listener; the returned
// stop shuts it down, waits for serve to return, then calls after.
func serveLoopback(b *testing.B, serve func(net.Listener) error, shutdown func(context.Context) error, after func()) benchServer {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = serve(l)
	}()
	return benchServer{url: "http://" + l.Addr().String(), stop: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = shutdown(ctx)
		<-done
		after()
	}}
}

func loadClient(conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = conns, conns, conns
	tr.DisableCompression = true
	return &http.Client{Transport: tr}
}

// runLoad sends total requests from workers goroutines, each request built
// by body(i), and records every request's latency. It fails the benchmark
// on any answer but 201.
func runLoad(b *testing.B, c *http.Client, url, contentType string, workers, total int, body func(i int) []byte) *hdrhistogram.Histogram {
	b.Helper()
	return runLoadStatus(b, c, url, contentType, http.StatusCreated, workers, total, body)
}

// runLoadStatus is runLoad for answers of status want.
func runLoadStatus(b *testing.B, c *http.Client, url, contentType string, want, workers, total int, body func(i int) []byte) *hdrhistogram.Histogram {
	b.Helper()
	return runWorkers(b, workers, total, func(i int) error {
		resp, err := c.Post(url, contentType, bytes.NewReader(body(i)))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("status %d, want %d", resp.StatusCode, want)
		}
		return nil
	})
}

// runWorkers runs op(i) for i in [0, total) from workers goroutines and
// returns the latency histogram of the calls; the first error fails the
// benchmark (the workers stop taking new calls).
func runWorkers(b *testing.B, workers, total int, op func(i int) error) *hdrhistogram.Histogram {
	b.Helper()
	hists := make([]*hdrhistogram.Histogram, workers)
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for w := range hists {
		h := hdrhistogram.New(1, int64(30*time.Second), 3)
		hists[w] = h
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= total || failed.Load() != nil {
					return
				}
				start := time.Now()
				if err := op(i); err != nil {
					failed.Store(err)
					return
				}
				_ = h.RecordValue(int64(time.Since(start)))
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	all := hdrhistogram.New(1, int64(30*time.Second), 3)
	for _, h := range hists {
		all.Merge(h)
	}
	return all
}

func recordBody(i int) []byte {
	v := fmt.Sprintf("%0*d", httpValueLen, i)
	return []byte(`{"value_base64":"` + base64.StdEncoding.EncodeToString([]byte(v)) + `"}`)
}

// BenchmarkHTTPAppend: one op is one HTTP request carrying one 100-byte
// record (JSON, value_base64), sent over 64 concurrent keep-alive
// connections by rawLoad (a wrk-like generator: prebuilt requests, no
// allocation per request), so that the 2 cores go to the server. impl=badbatch is the full API (auth off, parsing, the store
// with an fsync before every acknowledgement, group commit across the
// concurrent requests); impl=echo-noop is an echo handler that reads the
// body and answers a small JSON object, storing nothing; impl=store-direct
// is the same 64 concurrent single-record appends made straight to a
// storage.Store in this process, without HTTP: what the store alone does
// for this workload. The store rows report appends per fsync (group
// commit) and the share of the run the journal spent in fsync.
func BenchmarkHTTPAppend(b *testing.B) {
	for _, impl := range []string{"badbatch", "echo-noop", "store-direct"} {
		b.Run(fmt.Sprintf("impl=%s/conns=%d/size=%dB", impl, httpConns, httpValueLen), func(b *testing.B) {
			if impl == "store-direct" {
				storeDirectAppends(b)
				return
			}
			var s benchServer
			var store *storage.Store
			if impl == "badbatch" {
				s, store = startClientServer(b)
			} else {
				s = startEchoNoop(b)
			}
			defer s.stop()
			addr, warm := rawRequest(s.url+"/v1/streams/warmup/records", "application/json", recordBody(0))
			rawLoad(b, addr, warm, http.StatusCreated, httpConns, 4*httpConns)
			_, req := rawRequest(s.url+"/v1/streams/bench/records", "application/json", recordBody(1))
			var before storage.Stats
			if store != nil {
				before = store.Stats()
			}
			b.ReportAllocs()
			b.SetBytes(httpValueLen)
			b.ResetTimer()
			start := time.Now()
			h := rawLoad(b, addr, req, http.StatusCreated, httpConns, b.N)
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
			b.ReportMetric(float64(h.ValueAtQuantile(50)), "p50-ns")
			b.ReportMetric(float64(h.ValueAtQuantile(99)), "p99-ns")
			if store != nil {
				reportGroupCommit(b, before, store.Stats(), b.N, el)
			}
		})
	}
}

// storeDirectAppends is BenchmarkHTTPAppend's impl=store-direct: httpConns
// goroutines each appending one httpValueLen-byte record at a time to a
// store opened as the server's is, b.N appends in all.
func storeDirectAppends(b *testing.B) {
	store := openBenchStore(b)
	defer store.Close()
	ctx := context.Background()
	value := bytes.Repeat([]byte("v"), httpValueLen)
	run := func(total int) *hdrhistogram.Histogram {
		return runWorkers(b, httpConns, total, func(int) error {
			_, err := store.Append(ctx, "bench", storage.Record{Value: value})
			return err
		})
	}
	run(4 * httpConns) // warm up, as the HTTP rows do
	before := store.Stats()
	b.ReportAllocs()
	b.SetBytes(httpValueLen)
	b.ResetTimer()
	start := time.Now()
	h := run(b.N)
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
	b.ReportMetric(float64(h.ValueAtQuantile(50)), "p50-ns")
	b.ReportMetric(float64(h.ValueAtQuantile(99)), "p99-ns")
	reportGroupCommit(b, before, store.Stats(), b.N, el)
}

// reportGroupCommit reports a run's appends per journal fsync and the
// share of its wall time spent in fsync.
func reportGroupCommit(b *testing.B, before, after storage.Stats, appends int, el time.Duration) {
	syncs := after.Journal.Syncs - before.Journal.Syncs
	if syncs == 0 {
		return
	}
	b.ReportMetric(float64(appends)/float64(syncs), "appends/fsync")
	b.ReportMetric(100*(after.Journal.SyncTime-before.Journal.SyncTime).Seconds()/el.Seconds(), "fsync-busy-%")
}

// BenchmarkHTTPAppendNDJSON: one op is one HTTP request carrying an NDJSON
// batch of records of 100 bytes (value_base64, about 160 bytes a line),
// appended atomically and fsynced before the acknowledgement, from conns
// concurrent connections (each waits for its answer before sending the
// next batch). Batches of 100 at 16 and 64 connections are the shape of
// the 1M records/s goal; batches of 1,000 at 4 and 16 show the ceiling.
func BenchmarkHTTPAppendNDJSON(b *testing.B) {
	for _, shape := range []struct{ batch, conns int }{{100, 16}, {100, 64}, {1000, 4}, {1000, 16}} {
		batch, conns := shape.batch, shape.conns
		b.Run(fmt.Sprintf("impl=badbatch/batch=%d/conns=%d/size=%dB", batch, conns, httpValueLen), func(b *testing.B) {
			s, store := startClientServer(b)
			defer s.stop()
			var body bytes.Buffer
			for i := 0; i < batch; i++ {
				body.Write(recordBody(i))
				body.WriteByte('\n')
			}
			addr, warm := rawRequest(s.url+"/v1/streams/warmup/records", "application/x-ndjson", body.Bytes())
			rawLoad(b, addr, warm, http.StatusCreated, conns, 2*conns)
			_, req := rawRequest(s.url+"/v1/streams/bench/records", "application/x-ndjson", body.Bytes())
			before := store.Stats()
			b.ReportAllocs()
			b.SetBytes(int64(batch * httpValueLen))
			b.ResetTimer()
			start := time.Now()
			h := rawLoad(b, addr, req, http.StatusCreated, conns, b.N)
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N*batch)/el.Seconds(), "records/s")
			b.ReportMetric(float64(h.ValueAtQuantile(50)), "p50-ns")
			b.ReportMetric(float64(h.ValueAtQuantile(99)), "p99-ns")
			reportGroupCommit(b, before, store.Stats(), b.N, el)
		})
	}
}

// BenchmarkHTTPFanout: 100 SSE clients tail one stream while one producer
// appends to it as fast as it can, 100 records (JSON values carrying the
// producer's send time) per request, fsynced. One op is one record
// appended; records/s counts deliveries (records x clients) per second, and
// lag is from the producer sending the append to a client parsing the
// event.
func BenchmarkHTTPFanout(b *testing.B) {
	const clients, batch = 100, 100
	b.Run(fmt.Sprintf("impl=badbatch/clients=%d/batch=%d", clients, batch), func(b *testing.B) {
		s := startBadBatch(b)
		defer s.stop()
		url := s.url + "/v1/streams/fan/records"
		pc := loadClient(1)
		defer pc.CloseIdleConnections()
		// Create the stream, so the tails can start at offset 1.
		if resp, err := pc.Post(url, "application/json", strings.NewReader(`{"value":0}`)); err != nil {
			b.Fatal(err)
		} else {
			resp.Body.Close()
		}
		total := b.N
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sc := loadClient(clients)
		defer sc.CloseIdleConnections()
		var delivered atomic.Int64
		hists := make([]*hdrhistogram.Histogram, clients)
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		ready := make(chan struct{}, clients)
		for i := 0; i < clients; i++ {
			hists[i] = hdrhistogram.New(1, int64(60*time.Second), 3)
			wg.Add(1)
			go func(h *hdrhistogram.Histogram) {
				defer wg.Done()
				errs <- tailSSE(ctx, sc, url+"?from=1", total, h, &delivered, ready)
			}(hists[i])
		}
		for i := 0; i < clients; i++ {
			<-ready
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for sent := 0; sent < total; {
			n := min(batch, total-sent)
			var body bytes.Buffer
			now := strconv.FormatInt(time.Now().UnixNano(), 10)
			for j := 0; j < n; j++ {
				body.WriteString(`{"value":` + now + "}\n")
			}
			resp, err := pc.Post(url, "application/x-ndjson", &body)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Fatalf("append: status %d", resp.StatusCode)
			}
			sent += n
		}
		wg.Wait()
		el := time.Since(start)
		b.StopTimer()
		for i := 0; i < clients; i++ {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		all := hdrhistogram.New(1, int64(60*time.Second), 3)
		for _, h := range hists {
			all.Merge(h)
		}
		b.ReportMetric(float64(delivered.Load())/el.Seconds(), "records/s")
		b.ReportMetric(float64(all.ValueAtQuantile(50)), "p50-ns")
		b.ReportMetric(float64(all.ValueAtQuantile(99)), "p99-ns")
	})
}

// tailSSE reads want records from an SSE tail, recording each one's lag.
func tailSSE(ctx context.Context, c *http.Client, url string, want int, h *hdrhistogram.Histogram, delivered *atomic.Int64, ready chan<- struct{}) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	ready <- struct{}{}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("tail: status %d", resp.StatusCode)
	}
	r := bufio.NewReaderSize(resp.Body, 256<<10)
	prefix := []byte(`"value":`)
	for got := 0; got < want; {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("tail after %d records: %w", got, err)
		}
		if !bytes.HasPrefix(line, []byte("data: ")) {
			continue
		}
		i := bytes.Index(line, prefix)
		if i < 0 {
			return errors.New("tail: event without a value")
		}
		v := line[i+len(prefix):]
		end := bytes.IndexAny(v, ",}")
		sent, err := strconv.ParseInt(string(v[:end]), 10, 64)
		if err != nil {
			return err
		}
		_ = h.RecordValue(max(time.Now().UnixNano()-sent, 1))
		delivered.Add(1)
		got++
	}
	return nil
}
