package gateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/gateway/gatewaytest"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
)

// auditRecords reads a tenant's audit CloudEvents from the AUDIT stream.
func auditRecords(t *testing.T, env *gatewaytest.Env, tenant string) []gateway.AuditRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := env.NATS.JS.Stream(ctx, streams.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []gateway.AuditRecord
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if m.Subject != "audit."+tenant {
			continue
		}
		var ev struct {
			SpecVersion string              `json:"specversion"`
			Type        string              `json:"type"`
			TenantID    string              `json:"tenantid"`
			TraceID     string              `json:"traceid"`
			Data        gateway.AuditRecord `json:"data"`
		}
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatalf("audit event %s: %v", m.Data, err)
		}
		if ev.SpecVersion != "1.0" || ev.Type != gateway.AuditEventType || ev.TenantID != tenant || ev.TraceID != ev.Data.TraceID {
			t.Fatalf("audit envelope = %s", m.Data)
		}
		out = append(out, ev.Data)
	}
	return out
}

func findAudit(recs []gateway.AuditRecord, traceID string) *gateway.AuditRecord {
	for i := range recs {
		if recs[i].TraceID == traceID {
			return &recs[i]
		}
	}
	return nil
}

func traceparent(id string) string { return "00-" + id + "-00f067aa0ba902b7-01" }

func TestMiddlewareOrder(t *testing.T) {
	env := gatewaytest.Start(t, func(c *gateway.Config) {
		c.RateRead = "1/h burst 3"
		c.RateWrite = "1/h burst 2"
	})
	want := []string{"tracing", "auth", "rate_limit", "idempotency", "audit", "recover"}
	if got := env.Server.Middleware(); !slices.Equal(got, want) {
		t.Fatalf("middleware order %v, want %v", got, want)
	}
	acme := env.Register(t, "acme", "admin@acme.example", pw)
	globex := env.Register(t, "globex", "admin@globex.example", pw)

	// auth before rate limit: unauthenticated and badly authenticated
	// requests never touch a tenant's bucket.
	for range 10 {
		for _, tok := range []string{"", "garbage"} {
			res := env.Do(t, http.MethodGet, "/api/v1/aoa/jobs", tok, nil)
			res.Body.Close()
			if res.StatusCode != 401 {
				t.Fatalf("status %d, want 401", res.StatusCode)
			}
		}
	}
	for i := range 3 {
		res := env.Do(t, http.MethodGet, "/api/v1/aoa/jobs", acme.AccessToken, nil)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("read %d: status %d; unauthenticated requests were counted", i, res.StatusCode)
		}
		if got := res.Header.Get("RateLimit-Remaining"); got != strconv.Itoa(2-i) {
			t.Fatalf("read %d: RateLimit-Remaining %q, want %d", i, got, 2-i)
		}
		if res.Header.Get("RateLimit-Limit") != "3" {
			t.Fatalf("RateLimit-Limit %q", res.Header.Get("RateLimit-Limit"))
		}
	}
	// tracing before rate limit: the refused request is traced.
	const tid = "11111111111111111111111111111111"
	res := env.Do(t, http.MethodGet, "/api/v1/aoa/jobs", acme.AccessToken, nil, "traceparent", traceparent(tid))
	if res.StatusCode != 429 {
		t.Fatalf("4th read: status %d, want 429", res.StatusCode)
	}
	retry, _ := strconv.Atoi(res.Header.Get("Retry-After"))
	reset, _ := strconv.Atoi(res.Header.Get("RateLimit-Reset"))
	if retry < 1 || reset < 1 || res.Header.Get("RateLimit-Remaining") != "0" || res.Header.Get("RateLimit-Limit") != "3" {
		t.Fatalf("429 headers: %v", res.Header)
	}
	if e := gatewaytest.ErrorOf(t, res); e.Code != gateway.CodeRateLimited || e.TraceID != tid {
		t.Fatalf("429 error %+v", e)
	}
	// Another tenant's bucket is its own; writes are another class.
	res = env.Do(t, http.MethodGet, "/api/v1/aoa/jobs", globex.AccessToken, nil)
	gatewaytest.MustStatus(t, res, 200)
	res.Body.Close()

	// Rate limit before idempotency: a replay still spends a token. Audit
	// after idempotency, yet refusals of the earlier steps are audited too.
	invite := map[string]string{"email": "v@acme.example", "password": pw, "role": "viewer"}
	const t1, t2, t3 = "22222222222222222222222222222222", "33333333333333333333333333333333", "44444444444444444444444444444444"
	res = env.Do(t, http.MethodPost, "/api/v1/auth/users", acme.AccessToken, invite, "Idempotency-Key", "k1", "traceparent", traceparent(t1))
	gatewaytest.MustStatus(t, res, 201)
	res.Body.Close()
	res = env.Do(t, http.MethodPost, "/api/v1/auth/users", acme.AccessToken, invite, "Idempotency-Key", "k1", "traceparent", traceparent(t2))
	gatewaytest.MustStatus(t, res, 201)
	res.Body.Close()
	if res.Header.Get(gateway.HeaderIdempotentReplay) != "true" {
		t.Fatal("second call was not a replay")
	}
	res = env.Do(t, http.MethodPost, "/api/v1/auth/users", acme.AccessToken, invite, "Idempotency-Key", "k1", "traceparent", traceparent(t3))
	if res.StatusCode != 429 {
		t.Fatalf("third write: status %d, want 429 (the replay must have spent a token)", res.StatusCode)
	}
	res.Body.Close()

	streamstest.Eventually(t, 5*time.Second, func() error {
		recs := auditRecords(t, env, "acme")
		for _, c := range []struct {
			trace   string
			status  int
			outcome string
		}{{t1, 201, "handled"}, {t2, 201, "replayed"}, {t3, 429, "refused"}} {
			r := findAudit(recs, c.trace)
			if r == nil {
				return fmt.Errorf("no audit record for trace %s in %d records", c.trace, len(recs))
			}
			if r.Status != c.status || r.Outcome != c.outcome || r.IdempotencyKey != "k1" || r.Tenant != "acme" ||
				r.User != acme.User.ID || r.Route != "/api/v1/auth/users" || r.Method != "POST" {
				return fmt.Errorf("audit record %+v, want status %d outcome %s", r, c.status, c.outcome)
			}
		}
		// Reads are not audited.
		if r := findAudit(recs, tid); r != nil {
			return fmt.Errorf("a GET was audited: %+v", r)
		}
		return nil
	})
}

