package client

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Version is the client's version, sent in the default User-Agent.
const Version = "1.0.0"

// Options configure a Client. The caller sets only what it wants: New
// copies the options, fills every zero field from DefaultOptions, validates
// the result (an *Error of kind invalid_options, errors.Is ErrInvalidOptions)
// and never writes to the caller's struct. Not safe for concurrent
// mutation while New reads it.
//
// The two fields whose zero value is meaningful and not the default are
// pointers (nil: the default): MaxRetries (new(0): never retry) and
// GenerateIdempotencyKeys (new(false): off).
type Options struct {
	// HTTPClient sends the requests. Nil means a client of its own whose
	// transport keeps up to 64 idle connections per host and dials with
	// ConnectTimeout. New uses a copy of it whose redirect policy also keeps
	// the bearer token on a cluster follower's redirect to its leader (see
	// followLeader); ConnectTimeout does not apply to a caller's client.
	HTTPClient *http.Client
	// Token is the bearer token ("" sends none).
	Token string
	// MaxRetries is how many times a retryable failure is retried. Nil: 5;
	// new(0): never.
	MaxRetries *int
	// RetryBackoff is the first retry's delay; each retry doubles it, up to
	// MaxBackoff, with full jitter (a uniform delay in [0, backoff]). A
	// longer Retry-After from the server wins, up to MaxRetryAfter; beyond
	// that the error is returned at once. Defaults 100 ms, 5 s, 30 s.
	RetryBackoff  time.Duration
	MaxBackoff    time.Duration
	MaxRetryAfter time.Duration
	// RequestTimeout bounds one attempt of one request, the whole answer
	// included (not tails). Default 30 s.
	RequestTimeout time.Duration
	// ConnectTimeout bounds one TCP (and TLS) connect. Default 5 s.
	ConnectTimeout time.Duration
	// TailIdleTimeout ends and reopens a tail connection that received
	// nothing, not even the server's keep-alive comment (every 15 s), for
	// this long. Default 60 s.
	TailIdleTimeout time.Duration
	// GenerateIdempotencyKeys, on by default (nil), makes an append without
	// a caller's key carry a generated one (128 random bits, hex), the same
	// on every attempt of the call, so that it can be retried safely. Off
	// (new(false)), such an append is retried only when it surely never
	// reached the server (connection refused, 429, 503 no_leader).
	GenerateIdempotencyKeys *bool
	// UserAgent is sent with every request. Default
	// "badbatch-go-client/" + Version.
	UserAgent string
}

// DefaultOptions returns the defaults, every field set (a new value each
// call; the caller may change it).
func DefaultOptions() *Options {
	return &Options{
		MaxRetries:              new(5),
		RetryBackoff:            100 * time.Millisecond,
		MaxBackoff:              5 * time.Second,
		MaxRetryAfter:           30 * time.Second,
		RequestTimeout:          30 * time.Second,
		ConnectTimeout:          5 * time.Second,
		TailIdleTimeout:         time.Minute,
		GenerateIdempotencyKeys: new(true),
		UserAgent:               "badbatch-go-client/" + Version,
	}
}

// settings are the options after defaults, as the client uses them: plain
// values, owned by the client.
type settings struct {
	token                   string
	maxRetries              int
	retryBackoff            time.Duration
	maxBackoff              time.Duration
	maxRetryAfter           time.Duration
	requestTimeout          time.Duration
	connectTimeout          time.Duration
	tailIdleTimeout         time.Duration
	generateIdempotencyKeys bool
	userAgent               string
}

// resolve fills the zero fields of opts (nil: all of them) from the
// defaults and validates the result. It reads opts only.
func resolve(opts *Options) (settings, error) {
	d := DefaultOptions()
	s := settings{
		maxRetries:              *d.MaxRetries,
		retryBackoff:            d.RetryBackoff,
		maxBackoff:              d.MaxBackoff,
		maxRetryAfter:           d.MaxRetryAfter,
		requestTimeout:          d.RequestTimeout,
		connectTimeout:          d.ConnectTimeout,
		tailIdleTimeout:         d.TailIdleTimeout,
		generateIdempotencyKeys: *d.GenerateIdempotencyKeys,
		userAgent:               d.UserAgent,
	}
	if opts == nil {
		return s, nil
	}
	s.token = opts.Token
	if opts.MaxRetries != nil {
		s.maxRetries = *opts.MaxRetries
	}
	if opts.GenerateIdempotencyKeys != nil {
		s.generateIdempotencyKeys = *opts.GenerateIdempotencyKeys
	}
	if opts.UserAgent != "" {
		s.userAgent = opts.UserAgent
	}
	var problems []string
	duration := func(name string, v time.Duration, dst *time.Duration) {
		switch {
		case v < 0:
			problems = append(problems, fmt.Sprintf("%s %v is negative", name, v))
		case v > 0:
			*dst = v
		}
	}
	duration("RetryBackoff", opts.RetryBackoff, &s.retryBackoff)
	duration("MaxBackoff", opts.MaxBackoff, &s.maxBackoff)
	duration("MaxRetryAfter", opts.MaxRetryAfter, &s.maxRetryAfter)
	duration("RequestTimeout", opts.RequestTimeout, &s.requestTimeout)
	duration("ConnectTimeout", opts.ConnectTimeout, &s.connectTimeout)
	duration("TailIdleTimeout", opts.TailIdleTimeout, &s.tailIdleTimeout)
	if s.maxRetries < 0 {
		problems = append(problems, fmt.Sprintf("MaxRetries %d is negative", s.maxRetries))
	}
	if s.maxBackoff < s.retryBackoff {
		problems = append(problems, fmt.Sprintf("MaxBackoff %v is below RetryBackoff %v", s.maxBackoff, s.retryBackoff))
	}
	if !headerSafe(s.token) {
		problems = append(problems, "Token holds a character that cannot be sent in a header")
	}
	if !headerSafe(s.userAgent) {
		problems = append(problems, fmt.Sprintf("UserAgent %q holds a character that cannot be sent in a header", s.userAgent))
	}
	if len(problems) > 0 {
		return settings{}, newClientError(CodeInvalidOptions, strings.Join(problems, "; "), nil)
	}
	return s, nil
}

// headerSafe reports whether s can be a header value as is: printable
// ASCII and spaces.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
