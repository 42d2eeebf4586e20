package gateway

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
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

// rateLimit is the third middleware: it takes one token from the tenant's
// bucket of the route's class (reads: GET, HEAD; writes: the rest) and
// answers 429 with Retry-After when the bucket is empty. Every
// authenticated response carries RateLimit-Limit, RateLimit-Remaining and
// RateLimit-Reset (and RateLimit-Policy). Unauthenticated requests have no
// tenant and never touch a tenant's bucket (login has its own throttle).
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		st := stateOf(c)
		if st.principal == nil {
			return next(c)
		}
		set, class := s.readLimits, classRead
		if mutating(c.Request().Method) {
			set, class = s.writeLimits, classWrite
		}
		lim := set.get(st.principal.Tenant)
		now := time.Now()
		r := lim.ReserveN(now, 1)
		h := c.Response().Header()
		burst := set.rate.Burst
		h.Set("RateLimit-Limit", strconv.Itoa(burst))
		h.Set("RateLimit-Policy", strconv.Itoa(burst)+";w="+strconv.Itoa(ceilSeconds(time.Duration(float64(burst)/float64(set.rate.Limit)*float64(time.Second)))))
		if wait := r.DelayFrom(now); wait > 0 {
			r.CancelAt(now)
			secs := ceilSeconds(wait)
			h.Set("Retry-After", strconv.Itoa(secs))
			h.Set("RateLimit-Remaining", "0")
			h.Set("RateLimit-Reset", strconv.Itoa(secs))
			s.metrics.rateLimited.WithLabelValues(class).Inc()
			return s.refuse(c, newError(http.StatusTooManyRequests, CodeRateLimited,
				"rate limit of %s requests exceeded for this tenant; retry in %d s", class, secs))
		}
		tokens := lim.TokensAt(now)
		h.Set("RateLimit-Remaining", strconv.Itoa(int(math.Max(0, math.Floor(tokens)))))
		refill := (float64(burst) - tokens) / float64(set.rate.Limit)
		h.Set("RateLimit-Reset", strconv.Itoa(int(math.Ceil(math.Max(0, refill)))))
		return next(c)
	}
}
