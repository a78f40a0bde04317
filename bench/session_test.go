package bench_test

// Append sessions (GET /v1/streams/{stream}/append, WebSocket) against the
// floor of a WebSocket server and against plain POSTs. One Go client, the
// session API of httpapi/client, drives both WebSocket servers over one
// connection, with its default per-batch idempotency keys.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi/client"
	"github.com/coder/websocket"
)

// startWSNoop serves the cheapest server that speaks the session protocol
// to the client: it grants the window, reads each frame whole and answers
// it at once with a small JSON object. Nothing is parsed or stored.
func startWSNoop(b *testing.B) benchServer {
	b.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/streams/{stream}/append", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Session-Window", strconv.Itoa(4<<20))
		conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		defer conn.CloseNow()
		conn.SetReadLimit(32 << 20)
		var off uint64
		ctx := context.Background()
		for {
			if _, _, err := conn.Read(ctx); err != nil {
				return
			}
			ans := fmt.Appendf(nil, `{"stream":"bench","first_offset":%d,"last_offset":%d,"count":1}`, off, off)
			off++
			if err := conn.Write(ctx, websocket.MessageText, ans); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return serveLoopback(b, srv.Serve, srv.Shutdown, func() {})
}

// sessionRecords is a batch of n records of httpValueLen bytes.
func sessionRecords(n int) []client.Record {
	recs := make([]client.Record, n)
	for i := range recs {
		recs[i] = client.Record{Value: []byte(fmt.Sprintf("%0*d", httpValueLen, i))}
	}
	return recs
}

// runSession sends total batches over one session without waiting, then
// waits for every answer; it fails the benchmark on any error.
func runSession(b *testing.B, url, stream string, recs []client.Record, total int) {
	b.Helper()
	c, err := client.New(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	sess, err := c.OpenSession(ctx, stream, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	pend := make([]*client.Pending, 0, total)
	for range total {
		p, err := sess.Send(ctx, recs, nil)
		if err != nil {
			b.Fatal(err)
		}
		pend = append(pend, p)
	}
	if err := sess.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	for _, p := range pend {
		if _, err := p.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionAppend: one op is one batch of `batch` records of 100
// bytes, acknowledged.
//   - impl=session: an append session on the real server (SyncAlways: every
//     answer after its fsync), one connection, batches pipelined.
//   - impl=ws-noop: the same client against startWSNoop, one connection.
//   - impl=post-64conns (batch=1): single-record JSON POSTs, as
//     BenchmarkHTTPAppend, over 64 keep-alive connections.
//   - impl=ndjson-1conn (batch=100): NDJSON POSTs of 100 records over one
//     keep-alive connection, each waiting for its answer.
func BenchmarkSessionAppend(b *testing.B) {
	for _, batch := range []int{1, 100} {
		impls := []string{"session", "ws-noop", "post-64conns"}
		if batch == 100 {
			impls = []string{"session", "ws-noop", "ndjson-1conn"}
		}
		for _, impl := range impls {
			b.Run(fmt.Sprintf("impl=%s/batch=%d/size=%dB", impl, batch, httpValueLen), func(b *testing.B) {
				var s benchServer
				if impl == "ws-noop" {
					s = startWSNoop(b)
				} else {
					s = startBadBatch(b)
				}
				defer s.stop()
				recs := sessionRecords(batch)
				var run func(total int, stream string)
				switch impl {
				case "session", "ws-noop":
					run = func(total int, stream string) { runSession(b, s.url, stream, recs, total) }
				case "post-64conns":
					c := loadClient(httpConns)
					defer c.CloseIdleConnections()
					run = func(total int, stream string) {
						runLoad(b, c, s.url+"/v1/streams/"+stream+"/records", "application/json", httpConns, total, recordBody)
					}
				case "ndjson-1conn":
					c := loadClient(1)
					defer c.CloseIdleConnections()
					var body bytes.Buffer
					for i := range batch {
						body.Write(recordBody(i))
						body.WriteByte('\n')
					}
					payload := body.Bytes()
					run = func(total int, stream string) {
						runLoad(b, c, s.url+"/v1/streams/"+stream+"/records", "application/x-ndjson", 1, total, func(int) []byte { return payload })
					}
				}
				run(64, "warmup")
				b.ReportAllocs()
				b.SetBytes(int64(batch * httpValueLen))
				b.ResetTimer()
				start := time.Now()
				run(b.N, "bench")
				el := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/el.Seconds(), "frames/s")
				b.ReportMetric(float64(b.N*batch)/el.Seconds(), "records/s")
			})
		}
	}
}
