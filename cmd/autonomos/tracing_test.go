package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
	"github.com/autonomos/autonomos/telemetry"
	"github.com/autonomos/autonomos/telemetry/telemetrytest"
)

// traceHeader is a client transport that sends a W3C traceparent, as a
// traced caller of the API does.
type traceHeader struct{ traceparent string }

func (h traceHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("traceparent", h.traceparent)
	return http.DefaultTransport.RoundTrip(r)
}

// noExport clears the variables that switch span export on, so the test
// does not depend on the environment it runs in.
func noExport(t *testing.T) {
	t.Helper()
	for _, k := range []string{telemetry.EnvEndpoint, telemetry.EnvTracesEndpoint, telemetry.EnvTracesExporter, telemetry.EnvSDKDisabled, "OTEL_TRACES_SAMPLER"} {
		t.Setenv(k, "")
	}
}

// startTracedSystem is startTestSystem whose spans also go to spans; stop
// shuts it down (in order, flushing the spans) and waits for it.
func startTracedSystem(t *testing.T, pg bool, spans ...sdktrace.SpanProcessor) (sys *system, base string, stop func()) {
	t.Helper()
	o := testOptions(t, pg)
	o.spans = spans
	sys, stop = startTestSystemWith(t, o)
	return sys, "http://" + sys.httpAddr, stop
}

