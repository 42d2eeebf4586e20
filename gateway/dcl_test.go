package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/gateway/gatewaytest"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
	"github.com/autonomos/autonomos/subscriber"
)

// duckStore is a real DuckDB store in a temp dir, closed once.
type duckStore struct {
	*subscriber.DuckDB
	once sync.Once
}

func openDuck(t *testing.T) *duckStore {
	t.Helper()
	d, err := subscriber.OpenDuckDB(filepath.Join(t.TempDir(), "dcl.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	s := &duckStore{DuckDB: d}
	t.Cleanup(s.close)
	return s
}

func (s *duckStore) close() { s.once.Do(func() { s.DuckDB.Close() }) }

// storeHealth reports the store's ping, as cmd's health checker does.
type storeHealth struct{ store *duckStore }

func (h storeHealth) Check(ctx context.Context) []gateway.ComponentHealth {
	c := gateway.ComponentHealth{Name: "duckdb", Status: gateway.StatusOK}
	if err := h.store.Ping(ctx); err != nil {
		c.Status, c.Detail = gateway.StatusDown, err.Error()
	}
	return []gateway.ComponentHealth{{Name: "nats", Status: gateway.StatusOK}, c}
}

// fieldsCoverage is a MappingCoverage with fixed answers.
type fieldsCoverage map[string][]string // "<system>/<entity>" → fields

func (f fieldsCoverage) MappedFields(_ context.Context, _, system, _ string, e canonical.Entity) ([]string, error) {
	if fs, ok := f[system+"/"+string(e)]; ok {
		return fs, nil
	}
	return nil, streams.ErrNotFound
}

// startSubscriber materializes CANONICAL into store with a real
// subscriber until cleanup (or the returned stop).
func startSubscriber(t *testing.T, n *streamstest.Env, store subscriber.Sink) (*subscriber.Subscriber, func()) {
	t.Helper()
	sub, err := subscriber.New(n.JS, n.Pub, store, subscriber.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sub.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return sub, stop
}

// mixedIngest publishes a mix of systems, entities, updates, an older
// version and a delete for acme, and some records of globex. It returns
// the number of events.
func mixedIngest(t *testing.T, n *streamstest.Env) int {
	t.Helper()
	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	var evs []*canonical.Event
	evs = append(evs, accounts("acme", "salesforce", "a", 5)...)
	evs = append(evs, event("acme", "salesforce", canonical.AccountEntity, "a-1", t0.Add(24*time.Hour), canonical.OpDelete, nil))
	evs = append(evs, accounts("acme", "hubspot", "h", 3)...)
	evs = append(evs, event("acme", "hubspot", canonical.AccountEntity, "h-0", t0, canonical.OpUpsert, nil)) // older than h-0 at 10:00: ignored
	for i := range 6 {
		evs = append(evs, event("acme", "filesource", canonical.ContactEntity, fmt.Sprintf("c-%d", i), t0, canonical.OpUpsert,
			map[string]any{"region": "EU", "tier": "gold"}))
	}
	evs = append(evs, event("acme", "salesforce", canonical.OpportunityEntity, "o-0", t0, canonical.OpUpsert, nil),
		event("acme", "salesforce", canonical.OpportunityEntity, "o-1", t0, canonical.OpUpsert, map[string]any{"Custom__c": 1}))
	evs = append(evs, accounts("globex", "salesforce", "g", 4)...)
	publish(t, n, evs...)
	return len(evs)
}

// directCounts takes the counts straight from the store: per entity by
// Count, per source system by paging the view filtered on it.
func directCounts(t *testing.T, store *duckStore, tenant string) (map[canonical.Entity]int64, map[string]int64) {
	t.Helper()
	ctx := context.Background()
	total := map[canonical.Entity]int64{}
	bySystem := map[string]int64{}
	for _, e := range canonical.Entities {
		n, err := store.Count(ctx, tenant, e)
		if err != nil {
			t.Fatal(err)
		}
		total[e] = n
		for _, sys := range []string{"salesforce", "hubspot", "filesource", "dynamics"} {
			q := canonical.ViewQuery{Tenant: tenant, Entity: e, Limit: canonical.MaxViewLimit,
				Filters: []canonical.Filter{{Column: "source_system", Value: sys}}}
			page, err := store.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if page.NextCursor != "" {
				t.Fatal("more rows than a page")
			}
			if len(page.Rows) > 0 {
				bySystem[string(e)+"/"+sys] = int64(len(page.Rows))
			}
		}
	}
	return total, bySystem
}

func TestDCLStateAndGraphEqualTheStore(t *testing.T) {
	store := openDuck(t)
	env := startLive(t, gateway.HubConfig{}, func(d *gateway.Deps) {
		d.Views = store
		d.Counts = gateway.StoreCounts{Store: store}
		d.Coverage = fieldsCoverage{"salesforce/account": {"account_id", "name", "industry"}, "filesource/contact": {"contact_id", "first_name"}}
		d.Health = storeHealth{store}
	})
	a := env.Register(t, "acme", "admin@acme.example", pw)
	b := env.Register(t, "globex", "admin@globex.example", pw)
	sub, stopSub := startSubscriber(t, env.NATS, store)
	n := mixedIngest(t, env.NATS)
	streamstest.Eventually(t, 10*time.Second, func() error {
		if st := sub.Stats(); st.Applied+st.DeadLettered < uint64(n) {
			return fmt.Errorf("subscriber applied %d of %d", st.Applied, n)
		}
		return nil
	})
	total, bySystem := directCounts(t, store, "acme")
	// The store holds what the ingest meant: a delete and an older version applied.
	want := map[string]int64{"account/salesforce": 4, "account/hubspot": 3, "contact/filesource": 6, "opportunity/salesforce": 2}
	if fmt.Sprint(bySystem) != fmt.Sprint(want) || total[canonical.AccountEntity] != 7 {
		t.Fatalf("store holds %v (totals %v), want %v; subscriber %+v", bySystem, total, want, sub.Stats())
	}

	// Other parts of the state: dead letters, jobs, a stuck consumer.
	ctx := context.Background()
	for _, tenant := range []string{"acme", "acme", "globex"} {
		if err := env.NATS.Pub.PublishDLQ(ctx, streams.DeadLetter{Tenant: tenant, Stage: "validation", Reason: "bad"}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	for _, j := range []*streams.Job{
		{ID: "j1", Tenant: "acme", Kind: "sync", Status: streams.JobRunning, CreatedAt: now},
		{ID: "j2", Tenant: "acme", Kind: "sync", Status: streams.JobSucceeded, CreatedAt: now},
		{ID: "j3", Tenant: "globex", Kind: "sync", Status: streams.JobQueued, CreatedAt: now},
	} {
		if err := env.Jobs.Put(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	stuck(t, env.NATS)

	var st gateway.DCLState
	res := env.Do(t, http.MethodGet, "/dcl/state", a.AccessToken, nil)
	gatewaytest.MustStatus(t, res, 200)
	gatewaytest.Decode(t, res, &st)
	got := map[string]int64{}
	for _, c := range st.Counts {
		if c.SourceSystem == nil {
			t.Fatalf("count without a source system: %+v", c)
		}
		got[c.Entity+"/"+*c.SourceSystem] += c.Count
	}
	if fmt.Sprint(got) != fmt.Sprint(bySystem) {
		t.Fatalf("/dcl/state counts %v, the store %v", got, bySystem)
	}
	if st.Status != "ok" || len(st.Problems) != 0 {
		t.Fatalf("status %s, problems %v", st.Status, st.Problems)
	}
	if len(st.RecentEvents) != n-4 { // acme's events, oldest first
		t.Fatalf("%d recent events, want %d", len(st.RecentEvents), n-4)
	}
	for i, ev := range st.RecentEvents {
		if strings.HasPrefix(ev.ID, "g-") || i > 0 && ev.Seq <= st.RecentEvents[i-1].Seq {
			t.Fatalf("recent event %d: %+v", i, ev)
		}
	}
	if st.DLQDepth == nil || *st.DLQDepth != 2 || st.ActiveJobs == nil || *st.ActiveJobs != 1 || st.OpenDrift != nil {
		t.Fatalf("dlq_depth %v, active_jobs %v, open_drift %v", ptr(st.DLQDepth), ptr(st.ActiveJobs), ptr(st.OpenDrift))
	}
	consumers := map[string]gateway.ConsumerState{}
	for _, c := range st.Consumers {
		consumers[c.Name] = c
	}
	if c, ok := consumers["dcl-duckdb"]; !ok || c.Stalled || c.Pending != 0 {
		t.Fatalf("dcl-duckdb = %+v (%v)", c, ok)
	}
	if c := consumers["stuck"]; !c.Stalled || c.AckPending != 2 || c.MaxAckPending != 2 {
		t.Fatalf("stuck consumer = %+v, want stalled", c)
	}

	// The graph: every number is the store's.
	var g gateway.Graph
	res = env.Do(t, http.MethodGet, "/dcl/graph", a.AccessToken, nil)
	gatewaytest.MustStatus(t, res, 200)
	gatewaytest.Decode(t, res, &g)
	links := map[string]gateway.GraphLink{}
	for _, l := range g.Links {
		links[l.Source+" > "+l.Target] = l
	}
	for key, n := range bySystem {
		e, sys, _ := strings.Cut(key, "/")
		if l := links["system:"+sys+" > entity:"+e]; l.Value != n {
			t.Errorf("link %s → %s = %d, the store holds %d", sys, e, l.Value, n)
		}
	}
	for e, n := range total {
		if n == 0 {
			continue
		}
		tbl := "table:materialized_" + e.Plural()
		if l := links["entity:"+string(e)+" > "+tbl]; l.Value != n {
			t.Errorf("entity %s → table = %d, Count says %d", e, l.Value, n)
		}
		if l := links[tbl+" > consumer:views"]; l.Value != n {
			t.Errorf("table %s → views = %d, Count says %d", tbl, l.Value, n)
		}
	}
	sfAcc, fsCon, hsAcc, sfOpp := links["system:salesforce > entity:account"], links["system:filesource > entity:contact"],
		links["system:hubspot > entity:account"], links["system:salesforce > entity:opportunity"]
	if ptr(sfAcc.MappedFields) != "3" || ptr(sfAcc.ExtrasFields) != "0" || ptr(fsCon.MappedFields) != "2" || ptr(fsCon.ExtrasFields) != "2" ||
		hsAcc.MappedFields != nil || ptr(sfOpp.ExtrasFields) != "1" {
		t.Errorf("coverage: sf/account %s/%s, fs/contact %s/%s, hs/account %s, sf/opp extras %s",
			ptr(sfAcc.MappedFields), ptr(sfAcc.ExtrasFields), ptr(fsCon.MappedFields), ptr(fsCon.ExtrasFields), ptr(hsAcc.MappedFields), ptr(sfOpp.ExtrasFields))
	}
	if len(g.Links) != 4+3+3 {
		t.Errorf("%d links: %+v", len(g.Links), g.Links)
	}

	// Tenant B sees its own numbers only.
	res = env.Do(t, http.MethodGet, "/dcl/state", b.AccessToken, nil)
	gatewaytest.MustStatus(t, res, 200)
	var bs gateway.DCLState
	gatewaytest.Decode(t, res, &bs)
	if len(bs.Counts) != 1 || bs.Counts[0].Count != 4 || len(bs.RecentEvents) != 4 || *bs.DLQDepth != 1 || *bs.ActiveJobs != 1 {
		t.Fatalf("globex state = %+v", bs)
	}

	// The stuck consumer shows in the AAM status and the metrics.
	var as gateway.AAMStatus
	res = env.Do(t, http.MethodGet, "/api/v1/aam/status", a.AccessToken, nil)
	gatewaytest.MustStatus(t, res, 200)
	gatewaytest.Decode(t, res, &as)
	if as.Status != "degraded" || component(as, "consumer CANONICAL/stuck").Status != "degraded" ||
		component(as, "consumer CANONICAL/dcl-duckdb").Status != "ok" || component(as, "duckdb").Status != "ok" {
		t.Fatalf("aam status = %+v", as)
	}
	m := metricsText(t, env.Env, a.AccessToken)
	for _, want := range []string{
		`autonomos_consumer_stalled{consumer="stuck",stream="CANONICAL"} 1`,
		`autonomos_consumer_stalled{consumer="dcl-duckdb",stream="CANONICAL"} 0`,
		`autonomos_consumer_pending{consumer="dcl-duckdb",stream="CANONICAL"} 0`,
		`autonomos_dlq_depth{stage="validation",tenant="acme"} 2`,
		`autonomos_events_published_total{entity="account",tenant="acme",type="record.deleted"} 1`,
		`autonomos_events_failed_total{stage="validation",tenant="acme"} 2`,
		`autonomos_jetstream_scrape_up 1`,
		`autonomos_ws_clients 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// A dead store: an honest error or a degraded status, never numbers.
	stopSub()
	store.close()
	res = env.Do(t, http.MethodGet, "/dcl/graph", a.AccessToken, nil)
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("graph on a closed store: status %d", res.StatusCode)
	}
	if e := gatewaytest.ErrorOf(t, res); e.Code != gateway.CodeUnavailable {
		t.Fatalf("error %+v", e)
	}
	res = env.Do(t, http.MethodGet, "/dcl/state", a.AccessToken, nil)
	gatewaytest.MustStatus(t, res, 200)
	st = gateway.DCLState{}
	gatewaytest.Decode(t, res, &st)
	if st.Status != "degraded" || st.Counts != nil || len(st.Problems) != 1 || st.Problems[0].Part != "counts" {
		t.Fatalf("state on a closed store: %+v", st)
	}
	if st.RecentEvents == nil || *st.DLQDepth != 2 {
		t.Fatalf("the parts that still answer are missing: %+v", st)
	}
	res = env.Do(t, http.MethodGet, "/api/v1/aam/status", a.AccessToken, nil)
	gatewaytest.MustStatus(t, res, 200)
	as = gateway.AAMStatus{}
	gatewaytest.Decode(t, res, &as)
	if as.Status != "degraded" || component(as, "duckdb").Status != "down" {
		t.Fatalf("aam status on a closed store = %+v", as)
	}
}

// TestDCLGraphWithoutCounts: no record counter on the instance is a 503,
// and the state's counts are null, not zero.
func TestDCLGraphWithoutCounts(t *testing.T) {
	env := gatewaytest.Start(t)
	a := env.Register(t, "acme", "admin@acme.example", pw)
	res := env.Do(t, http.MethodGet, "/dcl/graph", a.AccessToken, nil)
	if res.StatusCode != 503 {
		t.Fatalf("status %d", res.StatusCode)
	}
	gatewaytest.ErrorOf(t, res)
	res = env.Do(t, http.MethodGet, "/dcl/state", a.AccessToken, nil)
	gatewaytest.MustStatus(t, res, 200)
	var raw map[string]any
	gatewaytest.Decode(t, res, &raw)
	for _, k := range []string{"counts", "open_drift"} {
		if v, ok := raw[k]; !ok || v != nil {
			t.Errorf("%s = %v, want null", k, v)
		}
	}
	if raw["recent_events"] == nil || raw["dlq_depth"] != float64(0) {
		t.Errorf("state = %v", raw)
	}
	res = env.Do(t, http.MethodGet, "/dcl/state?tenant=globex", a.AccessToken, nil)
	if res.StatusCode != 422 {
		t.Fatalf("tenant parameter: status %d", res.StatusCode)
	}
	res.Body.Close()
}

// TestStoreCountsLargeEntityIsReportedWhole: past MaxScan the breakdown
// by source system is left out, never estimated.
func TestStoreCountsLargeEntityIsReportedWhole(t *testing.T) {
	store := openDuck(t)
	if err := store.Apply(context.Background(), append(accounts("acme", "salesforce", "a", 3), accounts("acme", "hubspot", "h", 2)...)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		maxScan int64
		want    string
	}{
		{"broken down", 10, "[{account hubspot  2} {account salesforce  3}]"},
		{"too large to page", 4, "[{account   5}]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gateway.StoreCounts{Store: store, MaxScan: tc.maxScan}.CountRecords(context.Background(), "acme")
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != tc.want {
				t.Fatalf("counts %v, want %s", got, tc.want)
			}
		})
	}
	store.close()
	if _, err := (gateway.StoreCounts{Store: store}).CountRecords(context.Background(), "acme"); err == nil {
		t.Fatal("a closed store counted")
	}
}

// stuck creates a durable consumer on CANONICAL with MaxAckPending 2 and
// takes two messages without acknowledging them: JetStream stops
// delivering to it.
func stuck(t *testing.T, n *streamstest.Env) {
	t.Helper()
	ctx := context.Background()
	c, err := n.JS.CreateOrUpdateConsumer(ctx, streams.StreamCanonical, jetstream.ConsumerConfig{
		Durable: "stuck", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 2, AckWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range b.Messages() {
		got++
	}
	if got != 2 {
		t.Fatalf("fetched %d", got)
	}
}

func component(s gateway.AAMStatus, name string) gateway.ComponentHealth {
	for _, c := range s.Components {
		if c.Name == name {
			return c
		}
	}
	return gateway.ComponentHealth{Name: name, Status: "missing"}
}

func ptr[T any](p *T) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}
