package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/gateway/gatewaytest"
)

// publicRoutes is the whole public surface of DESIGN.md and issue 4; any
// other route must refuse a request without a token.
var publicRoutes = []string{
	"GET /health",
	"GET /docs",
	"GET /openapi.json",
	"POST /api/v1/auth/login",
	"POST /api/v1/auth/register",
	"POST /api/v1/auth/refresh",
}

var pathParam = regexp.MustCompile(`:[A-Za-z0-9_]+`)

func TestEveryNonPublicRouteRequiresAuth(t *testing.T) {
	// With every optional route switched on (DEV_DEBUG).
	env := gatewaytest.Start(t, func(c *gateway.Config) { c.Debug = true })
	routes := env.Server.Routes()
	if !slices.Contains(routes, "GET /api/v1/debug/config") {
		t.Fatalf("debug route missing with Debug on: %v", routes)
	}
	if len(routes) < 10 {
		t.Fatalf("only %d routes registered: %v", len(routes), routes)
	}
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		t.Run(r, func(t *testing.T) {
			res := env.DoRaw(t, method, pathParam.ReplaceAllString(path, "x"), "", strings.NewReader("{}"),
				"Content-Type", "application/json")
			defer res.Body.Close()
			public := slices.Contains(publicRoutes, r)
			if !public && res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s without a token: status %d, want 401 (only %v are public)", r, res.StatusCode, publicRoutes)
			}
			if public && res.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(path, "/api/v1/auth/") {
				t.Fatalf("public route %s refused without a token", r)
			}
		})
	}
}

