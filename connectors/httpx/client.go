package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config tunes a Client. Zero values take the defaults noted per field.
type Config struct {
	// Timeout bounds one attempt: connecting, sending and reading the whole
	// response (default 60s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxAttempts bounds the attempts of one request, the first included
	// (default 8). A 401 followed by a token refresh does not count.
	MaxAttempts int `yaml:"max_attempts"`
	// BaseDelay is the first backoff delay; each retry doubles it, with
	// jitter, up to MaxDelay (defaults 500ms and 30s).
	BaseDelay time.Duration `yaml:"base_delay"`
	MaxDelay  time.Duration `yaml:"max_delay"`
	// MaxRetryAfter is the longest Retry-After the client waits for; a
	// longer one ends the request with the 429/503 (default 2m).
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
	// MaxBody bounds a response body (default 64 MiB).
	MaxBody int64 `yaml:"max_body"`
	// UserAgent is sent with every request (default "autonomos").
	UserAgent string `yaml:"user_agent"`
}

func (c *Config) defaults() {
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = 500 * time.Millisecond
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 30 * time.Second
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = 2 * time.Minute
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 64 << 20
	}
	if c.UserAgent == "" {
		c.UserAgent = "autonomos"
	}
}

// Options are what a Client is built from.
type Options struct {
	// HTTP sends the requests (default: a client with Go's default
	// transport and no overall timeout; Config.Timeout bounds attempts).
	HTTP   *http.Client
	Config Config
	// Auth, when set, adds "Authorization: Bearer <token>" to every request.
	Auth Auth
	// Budget, when set, is acquired before every attempt.
	Budget Budget
	// Redactor scrubs error messages (default: patterns only).
	Redactor *Redactor
}

// Client sends requests with retries, budgets and tokens. Safe for
// concurrent use.
type Client struct {
	hc     *http.Client
	cfg    Config
	auth   Auth
	budget Budget
	redact *Redactor
	now    func() time.Time
	jitter func(n int64) int64 // uniform in [0, n)
}

// New returns a client.
func New(o Options) *Client {
	o.Config.defaults()
	hc := o.HTTP
	if hc == nil {
		hc = &http.Client{}
	}
	r := o.Redactor
	if r == nil {
		r = NewRedactor()
	}
	return &Client{hc: hc, cfg: o.Config, auth: o.Auth, budget: o.Budget, redact: r, now: time.Now, jitter: rand.Int64N}
}

// Redactor is the client's redactor.
func (c *Client) Redactor() *Redactor { return c.redact }

// Request is one logical request; its body is resent on every attempt.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
}

