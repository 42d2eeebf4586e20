package httpx_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autonomos/autonomos/connectors/httpx"
	"github.com/autonomos/autonomos/streams/quota"
	"github.com/autonomos/autonomos/streams/quota/quotatest"
	"github.com/autonomos/autonomos/streams/streamstest"
)

func TestBudgetWindow(t *testing.T) {
	t.Run("a spent long window fails at once", func(t *testing.T) {
		b := httpx.NewLocalBudgets().Budget("test:org", httpx.Limits{PerSecond: 1000, Window: time.Hour, PerWindow: 3})
		for i := range 3 {
			rel, err := b.Acquire(context.Background())
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			rel()
		}
		_, err := b.Acquire(context.Background())
		var ex *httpx.ExhaustedError
		if !errors.As(err, &ex) || ex.Org != "test:org" || time.Until(ex.Until) < 59*time.Minute {
			t.Fatalf("4th request: %v, want the window spent for an hour", err)
		}
	})
	t.Run("a short window is waited out", func(t *testing.T) {
		b := httpx.NewBudget(httpx.Limits{PerSecond: 1000, Window: 200 * time.Millisecond, PerWindow: 2})
		start := time.Now()
		for i := range 3 {
			rel, err := b.Acquire(context.Background())
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			rel()
		}
		if el := time.Since(start); el < 150*time.Millisecond {
			t.Fatalf("3 requests at 2 per 200ms took %v, want the next window", el)
		}
	})
}

// keeper is one instance's quota keeper, on its own connection to env.
func keeper(t *testing.T, env *streamstest.Env, name string) *quota.Keeper {
	t.Helper()
	k, _ := quotatest.Instance(t, env.URL, name, quota.Config{})
	return k
}

func TestSharedBudgetsAcrossInstances(t *testing.T) {
	env := streamstest.Start(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)

	lim := httpx.Limits{PerSecond: 20, Burst: 2, Concurrency: 2}
	// Two instances, two connections each, all calling one org.
	var clients []*httpx.Client
	for _, name := range []string{"a", "b"} {
		budgets := httpx.NewSharedBudgets(keeper(t, env, name))
		for range 2 {
			clients = append(clients, httpx.New(httpx.Options{Config: fast, Budget: budgets.Budget("test:org", lim)}))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := c.Do(ctx, httpx.Request{URL: srv.URL}); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	want := float64(lim.Burst) + lim.PerSecond*took.Seconds()
	got := hits.Load()
	t.Logf("4 clients in 2 instances sent %d requests in %v; burst + rate×time = %.0f", got, took.Round(time.Millisecond), want)
	if float64(got) > want || float64(got) < 0.9*want {
		t.Fatalf("sent %d requests, want between 90%% and 100%% of %.1f", got, want)
	}
}