// opportunitiesCSV writes n opportunities, more than one page of the file
// source (1,000 rows), so the job has several fetch, map and publish spans.
func opportunitiesCSV(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("opportunity_id,account_id,name,stage,amount,currency,close_date,owner_id,probability,updated_at\n")
	for i := range n {
		fmt.Fprintf(&b, "OPP-T%05d,ACC-0001,Deal %d,Negotiation,%d.50,EUR,2027-03-12,USR-01,50,2026-10-01T09:00:00Z\n", i, i, 1000+i)
	}
	p := filepath.Join(t.TempDir(), "opportunities.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// uploadTraced uploads a file as tenant with a traceparent of trace tid and
// waits for its job; it returns the X-Trace-Id and the job.
func uploadTraced(t *testing.T, base, tenant, file, tid, parent string) (string, *jobView) {
	t.Helper()
	c := registered(t, base, tenant)
	c.http = &http.Client{Transport: traceHeader{"00-" + tid + "-" + parent + "-01"}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, xTrace, err := c.upload(ctx, file, "opportunity", "")
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	j, err := c.waitJob(ctx, id, nil)
	if err != nil || j.Status != "succeeded" || j.Published == 0 {
		t.Fatalf("job %+v: %v", j, err)
	}
	return xTrace, j
}

type spanView struct {
	name, traceID, spanID, parentID, sink string
	messages                              int64
}

// TestUploadIsOneTrace: an upload that sends a traceparent is one trace
// from the request to the rows — the gateway's server span, the file
// source's ingest, fetch, map and publish spans, and each store's consume
// and upsert spans — through the real gateway, NATS and both subscribers;
// and the canonical events carry the trace in traceid and traceparent.
func TestUploadIsOneTrace(t *testing.T) {
	noExport(t)
	rec := tracetest.NewSpanRecorder()
	sys, base, _ := startTracedSystem(t, true, rec)
	const tid, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	const rows = 2500
	xTrace, j := uploadTraced(t, base, "acme", opportunitiesCSV(t, rows), tid, parent)
	if xTrace != tid || j.Published != rows {
		t.Fatalf("X-Trace-Id %q (want %s), %d published", xTrace, tid, j.Published)
	}
	streamstest.Eventually(t, 30*time.Second, func() error {
		for _, st := range sys.stores {
			if n := len(allRows(t, st, "acme", canonical.OpportunityEntity)); n != rows {
				return fmt.Errorf("%s holds %d rows, want %d", st.Name(), n, rows)
			}
		}
		return nil
	})

	// The consume spans end just after the acks, so they may trail the rows.
	var spans []spanView
	streamstest.Eventually(t, 10*time.Second, func() error {
		spans = spans[:0]
		consumed := map[string]int64{}
		for _, s := range rec.Ended() {
			v := spanView{name: s.Name(), traceID: s.SpanContext().TraceID().String(), spanID: s.SpanContext().SpanID().String(),
				parentID: s.Parent().SpanID().String(), messages: -1}
			for _, kv := range s.Attributes() {
				switch kv.Key {
				case "autonomos.sink":
					v.sink = kv.Value.AsString()
				case "messaging.batch.message_count":
					v.messages = kv.Value.AsInt64()
				}
			}
			if v.traceID == tid {
				spans = append(spans, v)
				if v.name == "consume" {
					consumed[v.sink] += v.messages
				}
			}
		}
		for _, sink := range []string{"postgres", "duckdb"} {
			if consumed[sink] != rows {
				return fmt.Errorf("%s consume spans of the trace count %d events, want %d", sink, consumed[sink], rows)
			}
		}
		return nil
	})
	byName := map[string][]spanView{}
	ids := map[string]spanView{}
	for _, s := range spans {
		byName[s.name] = append(byName[s.name], s)
		ids[s.spanID] = s
	}
	parentName := func(s spanView) string {
		if p, ok := ids[s.parentID]; ok {
			return p.name
		}
		if s.parentID == parent {
			return "the client's span"
		}
		return "unknown span " + s.parentID
	}
	want := map[string]string{ // span → its parent's name
		"POST /api/v1/filesource/upload": "the client's span",
		"ingest":                         "POST /api/v1/filesource/upload",
		"fetch":                          "ingest",
		"map":                            "ingest",
		"publish":                        "ingest",
		"consume":                        "map",
		"upsert":                         "consume",
	}
	for name, wantParent := range want {
		if len(byName[name]) == 0 {
			t.Errorf("no %q span in trace %s", name, tid)
		}
		for _, s := range byName[name] {
			if got := parentName(s); got != wantParent {
				t.Errorf("%s span's parent is %s, want %s", name, got, wantParent)
			}
		}
	}
	for _, name := range []string{"fetch", "map", "publish"} {
		if n := len(byName[name]); n != (rows+999)/1000 {
			t.Errorf("%d %s spans for %d rows in pages of 1,000", n, name, rows)
		}
	}
	for _, s := range byName["upsert"] {
		if s.sink != "postgres" && s.sink != "duckdb" {
			t.Errorf("upsert span of sink %q", s.sink)
		}
	}
	t.Logf("trace %s: %d spans; %d consume and %d upsert spans across both stores", tid, len(spans), len(byName["consume"]), len(byName["upsert"]))

	// Each canonical event names the trace and the map span that made it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := sys.js.Stream(ctx, streams.StreamCanonical)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetLastMsgForSubject(ctx, "canonical.acme.opportunity")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := canonical.ParseEvent(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	sc := telemetry.ParseTraceparent(ev.Traceparent)
	if ev.TraceID != tid || sc.TraceID().String() != tid || ids[sc.SpanID().String()].name != "map" {
		t.Fatalf("event traceid %q traceparent %q: want trace %s and a map span", ev.TraceID, ev.Traceparent, tid)
	}
	if h := m.Header.Get(streams.HeaderTraceparent); h != ev.Traceparent {
		t.Fatalf("message header traceparent %q differs from the event's %q", h, ev.Traceparent)
	}
}

// TestSpansExportOverOTLP: with OTEL_EXPORTER_OTLP_ENDPOINT set, the spans
// of an upload reach an OTLP/HTTP collector (protobuf), at the latest when
// the system shuts down.
func TestSpansExportOverOTLP(t *testing.T) {
	noExport(t)
	col := telemetrytest.Start(t)
	t.Setenv(telemetry.EnvEndpoint, col.URL())
	t.Setenv("OTEL_SERVICE_NAME", "autonomos-under-test")
	sys, base, stop := startTracedSystem(t, false)
	const tid, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	_, j := uploadTraced(t, base, "acme", filepath.Join("..", "..", "examples", "opportunities.csv"), tid, parent)
	streamstest.Eventually(t, 30*time.Second, func() error {
		if n := len(allRows(t, sys.duck, "acme", canonical.OpportunityEntity)); int64(n) != j.Published {
			return fmt.Errorf("duckdb holds %d rows, want %d", n, j.Published)
		}
		return nil
	})
	stop() // the ordered shutdown flushes the spans
	got := map[string]int{}
	for _, s := range col.Spans() {
		if s.TraceID == tid {
			got[s.Name]++
			if s.Service != "autonomos-under-test" {
				t.Errorf("span %s has service.name %q", s.Name, s.Service)
			}
		}
	}
	for _, name := range []string{"POST /api/v1/filesource/upload", "ingest", "fetch", "map", "publish", "consume", "upsert"} {
		if got[name] == 0 {
			t.Errorf("the collector received no %q span of trace %s (got %v)", name, tid, got)
		}
	}
	t.Logf("collector received %v", got)
}

// TestCRMSyncIsOneTrace: a sync asked for with a traceparent carries it in
// its work item through JOBS to the connector worker, so the worker's sync
// span, the Runner's fetch, map and publish spans and the subscriber's
// consume and upsert spans are children in the request's trace.
func TestCRMSyncIsOneTrace(t *testing.T) {
	noExport(t)
	rec := tracetest.NewSpanRecorder()
	_, base, _ := startTracedSystem(t, false, rec)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sim, err := startSim(ctx, "127.0.0.1:0", 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	const tid, parent = "9a3f2c4e5b6d7e8f9a0b1c2d3e4f5a6b", "00f067aa0ba902b7"
	c := registered(t, base, "crm")
	var conn map[string]any
	for _, cn := range sim.connections("") {
		if cn["system"] == "hubspot" {
			conn = cn
		}
	}
	var created map[string]any
	if _, err := c.postJSON(ctx, "/api/v1/aam/connections", conn, &created); err != nil {
		t.Fatal(err)
	}
	c.http = &http.Client{Transport: traceHeader{"00-" + tid + "-" + parent + "-01"}}
	var out struct {
		JobID string `json:"job_id"`
	}
	if _, err := c.postJSON(ctx, "/api/v1/aam/connections/"+created["id"].(string)+"/sync", nil, &out); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	j, err := c.waitJob(wctx, out.JobID, nil)
	if err != nil || j.Status != "succeeded" || j.Published == 0 {
		t.Fatalf("sync job %+v: %v", j, err)
	}
	streamstest.Eventually(t, 30*time.Second, func() error {
		names := map[string]string{} // span id → name
		parents := map[string][]string{}
		var consumed int64
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID().String() != tid {
				continue
			}
			names[s.SpanContext().SpanID().String()] = s.Name()
			parents[s.Name()] = append(parents[s.Name()], s.Parent().SpanID().String())
			if s.Name() == "consume" {
				for _, kv := range s.Attributes() {
					if kv.Key == "messaging.batch.message_count" {
						consumed += kv.Value.AsInt64()
					}
				}
			}
		}
		if consumed != j.Published {
			return fmt.Errorf("consume spans of the trace count %d events, want %d", consumed, j.Published)
		}
		for name, want := range map[string]string{"POST /api/v1/aam/connections/:id/sync": "", "sync": "POST /api/v1/aam/connections/:id/sync",
			"fetch": "sync", "map": "sync", "publish": "sync", "consume": "map", "upsert": "consume"} {
			if len(parents[name]) == 0 {
				return fmt.Errorf("no %q span in the trace", name)
			}
			for _, p := range parents[name] {
				if got := names[p]; want == "" && p != parent || want != "" && got != want {
					return fmt.Errorf("%s span's parent is %q (%s), want %q", name, got, p, want)
				}
			}
		}
		return nil
	})
}
