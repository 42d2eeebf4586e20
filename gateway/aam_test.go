package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/gateway/gatewaytest"
	"github.com/autonomos/autonomos/streams"
)

// standInMonitor is a ConnectionMonitor standing in for cmd's adapter of
// the connection registry and its event log (connectors).
type standInMonitor struct {
	conns  map[string][]gateway.MonitoredConnection
	events map[string][]gateway.ConnectionEvent // newest first
	err    error
}

func (m *standInMonitor) MonitoredConnections(_ context.Context, tenant string) ([]gateway.MonitoredConnection, error) {
	return m.conns[tenant], m.err
}

func (m *standInMonitor) ConnectionEvents(_ context.Context, tenant string, limit int) ([]gateway.ConnectionEvent, error) {
	evs := m.events[tenant]
	if len(evs) > limit {
		evs = evs[:limit]
	}
	return evs, m.err
}

// standInDrift is a DriftReporter with fixed figures.
type standInDrift struct {
	s   gateway.DriftSummary
	err error
}

func (d standInDrift) DriftSummary(context.Context, string) (gateway.DriftSummary, error) {
	return d.s, d.err
}

func TestAAMMetrics(t *testing.T) {
	i := func(n int) *int { return &n }
	f := func(x float64) *float64 { return &x }
	mon := &standInMonitor{conns: map[string][]gateway.MonitoredConnection{"acme": {
		{ID: "c1", Name: "SF", System: "salesforce", Status: "ACTIVE"},
		{ID: "c2", Name: "HS", System: "hubspot", Status: "FAILED"},
		{ID: "c3", Name: "D", System: "dynamics", Status: "ACTIVE"},
	}}}
	drift := &standInDrift{s: gateway.DriftSummary{OpenFindings: i(1), Detections24h: i(3), Repairs24h: i(2),
		ManualReviewsPending: i(1), AverageConfidence: f(0.9), AverageRepairSeconds: f(1.5)}}
	env := gatewaytest.StartDeps(t, func(d *gateway.Deps) { d.ConnMonitor, d.Drift = mon, drift })
	a := env.Register(t, "acme", "admin@acme.example", pw)

	get := func() map[string]any {
		t.Helper()
		res := env.Do(t, http.MethodGet, "/api/v1/aam/metrics", a.AccessToken, nil)
		gatewaytest.MustStatus(t, res, 200)
		var m map[string]any
		gatewaytest.Decode(t, res, &m)
		return m
	}
	m := get()
	want := map[string]any{"status": "ok", "total_connections": 3.0, "active_connections": 2.0, "drift_detections_24h": 3.0,
		"successful_repairs_24h": 2.0, "manual_reviews_pending": 1.0, "average_confidence": 0.9, "average_repair_time_ms": 1500.0,
		"dlq_depth": 0.0, "active_jobs": 0.0}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}

	// No data behind a figure: null, not zero.
	drift.s = gateway.DriftSummary{Detections24h: i(0), Repairs24h: i(0), ManualReviewsPending: i(0)}
	if m := get(); m["average_confidence"] != nil || m["average_repair_time_ms"] != nil || m["drift_detections_24h"] != 0.0 {
		t.Errorf("metrics without repairs = %v", m)
	}
	// A source that fails: its figures are null and it is named.
	mon.err = errors.New("kv down")
	if m := get(); m["status"] != "degraded" || m["total_connections"] != nil || m["active_connections"] != nil ||
		fmt.Sprint(m["problems"]) != "[map[detail:the connection registry did not answer part:connections]]" {
		t.Errorf("metrics with a failing registry = %v", m)
	}

	t.Run("no sources on this instance", func(t *testing.T) {
		env := gatewaytest.Start(t)
		a := env.Register(t, "acme", "admin@acme.example", pw)
		res := env.Do(t, http.MethodGet, "/api/v1/aam/metrics", a.AccessToken, nil)
		gatewaytest.MustStatus(t, res, 200)
		var m map[string]any
		gatewaytest.Decode(t, res, &m)
		for _, k := range []string{"total_connections", "active_connections", "drift_detections_24h", "successful_repairs_24h",
			"manual_reviews_pending", "average_confidence", "average_repair_time_ms"} {
			if v, ok := m[k]; !ok || v != nil {
				t.Errorf("%s = %v, want null", k, v)
			}
		}
		res = env.Do(t, http.MethodGet, "/api/v1/aam/connections/c1/health", a.AccessToken, nil)
		if res.StatusCode != 503 {
			t.Fatalf("connection health without a monitor: %d", res.StatusCode)
		}
		gatewaytest.ErrorOf(t, res)
	})
}