func TestMetricsPublicOnlyWhenConfigured(t *testing.T) {
	cases := []struct {
		name   string
		public bool
		status int
	}{
		{"default: behind auth", false, 401},
		{"metrics_public", true, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := gatewaytest.Start(t, func(c *gateway.Config) { c.MetricsPublic = tc.public })
			res := env.Do(t, http.MethodGet, "/metrics", "", nil)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	env := gatewaytest.Start(t)
	tok := env.Register(t, "acme", "admin@acme.example", pw)
	res := env.Do(t, http.MethodGet, "/api/v1/aoa/jobs/nope", tok.AccessToken, nil)
	res.Body.Close()
	res = env.Do(t, http.MethodGet, "/metrics", tok.AccessToken, nil)
	gatewaytest.MustStatus(t, res, 200)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`autonomos_http_request_duration_seconds_count{method="GET",route="/api/v1/aoa/jobs/:id",status="404"} 1`,
		`autonomos_http_request_duration_seconds_count{method="POST",route="/api/v1/auth/register",status="201"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestDebugRoutes(t *testing.T) {
	off := gatewaytest.Start(t)
	tok := off.Register(t, "acme", "admin@acme.example", pw)
	res := off.Do(t, http.MethodGet, "/api/v1/debug/config", tok.AccessToken, nil)
	if res.StatusCode != 404 {
		t.Fatalf("debug route without DEV_DEBUG: status %d, want 404", res.StatusCode)
	}
	gatewaytest.ErrorOf(t, res)

	on := gatewaytest.Start(t, func(c *gateway.Config) { c.Debug = true })
	admin := on.Register(t, "acme", "admin@acme.example", pw)
	viewer := on.Invite(t, admin.AccessToken, "viewer@acme.example", pw, "viewer")
	cases := []struct {
		name, token string
		status      int
	}{
		{"no token", "", 401},
		{"viewer", viewer.AccessToken, 403},
		{"admin", admin.AccessToken, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := on.Do(t, http.MethodGet, "/api/v1/debug/config", tc.token, nil)
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if strings.Contains(string(b), gatewaytest.Secret) || strings.Contains(string(b), gatewaytest.PreviousSecret) {
				t.Fatalf("a secret is shown: %s", b)
			}
		})
	}
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	env := gatewaytest.Start(t, func(c *gateway.Config) { c.Debug = true })
	res := env.Do(t, http.MethodGet, "/openapi.json", "", nil)
	gatewaytest.MustStatus(t, res, 200)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	gatewaytest.Decode(t, res, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	for _, r := range env.Server.Routes() {
		method, path, _ := strings.Cut(r, " ")
		p := pathParam.ReplaceAllStringFunc(path, func(s string) string { return "{" + s[1:] + "}" })
		op, ok := doc.Paths[p][strings.ToLower(method)]
		if !ok {
			t.Errorf("route %s is missing from /openapi.json", r)
			continue
		}
		var o struct {
			Summary   string                     `json:"summary"`
			Responses map[string]json.RawMessage `json:"responses"`
			Security  []map[string]any           `json:"security"`
		}
		if err := json.Unmarshal(op, &o); err != nil {
			t.Fatal(err)
		}
		if o.Summary == "" || len(o.Responses) == 0 {
			t.Errorf("%s: no summary or responses", r)
		}
		if public := slices.Contains(publicRoutes, r); public != (len(o.Security) == 0) {
			t.Errorf("%s: security %v disagrees with public=%v", r, o.Security, public)
		}
	}
	// And the spec describes no route that does not exist.
	n := 0
	for _, ops := range doc.Paths {
		n += len(ops)
	}
	if n != len(env.Server.Routes()) {
		t.Errorf("spec has %d operations, router %d routes", n, len(env.Server.Routes()))
	}
}

func TestDocsPageIsSelfContained(t *testing.T) {
	env := gatewaytest.Start(t)
	res := env.Do(t, http.MethodGet, "/docs", "", nil)
	gatewaytest.MustStatus(t, res, 200)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	page := string(b)
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("content type %q", res.Header.Get("Content-Type"))
	}
	if !strings.Contains(page, "/openapi.json") {
		t.Fatal("the page does not load /openapi.json")
	}
	if m := regexp.MustCompile(`(src|href)=["']?(https?:)?//`).FindString(page); m != "" {
		t.Fatalf("the page loads from elsewhere (%q); the machine may be offline", m)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "'sha256-") {
		t.Fatalf("CSP = %q", csp)
	}
}

func TestUnknownPathsAndUI(t *testing.T) {
	ui := fstest.MapFS{
		"index.html":    {Data: []byte("<!doctype html><title>AutonomOS</title>")},
		"assets/app.js": {Data: []byte("console.log(1)")},
		"favicon.svg":   {Data: []byte("<svg/>")},
	}
	env := gatewaytest.Start(t, func(c *gateway.Config) { c.UI = ui })
	tok := env.Register(t, "acme", "admin@acme.example", pw)
	cases := []struct {
		name, method, path, token string
		status                    int
		body                      string // "" for the JSON error shape
	}{
		{"root serves the app", "GET", "/", "", 200, "<title>AutonomOS"},
		{"app route falls back to index", "GET", "/aam/monitor", "", 200, "<title>AutonomOS"},
		{"dcl page (UI) falls back to index", "GET", "/dcl", "", 200, "<title>AutonomOS"},
		{"dcl-like UI page", "GET", "/dcl-page", "", 200, "<title>AutonomOS"},
		{"asset", "GET", "/assets/app.js", "", 200, "console.log"},
		{"top-level file", "GET", "/favicon.svg", "", 200, "<svg/>"},
		{"missing asset", "GET", "/assets/gone.js", "", 404, ""},
		{"unknown api path", "GET", "/api/v1/nope", "", 404, ""},
		{"unknown api path with token", "GET", "/api/v1/nope", tok.AccessToken, 404, ""},
		{"api root", "GET", "/api", "", 404, ""},
		{"unknown dcl api path", "GET", "/dcl/nope", "", 404, ""},
		{"unknown view", "GET", "/api/v1/dcl/views/leads", tok.AccessToken, 404, ""},
		{"POST to a UI path", "POST", "/aam/monitor", "", 404, ""},
		{"wrong method on a route", "GET", "/api/v1/auth/login", "", 405, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := env.DoRaw(t, tc.method, tc.path, tc.token, nil)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if res.Header.Get(gateway.HeaderTraceID) == "" {
				t.Fatal("no X-Trace-Id")
			}
			if tc.body == "" {
				if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Fatalf("content type %q, want JSON", ct)
				}
				gatewaytest.ErrorOf(t, res)
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if !strings.Contains(string(b), tc.body) {
				t.Fatalf("body %q lacks %q", b, tc.body)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	env := gatewaytest.Start(t)
	ok := gateway.ComponentHealth{Name: "nats", Status: "ok"}
	cases := []struct {
		name       string
		components []gateway.ComponentHealth
		status     int
		overall    string
	}{
		{"all ok", []gateway.ComponentHealth{ok, {Name: "duckdb", Status: "ok"}}, 200, "ok"},
		{"one degraded", []gateway.ComponentHealth{ok, {Name: "postgres", Status: "degraded", Detail: "slow"}}, 200, "degraded"},
		{"one down", []gateway.ComponentHealth{ok, {Name: "postgres", Status: "down", Detail: "connection refused"}}, 503, "degraded"},
		{"unknown status counts as down", []gateway.ComponentHealth{{Name: "x", Status: "fine"}}, 503, "degraded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env.Health.Set(tc.components...)
			res := env.Do(t, http.MethodGet, "/health", "", nil)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			var h gateway.HealthResponse
			gatewaytest.Decode(t, res, &h)
			if h.Status != tc.overall || len(h.Components) != len(tc.components) {
				t.Fatalf("health = %+v", h)
			}
		})
	}
}

func TestTraceID(t *testing.T) {
	env := gatewaytest.Start(t)
	const tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	cases := []struct {
		name, path string
		headers    []string
		want       string // "" for a new id
	}{
		{"traceparent on success", "/health", []string{"traceparent", "00-" + tid + "-00f067aa0ba902b7-01"}, tid},
		{"traceparent on an error", "/api/v1/nope", []string{"traceparent", "00-" + tid + "-00f067aa0ba902b7-01"}, tid},
		{"traceparent on a 401", "/api/v1/aoa/jobs", []string{"traceparent", "00-" + tid + "-00f067aa0ba902b7-00"}, tid},
		{"invalid traceparent", "/health", []string{"traceparent", "00-" + strings.Repeat("0", 32) + "-00f067aa0ba902b7-01"}, ""},
		{"garbage traceparent", "/health", []string{"traceparent", "hello"}, ""},
		{"none", "/health", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := env.DoRaw(t, http.MethodGet, tc.path, "", nil, tc.headers...)
			defer res.Body.Close()
			got := res.Header.Get(gateway.HeaderTraceID)
			if tc.want != "" && got != tc.want {
				t.Fatalf("X-Trace-Id %q, want %q", got, tc.want)
			}
			if !hex32.MatchString(got) || got == tid && tc.want == "" {
				t.Fatalf("X-Trace-Id %q is not a new 32-hex id", got)
			}
			if res.StatusCode >= 400 {
				if e := gatewaytest.ErrorOf(t, res); e.TraceID != got {
					t.Fatalf("body trace_id %q", e.TraceID)
				}
			}
		})
	}
}

func TestLogLinesCarryTheTraceID(t *testing.T) {
	env := gatewaytest.Start(t)
	const tid = "9a3f2c4e5b6d7e8f9a0b1c2d3e4f5a6b"
	res := env.Do(t, http.MethodPost, "/api/v1/auth/register", "", map[string]string{
		"tenant": "acme", "email": "admin@acme.example", "password": pw}, "traceparent", "00-"+tid+"-00f067aa0ba902b7-01")
	gatewaytest.MustStatus(t, res, 201)
	res.Body.Close()
	var n int
	for _, line := range strings.Split(strings.TrimSpace(env.Logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["component"] != "gateway" {
			t.Errorf("log line without component: %s", line)
		}
		// Lines logged while serving the request carry its trace id.
		if rec["msg"] == "request" || rec["msg"] == "tenant registered" {
			n++
			if rec["trace_id"] != tid {
				t.Errorf("log line without the trace id: %s", line)
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d request log lines, want 2:\n%s", n, env.Logs.String())
	}
}

func TestRunShutsDownGracefully(t *testing.T) {
	env := gatewaytest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.Server.Serve(ctx, ln) }()
	res, err := http.Get("http://" + ln.Addr().String() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v after cancel, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}
