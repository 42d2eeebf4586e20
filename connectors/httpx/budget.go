package httpx

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/autonomos/autonomos/streams/quota"
)

// Budget is the request budget of one source org: a request rate, an
// optional allowance per window and a bound on requests in flight, shared
// by every connection (and, with SharedBudgets, every instance) that calls
// the org. It is safe for concurrent use.
type Budget interface {
	// Acquire waits until one more request may be sent, or ctx ends (its
	// error is returned then). When the org's window allowance is spent for
	// longer than a minute it returns an *ExhaustedError at once. The
	// caller calls release once the response was read.
	Acquire(ctx context.Context) (release func(), err error)
}

// Budgets hands out the Budget of a source org, keyed by a string that
// identifies the org (the connectors use "<system>:<host>[:<app>]", never a
// secret). limits applies when the org has no budget yet.
type Budgets interface {
	Budget(org string, limits Limits) Budget
}

// Limits size a budget.
type Limits struct {
	// PerSecond is the sustained request rate (0 means unlimited).
	PerSecond float64
	// Burst is how many requests may go at once after a quiet spell
	// (default: PerSecond rounded up, at least 1).
	Burst int
	// Concurrency bounds requests in flight (default 4). It is per
	// process, also with SharedBudgets.
	Concurrency int
	// Window and PerWindow, when both are set, allow at most PerWindow
	// requests per fixed Window (an org's daily API allowance: 24h and its
	// size), the first window starting at the first request.
	Window    time.Duration
	PerWindow int
}

func (l Limits) withDefaults() Limits {
	if l.Burst <= 0 {
		l.Burst = max(1, int(l.PerSecond+0.999))
	}
	if l.Concurrency <= 0 {
		l.Concurrency = 4
	}
	if l.Window <= 0 || l.PerWindow <= 0 {
		l.Window, l.PerWindow = 0, 0
	}
	return l
}

// ExhaustedError says an org's window allowance is spent: the request was
// not sent. A request after Until may go.
type ExhaustedError struct {
	Org   string
	Until time.Time
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("request budget of %s: the window's allowance is spent until %s", e.Org, e.Until.UTC().Format(time.RFC3339))
}

// maxWindowWait is the longest wait for a new window that Acquire sits out.
const maxWindowWait = time.Minute

// LocalBudgets keeps budgets in process memory: every Client of the
// process that calls the same org shares one rate limiter and one
// concurrency bound. Safe for concurrent use.
type LocalBudgets struct {
	mu sync.Mutex
	m  map[string]*LocalBudget
}

var _ Budgets = (*LocalBudgets)(nil)

// NewLocalBudgets returns an empty set of in-process budgets.
func NewLocalBudgets() *LocalBudgets { return &LocalBudgets{m: map[string]*LocalBudget{}} }

// Budget returns org's budget, creating it with limits on first use.
func (b *LocalBudgets) Budget(org string, limits Limits) Budget {
	b.mu.Lock()
	defer b.mu.Unlock()
	if lb, ok := b.m[org]; ok {
		return lb
	}
	lb := NewBudget(limits)
	lb.org = org
	b.m[org] = lb
	return lb
}

// NewBudget returns a budget of its own (not shared with anyone).
func NewBudget(limits Limits) *LocalBudget {
	limits = limits.withDefaults()
	lim := rate.Inf
	if limits.PerSecond > 0 {
		lim = rate.Limit(limits.PerSecond)
	}
	return &LocalBudget{rate: rate.NewLimiter(lim, limits.Burst), slots: make(chan struct{}, limits.Concurrency),
		window: limits.Window, perWindow: limits.PerWindow, now: time.Now}
}

// LocalBudget is a budget in process memory: a token-bucket rate, a count
// per window and a semaphore of concurrency slots.
type LocalBudget struct {
	org   string
	rate  *rate.Limiter
	slots chan struct{}

	window    time.Duration
	perWindow int
	now       func() time.Time
	mu        sync.Mutex
	start     time.Time // of the current window
	used      int
}

var _ Budget = (*LocalBudget)(nil)

func (b *LocalBudget) Acquire(ctx context.Context) (func(), error) {
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := b.countWindow(ctx); err != nil {
		<-b.slots
		return nil, err
	}
	if err := b.rate.Wait(ctx); err != nil {
		<-b.slots
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { <-b.slots }) }, nil
}

// countWindow counts one request in the current window, waiting for the
// next window when this one is spent and ends within maxWindowWait.
func (b *LocalBudget) countWindow(ctx context.Context) error {
	if b.perWindow == 0 {
		return nil
	}
	for {
		b.mu.Lock()
		now := b.now()
		if b.start.IsZero() || !now.Before(b.start.Add(b.window)) {
			b.start, b.used = now, 0
		}
		if b.used < b.perWindow {
			b.used++
			b.mu.Unlock()
			return nil
		}
		until := b.start.Add(b.window)
		b.mu.Unlock()
		if until.Sub(now) > maxWindowWait {
			return &ExhaustedError{Org: b.org, Until: until}
		}
		t := time.NewTimer(until.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// SharedBudgets keeps each org's rate and window allowance in a shared
// quota bucket ("org.<org>", in the quotas KV bucket), so the connections
// of every process on one NATS that call the same org stay within its
// limits together; each process leases a few requests at a time (see
// package quota). The concurrency bound stays per process. While NATS
// cannot be reached, a process budgets locally at the rate divided by the
// processes last seen sharing the org (windows are not counted then; the
// connectors cannot publish without NATS either). Safe for concurrent use.
type SharedBudgets struct {
	k  *quota.Keeper
	mu sync.Mutex
	m  map[string]Budget
}

var _ Budgets = (*SharedBudgets)(nil)

// NewSharedBudgets returns budgets shared through k.
func NewSharedBudgets(k *quota.Keeper) *SharedBudgets {
	return &SharedBudgets{k: k, m: map[string]Budget{}}
}

// Budget returns org's budget, creating it with limits on first use.
func (s *SharedBudgets) Budget(org string, limits Limits) Budget {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.m[org]; ok {
		return b
	}
	limits = limits.withDefaults()
	var b Budget
	if limits.PerSecond <= 0 && limits.PerWindow == 0 {
		lb := NewBudget(limits) // nothing to share: only the concurrency bound
		lb.org = org
		b = lb
	} else {
		b = &sharedBudget{k: s.k, org: org, name: "org." + org, slots: make(chan struct{}, limits.Concurrency),
			lim: quota.Limit{Rate: limits.PerSecond, Burst: limits.Burst, Window: limits.Window, PerWindow: limits.PerWindow}}
	}
	s.m[org] = b
	return b
}

// sharedBudget is one org's budget in a shared quota bucket.
type sharedBudget struct {
	k     *quota.Keeper
	org   string
	name  string
	lim   quota.Limit
	slots chan struct{}
}

func (b *sharedBudget) Acquire(ctx context.Context) (func(), error) {
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// The keeper forgets idle buckets; asking it each time keeps one
	// bucket per org in the process.
	if err := b.k.Bucket(b.name, b.lim).Wait(ctx); err != nil {
		<-b.slots
		if ex, ok := errors.AsType[*quota.ExhaustedError](err); ok {
			return nil, &ExhaustedError{Org: b.org, Until: ex.Until}
		}
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { <-b.slots }) }, nil
}
