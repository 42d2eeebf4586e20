package httpx

import (
	"context"
	"sync"
	"time"
)

// Auth supplies the bearer token of a Client's requests.
type Auth interface {
	// Token returns the current access token, fetching one when none is
	// cached or the cached one is about to expire.
	Token(ctx context.Context) (string, error)
	// Refresh is called when the source rejected stale with a 401. It
	// reports whether a retry may succeed (a new token can be fetched);
	// false means the credentials themselves are bad.
	Refresh(stale string) bool
}

// Token is an access token and when it expires (zero: unknown; it is used
// until the source rejects it).
type Token struct {
	Value  string
	Expiry time.Time
}

// TokenFunc fetches a new access token (an OAuth grant).
type TokenFunc func(ctx context.Context) (Token, error)

// Tokens caches the token of a TokenFunc: one fetch at a time, reused until
// a minute before it expires or until the source rejects it. Every token it
// obtains is taught to the redactor. Safe for concurrent use.
type Tokens struct {
	fetch  TokenFunc
	redact *Redactor
	now    func() time.Time
	gate   chan struct{} // one fetch at a time, ctx-aware

	mu  sync.Mutex
	tok Token
}

var _ Auth = (*Tokens)(nil)

// NewTokens returns a token cache over fetch; r (may be nil) learns every
// token fetched.
func NewTokens(fetch TokenFunc, r *Redactor) *Tokens {
	return &Tokens{fetch: fetch, redact: r, now: time.Now, gate: make(chan struct{}, 1)}
}

// expirySlack is how long before its expiry a token is replaced.
const expirySlack = time.Minute

func (t *Tokens) cached() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok.Value == "" || (!t.tok.Expiry.IsZero() && t.now().After(t.tok.Expiry.Add(-expirySlack))) {
		return ""
	}
	return t.tok.Value
}

// Token returns a valid-looking cached token or fetches a new one.
func (t *Tokens) Token(ctx context.Context) (string, error) {
	if v := t.cached(); v != "" {
		return v, nil
	}
	select {
	case t.gate <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-t.gate }()
	if v := t.cached(); v != "" { // another caller fetched it meanwhile
		return v, nil
	}
	tok, err := t.fetch(ctx)
	if err != nil {
		return "", err
	}
	t.redact.Add(tok.Value)
	t.mu.Lock()
	t.tok = tok
	t.mu.Unlock()
	return tok.Value, nil
}

// Refresh forgets stale (if it is still the cached token); the next Token
// call fetches a new one.
func (t *Tokens) Refresh(stale string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok.Value == stale {
		t.tok = Token{}
	}
	return true
}

// Static is a long-lived token (an API key, a private app token) that
// cannot be refreshed: a 401 is final.
type Static string

var _ Auth = Static("")

// Token returns the token itself.
func (s Static) Token(context.Context) (string, error) { return string(s), nil }

// Refresh reports false: there is nothing to refresh.
func (s Static) Refresh(string) bool { return false }
