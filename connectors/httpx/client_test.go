package httpx_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/httpx"
)

// fast makes backoffs short so tests do not wait on them.
var fast = httpx.Config{BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond, Timeout: 2 * time.Second}

// script is a test server answering with a sequence of statuses (the last
// repeats) and recording what it saw.
type script struct {
	mu       sync.Mutex
	statuses []int
	header   http.Header // sent with non-2xx answers
	calls    int
	auths    []string
	inflight int32
	maxIn    int32
	delay    time.Duration
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := atomic.AddInt32(&s.inflight, 1)
	defer atomic.AddInt32(&s.inflight, -1)
	for {
		m := atomic.LoadInt32(&s.maxIn)
		if n <= m || atomic.CompareAndSwapInt32(&s.maxIn, m, n) {
			break
		}
	}
	s.mu.Lock()
	i := min(s.calls, len(s.statuses)-1)
	s.calls++
	s.auths = append(s.auths, r.Header.Get("Authorization"))
	status, delay := s.statuses[i], s.delay
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if status >= 300 {
		for k, v := range s.header {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"ok":true,"n":12345678901234567890.5}`))
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func serve(t *testing.T, s *script) string {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestDoRetries(t *testing.T) {
	cases := []struct {
		name      string
		statuses  []int
		header    http.Header
		attempts  int
		wantCalls int
		wantErr   int // status of the StatusError, 0 for success
		minWait   time.Duration
	}{
		{name: "success", statuses: []int{200}, wantCalls: 1},
		{name: "429 honours Retry-After seconds", statuses: []int{429, 200}, header: http.Header{"Retry-After": {"1"}}, wantCalls: 2, minWait: time.Second},
		{name: "503 without Retry-After backs off", statuses: []int{503, 503, 200}, wantCalls: 3},
		{name: "500 and 502 are transient", statuses: []int{500, 502, 200}, wantCalls: 3},
		{name: "attempts are bounded", statuses: []int{503}, attempts: 3, wantCalls: 3, wantErr: 503},
		{name: "400 is not retried", statuses: []int{400}, wantCalls: 1, wantErr: 400},
		{name: "404 is not retried", statuses: []int{404}, wantCalls: 1, wantErr: 404},
		{name: "401 without auth is final", statuses: []int{401}, wantCalls: 1, wantErr: 401},
		{name: "a Retry-After too long ends the request", statuses: []int{429}, header: http.Header{"Retry-After": {"3600"}}, wantCalls: 1, wantErr: 429},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{statuses: tc.statuses, header: tc.header}
			cfg := fast
			cfg.MaxAttempts = tc.attempts
			c := httpx.New(httpx.Options{Config: cfg})
			start := time.Now()
			resp, err := c.Do(context.Background(), httpx.Request{URL: serve(t, s)})
			if got := s.count(); got != tc.wantCalls {
				t.Errorf("calls = %d, want %d", got, tc.wantCalls)
			}
			if tc.wantErr == 0 {
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				var v map[string]any
				if err := resp.JSON(&v); err != nil {
					t.Fatal(err)
				}
				if got := v["n"]; got == nil || got.(interface{ String() string }).String() != "12345678901234567890.5" {
					t.Errorf("numbers must stay exact, got %v", got)
				}
			} else if got := httpx.StatusOf(err); got != tc.wantErr {
				t.Fatalf("error status = %d (%v), want %d", got, err, tc.wantErr)
			}
			if el := time.Since(start); el < tc.minWait {
				t.Errorf("returned after %v, want at least %v (Retry-After)", el, tc.minWait)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{" 2 ", 2 * time.Second, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"Wed, 01 May 2024 10:00:30 GMT", 30 * time.Second, true},
		{"Wednesday, 01-May-24 10:01:00 GMT", time.Minute, true},
		{"Wed, 01 May 2024 09:00:00 GMT", 0, true},
		{"99999999999999999999", 0, false},
		{"9999999999999", time.Duration(1<<62/int64(time.Second)) * time.Second, true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := httpx.ParseRetryAfter(tc.in, now)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "120", "Wed, 01 May 2024 10:00:30 GMT", "-5", "", "1e9"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := httpx.ParseRetryAfter(s, now)
		if d < 0 || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", s, d, ok)
		}
	})
}

func TestTokenRefreshOn401(t *testing.T) {
	var fetches atomic.Int32
	tokens := httpx.NewTokens(func(context.Context) (httpx.Token, error) {
		n := fetches.Add(1)
		return httpx.Token{Value: "tok-" + strings.Repeat("x", int(n))}, nil
	}, nil)

	t.Run("one refresh then success", func(t *testing.T) {
		s := &script{statuses: []int{401, 200}}
		c := httpx.New(httpx.Options{Config: fast, Auth: tokens})
		if _, err := c.Do(context.Background(), httpx.Request{URL: serve(t, s)}); err != nil {
			t.Fatal(err)
		}
		if s.auths[0] == s.auths[1] || !strings.HasPrefix(s.auths[1], "Bearer tok-") {
			t.Errorf("the retry must carry a new token: %q", s.auths)
		}
	})
	t.Run("a second 401 is final", func(t *testing.T) {
		s := &script{statuses: []int{401}}
		c := httpx.New(httpx.Options{Config: fast, Auth: tokens})
		_, err := c.Do(context.Background(), httpx.Request{URL: serve(t, s)})
		if httpx.StatusOf(err) != 401 || s.count() != 2 {
			t.Fatalf("err %v after %d calls, want a 401 after 2", err, s.count())
		}
		var pe *connectors.PermanentError
		if !errors.As(httpx.Classify(err), &pe) {
			t.Errorf("a 401 after a refresh must classify as permanent")
		}
	})
	t.Run("a static token is not refreshed", func(t *testing.T) {
		s := &script{statuses: []int{401, 200}}
		c := httpx.New(httpx.Options{Config: fast, Auth: httpx.Static("pat-na1-0000")})
		_, err := c.Do(context.Background(), httpx.Request{URL: serve(t, s)})
		if httpx.StatusOf(err) != 401 || s.count() != 1 {
			t.Fatalf("err %v after %d calls, want a 401 after 1", err, s.count())
		}
	})
	t.Run("concurrent callers share one fetch", func(t *testing.T) {
		var n atomic.Int32
		tk := httpx.NewTokens(func(context.Context) (httpx.Token, error) {
			n.Add(1)
			time.Sleep(20 * time.Millisecond)
			return httpx.Token{Value: "shared-token", Expiry: time.Now().Add(time.Hour)}, nil
		}, nil)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, err := tk.Token(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n.Load() != 1 {
			t.Errorf("fetches = %d, want 1", n.Load())
		}
	})
	t.Run("an expiring token is replaced", func(t *testing.T) {
		var n atomic.Int32
		tk := httpx.NewTokens(func(context.Context) (httpx.Token, error) {
			n.Add(1)
			return httpx.Token{Value: "short-lived", Expiry: time.Now().Add(30 * time.Second)}, nil
		}, nil)
		for range 2 {
			if _, err := tk.Token(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if n.Load() != 2 {
			t.Errorf("fetches = %d, want 2 (a token within a minute of expiry is replaced)", n.Load())
		}
	})
}

func TestCancelIsPrompt(t *testing.T) {
	cases := []struct {
		name string
		s    *script
	}{
		{"while waiting for Retry-After", &script{statuses: []int{429}, header: http.Header{"Retry-After": {"30"}}}},
		{"while a request is in flight", &script{statuses: []int{200}, delay: 30 * time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := httpx.New(httpx.Options{Config: httpx.Config{Timeout: time.Minute}})
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			start := time.Now()
			_, err := c.Do(ctx, httpx.Request{URL: serve(t, tc.s)})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("returned %v after cancel, want promptly", el)
			}
		})
	}
}

func TestAttemptTimeoutIsRetried(t *testing.T) {
	s := &script{statuses: []int{200}, delay: 300 * time.Millisecond}
	cfg := fast
	cfg.Timeout, cfg.MaxAttempts = 50*time.Millisecond, 2
	c := httpx.New(httpx.Options{Config: cfg})
	_, err := c.Do(context.Background(), httpx.Request{URL: serve(t, s)})
	if err == nil || s.count() != 2 {
		t.Fatalf("err %v after %d calls, want a timeout after 2", err, s.count())
	}
}

func TestBudget(t *testing.T) {
	t.Run("concurrency", func(t *testing.T) {
		s := &script{statuses: []int{200}, delay: 20 * time.Millisecond}
		url := serve(t, s)
		budgets := httpx.NewLocalBudgets()
		lim := httpx.Limits{Concurrency: 2}
		// Two clients of the same org share its budget.
		a := httpx.New(httpx.Options{Config: fast, Budget: budgets.Budget("test:org", lim)})
		b := httpx.New(httpx.Options{Config: fast, Budget: budgets.Budget("test:org", lim)})
		var wg sync.WaitGroup
		for i := range 10 {
			c := a
			if i%2 == 1 {
				c = b
			}
			wg.Go(func() {
				if _, err := c.Do(context.Background(), httpx.Request{URL: url}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if m := atomic.LoadInt32(&s.maxIn); m > 2 {
			t.Errorf("max in flight = %d, want at most 2", m)
		}
	})
	t.Run("rate", func(t *testing.T) {
		s := &script{statuses: []int{200}}
		url := serve(t, s)
		c := httpx.New(httpx.Options{Config: fast, Budget: httpx.NewBudget(httpx.Limits{PerSecond: 20, Burst: 1})})
		start := time.Now()
		for range 5 {
			if _, err := c.Do(context.Background(), httpx.Request{URL: url}); err != nil {
				t.Fatal(err)
			}
		}
		if el := time.Since(start); el < 150*time.Millisecond {
			t.Errorf("5 requests at 20/s took %v, want about 200ms", el)
		}
	})
	t.Run("cancel while waiting", func(t *testing.T) {
		bud := httpx.NewBudget(httpx.Limits{PerSecond: 0.01, Burst: 1})
		rel, err := bud.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		rel()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := bud.Acquire(ctx); err == nil {
			t.Fatal("want an error when the budget cannot be had before ctx ends")
		}
	})
}

func TestErrorsCarryNoSecret(t *testing.T) {
	const secret = "s3cr3t-client-secret-value"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"error":"invalid_client","echo":"` + r.Header.Get("Authorization") + `","client_secret":"` + secret + `","access_token":"abc"}`))
	}))
	defer srv.Close()
	red := httpx.NewRedactor(secret)
	c := httpx.New(httpx.Options{Config: fast, Auth: httpx.Static("pat-na1-11112222-3333"), Redactor: red})
	red.Add("pat-na1-11112222-3333")
	_, err := c.Do(context.Background(), httpx.Request{URL: srv.URL + "/x?access_token=leaky&hapikey=leaky2&q=ok"})
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	for _, leak := range []string{secret, "pat-na1-11112222-3333", "leaky", "leaky2", `"abc"`} {
		if strings.Contains(msg, leak) {
			t.Errorf("error leaks %q: %s", leak, msg)
		}
	}
	if !strings.Contains(msg, "q=ok") || !strings.Contains(msg, "invalid_client") {
		t.Errorf("error lost its useful parts: %s", msg)
	}

	// A URL that cannot be requested fails at once, without retries.
	start := time.Now()
	if _, err := c.Do(context.Background(), httpx.Request{URL: "http://exa mple.com/?client_secret=leaky4"}); err == nil || strings.Contains(err.Error(), "leaky4") || time.Since(start) > time.Second {
		t.Errorf("a bad URL: %v after %v", err, time.Since(start))
	}

	// A transport failure quotes the URL; it is redacted too.
	c2 := httpx.New(httpx.Options{Config: httpx.Config{MaxAttempts: 1}})
	_, err = c2.Do(context.Background(), httpx.Request{URL: "http://127.0.0.1:1/x?client_secret=leaky3"})
	if err == nil || strings.Contains(err.Error(), "leaky3") {
		t.Errorf("transport error %v", err)
	}
}
