package bench_test

// Every client against one server, beside the Go client (clients/BENCH.md):
// append throughput (100-byte records, batches of 100, 4 concurrent
// callers) and tail throughput (BENCH_RECORDS records of 100 bytes from
// earliest). The Go client runs in this process; every other client runs
// its clients/<lang>/bench.sh, when it exists and is executable, against
// the same server. The server is this process's: the real store with
// SyncAlways, served on 127.0.0.1.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/badbatch/badbatch/httpapi"
	"github.com/badbatch/badbatch/httpapi/client"
	"github.com/badbatch/badbatch/journal"
	"github.com/badbatch/badbatch/storage"
)

const (
	clientValueLen = 100 // bytes of each record's value
	clientBatch    = 100 // records per append_batch call
	clientCallers  = 4   // concurrent callers of the append mode
)

// clientLanguages are the clients measured, Go first (the base).
var clientLanguages = []string{"go", "python", "typescript", "java", "rust"}

// BenchmarkClients runs each client's append and tail modes once per
// benchmark call (a timed run, not a b.N loop) and reports records/s.
//
//	BenchmarkClients/mode=append/client=python
func BenchmarkClients(b *testing.B) {
	seconds := envInt(b, "BENCH_SECONDS", 5)
	records := envInt(b, "BENCH_RECORDS", 200000)
	root := repoRoot(b)
	srv, store := startClientServer(b)
	defer srv.stop()
	run := 0
	for _, mode := range []string{"append", "tail"} {
		for _, lang := range clientLanguages {
			b.Run("mode="+mode+"/client="+lang, func(b *testing.B) {
				script := filepath.Join(root, "clients", lang, "bench.sh")
				if lang != "go" {
					if st, err := os.Stat(script); err != nil || st.Mode()&0o111 == 0 {
						notRun(b, "clients/"+lang+"/bench.sh: not present or not executable")
					}
				}
				for b.Loop() {
					run++
					stream := fmt.Sprintf("bench-%s-%s-%d", mode, lang, run)
					if mode == "tail" {
						fillStream(b, store, stream, records)
					}
					var res clientBenchResult
					if lang == "go" {
						res = goClientBench(b, srv.url, mode, stream, seconds, records)
					} else {
						res = scriptBench(b, script, srv.url, mode, stream, seconds, records)
					}
					if mode == "tail" && res.Records != int64(records) {
						b.Fatalf("%s tail: %d records, want %d", lang, res.Records, records)
					}
					b.ReportMetric(res.RecordsPerSec, "records/s")
					b.ReportMetric(float64(res.Records), "records")
				}
			})
		}
	}
}

// clientBenchResult is the JSON line a bench.sh prints last.
type clientBenchResult struct {
	Client        string  `json:"client"`
	Mode          string  `json:"mode"`
	Records       int64   `json:"records"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// repoRoot is the directory of go.mod above the working directory.
func repoRoot(b *testing.B) string {
	dir, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			b.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// startClientServer serves the HTTP API over a real store (SyncAlways) and
// returns the store too, to fill tail streams without the network.
func startClientServer(b *testing.B) (benchServer, *storage.Store) {
	b.Helper()
	store := openBenchStore(b)
	o := httpapi.DefaultOptions()
	o.Addr = "127.0.0.1:0"
	o.Logger = quietLogger()
	srv, err := httpapi.New(store, o)
	if err != nil {
		b.Fatal(err)
	}
	return serveLoopback(b, srv.Serve, srv.Shutdown, func() { _ = store.Close() }), store
}

// openBenchStore opens a store in a fresh directory as the benchmarks'
// servers do: fsync before every acknowledgement, quiet logs.
func openBenchStore(b *testing.B) *storage.Store {
	b.Helper()
	so := storage.DefaultOptions()
	so.SyncPolicy = journal.SyncAlways
	so.Logger = quietLogger()
	store, err := storage.Open(b.TempDir(), so)
	if err != nil {
		b.Fatal(err)
	}
	return store
}

// fillStream appends n records of clientValueLen bytes to stream, in
// batches of 1000, straight to the store.
func fillStream(b *testing.B, store *storage.Store, stream string, n int) {
	b.Helper()
	value := bytes.Repeat([]byte("v"), clientValueLen)
	recs := make([]storage.Record, 0, 1000)
	for done := 0; done < n; {
		recs = recs[:0]
		for i := 0; i < 1000 && done+i < n; i++ {
			recs = append(recs, storage.Record{Value: value})
		}
		if _, err := store.Append(context.Background(), stream, recs...); err != nil {
			b.Fatal(err)
		}
		done += len(recs)
	}
}

// goClientBench is the Go client's run of a mode, in this process.
func goClientBench(b *testing.B, url, mode, stream string, seconds, records int) clientBenchResult {
	b.Helper()
	c, err := client.New(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	res := clientBenchResult{Client: "go", Mode: mode}
	start := time.Now()
	switch mode {
	case "append":
		value := bytes.Repeat([]byte("a"), clientValueLen)
		recs := make([]client.Record, clientBatch)
		for i := range recs {
			recs[i] = client.Record{Value: value}
		}
		deadline := start.Add(time.Duration(seconds) * time.Second)
		var total atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, clientCallers)
		for range clientCallers {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					r, err := c.AppendBatch(context.Background(), stream, recs, nil)
					if err != nil {
						errs <- err
						return
					}
					total.Add(int64(r.Count))
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		res.Records = total.Load()
	case "tail":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		for _, err := range c.Tail(ctx, stream, client.Earliest) {
			if err != nil {
				b.Fatal(err)
			}
			if res.Records++; res.Records == int64(records) {
				break
			}
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.RecordsPerSec = float64(res.Records) / res.Seconds
	return res
}

// scriptBench runs clients/<lang>/bench.sh MODE URL STREAM and reads the
// JSON line it prints last.
func scriptBench(b *testing.B, script, url, mode, stream string, seconds, records int) clientBenchResult {
	b.Helper()
	cmd := exec.Command(script, mode, url, stream)
	cmd.Dir = filepath.Dir(script)
	cmd.Env = append(os.Environ(), "BENCH_SECONDS="+strconv.Itoa(seconds), "BENCH_RECORDS="+strconv.Itoa(records))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s %s: %v\nstderr:\n%s", script, mode, err, lastBytes(stderr.String(), 4000))
	}
	res, err := lastJSONLine(stdout.Bytes())
	if err != nil {
		b.Fatalf("%s %s: %v\nstdout:\n%s", script, mode, err, lastBytes(stdout.String(), 4000))
	}
	if res.Mode != mode || res.Records <= 0 || res.RecordsPerSec <= 0 {
		b.Fatalf("%s %s: implausible result %+v", script, mode, res)
	}
	return res
}

func lastJSONLine(out []byte) (clientBenchResult, error) {
	var last string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			last = line
		}
	}
	if last == "" {
		return clientBenchResult{}, errors.New("no output")
	}
	var res clientBenchResult
	dec := json.NewDecoder(strings.NewReader(last))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		return res, fmt.Errorf("last line %q: %w", last, err)
	}
	return res, nil
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
