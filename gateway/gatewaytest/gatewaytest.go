// Package gatewaytest runs a gateway for tests: real HTTP (httptest), a real
// embedded JetStream (streamstest) holding the users, sessions, idempotency
// keys, jobs and audit stream, and the real streams.JobStore. The view
// reader, the file ingester and the health checker are stand-ins — their
// real implementations live in subscriber/, connectors/filesource and cmd —
// named as such (StandInViews, StandInIngester, StandInHealth).
package gatewaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
)

// Secrets used by Start.
const (
	Secret         = "test-secret-0123456789abcdef0123456789"
	PreviousSecret = "old-secret-0123456789abcdef0123456789ab"
)

// Env is a running gateway with its dependencies.
type Env struct {
	NATS     *streamstest.Env
	Server   *gateway.Server
	HTTP     *httptest.Server
	URL      string
	Config   gateway.Config
	Views    *StandInViews
	Ingester *StandInIngester
	Health   *StandInHealth
	Jobs     *streams.JobStore
	// Logs holds the gateway's log, JSON lines at debug level.
	Logs *SyncBuffer
}

// SyncBuffer is a bytes.Buffer safe for concurrent use.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start starts a gateway on an embedded JetStream with cheap password
// hashing and generous rate limits; opts adjust the Config before New.
// Everything stops at t.Cleanup.
func Start(t testing.TB, opts ...func(*gateway.Config)) *Env {
	t.Helper()
	return StartDeps(t, nil, opts...)
}

