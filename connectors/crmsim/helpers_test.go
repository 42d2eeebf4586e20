package crmsim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomos/autonomos/connectors/crmsim"
)

const (
	sfAPI  = "/salesforce/services/data/v59.0"
	dynAPI = "/dynamics/api/data/v9.2"
)

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// clock is a settable clock for Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is a Sim behind a real HTTP server with a settable clock.
type harness struct {
	t     *testing.T
	sim   *crmsim.Sim
	srv   *httptest.Server
	clock *clock
}

func newHarness(t *testing.T, cfg crmsim.Config) *harness {
	t.Helper()
	c := &clock{now: t0}
	if cfg.Now == nil {
		cfg.Now = c.Now
	}
	sim := crmsim.New(cfg)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return &harness{t: t, sim: sim, srv: srv, clock: c}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body, keeping numbers as json.Number.
func (r response) json(t *testing.T) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %d body %q: %v", r.status, r.body, err)
	}
	return v
}

func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	m, ok := r.json(t).(map[string]any)
	if !ok {
		t.Fatalf("body is not an object: %s", r.body)
	}
	return m
}

func (r response) expect(t *testing.T, status int) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

// do sends a request; path is either absolute or relative to the server.
func (h *harness) do(method, path string, header http.Header, body io.Reader) response {
	h.t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = h.srv.URL + path
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// get sends GET with a bearer token (none when empty) and header pairs.
func (h *harness) get(path, token string, kv ...string) response {
	h.t.Helper()
	hdr := http.Header{}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		hdr.Add(kv[i], kv[i+1])
	}
	return h.do(http.MethodGet, path, hdr, nil)
}

func (h *harness) postForm(path string, form url.Values) response {
	h.t.Helper()
	hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	return h.do(http.MethodPost, path, hdr, strings.NewReader(form.Encode()))
}

func (h *harness) postJSON(path, token string, v any) response {
	h.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		h.t.Fatal(err)
	}
	hdr := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + token}}
	return h.do(http.MethodPost, path, hdr, bytes.NewReader(b))
}

func (h *harness) sfLogin() string {
	h.t.Helper()
	c := h.sim.Credentials().Salesforce
	resp := h.postForm("/salesforce/services/oauth2/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret},
	}).expect(h.t, http.StatusOK)
	return resp.object(h.t)["access_token"].(string)
}

func (h *harness) dynLogin() string {
	h.t.Helper()
	c := h.sim.Credentials().Dynamics
	resp := h.postForm("/dynamics/"+c.TenantID+"/oauth2/v2.0/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret},
		"scope": {h.srv.URL + "/dynamics/.default"},
	}).expect(h.t, http.StatusOK)
	return resp.object(h.t)["access_token"].(string)
}

func (h *harness) hsLogin() string { return h.sim.Credentials().HubSpot.AccessToken }

func records(t *testing.T, v any) []map[string]any {
	t.Helper()
	xs, ok := v.([]any)
	if !ok {
		t.Fatalf("not an array: %v", v)
	}
	out := make([]map[string]any, len(xs))
	for i, x := range xs {
		out[i] = x.(map[string]any)
	}
	return out
}

// sfQuery runs a SOQL query on endpoint (query or queryAll) and follows
// nextRecordsUrl; batch 0 sends no batchSize.
func (h *harness) sfQuery(tok, endpoint, soql string, batch int) (recs []map[string]any, pages int) {
	h.t.Helper()
	var kv []string
	if batch > 0 {
		kv = []string{"Sforce-Query-Options", "batchSize=" + strconv.Itoa(batch)}
	}
	path := sfAPI + "/" + endpoint + "?q=" + url.QueryEscape(soql)
	for {
		page := h.get(path, tok, kv...).expect(h.t, http.StatusOK).object(h.t)
		pages++
		recs = append(recs, records(h.t, page["records"])...)
		if page["done"] == true {
			if _, ok := page["nextRecordsUrl"]; ok {
				h.t.Fatalf("done page has nextRecordsUrl: %v", page)
			}
			if n := num(h.t, page["totalSize"]); n != len(recs) {
				h.t.Fatalf("totalSize %d, got %d records", n, len(recs))
			}
			return recs, pages
		}
		path = "/salesforce" + page["nextRecordsUrl"].(string)
	}
}

// hsList follows a HubSpot list endpoint's paging.next.link.
func (h *harness) hsList(tok, object, query string) (recs []map[string]any, pages int) {
	h.t.Helper()
	path := "/hubspot/crm/v3/objects/" + object + "?" + query
	for {
		page := h.get(path, tok).expect(h.t, http.StatusOK).object(h.t)
		pages++
		recs = append(recs, records(h.t, page["results"])...)
		paging, ok := page["paging"].(map[string]any)
		if !ok {
			return recs, pages
		}
		path = paging["next"].(map[string]any)["link"].(string)
	}
}

// hsSearch pages a HubSpot search with "after".
func (h *harness) hsSearch(tok, object string, body map[string]any) (recs []map[string]any, pages int) {
	h.t.Helper()
	for {
		page := h.postJSON("/hubspot/crm/v3/objects/"+object+"/search", tok, body).expect(h.t, http.StatusOK).object(h.t)
		pages++
		recs = append(recs, records(h.t, page["results"])...)
		paging, ok := page["paging"].(map[string]any)
		if !ok {
			if n := num(h.t, page["total"]); n != len(recs) {
				h.t.Fatalf("total %d, got %d results", n, len(recs))
			}
			return recs, pages
		}
		body["after"] = paging["next"].(map[string]any)["after"]
	}
}

// dynList follows @odata.nextLink, sending prefer on every request, and
// returns the rows and the final @odata.deltaLink.
func (h *harness) dynList(tok, pathQuery, prefer string) (rows []map[string]any, deltaLink string, pages int) {
	h.t.Helper()
	path := dynAPI + "/" + pathQuery
	for {
		var kv []string
		if prefer != "" {
			kv = []string{"Prefer", prefer}
		}
		page := h.get(path, tok, kv...).expect(h.t, http.StatusOK).object(h.t)
		pages++
		rows = append(rows, records(h.t, page["value"])...)
		next, ok := page["@odata.nextLink"].(string)
		if !ok {
			dl, _ := page["@odata.deltaLink"].(string)
			return rows, dl, pages
		}
		path = next
	}
}

func num(t *testing.T, v any) int {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("not a number: %v", v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return int(i)
}

func ids(t *testing.T, recs []map[string]any, key string) []string {
	t.Helper()
	out := make([]string, len(recs))
	for i, r := range recs {
		s, ok := r[key].(string)
		if !ok {
			t.Fatalf("record without %s: %v", key, r)
		}
		out[i] = s
	}
	return out
}

// eventually polls f until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
