package httpapi

import (
	"sync"
	"time"

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
	b := l.mu.buckets[key]
	if b == nil {
		if len(l.mu.buckets) >= maxBuckets {
			l.sweepLocked(now)
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.mu.buckets[key] = b
	}
	r := b.ReserveN(now, 1)
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
