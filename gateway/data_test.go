package gateway_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/gateway/gatewaytest"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
)

const csv = "account_id,name,industry\n1,Acme,Tech\n2,Initech,Software\n"

func uploadForm(t *testing.T, entity string) ([]byte, string) {
	t.Helper()
	return gatewaytest.Multipart(t, "", gatewaytest.FormPart{Name: "entity", Content: []byte(entity)},
		gatewaytest.FormPart{Name: "file", FileName: "accounts.csv", Content: []byte(csv)})
}

func TestUpload(t *testing.T) {
	env := gatewaytest.Start(t)
	tok := env.Register(t, "acme", "admin@acme.example", pw)
	const tid = "0af7651916cd43dd8448eb211c80319c"
	fileFirst, fileFirstCT := gatewaytest.Multipart(t, "",
		gatewaytest.FormPart{Name: "file", FileName: `C:\Users\me\accounts.csv`, Content: []byte(csv)},
		gatewaytest.FormPart{Name: "system", Content: []byte("legacy-crm")},
		gatewaytest.FormPart{Name: "entity", Content: []byte("account")})
	body, ct := uploadForm(t, "accounts")
	res := env.Upload(t, tok.AccessToken, body, ct, "traceparent", "00-"+tid+"-b7ad6b7169203331-01")
	gatewaytest.MustStatus(t, res, http.StatusAccepted)
	var acc gateway.UploadAccepted
	gatewaytest.Decode(t, res, &acc)

	res = env.Upload(t, tok.AccessToken, fileFirst, fileFirstCT)
	gatewaytest.MustStatus(t, res, http.StatusAccepted)
	res.Body.Close()

	calls := env.Ingester.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d ingest calls, want 2", len(calls))
	}
	c := calls[0]
	if c.JobID != acc.JobID || c.Tenant != "acme" || c.Entity != canonical.AccountEntity || c.System != "filesource" ||
		c.Name != "accounts.csv" || c.TraceID != tid || c.Size != int64(len(csv)) || string(c.Content) != csv {
		t.Fatalf("ingest = %+v content %q", c.FileIngest, c.Content)
	}
	if !strings.HasPrefix(c.Path, filepath.Join(env.Config.SpoolDir, "acme")+string(filepath.Separator)) {
		t.Fatalf("spooled to %s, want under <spool>/acme/", c.Path)
	}
	if c := calls[1]; c.System != "legacy-crm" || c.Name != "accounts.csv" || string(c.Content) != csv {
		t.Fatalf("file-first upload = %+v", c.FileIngest)
	}

	// The job is readable, with errors as a list.
	res = env.Do(t, http.MethodGet, "/api/v1/aoa/jobs/"+acc.JobID, tok.AccessToken, nil)
	gatewaytest.MustStatus(t, res, 200)
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !bytes.Contains(raw, []byte(`"errors":[]`)) || !bytes.Contains(raw, []byte(`"status":"queued"`)) {
		t.Fatalf("job = %s", raw)
	}
}

func TestUploadRefusals(t *testing.T) {
	env := gatewaytest.Start(t, func(c *gateway.Config) { c.MaxUploadBytes = 4096 })
	tok := env.Register(t, "acme", "admin@acme.example", pw)
	file := gatewaytest.FormPart{Name: "file", FileName: "a.csv", Content: []byte(csv)}
	entity := gatewaytest.FormPart{Name: "entity", Content: []byte("opportunity")}
	cases := []struct {
		name   string
		parts  []gatewaytest.FormPart
		ct     string // overrides the multipart content type
		body   string
		status int
		field  string
	}{
		{"no entity", []gatewaytest.FormPart{file}, "", "", 422, "entity"},
		{"bad entity", []gatewaytest.FormPart{file, {Name: "entity", Content: []byte("lead")}}, "", "", 422, "entity"},
		{"bad system", []gatewaytest.FormPart{file, entity, {Name: "system", Content: []byte("Sales Force")}}, "", "", 422, "system"},
		{"no file", []gatewaytest.FormPart{entity}, "", "", 422, "file"},
		{"two files", []gatewaytest.FormPart{file, entity, file}, "", "", 422, "file"},
		{"too large", []gatewaytest.FormPart{entity, {Name: "file", FileName: "big.csv", Content: bytes.Repeat([]byte("x"), 5000)}}, "", "", 413, "file"},
		{"not multipart", nil, "application/json", `{"entity":"account"}`, 415, "Content-Type"},
		{"no boundary", nil, "multipart/form-data", "--x--", 400, "boundary"},
		{"broken multipart", nil, "multipart/form-data; boundary=zzz", "--zzz\r\nContent-Disposition: form-data; name=\"entity\"\r\n\r\naccount", 400, "multipart"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var res *http.Response
			if tc.ct != "" {
				res = env.Upload(t, tok.AccessToken, []byte(tc.body), tc.ct)
			} else {
				b, ct := gatewaytest.Multipart(t, "", tc.parts...)
				res = env.Upload(t, tok.AccessToken, b, ct)
			}
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if e := gatewaytest.ErrorOf(t, res); !strings.Contains(e.Message, tc.field) {
				t.Fatalf("message %q does not name %q", e.Message, tc.field)
			}
		})
	}
	if n := len(env.Ingester.Calls()); n != 0 {
		t.Fatalf("%d refused uploads reached the ingester", n)
	}
	// Nothing is left in the spool.
	left, _ := filepath.Glob(filepath.Join(env.Config.SpoolDir, "acme", "*"))
	if len(left) != 0 {
		t.Fatalf("spool files left behind: %v", left)
	}

	// An ingester failure is a 500 in the error shape, and the spooled file is removed.
	env.Ingester.Err = errors.New("disk on fire")
	b, ct := uploadForm(t, "account")
	res := env.Upload(t, tok.AccessToken, b, ct)
	if res.StatusCode != 500 {
		t.Fatalf("ingester failure: status %d", res.StatusCode)
	}
	if e := gatewaytest.ErrorOf(t, res); strings.Contains(e.Message, "fire") {
		t.Fatalf("internal detail leaked: %q", e.Message)
	}
	left, _ = filepath.Glob(filepath.Join(env.Config.SpoolDir, "acme", "*"))
	if len(left) != 0 {
		t.Fatalf("spool files left behind: %v", left)
	}
}

