package quota

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Limit sizes one shared bucket. Every process sharing a key must use the
// same Limit.
type Limit struct {
	// Rate is how many tokens are added per second. 0 means no rate limit
	// (the bucket is always full), for a window-only budget.
	Rate float64 `yaml:"rate"`
	// Burst is the bucket's capacity: how many tokens may go at once after a
	// quiet spell. At least 1.
	Burst int `yaml:"burst"`
	// Window and PerWindow, when both are set, also cap the tokens granted
	// per fixed window: at most PerWindow in each Window. The first window
	// starts at the key's first use, each next one when the last ended.
	Window    time.Duration `yaml:"window"`
	PerWindow int           `yaml:"per_window"`
}

func (l Limit) validate() error {
	var errs []error
	if l.Rate < 0 || math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0) {
		errs = append(errs, fmt.Errorf("quota limit rate: must be a finite number >= 0, got %v", l.Rate))
	}
	if l.Burst < 1 {
		errs = append(errs, fmt.Errorf("quota limit burst: must be at least 1, got %d", l.Burst))
	}
	if l.Window < 0 || l.PerWindow < 0 || (l.Window > 0) != (l.PerWindow > 0) {
		errs = append(errs, fmt.Errorf("quota limit window: window and per_window go together and are positive, got %v and %d", l.Window, l.PerWindow))
	}
	if l.Rate == 0 && l.Window == 0 {
		errs = append(errs, errors.New("quota limit: a rate, a window or both"))
	}
	return errors.Join(errs...)
}

func (l Limit) windowed() bool { return l.Window > 0 && l.PerWindow > 0 }

// state is a shared bucket as stored (JSON) under its key; readable with
// `nats kv get quotas <key>`.
type state struct {
	// Rate and Burst are the limit the last writer applied (for operators).
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
	// Tokens were in the bucket at At.
	Tokens float64   `json:"tokens"`
	At     time.Time `json:"at"`
	// WindowStart and WindowUsed count the current window, when the limit
	// has one.
	WindowStart time.Time `json:"window_start,omitzero"`
	WindowUsed  int       `json:"window_used,omitempty"`
	// Members are the instances that leased from the bucket lately, with the
	// time of their last lease.
	Members map[string]time.Time `json:"members"`
}

func newState(l Limit, now time.Time) *state {
	return &state{Rate: l.Rate, Burst: l.Burst, Tokens: float64(l.Burst), At: now, Members: map[string]time.Time{}}
}

// advance refills the bucket up to now and rolls the window over. A now
// before At (another writer's clock is ahead) refills nothing.
func (s *state) advance(l Limit, now time.Time) {
	s.Rate, s.Burst = l.Rate, l.Burst
	if s.Members == nil {
		s.Members = map[string]time.Time{}
	}
	switch {
	case l.Rate == 0:
		s.Tokens = float64(l.Burst)
	case now.After(s.At):
		s.Tokens += l.Rate * now.Sub(s.At).Seconds()
	}
	s.Tokens = math.Min(math.Max(s.Tokens, 0), float64(l.Burst))
	if now.After(s.At) {
		s.At = now
	}
	if !l.windowed() {
		s.WindowStart, s.WindowUsed = time.Time{}, 0
		return
	}
	if s.WindowStart.IsZero() || s.WindowStart.After(now.Add(l.Window)) {
		s.WindowStart, s.WindowUsed = now, 0
	} else if !now.Before(s.WindowStart.Add(l.Window)) {
		n := now.Sub(s.WindowStart) / l.Window
		s.WindowStart, s.WindowUsed = s.WindowStart.Add(n*l.Window), 0
	}
}

// windowLeft is what the current window still grants (MaxInt without one).
func (s *state) windowLeft(l Limit) int {
	if !l.windowed() {
		return math.MaxInt
	}
	return max(l.PerWindow-s.WindowUsed, 0)
}

// take removes up to want whole tokens and returns how many it removed.
func (s *state) take(l Limit, want int) int {
	n := min(want, int(math.Floor(s.Tokens)), s.windowLeft(l))
	if n <= 0 {
		return 0
	}
	s.Tokens -= float64(n)
	if l.windowed() {
		s.WindowUsed += n
	}
	return n
}

// wait is how long from now until want tokens (or what the window still
// grants, if less) are in the bucket, assuming nobody else takes them;
// exhausted says the window is spent and the wait lasts until it ends.
func (s *state) wait(l Limit, want int, now time.Time) (d time.Duration, exhausted bool) {
	left := s.windowLeft(l)
	if left == 0 {
		return max(s.WindowStart.Add(l.Window).Sub(now), time.Millisecond), true
	}
	need := float64(max(1, min(want, left, l.Burst)))
	if s.Tokens >= need || l.Rate == 0 {
		return time.Millisecond, false
	}
	return max(time.Duration((need-s.Tokens)/l.Rate*float64(time.Second)), time.Millisecond), false
}

// touch records instance's lease at now and forgets members not seen for
// ttl; it returns how many instances share the bucket.
func (s *state) touch(instance string, now time.Time, ttl time.Duration) int {
	s.Members[instance] = now
	for m, at := range s.Members {
		if now.Sub(at) > ttl {
			delete(s.Members, m)
		}
	}
	return len(s.Members)
}

// Key turns a bucket name into a KV key: bytes outside [A-Za-z0-9_-] and
// the dots that would leave an empty token become "=XX" (hex), so any name
// (an org's "salesforce:acme.my.salesforce.com") is a valid key, and two
// names never share one.
func Key(name string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteByte(c)
		case c == '.' && i > 0 && i < len(name)-1 && name[i+1] != '.':
			b.WriteByte(c)
		default:
			b.WriteByte('=')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	if b.Len() == 0 {
		return "=00"
	}
	return b.String()
}