// StartDeps is Start with a hook that may change the Deps (for instance
// drop the Ingester) before New.
func StartDeps(t testing.TB, deps func(*gateway.Deps), opts ...func(*gateway.Config)) *Env {
	t.Helper()
	nenv := streamstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jobs, err := streams.OpenJobStore(ctx, nenv.JS)
	if err != nil {
		t.Fatal(err)
	}
	cfg := gateway.Config{
		JWTSecret:         Secret,
		JWTPreviousSecret: PreviousSecret,
		SpoolDir:          t.TempDir(),
		RateRead:          "1000/s burst 1000",
		RateWrite:         "1000/s burst 1000",
		LoginRateAccount:  "1000/s burst 1000",
		LoginRateAddress:  "1000/s burst 1000",
		Argon2:            gateway.Argon2Config{MemoryKiB: 1024, Iterations: 1, Parallelism: 1},
	}
	for _, o := range opts {
		o(&cfg)
	}
	env := &Env{
		NATS:     nenv,
		Config:   cfg,
		Views:    &StandInViews{},
		Ingester: &StandInIngester{Jobs: jobs},
		Health:   &StandInHealth{Components: []gateway.ComponentHealth{{Name: "nats", Status: gateway.StatusOK}}},
		Jobs:     jobs,
		Logs:     &SyncBuffer{},
	}
	log := slog.New(slog.NewJSONHandler(env.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := gateway.Deps{Views: env.Views, Ingester: env.Ingester, Jobs: jobs, Health: env.Health, JetStream: nenv.JS}
	if deps != nil {
		deps(&d)
	}
	srv, err := gateway.New(cfg, d, log)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	env.Server = srv
	env.HTTP = httptest.NewServer(srv.Handler())
	t.Cleanup(env.HTTP.Close)
	env.URL = env.HTTP.URL
	return env
}

// Tokens is a register or login answer.
type Tokens struct {
	User         gateway.UserView `json:"user"`
	AccessToken  string           `json:"access_token"`
	RefreshToken string           `json:"refresh_token"`
	TokenType    string           `json:"token_type"`
	ExpiresIn    int              `json:"expires_in"`
}

// Register registers a tenant and its admin, failing t unless it gets 201.
func (e *Env) Register(t testing.TB, tenant, email, password string) Tokens {
	t.Helper()
	var tok Tokens
	res := e.Do(t, http.MethodPost, "/api/v1/auth/register", "", map[string]string{
		"tenant": tenant, "email": email, "password": password})
	MustStatus(t, res, http.StatusCreated)
	Decode(t, res, &tok)
	return tok
}

// Login logs in, failing t unless it gets 200.
func (e *Env) Login(t testing.TB, email, password string) Tokens {
	t.Helper()
	var tok Tokens
	res := e.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": email, "password": password})
	MustStatus(t, res, http.StatusOK)
	Decode(t, res, &tok)
	return tok
}

// Invite adds a user to the admin's tenant and logs it in.
func (e *Env) Invite(t testing.TB, adminToken, email, password, role string) Tokens {
	t.Helper()
	res := e.Do(t, http.MethodPost, "/api/v1/auth/users", adminToken, map[string]string{
		"email": email, "password": password, "role": role})
	MustStatus(t, res, http.StatusCreated)
	res.Body.Close()
	return e.Login(t, email, password)
}

// Do sends a request with an optional bearer token and a JSON body (a
// string or []byte is sent as is). The caller closes the body.
func (e *Env) Do(t testing.TB, method, path, token string, body any, headers ...string) *http.Response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewBufferString(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// MustStatus fails t (showing the body) unless res has the status.
func MustStatus(t testing.TB, res *http.Response, status int) {
	t.Helper()
	if res.StatusCode != status {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		t.Fatalf("%s %s: status %d, want %d; body %s", res.Request.Method, res.Request.URL.Path, res.StatusCode, status, b)
	}
}

// Decode decodes and closes a JSON response body.
func Decode(t testing.TB, res *http.Response, v any) {
	t.Helper()
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", res.Request.URL.Path, err)
	}
}

// ErrorOf decodes an error response, checking its shape.
func ErrorOf(t testing.TB, res *http.Response) gateway.ErrorDetail {
	t.Helper()
	var body gateway.ErrorBody
	Decode(t, res, &body)
	if body.Error.Code == "" || body.Error.Message == "" || body.Error.TraceID == "" {
		t.Fatalf("error body lacks code, message or trace_id: %+v", body)
	}
	if got := res.Header.Get(gateway.HeaderTraceID); got != body.Error.TraceID {
		t.Fatalf("X-Trace-Id %q differs from the body's trace_id %q", got, body.Error.TraceID)
	}
	return body.Error
}

// StandInViews is an in-memory ViewReader standing in for the subscriber's
// Postgres/DuckDB readers (another package): it filters by tenant and exact
// column values, orders by the entity key and pages by cursor like they do,
// and records every query it was asked. Safe for concurrent use.
type StandInViews struct {
	mu      sync.Mutex
	rows    []viewRow
	queries []canonical.ViewQuery
	// Err, when set, is returned by Query.
	Err error
}

type viewRow struct {
	entity canonical.Entity
	row    map[string]any
}

// Add stores a row; it must carry tenant_id and the entity's key field.
func (v *StandInViews) Add(e canonical.Entity, row map[string]any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.rows = append(v.rows, viewRow{e, row})
}

// Queries returns the queries asked so far.
func (v *StandInViews) Queries() []canonical.ViewQuery {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]canonical.ViewQuery(nil), v.queries...)
}

// Query answers one page.
func (v *StandInViews) Query(ctx context.Context, q canonical.ViewQuery) (canonical.ViewPage, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.queries = append(v.queries, q)
	if v.Err != nil {
		return canonical.ViewPage{}, v.Err
	}
	key := q.Entity.KeyField()
	var match []map[string]any
	for _, r := range v.rows {
		if r.entity != q.Entity || r.row["tenant_id"] != q.Tenant {
			continue
		}
		ok := true
		for _, f := range q.Filters {
			if fmt.Sprint(r.row[f.Column]) != f.Value {
				ok = false
			}
		}
		if ok && fmt.Sprint(r.row[key]) > q.After {
			match = append(match, r.row)
		}
	}
	sort.Slice(match, func(a, b int) bool { return fmt.Sprint(match[a][key]) < fmt.Sprint(match[b][key]) })
	page := canonical.ViewPage{Rows: match}
	if len(match) > q.Limit {
		page.Rows = match[:q.Limit]
		page.NextCursor = canonical.EncodeCursor(fmt.Sprint(match[q.Limit-1][key]))
	}
	return page, nil
}

