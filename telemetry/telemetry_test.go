package telemetry_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/autonomos/autonomos/telemetry"
	"github.com/autonomos/autonomos/telemetry/telemetrytest"
)

const tid = "4bf92f3577b34da6a3ce929d0e0e4736"

// noExport clears the variables that would switch export on, so a test
// does not depend on the environment it runs in.
func noExport(t *testing.T) {
	t.Helper()
	for _, k := range []string{telemetry.EnvEndpoint, telemetry.EnvTracesEndpoint, telemetry.EnvProtocol,
		telemetry.EnvTracesProtocol, telemetry.EnvTracesExporter, telemetry.EnvSDKDisabled, "OTEL_TRACES_SAMPLER"} {
		t.Setenv(k, "")
	}
}

func TestParseTraceparent(t *testing.T) {
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"version 00 sampled", "00-" + tid + "-00f067aa0ba902b7-01", true},
		{"version 00 not sampled", "00-" + tid + "-00f067aa0ba902b7-00", true},
		{"future version with more fields", "cc-" + tid + "-00f067aa0ba902b7-01-what-ever", true},
		{"version ff", "ff-" + tid + "-00f067aa0ba902b7-01", false},
		{"00 with extra", "00-" + tid + "-00f067aa0ba902b7-01-x", false},
		{"upper case", "00-" + strings.ToUpper(tid) + "-00f067aa0ba902b7-01", false},
		{"zero trace id", "00-" + strings.Repeat("0", 32) + "-00f067aa0ba902b7-01", false},
		{"zero parent id", "00-" + tid + "-0000000000000000-01", false},
		{"short", "00-" + tid[:31] + "-00f067aa0ba902b7-01", false},
		{"empty", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := telemetry.ParseTraceparent(tc.in)
			if sc.IsValid() != tc.ok {
				t.Fatalf("valid = %v, want %v", sc.IsValid(), tc.ok)
			}
			if !tc.ok {
				return
			}
			if sc.TraceID().String() != tid || sc.SpanID().String() != "00f067aa0ba902b7" || !sc.IsRemote() {
				t.Fatalf("span context %+v", sc)
			}
			if got := telemetry.Traceparent(sc); len(got) != 55 || got[3:52] != tc.in[3:52] || got[:2] != "00" {
				t.Fatalf("Traceparent = %q, from %q", got, tc.in)
			}
		})
	}
	if got := telemetry.Traceparent(trace.SpanContext{}); got != "" {
		t.Fatalf("Traceparent(invalid) = %q, want empty", got)
	}
}

