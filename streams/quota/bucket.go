package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"
)

// Decision is a bucket's answer for one request.
type Decision struct {
	// OK says the request may go; it spent a token.
	OK bool
	// RetryAfter, when not OK, is how long until this process admits under
	// the bucket again.
	RetryAfter time.Duration
	// Remaining is what is left as far as this process knows: the tokens it
	// leased and has not spent plus the shared bucket as it last saw it,
	// refilled since (or the local fallback's tokens).
	Remaining int
	// Exhausted, when not OK, says the window's count is spent: RetryAfter
	// lasts until the window ends.
	Exhausted bool
	// Local says the local fallback decided: NATS could not be reached.
	Local bool
}

// ExhaustedError is Wait's answer when the window's count is spent for
// longer than Wait waits (a minute).
type ExhaustedError struct {
	Name  string    // the bucket's name
	Until time.Time // when the next window starts
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("quota %s: the window's requests are spent until %s", e.Name, e.Until.UTC().Format(time.RFC3339))
}

// maxWindowWait is the longest wait for a new window that Wait sits out.
const maxWindowWait = time.Minute

// maxConflicts bounds the compare-and-set retries of one lease.
const maxConflicts = 8

// Bucket is one shared token bucket as this process sees it: the tokens it
// leased and has not spent, and what it last saw of the shared state. Safe
// for concurrent use; at most one lease per bucket is in flight, and
// callers arriving meanwhile wait for it.
type Bucket struct {
	k        *Keeper
	name     string
	key      string
	lim      Limit
	leaseMax int

	mu        sync.Mutex
	pool      int           // leased, not spent
	poolEnd   time.Time     // the pool's window ends then (zero: no window)
	retryAt   time.Time     // the shared bucket is empty until then
	exhausted bool          // ... because its window is spent
	inflight  chan struct{} // closed when the lease in flight ends
	waiting   int           // callers waiting for the lease in flight
	seen      view          // the shared state at the last lease
	local     *rate.Limiter // the fallback while NATS is unreachable
	used      time.Time     // last Take
}

// view is what a lease saw of the shared state.
type view struct {
	tokens  float64
	at      time.Time
	left    int // of the window (MaxInt without one)
	members int
}

func newBucket(k *Keeper, name string, l Limit) *Bucket {
	n := l.Burst / 10
	if l.Rate > 0 {
		n = min(n, int(math.Ceil(l.Rate*k.cfg.Lease.Seconds())))
	}
	if l.windowed() {
		n = min(n, l.PerWindow/10)
	}
	return &Bucket{k: k, name: name, key: Key(name), lim: l, leaseMax: max(n, 1), used: k.now()}
}

// Name is the bucket's name; Key(Name()) is its KV key.
func (b *Bucket) Name() string { return b.name }

// Limit is the limit the bucket was made with.
func (b *Bucket) Limit() Limit { return b.lim }

func (b *Bucket) idle(now time.Time, after time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inflight == nil && now.Sub(b.used) > after
}

// Take decides at once whether one more request may go, spending a token
// if so. It waits only for a lease of tokens from NATS (bounded by
// Config.Timeout) when this process has none left; ctx ending while it
// waits for another caller's lease refuses the request.
func (b *Bucket) Take(ctx context.Context) Decision {
	for {
		now := b.k.now()
		b.mu.Lock()
		b.used = now
		if b.pool > 0 && (b.poolEnd.IsZero() || now.Before(b.poolEnd)) {
			b.pool--
			d := Decision{OK: true, Remaining: b.remaining(now)}
			b.mu.Unlock()
			return d
		}
		b.pool = 0
		local := b.k.Local()
		if b.inflight != nil {
			if local { // a probe of an outage is in flight: do not wait for it
				d := b.takeLocal(now)
				b.mu.Unlock()
				return d
			}
			ch := b.inflight
			b.waiting++
			b.mu.Unlock()
			var done bool
			select {
			case <-ch:
			case <-ctx.Done():
				done = true
			}
			b.mu.Lock()
			b.waiting--
			b.mu.Unlock()
			if done {
				return Decision{RetryAfter: time.Second}
			}
			continue
		}
		if !local {
			b.local = nil
			if now.Before(b.retryAt) {
				d := Decision{RetryAfter: b.retryAt.Sub(now), Exhausted: b.exhausted, Remaining: b.remaining(now)}
				b.mu.Unlock()
				return d
			}
		}
		if b.k.decideLocally(now) {
			d := b.takeLocal(now)
			b.mu.Unlock()
			return d
		}
		ch := make(chan struct{})
		b.inflight = ch
		// Callers already waiting get tokens of this lease too, so a busy
		// process is not held to one lease's worth per round trip.
		want := min(b.leaseMax+b.waiting, b.lim.Burst)
		b.mu.Unlock()

		res, err := b.lease(ctx, want)

		b.mu.Lock()
		b.inflight = nil
		close(ch)
		if err != nil {
			b.mu.Unlock()
			b.k.failed(err)
			continue
		}
		if res.seen {
			b.seen = res.view
		}
		b.pool += res.granted
		b.poolEnd = res.windowEnd
		b.retryAt, b.exhausted = time.Time{}, false
		if res.granted == 0 {
			b.retryAt, b.exhausted = b.k.now().Add(res.wait), res.exhausted
		}
		b.mu.Unlock()
		b.k.succeeded(res.view.members)
	}
}

