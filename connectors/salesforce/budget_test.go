package salesforce_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/crmsim"
	"github.com/autonomos/autonomos/connectors/httpx"
	"github.com/autonomos/autonomos/connectors/salesforce"
	"github.com/autonomos/autonomos/streams/quota"
	"github.com/autonomos/autonomos/streams/quota/quotatest"
	"github.com/autonomos/autonomos/streams/streamstest"
)

// org is a simulated Salesforce org that notes when each API request (token
// requests excluded) arrives.
type org struct {
	sim *crmsim.Sim
	url string
	mu  sync.Mutex
	at  []time.Time
}

func newOrg(t *testing.T) *org {
	t.Helper()
	o := &org{sim: crmsim.New(crmsim.Config{Seed: 11, Accounts: 30, Opportunities: -1, Contacts: -1})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/services/data/") {
			o.mu.Lock()
			o.at = append(o.at, time.Now())
			o.mu.Unlock()
		}
		o.sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	o.url = srv.URL
	return o
}

func (o *org) arrivals() []time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]time.Time(nil), o.at...)
}

// connections builds two connections to the org in each of two instances
// (each instance its own NATS connection, quota keeper and budgets).
func (o *org) connections(t *testing.T, env *streamstest.Env, lim httpx.Limits) []*salesforce.Connector {
	t.Helper()
	creds := o.sim.Credentials().Salesforce
	var out []*salesforce.Connector
	for _, inst := range []string{"a", "b"} {
		k, _ := quotatest.Instance(t, env.URL, inst, quota.Config{})
		budgets := httpx.NewSharedBudgets(k)
		for _, id := range []string{inst + "1", inst + "2"} {
			c, err := salesforce.New(connectors.Connection{ID: id, Tenant: "t-" + id, System: salesforce.System,
				Config: map[string]any{"instance_url": o.url + "/salesforce", "login_url": o.url + "/salesforce",
					"api_version": "v59.0", "page_size": 5, "objects": []any{"Account"}},
				Secrets: map[string]string{"client_id": creds.ClientID, "client_secret": creds.ClientSecret}},
				connectors.Deps{}, salesforce.Options{Budgets: budgets, Limits: lim})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
	}
	return out
}

// pages fetches Account pages over and over until ctx ends or a fetch
// fails, returning the error (nil when ctx ended).
func pages(ctx context.Context, c *salesforce.Connector) error {
	cursor := ""
	for ctx.Err() == nil {
		p, err := c.Fetch(ctx, "Account", cursor)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		cursor = p.Cursor
		if !p.More {
			cursor = ""
		}
	}
	return nil
}

func TestOrgBudgetSharedAcrossInstances(t *testing.T) {
	env := streamstest.Start(t)

	t.Run("the window allowance holds for every connection of every instance", func(t *testing.T) {
		o := newOrg(t)
		lim := httpx.Limits{PerSecond: 1000, Burst: 100, Window: 24 * time.Hour, PerWindow: 25}
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for _, c := range o.connections(t, env, lim) {
			wg.Go(func() { errs <- pages(context.Background(), c) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			var ex *httpx.ExhaustedError
			if !errors.As(err, &ex) || time.Until(ex.Until) < 23*time.Hour {
				t.Fatalf("a connection ended with %v, want the day's allowance spent", err)
			}
		}
		if n := o.sim.Requests(crmsim.Salesforce); n != lim.PerWindow {
			t.Fatalf("the org received %d API requests from 4 connections in 2 instances, want exactly its allowance of %d", n, lim.PerWindow)
		}
	})

	t.Run("the rate holds for every connection of every instance", func(t *testing.T) {
		o := newOrg(t)
		lim := httpx.Limits{PerSecond: 10, Burst: 5, Concurrency: 2}
		ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		defer cancel()
		start := time.Now()
		var wg sync.WaitGroup
		for _, c := range o.connections(t, env, lim) {
			wg.Go(func() {
				if err := pages(ctx, c); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		took := time.Since(start)
		at := o.arrivals()
		want := float64(lim.Burst) + lim.PerSecond*took.Seconds()
		// In any one second: the burst, a second's rate, and at most one
		// lease (a token) per instance taken before that second.
		const perSecond = 5 + 10 + 2
		busiest := 0
		for i := range at {
			n := 0
			for j := i; j < len(at) && at[j].Sub(at[i]) < time.Second; j++ {
				n++
			}
			busiest = max(busiest, n)
		}
		t.Logf("the org received %d requests in %v (burst + rate×time = %.0f); the busiest second had %d", len(at), took.Round(time.Millisecond), want, busiest)
		if float64(len(at)) > want+2 || float64(len(at)) < 0.9*want {
			t.Fatalf("the org received %d requests, want between 90%% of %.0f and it plus 2", len(at), want)
		}
		if busiest > perSecond {
			t.Fatalf("the org received %d requests within one second, more than %d", busiest, perSecond)
		}
	})
}