func TestProviderWithoutEndpointMakesIDsAndRecordsNothing(t *testing.T) {
	noExport(t)
	p, err := telemetry.New(context.Background(), telemetry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	if p.Endpoint() != "" {
		t.Fatalf("Endpoint = %q without an endpoint variable", p.Endpoint())
	}
	tr := p.Tracer(telemetry.Scope)
	ctx, root := tr.Start(context.Background(), "root")
	_, child := tr.Start(ctx, "child")
	if !root.SpanContext().IsValid() || child.SpanContext().TraceID() != root.SpanContext().TraceID() {
		t.Fatalf("root %v, child %v: want valid ids in one trace", root.SpanContext(), child.SpanContext())
	}
	if root.IsRecording() || root.SpanContext().IsSampled() {
		t.Fatalf("a span is recorded with nothing to receive it")
	}
	if telemetry.TraceID(ctx) != root.SpanContext().TraceID().String() {
		t.Fatalf("TraceID(ctx) = %q", telemetry.TraceID(ctx))
	}
	// A remote parent's trace goes on.
	_, cont := tr.Start(telemetry.Parent(context.Background(), "00-"+tid+"-00f067aa0ba902b7-01", ""), "continued")
	if cont.SpanContext().TraceID().String() != tid {
		t.Fatalf("child of a traceparent has trace %s", cont.SpanContext().TraceID())
	}
}

func TestWithTraceIDStartsThatTrace(t *testing.T) {
	noExport(t)
	p, err := telemetry.New(context.Background(), telemetry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tr := p.Tracer(telemetry.Scope)
	cases := []struct {
		name, id, want string
	}{
		{"a valid id", tid, tid},
		{"upper case", strings.ToUpper(tid), tid},
		{"all zero", strings.Repeat("0", 32), ""},
		{"short", tid[:30], ""},
		{"not hex", strings.Repeat("g", 32), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, sp := tr.Start(telemetry.WithTraceID(context.Background(), tc.id), "root")
			got := sp.SpanContext().TraceID().String()
			if tc.want != "" && got != tc.want || tc.want == "" && (got == tid || !sp.SpanContext().IsValid()) {
				t.Fatalf("trace id %s", got)
			}
		})
	}
	// A remote parent wins over a seed.
	_, sp := tr.Start(telemetry.Parent(context.Background(), "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01", tid), "child")
	if got := sp.SpanContext().TraceID().String(); got != "0af7651916cd43dd8448eb211c80319c" {
		t.Fatalf("trace id %s, want the parent's", got)
	}
}

func TestExportOverOTLPHTTP(t *testing.T) {
	noExport(t)
	col := telemetrytest.Start(t)
	t.Setenv(telemetry.EnvEndpoint, col.URL())
	t.Setenv("OTEL_SERVICE_NAME", "autonomos-test")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-key=k1")
	p, err := telemetry.New(context.Background(), telemetry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if want := col.URL() + "/v1/traces"; p.Endpoint() != want {
		t.Fatalf("Endpoint = %q, want %q", p.Endpoint(), want)
	}
	tr := p.Tracer(telemetry.Scope)
	ctx, root := tr.Start(telemetry.Parent(context.Background(), "00-"+tid+"-00f067aa0ba902b7-01", ""), "upload")
	_, child := tr.Start(ctx, "fetch")
	child.End()
	root.End()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	spans := col.Spans()
	names := map[string]telemetrytest.Span{}
	for _, s := range spans {
		names[s.Name] = s
	}
	up, fetch := names["upload"], names["fetch"]
	if up.TraceID != tid || fetch.TraceID != tid || fetch.ParentSpanID != up.SpanID || up.ParentSpanID != "00f067aa0ba902b7" {
		t.Fatalf("spans %+v", spans)
	}
	if up.Service != "autonomos-test" {
		t.Fatalf("service.name %q, want OTEL_SERVICE_NAME's", up.Service)
	}
	if h := col.Headers(); len(h) == 0 || h[0].Get("X-Collector-Key") != "k1" {
		t.Fatalf("export requests lack OTEL_EXPORTER_OTLP_HEADERS: %v", h)
	}
}

func TestExportIsOffUnlessAsked(t *testing.T) {
	col := telemetrytest.Start(t)
	cases := []struct {
		name string
		env  map[string]string
		want string // the endpoint, "" for none; "error" for a refused setting
	}{
		{"no endpoint", nil, ""},
		{"endpoint", map[string]string{telemetry.EnvEndpoint: col.URL() + "/"}, col.URL() + "/v1/traces"},
		{"traces endpoint wins", map[string]string{telemetry.EnvEndpoint: "http://127.0.0.1:1", telemetry.EnvTracesEndpoint: col.URL() + "/t"}, col.URL() + "/t"},
		{"exporter none", map[string]string{telemetry.EnvEndpoint: col.URL(), telemetry.EnvTracesExporter: "none"}, ""},
		{"sdk disabled", map[string]string{telemetry.EnvEndpoint: col.URL(), telemetry.EnvSDKDisabled: "true"}, ""},
		{"grpc protocol", map[string]string{telemetry.EnvEndpoint: col.URL(), telemetry.EnvProtocol: "grpc"}, "error"},
		{"console exporter", map[string]string{telemetry.EnvTracesExporter: "console"}, "error"},
		{"http/protobuf", map[string]string{telemetry.EnvEndpoint: col.URL(), telemetry.EnvTracesProtocol: "http/protobuf"}, col.URL() + "/v1/traces"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			noExport(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			p, err := telemetry.New(context.Background(), telemetry.Config{})
			if tc.want == "error" {
				if err == nil {
					t.Fatal("New accepted a setting it cannot honour")
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			if p.Endpoint() != tc.want {
				t.Fatalf("Endpoint = %q, want %q", p.Endpoint(), tc.want)
			}
		})
	}
}

// The batch exporter sends on its own schedule too, not only at shutdown.
func TestExportWithoutShutdown(t *testing.T) {
	noExport(t)
	col := telemetrytest.Start(t)
	t.Setenv(telemetry.EnvEndpoint, col.URL())
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	p, err := telemetry.New(context.Background(), telemetry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	_, sp := p.Tracer(telemetry.Scope).Start(context.Background(), "consume")
	sp.End()
	for deadline := time.Now().Add(10 * time.Second); len(col.Spans()) != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("collector holds %d spans after 10s, want 1", len(col.Spans()))
		}
		time.Sleep(20 * time.Millisecond) // polling the collector, not waiting for an outcome
	}
}

func FuzzParseTraceparent(f *testing.F) {
	for _, s := range []string{"00-" + tid + "-00f067aa0ba902b7-01", "cc-" + tid + "-00f067aa0ba902b7-01-x", "", "00--", "ff-" + tid + "-00f067aa0ba902b7-01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc := telemetry.ParseTraceparent(s)
		if !sc.IsValid() {
			return
		}
		// An accepted header renders as a version-00 header of the same ids.
		back := telemetry.ParseTraceparent(telemetry.Traceparent(sc))
		if back.TraceID() != sc.TraceID() || back.SpanID() != sc.SpanID() || back.IsSampled() != sc.IsSampled() {
			t.Fatalf("%q → %q does not round-trip", s, telemetry.Traceparent(sc))
		}
	})
}

func ExampleTraceparent() {
	sc := telemetry.ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	fmt.Println(sc.TraceID(), sc.SpanID(), sc.IsSampled())
	fmt.Println(telemetry.Traceparent(sc))
	// Output:
	// 4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7 true
	// 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
}
