package httpapi

import (
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// rateLimiter is a token bucket (golang.org/x/time/rate) per key: a
// token's ID or a client IP. It is safe for concurrent use and runs no
// goroutine: idle full buckets are dropped when the map grows past
// maxBuckets.
type rateLimiter struct {
	limit rate.Limit // tokens per second
	burst int

	mu struct {
		sync.Mutex
		buckets map[string]*rate.Limiter
	}
}

const maxBuckets = 10000

// maxRetryAfter caps the wait reported to a client.
const maxRetryAfter = 24 * time.Hour

func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	l := &rateLimiter{limit: rate.Limit(perSecond), burst: max(burst, 1)}
	l.mu.buckets = make(map[string]*rate.Limiter)
	return l
}

// allow takes one token from key's bucket at time now. When it is empty it
// returns false and how long until a token is available.
func (l *rateLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.bucketLocked(key, now).ReserveN(now, 1)
	if !r.OK() {
		return false, maxRetryAfter
	}
	wait := r.DelayFrom(now)
	if wait == 0 {
		return true, 0
	}
	r.CancelAt(now) // a refused request takes no token
	return false, min(wait, maxRetryAfter)
}

// reserve takes one token from key's bucket at time now, queueing for it
// when the bucket is empty: it returns how long the caller must wait before
// it goes on (0: at once). An append session's frames pass here, so that a
// session is held to the rate of its token's requests by back pressure
// (its next frame is read later) instead of refusals that would reorder
// its batches.
func (l *rateLimiter) reserve(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.bucketLocked(key, now).ReserveN(now, 1)
	if !r.OK() {
		return maxRetryAfter
	}
	return min(r.DelayFrom(now), maxRetryAfter)
}

// bucketLocked returns key's bucket, made full when new.
// REQUIRES: l.mu held.
func (l *rateLimiter) bucketLocked(key string, now time.Time) *rate.Limiter {
	b := l.mu.buckets[key]
	if b == nil {
		if len(l.mu.buckets) >= maxBuckets {
			l.sweepLocked(now)
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.mu.buckets[key] = b
	}
	return b
}

// limitKey is the rate limiter's key for a request: its token's ID, or
// the client's IP without one.
func limitKey(c echo.Context, tok *Token) string {
	if tok != nil {
		return "token:" + tok.ID
	}
	return "ip:" + c.RealIP()
}

// sweepLocked drops the buckets that have refilled completely: forgetting
// them changes nothing.
// REQUIRES: l.mu held.
func (l *rateLimiter) sweepLocked(now time.Time) {
	for k, b := range l.mu.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.mu.buckets, k)
		}
	}
}
