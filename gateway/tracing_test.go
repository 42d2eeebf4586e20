package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/gateway/gatewaytest"
	"github.com/autonomos/autonomos/telemetry"
)

// spanOfIngest records the span context the upload handler hands the
// ingester, which a real ingester makes the job's parent.
type spanOfIngest struct {
	gateway.FileIngester
	mu sync.Mutex
	sc trace.SpanContext
}

func (s *spanOfIngest) IngestFile(ctx context.Context, req gateway.FileIngest) (string, error) {
	s.mu.Lock()
	s.sc = trace.SpanContextFromContext(ctx)
	s.mu.Unlock()
	return s.FileIngester.IngestFile(ctx, req)
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// TestServerSpans: with Deps.Tracing every request is a server span whose
// trace id is X-Trace-Id (and the error body's trace_id): a child of the
// client's traceparent, else a new trace — with the client's X-Trace-Id as
// its id when it sent one.
func TestServerSpans(t *testing.T) {
	t.Setenv(telemetry.EnvEndpoint, "")
	t.Setenv(telemetry.EnvTracesEndpoint, "")
	rec := tracetest.NewSpanRecorder()
	tp, err := telemetry.New(context.Background(), telemetry.Config{SpanProcessors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	var ingest *spanOfIngest
	env := gatewaytest.StartDeps(t, func(d *gateway.Deps) {
		d.Tracing = tp
		ingest = &spanOfIngest{FileIngester: d.Ingester}
		d.Ingester = ingest
	})
	const tid, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	cases := []struct {
		name, path string
		headers    []string
		wantName   string
		wantStatus string
		wantTrace  string // "" for a new one
		wantParent string // "" for a root
		wantError  bool
		unsampled  bool // no span is recorded
	}{
		{"traceparent", "/health", []string{"traceparent", "00-" + tid + "-" + parent + "-01"}, "GET /health", "200", tid, parent, false, false},
		{"unsampled traceparent continues the trace unrecorded", "/health", []string{"traceparent", "00-" + tid + "-" + parent + "-00"}, "GET /health", "200", tid, parent, false, true},
		{"client X-Trace-Id", "/health", []string{"X-Trace-Id", strings.ToUpper(tid)}, "GET /health", "200", tid, "", false, false},
		{"traceparent wins over X-Trace-Id", "/health", []string{"traceparent", "00-" + tid + "-" + parent + "-01", "X-Trace-Id", "0af7651916cd43dd8448eb211c80319c"}, "GET /health", "200", tid, parent, false, false},
		{"invalid traceparent", "/health", []string{"traceparent", "00-" + strings.Repeat("0", 32) + "-" + parent + "-01"}, "GET /health", "200", "", "", false, false},
		{"none", "/health", nil, "GET /health", "200", "", "", false, false},
		{"unmatched route", "/api/v1/nope", nil, "GET", "404", "", "", false, false},
		{"unauthenticated", "/api/v1/aoa/jobs", nil, "GET /api/v1/aoa/jobs", "401", "", "", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec.Reset()
			res := env.DoRaw(t, http.MethodGet, tc.path, "", nil, tc.headers...)
			got := res.Header.Get(gateway.HeaderTraceID)
			if res.StatusCode >= 400 {
				if e := gatewaytest.ErrorOf(t, res); e.TraceID != got {
					t.Fatalf("body trace_id %q, X-Trace-Id %q", e.TraceID, got)
				}
			}
			res.Body.Close()
			spans := rec.Ended()
			if tc.unsampled {
				if len(spans) != 0 || got != tc.wantTrace {
					t.Fatalf("%d spans, X-Trace-Id %q", len(spans), got)
				}
				return
			}
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1", len(spans))
			}
			sp := spans[0]
			if sp.Name() != tc.wantName || sp.SpanKind() != trace.SpanKindServer || attr(sp, "http.response.status_code") != tc.wantStatus {
				t.Fatalf("span %q kind %v status %s", sp.Name(), sp.SpanKind(), attr(sp, "http.response.status_code"))
			}
			if sp.SpanContext().TraceID().String() != got {
				t.Fatalf("X-Trace-Id %q is not the span's trace id %s", got, sp.SpanContext().TraceID())
			}
			if tc.wantTrace != "" && got != tc.wantTrace || tc.wantTrace == "" && got == tid {
				t.Fatalf("trace id %q, want %q", got, tc.wantTrace)
			}
			if p := sp.Parent(); tc.wantParent == "" && p.IsValid() || tc.wantParent != "" && (p.SpanID().String() != tc.wantParent || !p.IsRemote()) {
				t.Fatalf("parent %v, want %q", p.SpanID(), tc.wantParent)
			}
			if (sp.Status().Code.String() == "Error") != tc.wantError {
				t.Fatalf("status %v", sp.Status())
			}
		})
	}

	t.Run("a failing dependency is an error span", func(t *testing.T) {
		env.Health.Set(gateway.ComponentHealth{Name: "nats", Status: gateway.StatusDown})
		defer env.Health.Set(gateway.ComponentHealth{Name: "nats", Status: gateway.StatusOK})
		rec.Reset()
		res := env.DoRaw(t, http.MethodGet, "/health", "", nil)
		res.Body.Close()
		if res.StatusCode < 500 {
			t.Skipf("health answers %d with a component down", res.StatusCode)
		}
		if sp := rec.Ended(); len(sp) != 1 || sp[0].Status().Code.String() != "Error" {
			t.Fatalf("spans %v", sp)
		}
	})

	t.Run("handlers get the span", func(t *testing.T) {
		tok := env.Register(t, "acme", "admin@acme.example", pw)
		rec.Reset()
		body, ct := uploadForm(t, "account")
		res := env.Upload(t, tok.AccessToken, body, ct, "traceparent", "00-"+tid+"-"+parent+"-01")
		gatewaytest.MustStatus(t, res, http.StatusAccepted)
		res.Body.Close()
		var server sdktrace.ReadOnlySpan
		for _, sp := range rec.Ended() {
			if sp.Name() == "POST /api/v1/filesource/upload" {
				server = sp
			}
		}
		if server == nil {
			t.Fatalf("no upload span among %d", len(rec.Ended()))
		}
		ingest.mu.Lock()
		defer ingest.mu.Unlock()
		if ingest.sc.SpanID() != server.SpanContext().SpanID() || ingest.sc.TraceID().String() != tid {
			t.Fatalf("the ingester got span %v, want the request's %v", ingest.sc.SpanID(), server.SpanContext().SpanID())
		}
		if attr(server, "autonomos.tenant") != "acme" || attr(server, "http.route") != "/api/v1/filesource/upload" {
			t.Fatalf("upload span attributes %v", server.Attributes())
		}
	})
}