// StandInIngester is a FileIngester standing in for connectors/filesource
// (another package): it records each request with the spooled file's bytes,
// removes the file (it owns it), and stores a queued job in the real job
// store. Safe for concurrent use.
type StandInIngester struct {
	Jobs *streams.JobStore
	// Err, when set, is returned (and the file left to the gateway).
	Err error
	// Delay, when set, is slept before answering (to widen races).
	Delay time.Duration

	mu    sync.Mutex
	calls []Ingested
}

// Ingested is one call of the stand-in ingester.
type Ingested struct {
	gateway.FileIngest
	Content []byte
	JobID   string
}

// Calls returns the ingest calls so far.
func (in *StandInIngester) Calls() []Ingested {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Ingested(nil), in.calls...)
}

// IngestFile records req and queues a job.
func (in *StandInIngester) IngestFile(ctx context.Context, req gateway.FileIngest) (string, error) {
	if in.Delay > 0 {
		time.Sleep(in.Delay)
	}
	if in.Err != nil {
		return "", in.Err
	}
	data, err := os.ReadFile(req.Path)
	if err != nil {
		return "", err
	}
	os.Remove(req.Path)
	j := &streams.Job{ID: streams.NewID(), Tenant: req.Tenant, Kind: "filesource", Status: streams.JobQueued,
		File: req.Name, Entity: string(req.Entity), System: req.System, TraceID: req.TraceID, CreatedAt: time.Now().UTC()}
	if err := in.Jobs.Put(ctx, j); err != nil {
		return "", err
	}
	in.mu.Lock()
	in.calls = append(in.calls, Ingested{FileIngest: req, Content: data, JobID: j.ID})
	in.mu.Unlock()
	return j.ID, nil
}

// StandInHealth is a HealthChecker standing in for cmd's, reporting the
// components it is given. Safe for concurrent use.
type StandInHealth struct {
	mu         sync.Mutex
	Components []gateway.ComponentHealth
}

// Set replaces the reported components.
func (h *StandInHealth) Set(cs ...gateway.ComponentHealth) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Components = cs
}

// Check reports the components.
func (h *StandInHealth) Check(context.Context) []gateway.ComponentHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]gateway.ComponentHealth(nil), h.Components...)
}

var (
	_ gateway.ViewReader    = (*StandInViews)(nil)
	_ gateway.FileIngester  = (*StandInIngester)(nil)
	_ gateway.HealthChecker = (*StandInHealth)(nil)
)

// FormPart is one part of a multipart body built by Multipart.
type FormPart struct {
	Name     string
	FileName string // set for a file part
	Content  []byte
}

// Multipart encodes parts as multipart/form-data with the given boundary
// ("" for a random one) and returns the body and its Content-Type.
func Multipart(t testing.TB, boundary string, parts ...FormPart) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	if boundary != "" {
		if err := w.SetBoundary(boundary); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range parts {
		var pw io.Writer
		var err error
		if p.FileName != "" {
			pw, err = w.CreateFormFile(p.Name, p.FileName)
		} else {
			pw, err = w.CreateFormField(p.Name)
		}
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(p.Content)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.FormDataContentType()
}

// Upload posts a multipart body to the upload route. The caller closes the
// response body.
func (e *Env) Upload(t testing.TB, token string, body []byte, contentType string, headers ...string) *http.Response {
	t.Helper()
	return e.DoRaw(t, http.MethodPost, "/api/v1/filesource/upload", token, bytes.NewReader(body),
		append([]string{"Content-Type", contentType}, headers...)...)
}

// DoRaw sends a request with any body and headers (pairs of name, value).
func (e *Env) DoRaw(t testing.TB, method, path, token string, body io.Reader, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