func TestUploadWithoutIngester(t *testing.T) {
	env := gatewaytest.StartDeps(t, func(d *gateway.Deps) { d.Ingester = nil })
	tok := env.Register(t, "acme", "admin@acme.example", pw)
	body, ct := uploadForm(t, "account")
	res := env.Upload(t, tok.AccessToken, body, ct)
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", res.StatusCode)
	}
	if e := gatewaytest.ErrorOf(t, res); e.Code != gateway.CodeUnavailable {
		t.Fatalf("code %q", e.Code)
	}
}

// TestUploadStreams proves the file part reaches the disk while the client
// is still sending: the gateway does not buffer the upload in memory.
func TestUploadStreams(t *testing.T) {
	env := gatewaytest.Start(t)
	tok := env.Register(t, "acme", "admin@acme.example", pw)
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	type result struct {
		res *http.Response
		err error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, env.URL+"/api/v1/filesource/upload", pr)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		res, err := env.HTTP.Client().Do(req)
		done <- result{res, err}
	}()
	if err := mw.WriteField("entity", "contact"); err != nil {
		t.Fatal(err)
	}
	fw, _ := mw.CreateFormFile("file", "contacts.csv")
	chunk := bytes.Repeat([]byte("c1,Ada,Lovelace,ada@example.com\n"), 1<<15) // 1 MiB
	const chunks = 8
	fw.Write(chunk)
	spool := filepath.Join(env.Config.SpoolDir, "acme")
	streamstest.Eventually(t, 10*time.Second, func() error {
		files, _ := filepath.Glob(filepath.Join(spool, "*"))
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil && fi.Size() > 0 {
				return nil
			}
		}
		return fmt.Errorf("no spooled bytes yet in %s", spool)
	})
	for range chunks - 1 {
		fw.Write(chunk)
	}
	mw.Close()
	pw.Close()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	gatewaytest.MustStatus(t, r.res, http.StatusAccepted)
	r.res.Body.Close()
	calls := env.Ingester.Calls()
	if len(calls) != 1 || calls[0].Size != int64(len(chunk)*chunks) || !bytes.Equal(calls[0].Content[:len(chunk)], chunk) {
		t.Fatalf("ingested %d calls, size %d", len(calls), calls[0].Size)
	}
}

func TestJobsAreTenantScoped(t *testing.T) {
	env := gatewaytest.Start(t)
	a := env.Register(t, "acme", "admin@acme.example", pw)
	b := env.Register(t, "globex", "admin@globex.example", pw)
	body, ct := uploadForm(t, "account")
	res := env.Upload(t, a.AccessToken, body, ct)
	gatewaytest.MustStatus(t, res, 202)
	var acc gateway.UploadAccepted
	gatewaytest.Decode(t, res, &acc)

	cases := []struct {
		name, token, path string
		status            int
		jobs              int // for lists, the number of jobs
	}{
		{"owner reads the job", a.AccessToken, "/api/v1/aoa/jobs/" + acc.JobID, 200, -1},
		{"other tenant gets 404", b.AccessToken, "/api/v1/aoa/jobs/" + acc.JobID, 404, -1},
		{"bad id is 404", a.AccessToken, "/api/v1/aoa/jobs/..%2Fx", 404, -1},
		{"owner lists it", a.AccessToken, "/api/v1/aoa/jobs", 200, 1},
		{"other tenant lists nothing", b.AccessToken, "/api/v1/aoa/jobs", 200, 0},
		{"limit", a.AccessToken, "/api/v1/aoa/jobs?limit=1", 200, 1},
		{"bad limit", a.AccessToken, "/api/v1/aoa/jobs?limit=0", 422, -1},
		{"tenant parameter refused", b.AccessToken, "/api/v1/aoa/jobs?tenant_id=acme", 422, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := env.Do(t, http.MethodGet, tc.path, tc.token, nil)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			switch {
			case tc.status >= 400:
				gatewaytest.ErrorOf(t, res)
			case tc.jobs >= 0:
				var list struct {
					Data []streams.Job `json:"data"`
				}
				gatewaytest.Decode(t, res, &list)
				if len(list.Data) != tc.jobs {
					t.Fatalf("%d jobs, want %d", len(list.Data), tc.jobs)
				}
			default:
				var j streams.Job
				gatewaytest.Decode(t, res, &j)
				if j.ID != acc.JobID || j.Tenant != "acme" {
					t.Fatalf("job = %+v", j)
				}
			}
		})
	}
}