func TestAuditRecord(t *testing.T) {
	env := gatewaytest.Start(t)
	acme := env.Register(t, "acme", "admin@acme.example", pw)
	const tid = "55555555555555555555555555555555"
	body := `{"email":"x@acme.example","password":"longenough","role":"viewer"}`
	res := env.DoRaw(t, http.MethodPost, "/api/v1/auth/users", acme.AccessToken, strings.NewReader(body),
		"Content-Type", "application/json", "traceparent", traceparent(tid), "Idempotency-Key", "abc")
	gatewaytest.MustStatus(t, res, 201)
	res.Body.Close()
	const failed = "66666666666666666666666666666666"
	res = env.Do(t, http.MethodPost, "/api/v1/auth/login", "", map[string]string{"email": "admin@acme.example", "password": "wrong!!!"},
		"traceparent", traceparent(failed))
	res.Body.Close()
	const stranger = "77777777777777777777777777777777"
	res = env.Do(t, http.MethodPost, "/api/v1/auth/register", "", map[string]string{"tenant": "acme", "email": "evil@evil.example", "password": pw},
		"traceparent", traceparent(stranger))
	res.Body.Close()

	streamstest.Eventually(t, 5*time.Second, func() error {
		recs := auditRecords(t, env, "acme")
		r := findAudit(recs, tid)
		if r == nil {
			return fmt.Errorf("no audit record among %d", len(recs))
		}
		if len(r.BodySHA256) != 64 || r.LatencyMS < 0 || r.ClientIP == "" || r.Status != 201 || r.Path != "/api/v1/auth/users" {
			return fmt.Errorf("audit record %+v", r)
		}
		if f := findAudit(recs, failed); f == nil || f.Status != 401 || f.User != acme.User.ID {
			return fmt.Errorf("failed login of an acme account not audited to acme: %+v", f)
		}
		if s := findAudit(recs, stranger); s != nil {
			return fmt.Errorf("a stranger's refused registration was written to acme's audit: %+v", s)
		}
		return nil
	})
	recs := auditRecords(t, env, "acme")
	if got, want := findAudit(recs, tid).BodySHA256, sha256hex(body); got != want {
		t.Fatalf("body_sha256 %s, want %s", got, want)
	}
}