func TestAAMEventsFeedPages(t *testing.T) {
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	mon := &standInMonitor{events: map[string][]gateway.ConnectionEvent{
		"acme": {
			{Seq: 2, ConnectionID: "c1", Status: "FAILED", Previous: "ACTIVE", Reason: "401 from source", Time: t0.Add(3 * time.Minute)},
			{Seq: 1, ConnectionID: "c1", Status: "ACTIVE", Time: t0},
		},
		"globex": {{Seq: 1, ConnectionID: "g1", Status: "ACTIVE", Time: t0}},
	}}
	env := gatewaytest.StartDeps(t, func(d *gateway.Deps) { d.ConnMonitor = mon })
	a := env.Register(t, "acme", "admin@acme.example", pw)
	ctx := context.Background()
	started, finished := t0.Add(time.Minute), t0.Add(2*time.Minute)
	for _, j := range []*streams.Job{
		{ID: "j1", Tenant: "acme", Kind: "sync", ConnectionID: "c1", Status: streams.JobSucceeded, RowsRead: 10, Published: 10,
			CreatedAt: t0, StartedAt: &started, FinishedAt: &finished},
		{ID: "j9", Tenant: "globex", Kind: "sync", Status: streams.JobFailed, CreatedAt: t0},
	} {
		if err := env.Jobs.Put(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	for _, tenant := range []string{"acme", "globex"} {
		if err := env.NATS.Pub.PublishDLQ(ctx, streams.DeadLetter{Tenant: tenant, Stage: "sink-duckdb", Reason: "constraint"}); err != nil {
			t.Fatal(err)
		}
	}
	dm := nats.NewMsg("drift.acme.c1")
	dm.Data = []byte(fmt.Sprintf(`{"type":"drift.detected","tenant_id":"acme","connection_id":"c1","system":"salesforce","object":"Account","severity":"high","time":%q}`,
		t0.Add(4*time.Minute).Format(time.RFC3339Nano)))
	if _, err := env.NATS.JS.PublishMsg(ctx, dm); err != nil {
		t.Fatal(err)
	}

	// Page by two through the five events of acme.
	var ids []string
	cursor := ""
	for page := 0; ; page++ {
		q := "?limit=2"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		res := env.Do(t, http.MethodGet, "/api/v1/aam/events"+q, a.AccessToken, nil)
		gatewaytest.MustStatus(t, res, 200)
		var p gateway.AAMEventPage
		gatewaytest.Decode(t, res, &p)
		for _, e := range p.Data {
			ids = append(ids, e.ID)
		}
		if p.NextCursor == nil {
			break
		}
		if page > 5 {
			t.Fatal("pages do not end")
		}
		cursor = *p.NextCursor
	}
	// Newest first: the dead letter (now), drift (t0+4m), the failure
	// (t0+3m), the job (finished t0+2m), the first status (t0).
	want := "[dlq-1 drift-1 connection-2 job-j1 connection-1]"
	if fmt.Sprint(ids) != want {
		t.Fatalf("feed %v, want %s", ids, want)
	}

	for _, q := range []string{"?limit=0", "?limit=201", "?cursor=nope", "?tenant=globex"} {
		res := env.Do(t, http.MethodGet, "/api/v1/aam/events"+q, a.AccessToken, nil)
		if res.StatusCode != 422 {
			t.Errorf("%s: status %d", q, res.StatusCode)
		}
		res.Body.Close()
	}
	mon.err = errors.New("kv down")
	res := env.Do(t, http.MethodGet, "/api/v1/aam/events", a.AccessToken, nil)
	if res.StatusCode != 503 {
		t.Fatalf("feed with a failing source: %d", res.StatusCode)
	}
	gatewaytest.ErrorOf(t, res)
}

func TestAAMConnectionHealth(t *testing.T) {
	last := time.Now().UTC().Truncate(time.Second)
	mon := &standInMonitor{
		conns: map[string][]gateway.MonitoredConnection{
			"acme":   {{ID: "c1", Name: "SF", System: "salesforce", Status: "DRIFTED", LastJobID: "j1", LastSyncAt: &last}},
			"globex": {{ID: "g1", Name: "G", System: "hubspot", Status: "ACTIVE"}},
		},
		events: map[string][]gateway.ConnectionEvent{"acme": {
			{Seq: 3, ConnectionID: "c2", Status: "ACTIVE", Time: last},
			{Seq: 2, ConnectionID: "c1", Status: "DRIFTED", Previous: "ACTIVE", Time: last},
		}},
	}
	env := gatewaytest.StartDeps(t, func(d *gateway.Deps) { d.ConnMonitor = mon })
	a := env.Register(t, "acme", "admin@acme.example", pw)
	ctx := context.Background()
	if err := env.Jobs.Put(ctx, &streams.Job{ID: "j1", Tenant: "acme", Kind: "sync", ConnectionID: "c1", Status: streams.JobSucceeded, CreatedAt: last}); err != nil {
		t.Fatal(err)
	}
	dm := nats.NewMsg("drift.acme.c1")
	dm.Data = []byte(`{"type":"drift.detected","tenant_id":"acme","connection_id":"c1","system":"salesforce","object":"Account","time":"2024-05-01T00:00:00Z"}`)
	if _, err := env.NATS.JS.PublishMsg(ctx, dm); err != nil {
		t.Fatal(err)
	}

	res := env.Do(t, http.MethodGet, "/api/v1/aam/connections/c1/health", a.AccessToken, nil)
	gatewaytest.MustStatus(t, res, 200)
	var h gateway.ConnectionHealthReport
	gatewaytest.Decode(t, res, &h)
	if h.Health != "degraded" || h.LastJob == nil || h.LastJob.ID != "j1" || len(h.RecentEvents) != 1 || h.RecentEvents[0].Seq != 2 ||
		len(h.DriftEvents) != 1 || h.DriftEvents[0].System != "salesforce" {
		t.Fatalf("health = %+v", h)
	}
	// Another tenant's connection is not found.
	res = env.Do(t, http.MethodGet, "/api/v1/aam/connections/g1/health", a.AccessToken, nil)
	if res.StatusCode != 404 {
		t.Fatalf("another tenant's connection: %d", res.StatusCode)
	}
	gatewaytest.ErrorOf(t, res)
}