// Response is a response read in full.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, keeping JSON numbers exact (json.Number)
// when v holds interface values.
func (r *Response) JSON(v any) error {
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// StatusError is a non-2xx answer that retrying did not (or could not)
// fix. Its fields are already redacted.
type StatusError struct {
	Method string
	URL    string
	Status int
	// Body is the start of the response body (at most 2 KiB).
	Body string
	// Attempts is how many attempts were made.
	Attempts int
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	if e.Attempts > 1 {
		msg += fmt.Sprintf(" (after %d attempts)", e.Attempts)
	}
	return msg
}

// Retryable reports whether the status is one a later retry may fix.
func (e *StatusError) Retryable() bool { return retryableStatus(e.Status) }

func retryableStatus(s int) bool {
	switch s {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// StatusOf returns the HTTP status of err's StatusError (0 when none).
func StatusOf(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

// GetJSON sends a GET and decodes the JSON answer into out.
func (c *Client) GetJSON(ctx context.Context, url string, header http.Header, out any) error {
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, URL: url, Header: header})
	if err != nil {
		return err
	}
	return resp.JSON(out)
}

// PostJSON sends body as JSON and decodes the JSON answer into out.
func (c *Client) PostJSON(ctx context.Context, url string, header http.Header, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json")
	resp, err := c.Do(ctx, Request{Method: http.MethodPost, URL: url, Header: h, Body: b})
	if err != nil {
		return err
	}
	return resp.JSON(out)
}

// Do sends req until it succeeds (2xx), fails for good, runs out of
// attempts or ctx ends. A non-2xx end is a *StatusError (with the response
// also returned); ctx's end is ctx's error. Before each attempt it acquires
// the budget (a spent window allowance, *ExhaustedError, ends the request
// at once); a 429 or 503 waits for its Retry-After, other transient
// failures for an exponential backoff with jitter; a 401 makes Auth refresh
// the token and is retried once.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	if req.Method == "" {
		req.Method = http.MethodGet
	}
	if _, err := http.NewRequest(req.Method, req.URL, nil); err != nil {
		return nil, c.redact.Error(fmt.Errorf("build request: %w", err)) // no attempt can fix it
	}
	refreshed := false
	for attempt := 1; ; attempt++ {
		token := ""
		if c.auth != nil {
			// A token fetch has retries of its own; its failure is final.
			t, err := c.auth.Token(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, c.redact.Error(fmt.Errorf("get access token: %w", err))
			}
			token = t
		}
		resp, err := c.attempt(ctx, req, token)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var wait time.Duration
		switch {
		case errors.As(err, new(*ExhaustedError)):
			return nil, err // the org's window allowance is spent: no attempt may go
		case err != nil:
			// Transport failure or attempt timeout: retry after a backoff.
			if attempt >= c.cfg.MaxAttempts {
				return nil, c.redact.Error(fmt.Errorf("%s %s: %w (after %d attempts)", req.Method, c.redact.URL(req.URL), err, attempt))
			}
			wait = c.backoff(attempt)
		case resp.Status >= 200 && resp.Status < 300:
			return resp, nil
		case resp.Status == http.StatusUnauthorized && c.auth != nil && !refreshed && c.auth.Refresh(token):
			refreshed = true
			attempt-- // the refresh retry is free
			continue
		case retryableStatus(resp.Status) && attempt < c.cfg.MaxAttempts:
			d, ok := c.retryAfter(resp)
			switch {
			case ok && d > c.cfg.MaxRetryAfter:
				return resp, c.statusError(req, resp, attempt)
			case ok:
				wait = d
			default:
				wait = c.backoff(attempt)
			}
		default:
			return resp, c.statusError(req, resp, attempt)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

func (c *Client) statusError(req Request, resp *Response, attempts int) error {
	body := resp.Body
	if len(body) > 2048 {
		body = body[:2048]
	}
	return &StatusError{Method: req.Method, URL: c.redact.URL(req.URL), Status: resp.Status,
		Body: c.redact.String(strings.TrimSpace(string(body))), Attempts: attempts}
}

// attempt sends req once, with token, under the budget and the attempt
// timeout.
func (c *Client) attempt(ctx context.Context, req Request, token string) (*Response, error) {
	if c.budget != nil {
		release, err := c.budget.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(actx, req.Method, req.URL, body)
	if err != nil {
		return nil, c.redact.Error(fmt.Errorf("build request: %w", err))
	}
	for k, vs := range req.Header {
		hr.Header[k] = append([]string(nil), vs...)
	}
	if hr.Header.Get("Accept") == "" {
		hr.Header.Set("Accept", "application/json")
	}
	hr.Header.Set("User-Agent", c.cfg.UserAgent)
	if token != "" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.hc.Do(hr)
	if err != nil {
		return nil, c.transportError(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, c.cfg.MaxBody+1))
	if err != nil {
		return nil, c.transportError(err)
	}
	if int64(len(b)) > c.cfg.MaxBody {
		return nil, fmt.Errorf("response body larger than %d bytes", c.cfg.MaxBody)
	}
	return &Response{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

// transportError drops the URL a *url.Error quotes (it is added back,
// redacted, by the caller) and scrubs the rest.
func (c *Client) transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		err = ue.Err
	}
	return c.redact.Error(err)
}

// backoff is the wait before retry number attempt (1-based): BaseDelay
// doubled per attempt, capped at MaxDelay, with "equal jitter" (half fixed,
// half random) so a herd of clients spreads out but never retries at once.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.BaseDelay
	for i := 1; i < attempt && d < c.cfg.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, c.cfg.MaxDelay)
	half := int64(d / 2)
	if half <= 0 {
		return d
	}
	return time.Duration(half + c.jitter(half+1))
}

// retryAfter reads the Retry-After header of a response.
func (c *Client) retryAfter(resp *Response) (time.Duration, bool) {
	return ParseRetryAfter(resp.Header.Get("Retry-After"), c.now())
}

// ParseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date
// (relative to now; a date in the past means no wait). ok is false when v is
// empty or malformed.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		const maxSeconds = int64(1 << 62 / int64(time.Second))
		return time.Duration(min(n, maxSeconds)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