func TestRateLimitHeadersOnWrites(t *testing.T) {
	env := gatewaytest.Start(t, func(c *gateway.Config) { c.RateWrite = "1/h burst 1" })
	acme := env.Register(t, "acme", "admin@acme.example", pw)
	body, ct := uploadForm(t, "account")
	res := env.Upload(t, acme.AccessToken, body, ct)
	gatewaytest.MustStatus(t, res, 202)
	res.Body.Close()
	res = env.Upload(t, acme.AccessToken, body, ct)
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("second upload: %d %v", res.StatusCode, res.Header)
	}
	gatewaytest.ErrorOf(t, res)
	// Reads are another bucket.
	res = env.Do(t, http.MethodGet, "/api/v1/aoa/jobs", acme.AccessToken, nil)
	gatewaytest.MustStatus(t, res, 200)
	res.Body.Close()
	if n := len(env.Ingester.Calls()); n != 1 {
		t.Fatalf("%d uploads ingested, want 1", n)
	}
}

func TestIdempotencyJSON(t *testing.T) {
	env := gatewaytest.Start(t)
	acme := env.Register(t, "acme", "admin@acme.example", pw)
	globex := env.Register(t, "globex", "admin@globex.example", pw)
	post := func(tok, key, body string) *http.Response {
		return env.DoRaw(t, http.MethodPost, "/api/v1/auth/users", tok, strings.NewReader(body),
			"Content-Type", "application/json", "Idempotency-Key", key)
	}
	read := func(res *http.Response) string {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return string(b)
	}
	first := post(acme.AccessToken, "k-1", `{"email":"a@acme.example","password":"longenough","role":"viewer"}`)
	gatewaytest.MustStatus(t, first, 201)
	firstBody := read(first)

	cases := []struct {
		name   string
		token  string
		key    string
		body   string
		status int
		replay bool
		code   string
	}{
		{"same body replays", acme.AccessToken, "k-1", `{"email":"a@acme.example","password":"longenough","role":"viewer"}`, 201, true, ""},
		{"same content, other key order and spacing", acme.AccessToken, "k-1", "{ \"role\": \"viewer\",\n \"password\":\"longenough\", \"email\":\"a@acme.example\" }", 201, true, ""},
		{"different body", acme.AccessToken, "k-1", `{"email":"b@acme.example","password":"longenough","role":"viewer"}`, 422, false, gateway.CodeIdempotencyReused},
		{"another tenant's key space", globex.AccessToken, "k-1", `{"email":"c@globex.example","password":"longenough"}`, 201, false, ""},
		{"key too long", acme.AccessToken, strings.Repeat("k", 256), `{}`, 422, false, gateway.CodeValidation},
		{"failed request releases its key (1)", acme.AccessToken, "k-2", `{"email":"bad","password":"longenough"}`, 422, false, gateway.CodeValidation},
		{"failed request releases its key (2)", acme.AccessToken, "k-2", `{"email":"d@acme.example","password":"longenough"}`, 201, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := post(tc.token, tc.key, tc.body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, read(res))
			}
			if got := res.Header.Get(gateway.HeaderIdempotentReplay) == "true"; got != tc.replay {
				t.Fatalf("replay header %v, want %v", got, tc.replay)
			}
			if tc.code != "" {
				if e := gatewaytest.ErrorOf(t, res); e.Code != tc.code {
					t.Fatalf("code %q, want %q", e.Code, tc.code)
				}
				return
			}
			b := read(res)
			if tc.replay && b != firstBody {
				t.Fatalf("replayed body %s, want %s", b, firstBody)
			}
		})
	}
	// The key on another route is another request.
	body, ct := uploadForm(t, "account")
	res := env.Upload(t, acme.AccessToken, body, ct, "Idempotency-Key", "k-1")
	if res.StatusCode != 422 {
		t.Fatalf("key reused on another route: %d, want 422", res.StatusCode)
	}
	res.Body.Close()
}

