package gateway

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/autonomos/autonomos/streams/quota"
)

// limiterSet holds one token bucket per key (a tenant, an address, an
// account), created on first use and dropped once idle and full again.
// Safe for concurrent use.
type limiterSet struct {
	rate Rate

	mu        sync.Mutex
	m         map[string]*rate.Limiter
	lastSweep time.Time
}

func newLimiterSet(r Rate) *limiterSet {
	return &limiterSet{rate: r, m: map[string]*rate.Limiter{}, lastSweep: time.Now()}
}

// sweepEvery bounds how often idle buckets are looked for.
const sweepEvery = time.Minute

func (l *limiterSet) get(key string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.lastSweep) > sweepEvery {
		l.lastSweep = now
		for k, lim := range l.m {
			// A full bucket is the same as a new one: forget it.
			if lim.TokensAt(now) >= float64(l.rate.Burst) {
				delete(l.m, k)
			}
		}
	}
	lim, ok := l.m[key]
	if !ok {
		lim = rate.NewLimiter(l.rate.Limit, l.rate.Burst)
		l.m[key] = lim
	}
	return lim
}

// Route classes of the per-tenant limits.
const (
	classRead  = "read"
	classWrite = "write"
)

// RateDecision is a rate limiter's answer for one request.
type RateDecision struct {
	// OK says the request may go; it spent a token.
	OK bool
	// RetryAfter, when not OK, is how long until the limiter admits again.
	RetryAfter time.Duration
	// Remaining is the tokens left in the bucket as far as the limiter
	// knows.
	Remaining int
}

// RateLimiter holds one token bucket per key (a tenant) for one route
// class. Take decides at once whether one more request under key may go,
// spending a token when it may; it may make one bounded round trip (a
// shared limiter leasing tokens) and must answer, never fail: a limiter
// that cannot reach what it shares decides locally. ctx is the request's.
// Called concurrently. The gateway never closes it.
type RateLimiter interface {
	Take(ctx context.Context, key string) RateDecision
}

// LimiterFactory makes the RateLimiter of a route class ("read" or
// "write") at the class's configured rate (Config.RateRead, RateWrite).
type LimiterFactory func(class string, r Rate) RateLimiter

// Take implements RateLimiter with the process's own buckets.
func (l *limiterSet) Take(_ context.Context, key string) RateDecision {
	lim := l.get(key)
	now := time.Now()
	r := lim.ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return RateDecision{RetryAfter: wait}
	}
	return RateDecision{OK: true, Remaining: int(math.Max(0, math.Floor(lim.TokensAt(now))))}
}

// SharedLimits makes rate limiters whose buckets every gateway instance on
// the same NATS shares, through k: the tenant's bucket of a class is the
// quota bucket "gateway.<class>.<tenant>". Each instance leases a few
// tokens at a time, so together the instances admit a tenant's rate once,
// however a balancer spreads its requests. While NATS cannot be reached,
// each instance decides locally at rate/N (see package quota).
func SharedLimits(k *quota.Keeper) LimiterFactory {
	return func(class string, r Rate) RateLimiter {
		return sharedLimiter{k: k, prefix: "gateway." + class + ".", lim: quota.Limit{Rate: float64(r.Limit), Burst: r.Burst}}
	}
}

type sharedLimiter struct {
	k      *quota.Keeper
	prefix string
	lim    quota.Limit
}

func (l sharedLimiter) Take(ctx context.Context, key string) RateDecision {
	d := l.k.Bucket(l.prefix+key, l.lim).Take(ctx)
	return RateDecision{OK: d.OK, RetryAfter: d.RetryAfter, Remaining: d.Remaining}
}

// classLimit is one route class's rate and its limiter.
type classLimit struct {
	rate Rate
	lim  RateLimiter
}

func newClassLimit(class string, r Rate, f LimiterFactory) classLimit {
	if f == nil {
		return classLimit{rate: r, lim: newLimiterSet(r)}
	}
	return classLimit{rate: r, lim: f(class, r)}
}

// rateLimit is the third middleware: it takes one token from the tenant's
// bucket of the route's class (reads: GET, HEAD; writes: the rest) and
// answers 429 with Retry-After when the bucket is empty. Every
// authenticated response carries RateLimit-Limit, RateLimit-Remaining and
// RateLimit-Reset (and RateLimit-Policy). Unauthenticated requests have no
// tenant and never touch a tenant's bucket (login has its own throttle).
// The buckets are this instance's own unless Deps.Limiters shares them.
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		st := stateOf(c)
		if st.principal == nil {
			return next(c)
		}
		cl, class := s.readLimits, classRead
		if mutating(c.Request().Method) {
			cl, class = s.writeLimits, classWrite
		}
		d := cl.lim.Take(c.Request().Context(), st.principal.Tenant)
		h := c.Response().Header()
		burst, per := cl.rate.Burst, float64(cl.rate.Limit)
		h.Set("RateLimit-Limit", strconv.Itoa(burst))
		h.Set("RateLimit-Policy", strconv.Itoa(burst)+";w="+strconv.Itoa(ceilSeconds(time.Duration(float64(burst)/per*float64(time.Second)))))
		if !d.OK {
			secs := ceilSeconds(d.RetryAfter)
			h.Set("Retry-After", strconv.Itoa(secs))
			h.Set("RateLimit-Remaining", "0")
			h.Set("RateLimit-Reset", strconv.Itoa(secs))
			s.metrics.rateLimited.WithLabelValues(class).Inc()
			return s.refuse(c, newError(http.StatusTooManyRequests, CodeRateLimited,
				"rate limit of %s requests exceeded for this tenant; retry in %d s", class, secs))
		}
		remaining := min(max(d.Remaining, 0), burst)
		h.Set("RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("RateLimit-Reset", strconv.Itoa(int(math.Ceil(float64(burst-remaining)/per))))
		return next(c)
	}
}