func TestViewsUseTheTokensTenant(t *testing.T) {
	env := gatewaytest.Start(t)
	a := env.Register(t, "acme", "admin@acme.example", pw)
	for i, ind := range []string{"Tech", "Tech", "Retail"} {
		env.Views.Add(canonical.AccountEntity, map[string]any{"tenant_id": "acme", "account_id": fmt.Sprintf("a%d", i),
			"name": fmt.Sprintf("Acme %d", i), "industry": ind, "extras": map[string]any{}})
	}
	env.Views.Add(canonical.AccountEntity, map[string]any{"tenant_id": "globex", "account_id": "g1", "name": "Globex", "industry": "Tech"})

	type page struct {
		Data       []map[string]any `json:"data"`
		NextCursor *string          `json:"next_cursor"`
	}
	get := func(t *testing.T, query string) (*http.Response, page) {
		res := env.Do(t, http.MethodGet, "/api/v1/dcl/views/accounts"+query, a.AccessToken, nil)
		var p page
		if res.StatusCode == 200 {
			gatewaytest.Decode(t, res, &p)
		}
		return res, p
	}
	cases := []struct {
		name   string
		query  string
		status int
		ids    []string
		more   bool
		field  string
	}{
		{"all of the tenant's rows", "", 200, []string{"a0", "a1", "a2"}, false, ""},
		{"filter", "?industry=Tech", 200, []string{"a0", "a1"}, false, ""},
		{"limit pages", "?limit=2", 200, []string{"a0", "a1"}, true, ""},
		{"tenant_id is not a parameter", "?tenant_id=globex", 422, nil, false, "tenant_id"},
		{"tenant_id with a filter", "?industry=Tech&tenant_id=globex", 422, nil, false, "tenant_id"},
		{"bad limit", "?limit=0", 422, nil, false, "limit"},
		{"huge limit", "?limit=100000", 422, nil, false, "limit"},
		{"bad cursor", "?cursor=bm9wZQ", 422, nil, false, "cursor"},
		{"unknown column", "?colour=red", 422, nil, false, "colour"},
		{"repeated parameter", "?industry=a&industry=b", 422, nil, false, "industry"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(env.Views.Queries())
			res, p := get(t, tc.query)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if tc.status != 200 {
				if e := gatewaytest.ErrorOf(t, res); !strings.Contains(e.Message, tc.field) || e.Code != gateway.CodeValidation {
					t.Fatalf("error %+v does not name %q", e, tc.field)
				}
				if len(env.Views.Queries()) != before {
					t.Fatal("a refused query reached the store")
				}
				return
			}
			var ids []string
			for _, r := range p.Data {
				ids = append(ids, r["account_id"].(string))
				if r["tenant_id"] != "acme" {
					t.Fatalf("row of tenant %v", r["tenant_id"])
				}
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.ids) || (p.NextCursor != nil) != tc.more {
				t.Fatalf("ids %v next %v, want %v more=%v", ids, p.NextCursor, tc.ids, tc.more)
			}
			for _, q := range env.Views.Queries()[before:] {
				if q.Tenant != "acme" {
					t.Fatalf("store asked for tenant %q", q.Tenant)
				}
			}
		})
	}
	// The cursor of a page leads to the next, and the last has next_cursor null.
	_, p1 := get(t, "?limit=2")
	res, p2 := get(t, "?limit=2&cursor="+*p1.NextCursor)
	gatewaytest.MustStatus(t, res, 200)
	if len(p2.Data) != 1 || p2.Data[0]["account_id"] != "a2" || p2.NextCursor != nil {
		t.Fatalf("second page = %+v", p2)
	}
	raw := env.Do(t, http.MethodGet, "/api/v1/dcl/views/contacts", a.AccessToken, nil)
	b, _ := io.ReadAll(raw.Body)
	raw.Body.Close()
	if string(b) != `{"data":[],"next_cursor":null}`+"\n" {
		t.Fatalf("empty view body = %s", b)
	}

	// A store failure is a 500 that leaks nothing.
	env.Views.Err = errors.New("duckdb: file locked at /secret/path")
	res, _ = get(t, "")
	if res.StatusCode != 500 {
		t.Fatalf("store failure: status %d", res.StatusCode)
	}
	if e := gatewaytest.ErrorOf(t, res); strings.Contains(e.Message, "secret") {
		t.Fatalf("leaked: %q", e.Message)
	}
}
