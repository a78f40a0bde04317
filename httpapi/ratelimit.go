package httpapi

import (
	"math"
	"sync"
	"time"
)

// rateLimiter is a token bucket per key (a token's ID or a client IP). It
// is safe for concurrent use and runs no goroutine: idle full buckets are
// dropped when the map grows past maxBuckets.
type rateLimiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu struct {
		sync.Mutex
		buckets map[string]*bucket
	}
}

type bucket struct {
	tokens float64
	last   time.Time
}

const maxBuckets = 10000

func newRateLimiter(rate float64, burst int) *rateLimiter {
	l := &rateLimiter{rate: rate, burst: float64(max(burst, 1)), now: time.Now}
	l.mu.buckets = make(map[string]*bucket)
	return l
}

// allow takes one token from key's bucket. When it is empty it returns
// false and how long until a token is available.
func (l *rateLimiter) allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.mu.buckets[key]
	if b == nil {
		if len(l.mu.buckets) >= maxBuckets {
			l.sweepLocked(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.mu.buckets[key] = b
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := (1 - b.tokens) / l.rate
	if math.IsInf(wait, 0) || wait > float64(24*time.Hour/time.Second) {
		return false, 24 * time.Hour
	}
	return false, time.Duration(wait * float64(time.Second))
}

func (l *rateLimiter) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+el*l.rate)
		b.last = now
	}
}

// sweepLocked drops the buckets that have refilled completely: forgetting
// them changes nothing.
// REQUIRES: l.mu held.
func (l *rateLimiter) sweepLocked(now time.Time) {
	for k, b := range l.mu.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.mu.buckets, k)
		}
	}
}
