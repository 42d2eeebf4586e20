package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/nats-io/nats.go/jetstream"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
	"github.com/autonomos/autonomos/subscriber"
)

// startWith runs a system with o's settings over the test defaults; stop
// ends it (idempotent; also at cleanup).
func startWith(t *testing.T, edit func(*options)) (sys *system, base string, stop func()) {
	t.Helper()
	o := options{HTTP: "127.0.0.1:0", DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1", Roles: "all",
		RateRead: "1000/s burst 1000", RateWrite: "1000/s burst 1000", UseFileSource: true}
	if edit != nil {
		edit(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sys, err := startSystem(ctx, o, testLogger())
	if err != nil {
		cancel()
		t.Fatalf("start system: %v", err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); sys.wait() }) }
	t.Cleanup(stop)
	return sys, "http://" + sys.httpAddr, stop
}

// testLogger discards the system's logs, or writes them to stderr at the
// level AUTONOMOS_TEST_LOG names (debug, info, ...), to see what a failing
// test's system did.
func testLogger() *slog.Logger {
	if lvl := os.Getenv("AUTONOMOS_TEST_LOG"); lvl != "" {
		return newLogger(os.Stderr, lvl)
	}
	return newLogger(io.Discard, "error")
}

func status(t *testing.T, c *apiClient, method, path string, body any) int {
	t.Helper()
	var err error
	if body != nil {
		_, err = c.postJSON(context.Background(), path, body, nil)
	} else {
		_, err = c.do(context.Background(), method, path, nil, "", nil)
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return 200
}

func getJSON(t *testing.T, c *apiClient, path string, out any) {
	t.Helper()
	if _, err := c.do(context.Background(), http.MethodGet, path, nil, "", out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func TestOntologySourceSchemasPreviewAndDebug(t *testing.T) {
	_, base, _ := startWith(t, func(o *options) { o.Debug = true })
	c := registered(t, base, "onto")
	j := uploadAndWait(t, c, filepath.Join("..", "..", "examples", "accounts.csv"), "account")

	var onto struct {
		Entities []struct {
			Name    string            `json:"name"`
			Fields  []canonical.Field `json:"fields"`
			Sources []struct {
				System, Object string
				MappingVersion int `json:"mapping_version"`
				Fields         []struct {
					Target, Source string
					Transforms     []any `json:"transforms"`
				} `json:"fields"`
			} `json:"sources"`
		} `json:"entities"`
	}
	getJSON(t, c, "/api/v1/dcl/ontology", &onto)
	if len(onto.Entities) != 3 || onto.Entities[0].Name != "account" || onto.Entities[0].Fields[0].Description == "" {
		t.Fatalf("ontology entities: %+v", onto.Entities)
	}
	systems := map[string]bool{}
	for _, s := range onto.Entities[1].Sources {
		systems[s.System] = true
		if s.MappingVersion < 1 || len(s.Fields) == 0 {
			t.Fatalf("opportunity source %+v", s)
		}
	}
	for _, want := range []string{"salesforce", "hubspot", "dynamics", "filesource"} {
		if !systems[want] {
			t.Fatalf("opportunity sources lack %s: %v", want, systems)
		}
	}

	// Preview: the newest raw records beside their canonical events.
	var pv struct {
		Entity  string `json:"entity"`
		Records []struct {
			Raw       map[string]any  `json:"raw"`
			Canonical json.RawMessage `json:"canonical"`
		} `json:"records"`
	}
	getJSON(t, c, "/api/v1/dcl/preview?connection=filesource&object=account&limit=5", &pv)
	if pv.Entity != "account" || len(pv.Records) != 5 {
		t.Fatalf("preview: %+v", pv)
	}
	ev, err := canonical.ParseEvent(pv.Records[0].Canonical)
	if err != nil || ev.Record.Key() != pv.Records[0].Raw["account_id"] {
		t.Fatalf("preview record 0: %v %v", ev, err)
	}
	if st := status(t, c, http.MethodGet, "/api/v1/dcl/preview?connection=nope&object=account", nil); st != 404 {
		t.Fatalf("preview of an unknown connection: %d", st)
	}

	// Source schemas come from the observer's fingerprints.
	streamstest.Eventually(t, 30*time.Second, func() error {
		var ss struct {
			Data []SourceSchema `json:"data"`
		}
		getJSON(t, c, "/api/v1/dcl/source-schemas", &ss)
		for _, s := range ss.Data {
			if s.Object == "account" && s.System == "filesource" && len(s.Fields) >= 7 {
				return nil
			}
		}
		return fmt.Errorf("no account schema yet: %+v", ss.Data)
	})

	// Debug: newest canonical events of the tenant, parsed.
	streamstest.Eventually(t, 10*time.Second, func() error {
		var dbg struct {
			Data []json.RawMessage `json:"data"`
		}
		getJSON(t, c, "/api/v1/debug/last-canonical?entity=account&limit=3", &dbg)
		if len(dbg.Data) != 3 {
			return fmt.Errorf("%d events", len(dbg.Data))
		}
		return nil
	})
	_ = j
	other := registered(t, base, "other")
	var dbg struct {
		Data []json.RawMessage `json:"data"`
	}
	getJSON(t, other, "/api/v1/debug/last-canonical?entity=account", &dbg)
	if len(dbg.Data) != 0 {
		t.Fatalf("another tenant sees %d events", len(dbg.Data))
	}
}

func TestDebugAndFileSourceRoutesAbsentWhenOff(t *testing.T) {
	_, base, _ := startWith(t, func(o *options) { o.UseFileSource = false })
	c := registered(t, base, "off")
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/debug/last-canonical?entity=account"},
		{http.MethodGet, "/api/v1/filesource/discover"},
		{http.MethodGet, "/api/v1/filesource/status"},
		{http.MethodPost, "/api/v1/filesource/replay"},
		{http.MethodPost, "/api/v1/filesource/upload"},
	} {
		if st := status(t, c, r.method, r.path, nil); st != 404 {
			t.Errorf("%s %s: %d, want 404", r.method, r.path, st)
		}
	}
}

// unreachable is a Salesforce connection whose syncs fail and retry.
func unreachable(t *testing.T, c *apiClient, name string) string {
	t.Helper()
	var v struct {
		ID string `json:"id"`
	}
	in := map[string]any{"name": name, "system": "salesforce",
		"config":  map[string]any{"instance_url": "http://127.0.0.1:1", "login_url": "http://127.0.0.1:1", "api_version": "v59.0"},
		"secrets": map[string]string{"client_id": "x", "client_secret": "y"}}
	if _, err := c.postJSON(context.Background(), "/api/v1/aam/connections", in, &v); err != nil {
		t.Fatalf("create connection: %v", err)
	}
	return v.ID
}

func TestAOARunConflictStateAndSignedWebhook(t *testing.T) {
	_, base, _ := startWith(t, nil)
	c := registered(t, base, "orch")
	id := unreachable(t, c, "sf")

	var sec struct {
		Secret string `json:"secret"`
	}
	getJSON(t, c, "/api/v1/aoa/webhook-secret", &sec)
	got := make(chan error, 4)
	var body []byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body = b
		got <- connectors.VerifySignature(sec.Secret, r.Header.Get(connectors.HeaderSignature), b, 5*time.Minute, time.Now())
	}))
	defer hook.Close()

	var run struct {
		JobID string `json:"job_id"`
	}
	if _, err := c.postJSON(context.Background(), "/api/v1/aoa/run", map[string]any{"connections": []string{id}, "webhook_url": hook.URL}, &run); err != nil {
		t.Fatalf("aoa/run: %v", err)
	}
	if st := status(t, c, http.MethodPost, "/api/v1/aoa/run", map[string]any{}); st != 409 {
		t.Fatalf("second aoa/run while one is active: %d, want 409", st)
	}
	if st := status(t, c, http.MethodPost, "/api/v1/aoa/reset", map[string]any{}); st != 409 {
		t.Fatalf("aoa/reset while an orchestration is active: %d, want 409", st)
	}
	var state OrchestrationState
	streamstest.Eventually(t, 20*time.Second, func() error {
		getJSON(t, c, "/api/v1/aoa/state", &state)
		if !state.Active || state.Job == nil || state.Job.ID != run.JobID || len(state.Connections) != 1 || state.Connections[0].ConnectionID != id {
			return fmt.Errorf("state %+v", state)
		}
		return nil
	})
	// Cancel the retrying sync: the orchestration ends failed, and the
	// webhook arrives signed.
	if _, err := c.postJSON(context.Background(), "/api/v1/aoa/jobs/"+state.Connections[0].JobID+"/cancel", map[string]any{}, nil); err != nil {
		t.Fatalf("cancel child: %v", err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("webhook signature: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no webhook within 30s")
	}
	if !strings.Contains(string(body), run.JobID) {
		t.Fatalf("webhook body %s", body)
	}
	if err := connectors.VerifySignature("wrong", "t=1,v1=00", body, time.Minute, time.Now()); err == nil {
		t.Fatal("a bad signature verified")
	}
	var job struct {
		Status string           `json:"status"`
		Logs   []map[string]any `json:"logs"`
	}
	getJSON(t, c, "/api/v1/aoa/jobs/"+run.JobID, &job)
	if job.Status != "failed" || len(job.Logs) < 3 {
		t.Fatalf("orchestration job %+v", job)
	}
	// Now another run is accepted.
	if st := status(t, c, http.MethodPost, "/api/v1/aoa/run", map[string]any{"connections": []string{id}}); st != 200 {
		t.Fatalf("aoa/run after the first ended: %d", st)
	}
}

