package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/badbatch/badbatch/storage"
)

// Options configure a Server. Build them with DefaultOptions and change what
// you need; New copies them and never modifies the caller's value. Not safe
// for concurrent mutation; a Server never touches the caller's copy.
type Options struct {
	// Addr is the listen address used by ListenAndServe.
	Addr string
	// MaxRequestBytes bounds one request body (413 above it).
	MaxRequestBytes int64
	// MaxRecordBytes bounds one record: key + value + headers (413 above it).
	MaxRecordBytes int
	// DefaultReadLimit is the page size of a read without limit=.
	DefaultReadLimit int
	// MaxReadLimit caps limit= on reads.
	MaxReadLimit int
	// MaxWait caps the wait= of a long-poll read.
	MaxWait time.Duration
	// LongPollTimeout is how long a Durable Streams long-poll
	// (/v1/stream/{name}?live=long-poll) waits at the tail before it
	// answers 204.
	LongPollTimeout time.Duration
	// Tokens enables bearer-token auth. Nil means no auth (allowed only on a
	// loopback address unless AllowInsecureNoAuth is set; see CheckListen).
	Tokens *TokenSet
	// AllowInsecureNoAuth permits serving without auth on a non-loopback
	// address.
	AllowInsecureNoAuth bool
	// RateLimit is the sustained requests per second allowed per token (per
	// client IP without auth). Zero disables rate limiting.
	RateLimit float64
	// RateBurst is the bucket size of the rate limiter (at least 1 when
	// RateLimit is set).
	RateBurst int
	// HeartbeatInterval is how often an idle SSE or WebSocket tail sends a
	// keep-alive, which also detects clients that went away.
	HeartbeatInterval time.Duration
	// TailBatch is the most records one tailing read fetches at a time.
	TailBatch int
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout configure
	// the http.Server. Streaming responses (SSE, NDJSON, long-poll,
	// WebSocket) lift the whole-response deadline and set a deadline of
	// WriteTimeout per write instead, so a slow reader cannot hold a handler
	// forever and a healthy tail is not cut.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// Logger receives structured logs. Nil means slog.Default().
	Logger *slog.Logger
	// Metrics is the metrics set to serve at /metrics. Nil means a new one
	// from NewMetrics. Pass your own to also hand it to the store
	// (storage.Options.Metrics) before the store is opened.
	Metrics *Metrics
	// Cluster, when set, serves a cluster node: appends and cursor writes
	// go to the leader (307, or 503 no_leader), reads are linearizable by
	// default (?consistency=any reads the local state), and the
	// /v1/cluster routes are live. nil: standalone.
	Cluster Cluster
	// CORSOrigins, when not empty, answers cross-origin requests from these
	// origins ("https://app.example.com"; "*" for any): preflights allow the
	// API's methods and request headers (CORSAllowHeaders) and every answer
	// exposes the headers clients read (CORSExposeHeaders). Empty: no CORS
	// headers at all, so browsers refuse cross-origin pages (the default).
	CORSOrigins []string
}

// CORSAllowHeaders are the request headers a cross-origin page may send
// (Access-Control-Allow-Headers of a preflight) when CORSOrigins is set.
var CORSAllowHeaders = []string{
	"Authorization", "Content-Type", "Accept", "Idempotency-Key", "Expected-Last-Offset",
	"Last-Event-ID", "Record-Key", "If-None-Match",
	"Producer-Id", "Producer-Epoch", "Producer-Seq", "Stream-Closed", "Stream-Seq",
}

// CORSExposeHeaders are the answer headers a cross-origin page may read
// (Access-Control-Expose-Headers) when CORSOrigins is set.
var CORSExposeHeaders = []string{
	"Stream-Next-Offset", "Durability", "Idempotent-Replayed", "Retry-After", "Leader-Id",
	"Location", "ETag", "Applied-Index", "X-Request-Id", "WWW-Authenticate",
	"Producer-Epoch", "Producer-Expected-Seq", "Producer-Received-Seq",
}

// DefaultOptions returns the defaults: 127.0.0.1:8080, storage's default
// batch bytes (32 MiB) per request and record bytes (4 MiB) per record,
// no auth, no rate limit.
func DefaultOptions() *Options {
	return &Options{
		Addr:              "127.0.0.1:8080",
		MaxRequestBytes:   storage.DefaultMaxBatchBytes,
		MaxRecordBytes:    storage.DefaultMaxRecordBytes,
		DefaultReadLimit:  100,
		MaxReadLimit:      10000,
		MaxWait:           60 * time.Second,
		LongPollTimeout:   30 * time.Second,
		HeartbeatInterval: 15 * time.Second,
		TailBatch:         1000,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
}

// ErrInvalidOptions is returned by New for options that cannot work.
var ErrInvalidOptions = errors.New("httpapi: invalid options")

func (o *Options) validate() error {
	switch {
	case o.MaxRequestBytes <= 0:
		return fmt.Errorf("%w: MaxRequestBytes %d", ErrInvalidOptions, o.MaxRequestBytes)
	case o.MaxRecordBytes <= 0:
		return fmt.Errorf("%w: MaxRecordBytes %d", ErrInvalidOptions, o.MaxRecordBytes)
	case o.DefaultReadLimit <= 0 || o.MaxReadLimit < o.DefaultReadLimit || o.MaxReadLimit >= storage.MaxReadLimit:
		return fmt.Errorf("%w: read limits %d/%d", ErrInvalidOptions, o.DefaultReadLimit, o.MaxReadLimit)
	case o.RateLimit < 0:
		return fmt.Errorf("%w: RateLimit %v", ErrInvalidOptions, o.RateLimit)
	case o.HeartbeatInterval <= 0 || o.TailBatch <= 0 || o.MaxWait <= 0 || o.LongPollTimeout <= 0:
		return fmt.Errorf("%w: HeartbeatInterval, TailBatch, MaxWait and LongPollTimeout must be positive", ErrInvalidOptions)
	}
	for _, origin := range o.CORSOrigins {
		if origin == "" || strings.ContainsAny(origin, " \t,") {
			return fmt.Errorf("%w: CORS origin %q", ErrInvalidOptions, origin)
		}
	}
	return nil
}