func TestIdempotencyMultipart(t *testing.T) {
	env := gatewaytest.Start(t)
	acme := env.Register(t, "acme", "admin@acme.example", pw)
	entity := gatewaytest.FormPart{Name: "entity", Content: []byte("account")}
	system := gatewaytest.FormPart{Name: "system", Content: []byte("filesource")}
	file := gatewaytest.FormPart{Name: "file", FileName: "accounts.csv", Content: []byte(csv)}
	otherFile := gatewaytest.FormPart{Name: "file", FileName: "accounts.csv", Content: []byte(csv + "3,Umbrella,Pharma\n")}

	b1, ct1 := gatewaytest.Multipart(t, "boundary-one", entity, system, file)
	res := env.Upload(t, acme.AccessToken, b1, ct1, "Idempotency-Key", "upload-1")
	gatewaytest.MustStatus(t, res, 202)
	var first gateway.UploadAccepted
	gatewaytest.Decode(t, res, &first)

	cases := []struct {
		name     string
		boundary string
		parts    []gatewaytest.FormPart
		status   int
		replay   bool
	}{
		{"same parts, same boundary", "boundary-one", []gatewaytest.FormPart{entity, system, file}, 202, true},
		{"same parts, new boundary", "a-new-boundary-from-a-retrying-client", []gatewaytest.FormPart{entity, system, file}, 202, true},
		{"same parts, other order", "xyz", []gatewaytest.FormPart{file, entity, system}, 202, true},
		{"other file bytes", "boundary-one", []gatewaytest.FormPart{entity, system, otherFile}, 422, false},
		{"other field", "boundary-one", []gatewaytest.FormPart{{Name: "entity", Content: []byte("contact")}, system, file}, 422, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, ct := gatewaytest.Multipart(t, tc.boundary, tc.parts...)
			res := env.Upload(t, acme.AccessToken, b, ct, "Idempotency-Key", "upload-1")
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if got := res.Header.Get(gateway.HeaderIdempotentReplay) == "true"; got != tc.replay {
				t.Fatalf("replay %v, want %v", got, tc.replay)
			}
			if tc.status != 202 {
				if e := gatewaytest.ErrorOf(t, res); e.Code != gateway.CodeIdempotencyReused {
					t.Fatalf("code %q", e.Code)
				}
				return
			}
			var acc gateway.UploadAccepted
			gatewaytest.Decode(t, res, &acc)
			if acc.JobID != first.JobID {
				t.Fatalf("job %s, want the first job %s", acc.JobID, first.JobID)
			}
		})
	}
	if n := len(env.Ingester.Calls()); n != 1 {
		t.Fatalf("%d ingests, want exactly 1", n)
	}
}

func TestIdempotencyConcurrent(t *testing.T) {
	env := gatewaytest.Start(t)
	env.Ingester.Delay = 300 * time.Millisecond // keep the first request in flight
	acme := env.Register(t, "acme", "admin@acme.example", pw)
	body, ct := uploadForm(t, "opportunity")
	const n = 50
	type answer struct {
		status int
		replay bool
		job    string
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := env.Upload(t, acme.AccessToken, body, ct, "Idempotency-Key", "same-key")
			a := answer{status: res.StatusCode, replay: res.Header.Get(gateway.HeaderIdempotentReplay) == "true"}
			if res.StatusCode == 202 {
				var acc gateway.UploadAccepted
				json.NewDecoder(res.Body).Decode(&acc)
				a.job = acc.JobID
			}
			res.Body.Close()
			answers[i] = a
		}()
	}
	wg.Wait()
	originals, jobs := 0, map[string]bool{}
	for _, a := range answers {
		switch {
		case a.status == 202 && !a.replay:
			originals++
			jobs[a.job] = true
		case a.status == 202 && a.replay:
			jobs[a.job] = true
		case a.status == 409:
		default:
			t.Fatalf("unexpected answer %+v", a)
		}
	}
	if originals != 1 || len(jobs) != 1 {
		t.Fatalf("%d original answers and %d job ids, want exactly 1 of each: %+v", originals, len(jobs), answers)
	}
	if got := len(env.Ingester.Calls()); got != 1 {
		t.Fatalf("%d ingests, want exactly one effect", got)
	}
	// Afterwards the key replays.
	res := env.Upload(t, acme.AccessToken, body, ct, "Idempotency-Key", "same-key")
	gatewaytest.MustStatus(t, res, 202)
	res.Body.Close()
	if res.Header.Get(gateway.HeaderIdempotentReplay) != "true" {
		t.Fatal("retry after the race was not a replay")
	}
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
