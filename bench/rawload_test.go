package bench_test

// rawLoad is a lean HTTP/1.1 load generator in the manner of wrk: each
// connection writes a prebuilt request, reads the status line, the headers
// and a Content-Length body, and repeats. It allocates nothing per request
// and parses only what it needs, so that on a 2-core machine the load
// generator takes as little of the server's CPU as it can. net/http's
// client, by comparison, spends a goroutine hand-off and several
// allocations per request (runLoad).

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// rawRequest returns the bytes of one POST to url (http://host:port/path)
// with body.
func rawRequest(url, contentType string, body []byte) (addr string, req []byte) {
	rest := strings.TrimPrefix(url, "http://")
	slash := strings.IndexByte(rest, '/')
	addr, path := rest[:slash], rest[slash:]
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", path, addr, contentType, len(body))
	b.Write(body)
	return addr, b.Bytes()
}

// rawLoad sends total requests over conns keep-alive connections, each
// request req, and returns the latency histogram. Every answer must have
// status want.
func rawLoad(b testing.TB, addr string, req []byte, want, conns, total int) *hdrhistogram.Histogram {
	b.Helper()
	h, err := tryRawLoad(addr, req, want, conns, total)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// tryRawLoad is rawLoad returning its first error.
func tryRawLoad(addr string, req []byte, want, conns, total int) (*hdrhistogram.Histogram, error) {
	hists := make([]*hdrhistogram.Histogram, conns)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for w := range conns {
		hists[w] = hdrhistogram.New(1, int64(30*time.Second), 3)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			failed.CompareAndSwap(nil, &err)
			break
		}
		wg.Add(1)
		go func(h *hdrhistogram.Histogram, c net.Conn) {
			defer wg.Done()
			defer c.Close()
			r := bufio.NewReaderSize(c, 16<<10)
			for {
				if int(next.Add(1)) > total || failed.Load() != nil {
					return
				}
				start := time.Now()
				if _, err := c.Write(req); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				if err := readRawResponse(r, want); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				_ = h.RecordValue(int64(time.Since(start)))
			}
		}(hists[w], c)
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return nil, *err
	}
	all := hdrhistogram.New(1, int64(30*time.Second), 3)
	for _, h := range hists {
		all.Merge(h)
	}
	return all, nil
}

var (
	headerContentLength = []byte("content-length:")
	errRawResponse      = errors.New("bench: malformed HTTP response")
)

// readRawResponse reads one response with a Content-Length body and checks
// its status.
func readRawResponse(r *bufio.Reader, want int) error {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return fmt.Errorf("%w: status line %q", errRawResponse, line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return fmt.Errorf("%w: status line %q", errRawResponse, line)
	}
	length := -1
	for {
		line, err = r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 { // the blank line
			break
		}
		if len(line) > len(headerContentLength) && bytes.EqualFold(line[:len(headerContentLength)], headerContentLength) {
			length, err = strconv.Atoi(string(bytes.TrimSpace(line[len(headerContentLength):])))
			if err != nil {
				return fmt.Errorf("%w: %q", errRawResponse, line)
			}
		}
	}
	if length < 0 && (status == 204 || status == 304) {
		length = 0 // no body
	}
	if length < 0 {
		return fmt.Errorf("%w: no Content-Length (chunked answers are not read here)", errRawResponse)
	}
	if _, err := r.Discard(length); err != nil {
		return err
	}
	if status != want {
		return fmt.Errorf("status %d, want %d", status, want)
	}
	return nil
}

// TestRawLoadCountsEveryRequest: the load generator sends exactly total
// requests, and fails on a status other than the one it wants.
func TestRawLoadCountsEveryRequest(t *testing.T) {
	var got atomic.Int64
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					// A request: headers, then a 2-byte body.
					for {
						line, err := r.ReadString('\n')
						if err != nil {
							return
						}
						if line == "\r\n" {
							break
						}
					}
					if _, err := io.ReadFull(r, make([]byte, 2)); err != nil {
						return
					}
					got.Add(1)
					_, _ = io.WriteString(c, "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc")
				}
			}()
		}
	}()
	addr, req := rawRequest("http://"+l.Addr().String()+"/x", "text/plain", []byte("hi"))
	h := rawLoad(t, addr, req, 201, 4, 1000)
	if got.Load() != 1000 || h.TotalCount() != 1000 {
		t.Fatalf("server saw %d requests, histogram %d; want 1000", got.Load(), h.TotalCount())
	}
	if _, err := tryRawLoad(addr, req, 200, 2, 10); err == nil || !strings.Contains(err.Error(), "status 201, want 200") {
		t.Fatalf("a wrong status: err = %v", err)
	}
}