// TestAOAResetEqualsFreshRebuild: the live tables are damaged behind the
// pipeline's back (a row deleted, a row altered, in both stores); aoa/reset
// rebuilds them from the stream, and afterwards each store equals, row for
// row, a brand-new DuckDB store that replayed the tenant's CANONICAL history
// on its own — and the stream still holds every event (nothing deleted).
func TestAOAResetEqualsFreshRebuild(t *testing.T) {
	sys, base, _ := startWith(t, nil)
	c := registered(t, base, "rst")
	uploadAndWait(t, c, filepath.Join("..", "..", "examples", "accounts.csv"), "account")
	uploadAndWait(t, c, filepath.Join("..", "..", "examples", "contacts.csv"), "contact")
	j := uploadAndWait(t, c, filepath.Join("..", "..", "examples", "opportunities.csv"), "opportunity")
	streamstest.Eventually(t, 30*time.Second, func() error {
		for _, st := range sys.stores {
			if n := len(allRows(t, st, "rst", canonical.OpportunityEntity)); int64(n) != j.Published {
				return fmt.Errorf("%s: %d rows, want %d", st.Name(), n, j.Published)
			}
		}
		return nil
	})
	ctx := context.Background()
	streamBefore := tenantEvents(t, sys, "rst")

	// Damage every store's live tables behind the stream's back: versions
	// that were never published, applied straight to the sinks — one record
	// deleted, one renamed.
	live := allRows(t, sys.duck, "rst", canonical.OpportunityEntity)
	gone, altered := live[0]["opportunity_id"].(string), live[1]["opportunity_id"].(string)
	later := time.Now().Add(time.Hour)
	del := &canonical.Event{ID: "damage-1", Tenant: "rst", Op: canonical.OpDelete, ConnectionID: "x", SourceSystem: "filesource",
		SourceObject: "opportunity", Time: later, MappingVersion: 1, Record: &canonical.Opportunity{OpportunityID: gone}}
	ren := &canonical.Event{ID: "damage-2", Tenant: "rst", Op: canonical.OpUpsert, ConnectionID: "x", SourceSystem: "filesource",
		SourceObject: "opportunity", Time: later, MappingVersion: 1, Record: &canonical.Opportunity{OpportunityID: altered, Name: "tampered"}}
	for _, st := range sys.stores {
		if err := st.Apply(ctx, []*canonical.Event{del, ren}); err != nil {
			t.Fatalf("%s: damage: %v", st.Name(), err)
		}
		if n := len(allRows(t, st, "rst", canonical.OpportunityEntity)); int64(n) != j.Published-1 {
			t.Fatalf("%s: damage did not take: %d rows", st.Name(), n)
		}
	}

	var res map[string]any
	if _, err := c.postJSON(ctx, "/api/v1/aoa/reset", map[string]any{}, &res); err != nil {
		t.Fatalf("aoa/reset: %v", err)
	}
	if res["events"].(float64) < float64(j.Published) {
		t.Fatalf("reset applied %v events, want at least %d", res["events"], j.Published)
	}

	// A fresh rebuild: a new DuckDB file fed the tenant's whole stream.
	fresh, err := subscriber.OpenDuckDB(filepath.Join(t.TempDir(), "fresh.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fresh.Close() })
	if _, err := subscriber.Replay(ctx, sys.js, []subscriber.Sink{fresh}, subscriber.ReplayOptions{Tenant: "rst"}); err != nil {
		t.Fatalf("fresh replay: %v", err)
	}
	for _, e := range []canonical.Entity{canonical.OpportunityEntity, canonical.AccountEntity, canonical.ContactEntity} {
		want := normalized(t, allRows(t, fresh, "rst", e))
		for _, st := range sys.stores {
			got := normalized(t, allRows(t, st, "rst", e))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %s after reset: %d rows, fresh rebuild %d (or contents differ)", st.Name(), e, len(got), len(want))
			}
		}
		if len(want) == 0 {
			t.Fatalf("fresh rebuild has no %s", e.Plural())
		}
		t.Logf("%s: %d rows, equal to a fresh rebuild in %d stores", e, len(want), len(sys.stores))
	}
	if n := len(allRows(t, fresh, "rst", canonical.OpportunityEntity)); int64(n) != j.Published {
		t.Fatalf("fresh rebuild has %d opportunities, want %d", n, j.Published)
	}
	if after := tenantEvents(t, sys, "rst"); after < streamBefore {
		t.Fatalf("the stream lost history: %d events before the reset, %d after", streamBefore, after)
	}
}

// tenantEvents counts the CANONICAL messages of tenant.
func tenantEvents(t *testing.T, sys *system, tenant string) uint64 {
	t.Helper()
	st, err := sys.js.Stream(context.Background(), streams.StreamCanonical)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(streams.CanonicalFilter(tenant)))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func TestWatchFolderIngestsOnceAcrossRestart(t *testing.T) {
	watch, data := t.TempDir(), t.TempDir()
	edit := func(o *options) { o.WatchDir, o.DataDir = watch, data }
	sys, base, stop := startWith(t, edit)
	c := registered(t, base, "wf")

	// A file big enough to be cut short by the restart.
	dir := filepath.Join(watch, "wf", "accounts")
	os.MkdirAll(dir, 0o700)
	var b strings.Builder
	b.WriteString("account_id,name,updated_at\n")
	const rows = 20000
	for i := 0; i < rows; i++ {
		fmt.Fprintf(&b, "W-%05d,Watched %d,2024-01-01T00:00:00Z\n", i, i)
	}
	p := filepath.Join(dir, "drop.csv")
	os.WriteFile(p, []byte(b.String()), 0o600)
	old := time.Now().Add(-time.Minute)
	os.Chtimes(p, old, old)

	// Stop as soon as the job runs.
	streamstest.Eventually(t, 30*time.Second, func() error {
		var fs struct {
			Data []map[string]any `json:"data"`
		}
		getJSON(t, c, "/api/v1/filesource/discover", &fs)
		if len(fs.Data) != 1 || fs.Data[0]["job_id"] == nil || fs.Data[0]["entity"] != "account" || fs.Data[0]["system"] != "filesource" {
			return fmt.Errorf("discover %v", fs.Data)
		}
		return nil
	})
	_ = sys
	t0 := time.Now()
	stop()
	t.Logf("first system stopped in %v", time.Since(t0))

	t0 = time.Now()
	sys2, base2, _ := startWith(t, edit)
	t.Logf("second system started in %v", time.Since(t0))
	c2 := newAPIClient(base2)
	if err := c2.login(context.Background(), "wf@example.com", "password-wf"); err != nil {
		t.Fatal(err)
	}
	// The embedded server restarts too, and the consumer state it restores
	// may predate the last acks and naks of the first run (seen: every
	// message the first run was given came back as pending); those are
	// redelivered after the subscriber's ack wait (10 s). The bound is on
	// that, not on loss.
	streamstest.Eventually(t, 60*time.Second, func() error {
		if n := len(allRows(t, sys2.duck, "wf", canonical.AccountEntity)); n != rows {
			info, _ := sys2.js.Stream(context.Background(), "CANONICAL")
			si, _ := info.Info(context.Background(), jetstream.WithSubjectFilter("canonical.wf.>"))
			ci, _ := sys2.js.Consumer(context.Background(), "CANONICAL", "dcl-duckdb")
			cinfo, _ := ci.Info(context.Background())
			return fmt.Errorf("%d rows, want %d (stream holds %v for wf; consumer pending %d ack-pending %d redelivered %d; subscriber %+v)", n, rows, si.State.Subjects, cinfo.NumPending, cinfo.NumAckPending, cinfo.NumRedelivered, sys2.subs[0].Stats())
		}
		var fs struct {
			Data []map[string]any `json:"data"`
		}
		getJSON(t, c2, "/api/v1/filesource/discover", &fs)
		if fs.Data[0]["state"] != "ingested" {
			return fmt.Errorf("state %v", fs.Data[0]["state"])
		}
		return nil
	})
	t.Logf("rows visible %v after the restart", time.Since(t0))
	// Only one ingestion job was ever made for the file, and later scans add none.
	time.Sleep(3 * time.Second) // two scan intervals: nothing new may be queued
	var jobs struct {
		Data []map[string]any `json:"data"`
	}
	getJSON(t, c2, "/api/v1/aoa/jobs", &jobs)
	n := 0
	for _, j := range jobs.Data {
		if j["kind"] == "filesource" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d filesource jobs, want 1", n)
	}
	var st map[string]any
	getJSON(t, c2, "/api/v1/filesource/status", &st)
	if st["enabled"] != true {
		t.Fatalf("status %v", st)
	}
	// Replay queues it again; the views do not change.
	var rp struct {
		Data []map[string]any `json:"data"`
	}
	if _, err := c2.postJSON(context.Background(), "/api/v1/filesource/replay", map[string]any{}, &rp); err != nil || len(rp.Data) != 1 {
		t.Fatalf("replay %v %v", rp, err)
	}
	if n := len(allRows(t, sys2.duck, "wf", canonical.AccountEntity)); n != rows {
		t.Fatalf("%d rows after replay", n)
	}
	_ = url.Values{}
}

func TestPauseResumeThroughTheAPIEmitEventsWithReasons(t *testing.T) {
	sys, base, _ := startWith(t, nil)
	c := registered(t, base, "life")
	id := unreachable(t, c, "sf")
	var v struct {
		Status string `json:"status"`
		Reason string `json:"status_reason"`
	}
	for _, step := range []struct{ action, want, reason string }{
		{"pause", "PAUSED", "paused by a user"},
		{"pause", "PAUSED", "paused by a user"}, // no change, no event
		{"resume", "ACTIVE", "resumed by a user"},
	} {
		if _, err := c.postJSON(context.Background(), "/api/v1/aam/connections/"+id+"/"+step.action, map[string]any{}, &v); err != nil {
			t.Fatalf("%s: %v", step.action, err)
		}
		if v.Status != step.want || v.Reason != step.reason {
			t.Fatalf("%s: %+v", step.action, v)
		}
	}
	// A drift status is owned by repair: resume answers 409.
	if _, err := sys.conns.SetStatus(context.Background(), "life", id, connectors.StatusDrifted, "fields removed: Amount"); err != nil {
		t.Fatal(err)
	}
	if st := status(t, c, http.MethodPost, "/api/v1/aam/connections/"+id+"/resume", map[string]any{}); st != 409 {
		t.Fatalf("resume while DRIFTED: %d, want 409", st)
	}
	// Every transition is in the events API with its reason, newest first.
	var page struct {
		Data []struct {
			Type         string `json:"type"`
			ConnectionID string `json:"connection_id"`
			Message      string `json:"message"`
		} `json:"data"`
	}
	streamstest.Eventually(t, 10*time.Second, func() error {
		getJSON(t, c, "/api/v1/aam/events", &page)
		var got []string
		for _, e := range page.Data {
			if e.Type == "connection.status" && e.ConnectionID == id {
				got = append(got, e.Message)
			}
		}
		want := []string{"status ACTIVE → DRIFTED: fields removed: Amount", "status PAUSED → ACTIVE: resumed by a user", "status ACTIVE → PAUSED: paused by a user"}
		if len(got) < 3 || !reflect.DeepEqual(got[:3], want) {
			return fmt.Errorf("connection events %q, want %q first", got, want)
		}
		return nil
	})
}
