package httpx

import (
	"context"
	"sync"

	"golang.org/x/time/rate"
)

// Budget is the request budget of one source org: a request rate and a
// bound on requests in flight, shared by every connection (and, with a
// shared implementation, every instance) that calls the org. It is safe for
// concurrent use.
type Budget interface {
	// Acquire waits until one more request may be sent, or ctx ends (its
	// error is returned then). The caller calls release once the response
	// was read.
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
	// Concurrency bounds requests in flight (default 4).
	Concurrency int
}

func (l Limits) withDefaults() Limits {
	if l.Burst <= 0 {
		l.Burst = max(1, int(l.PerSecond+0.999))
	}
	if l.Concurrency <= 0 {
		l.Concurrency = 4
	}
	return l
}

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
	return &LocalBudget{rate: rate.NewLimiter(lim, limits.Burst), slots: make(chan struct{}, limits.Concurrency)}
}

// LocalBudget is a budget in process memory: a token-bucket rate and a
// semaphore of concurrency slots.
type LocalBudget struct {
	rate  *rate.Limiter
	slots chan struct{}
}

var _ Budget = (*LocalBudget)(nil)

func (b *LocalBudget) Acquire(ctx context.Context) (func(), error) {
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
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