// remaining is the tokens this process knows of; b.mu is held.
func (b *Bucket) remaining(now time.Time) int {
	if b.seen.at.IsZero() {
		return b.pool
	}
	t := b.seen.tokens
	if b.lim.Rate == 0 {
		t = float64(b.lim.Burst)
	} else if now.After(b.seen.at) {
		t = math.Min(float64(b.lim.Burst), t+b.lim.Rate*now.Sub(b.seen.at).Seconds())
	}
	return b.pool + min(int(math.Floor(t)), b.seen.left)
}

// takeLocal decides with the fallback limiter: Rate/N and Burst/N, N being
// the instances last seen sharing the bucket. b.mu is held.
func (b *Bucket) takeLocal(now time.Time) Decision {
	b.k.local.Add(1)
	if b.local == nil {
		n := b.seen.members
		if n < 1 {
			n = b.k.lastMembers()
		}
		lim := rate.Inf
		if b.lim.Rate > 0 {
			lim = rate.Limit(b.lim.Rate / float64(n))
		}
		b.local = rate.NewLimiter(lim, max(1, b.lim.Burst/n))
	}
	r := b.local.ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return Decision{RetryAfter: wait, Local: true}
	}
	return Decision{OK: true, Remaining: int(b.local.TokensAt(now)), Local: true}
}

// Wait blocks until it spent a token for the caller (nil), ctx ends (ctx's
// error), or the bucket's window is spent for longer than a minute
// (*ExhaustedError, at once).
func (b *Bucket) Wait(ctx context.Context) error {
	for {
		d := b.Take(ctx)
		if d.OK {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.Exhausted && d.RetryAfter > maxWindowWait {
			return &ExhaustedError{Name: b.name, Until: b.k.now().Add(d.RetryAfter)}
		}
		t := time.NewTimer(d.RetryAfter)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// leaseResult is what one lease got.
type leaseResult struct {
	granted   int
	wait      time.Duration // when none was granted: until enough are back
	exhausted bool          // ... because the window is spent
	windowEnd time.Time
	seen      bool // view is new
	view      view
}

// lease takes up to want tokens from the shared state with a
// compare-and-set write, retrying when another instance wrote first. An
// error means NATS could not be reached (or answered nonsense).
func (b *Bucket) lease(ctx context.Context, want int) (leaseResult, error) {
	if !b.k.connected() {
		return leaseResult{}, errNotConnected
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.k.cfg.Timeout)
	defer cancel()
	inst, ttl := b.k.cfg.Instance, b.k.cfg.MemberTTL
	for range maxConflicts {
		st, rev, err := b.read(ctx)
		if err != nil {
			return leaseResult{}, err
		}
		now := b.k.now().UTC()
		st.advance(b.lim, now)
		got := st.take(b.lim, want)
		last, known := st.Members[inst]
		fresh := known && now.Sub(last) < ttl/2
		members := st.touch(inst, now, ttl)
		res := leaseResult{granted: got, seen: true,
			view: view{tokens: st.Tokens, at: st.At, left: st.windowLeft(b.lim), members: members}}
		if b.lim.windowed() {
			res.windowEnd = st.WindowStart.Add(b.lim.Window)
		}
		if got == 0 {
			res.wait, res.exhausted = st.wait(b.lim, b.leaseMax, now)
			if fresh && rev != 0 { // nothing worth writing
				b.k.leases.Add(1)
				return res, nil
			}
		}
		data, err := json.Marshal(st)
		if err != nil {
			return leaseResult{}, fmt.Errorf("quota %s: encode: %w", b.key, err)
		}
		if rev == 0 {
			_, err = b.k.kv.Create(ctx, b.key, data)
		} else {
			_, err = b.k.kv.Update(ctx, b.key, data, rev)
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			b.k.conflicts.Add(1)
			continue
		}
		if err != nil {
			return leaseResult{}, fmt.Errorf("quota %s: write: %w", b.key, err)
		}
		b.k.leases.Add(1)
		if got > 0 {
			b.k.granted.Add(1)
			b.k.tokens.Add(uint64(got))
		}
		return res, nil
	}
	// Every compare-and-set lost to another instance: ask again shortly.
	return leaseResult{wait: 5 * time.Millisecond}, nil
}

// read gets the shared state and its revision (0: no such key yet).
func (b *Bucket) read(ctx context.Context) (*state, uint64, error) {
	e, err := b.k.kv.Get(ctx, b.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return newState(b.lim, b.k.now().UTC()), 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("quota %s: read: %w", b.key, err)
	}
	var st state
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		b.k.log.Warn("shared bucket state unreadable: starting it afresh", "key", b.key, "error", err)
		return newState(b.lim, b.k.now().UTC()), e.Revision(), nil
	}
	return &st, e.Revision(), nil
}
