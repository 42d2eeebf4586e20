package crmsim_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomos/autonomos/connectors/crmsim"
)

func errorCode(t *testing.T, r response) string {
	t.Helper()
	switch v := r.json(t).(type) {
	case []any: // Salesforce
		return v[0].(map[string]any)["errorCode"].(string)
	case map[string]any:
		if e, ok := v["error"].(map[string]any); ok { // Dynamics OData
			return e["code"].(string)
		}
		if c, ok := v["category"].(string); ok { // HubSpot
			return c
		}
		if e, ok := v["error"].(string); ok { // OAuth
			return e
		}
		if s, ok := v["status"].(string); ok { // HubSpot OAuth
			return s
		}
	}
	t.Fatalf("no error code in %s", r.body)
	return ""
}

// authSystem drives one system's authentication for the table tests.
type authSystem struct {
	name         string
	login        func(h *harness) string
	badLogin     func(h *harness) response
	badStatus    int
	badCode      string
	call         func(h *harness, tok string) response
	expiredCode  string // error code of a request with an expired token
	invalidCode  string // error code of a request without a valid token
	unauthHeader string // a header a 401 must carry
}

var authSystems = []authSystem{
	{
		name:  crmsim.Salesforce,
		login: (*harness).sfLogin,
		badLogin: func(h *harness) response {
			c := h.sim.Credentials().Salesforce
			return h.postForm("/salesforce/services/oauth2/token", url.Values{
				"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {"wrong"},
			})
		},
		badStatus: http.StatusBadRequest, badCode: "invalid_client",
		call: func(h *harness, tok string) response {
			return h.get(sfAPI+"/query?q="+url.QueryEscape("SELECT Id FROM Account LIMIT 1"), tok)
		},
		expiredCode: "INVALID_SESSION_ID", invalidCode: "INVALID_SESSION_ID",
	},
	{
		name:  crmsim.HubSpot,
		login: (*harness).hsLogin,
		badLogin: func(h *harness) response {
			c := h.sim.Credentials().HubSpot
			return h.postForm("/hubspot/oauth/v1/token", url.Values{
				"grant_type": {"refresh_token"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}, "refresh_token": {"wrong"},
			})
		},
		badStatus: http.StatusBadRequest, badCode: "BAD_REFRESH_TOKEN",
		call: func(h *harness, tok string) response {
			return h.get("/hubspot/crm/v3/objects/companies?limit=1", tok)
		},
		expiredCode: "EXPIRED_AUTHENTICATION", invalidCode: "INVALID_AUTHENTICATION",
	},
	{
		name:  crmsim.Dynamics,
		login: (*harness).dynLogin,
		badLogin: func(h *harness) response {
			c := h.sim.Credentials().Dynamics
			return h.postForm("/dynamics/"+c.TenantID+"/oauth2/v2.0/token", url.Values{
				"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {"wrong"},
				"scope": {h.srv.URL + "/dynamics/.default"},
			})
		},
		badStatus: http.StatusUnauthorized, badCode: "invalid_client",
		call: func(h *harness, tok string) response {
			return h.get(dynAPI+"/accounts?$top=1", tok)
		},
		expiredCode: "0x80072560", invalidCode: "0x80072560", unauthHeader: "WWW-Authenticate",
	},
}

func TestAuth(t *testing.T) {
	for _, sys := range authSystems {
		t.Run(sys.name, func(t *testing.T) {
			h := newHarness(t, crmsim.Config{Seed: 1})
			tok := sys.login(h)
			sys.call(h, tok).expect(t, http.StatusOK)

			bad := sys.badLogin(h).expect(t, sys.badStatus)
			if got := errorCode(t, bad); got != sys.badCode {
				t.Errorf("bad credentials: code %q, want %q", got, sys.badCode)
			}
			for name, tok := range map[string]string{"no token": "", "unknown token": "not-a-token"} {
				r := sys.call(h, tok).expect(t, http.StatusUnauthorized)
				if got := errorCode(t, r); got != sys.invalidCode {
					t.Errorf("%s: code %q, want %q", name, got, sys.invalidCode)
				}
				if sys.unauthHeader != "" && r.header.Get(sys.unauthHeader) == "" {
					t.Errorf("%s: 401 without %s", name, sys.unauthHeader)
				}
			}

			h.sim.ExpireTokens()
			r := sys.call(h, tok).expect(t, http.StatusUnauthorized)
			if got := errorCode(t, r); got != sys.expiredCode {
				t.Errorf("expired token: code %q, want %q", got, sys.expiredCode)
			}
			sys.call(h, sys.login(h)).expect(t, http.StatusOK)
			if got := h.sim.Requests(sys.name); got != 5 {
				t.Errorf("Requests = %d, want 5 (token requests excluded)", got)
			}
		})
	}
}

func TestAuthAlternativeGrants(t *testing.T) {
	h := newHarness(t, crmsim.Config{Seed: 2})
	creds := h.sim.Credentials()
	cases := []struct {
		name  string
		login func() response
		call  func(tok string) response
	}{
		{"salesforce refresh_token", func() response {
			return h.postForm("/salesforce/services/oauth2/token", url.Values{
				"grant_type": {"refresh_token"}, "client_id": {creds.Salesforce.ClientID}, "refresh_token": {creds.Salesforce.RefreshToken},
			})
		}, func(tok string) response { return h.get(sfAPI+"/sobjects/Account/describe", tok) }},
		{"salesforce basic auth", func() response {
			hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
			req := h.do(http.MethodPost, "/salesforce/services/oauth2/token", withBasic(hdr, creds.Salesforce.ClientID, creds.Salesforce.ClientSecret), strings.NewReader("grant_type=client_credentials"))
			return req
		}, func(tok string) response { return h.get(sfAPI+"/sobjects/Contact/describe", tok) }},
		{"hubspot oauth refresh", func() response {
			return h.postForm("/hubspot/oauth/v1/token", url.Values{
				"grant_type": {"refresh_token"}, "client_id": {creds.HubSpot.ClientID}, "client_secret": {creds.HubSpot.ClientSecret}, "refresh_token": {creds.HubSpot.RefreshToken},
			})
		}, func(tok string) response { return h.get("/hubspot/crm/v3/objects/deals", tok) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.login().expect(t, http.StatusOK).object(t)
			tok, _ := body["access_token"].(string)
			tc.call(tok).expect(t, http.StatusOK)
		})
	}
}

func withBasic(h http.Header, user, pass string) http.Header {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, pass)
	h.Set("Authorization", r.Header.Get("Authorization"))
	return h
}

func TestDynamicsTokenErrors(t *testing.T) {
	h := newHarness(t, crmsim.Config{Seed: 3})
	c := h.sim.Credentials().Dynamics
	good := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}, "scope": {h.srv.URL + "/dynamics/.default"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vs := range good {
			f[key] = vs
		}
		f.Set(k, v)
		return f
	}
	cases := []struct {
		name   string
		tenant string
		form   url.Values
		status int
		code   string
	}{
		{"unknown tenant", "00000000-0000-0000-0000-000000000000", good, 400, "invalid_request"},
		{"unknown client", c.TenantID, with("client_id", "nope"), 400, "unauthorized_client"},
		{"scope without .default", c.TenantID, with("scope", h.srv.URL+"/dynamics"), 400, "invalid_scope"},
		{"wrong grant", c.TenantID, with("grant_type", "password"), 400, "unsupported_grant_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.postForm("/dynamics/"+tc.tenant+"/oauth2/v2.0/token", tc.form).expect(t, tc.status)
			if got := errorCode(t, r); got != tc.code {
				t.Errorf("code %q, want %q", got, tc.code)
			}
		})
	}
}

func TestPaginationVisitsEveryRecordOnce(t *testing.T) {
	cfg := crmsim.Config{Seed: 4, Accounts: 23, Opportunities: 41, Contacts: 37, PageSize: 1000}
	h := newHarness(t, cfg)
	sf, hs, dyn := h.sfLogin(), h.hsLogin(), h.dynLogin()
	const size = 7
	cases := []struct {
		name   string
		system string
		want   int
		fetch  func() ([]string, int)
	}{
		{"salesforce Account", crmsim.Salesforce, cfg.Accounts, func() ([]string, int) {
			recs, pages := h.sfQuery(sf, "query", "SELECT Id, Name FROM Account", size)
			return ids(t, recs, "Id"), pages
		}},
		{"salesforce Opportunity queryAll", crmsim.Salesforce, cfg.Opportunities, func() ([]string, int) {
			recs, pages := h.sfQuery(sf, "queryAll", "SELECT Id, Amount FROM Opportunity ORDER BY Amount DESC NULLS LAST", size)
			return ids(t, recs, "Id"), pages
		}},
		{"salesforce Contact", crmsim.Salesforce, cfg.Contacts, func() ([]string, int) {
			recs, pages := h.sfQuery(sf, "query", "SELECT Id FROM Contact ORDER BY SystemModstamp", size)
			return ids(t, recs, "Id"), pages
		}},
		{"hubspot companies", crmsim.HubSpot, cfg.Accounts, func() ([]string, int) {
			recs, pages := h.hsList(hs, "companies", "limit=7&properties=name")
			return ids(t, recs, "id"), pages
		}},
		{"hubspot deals", crmsim.HubSpot, cfg.Opportunities, func() ([]string, int) {
			recs, pages := h.hsList(hs, "deals", "limit=7&associations=companies")
			return ids(t, recs, "id"), pages
		}},
		{"hubspot contacts search", crmsim.HubSpot, cfg.Contacts, func() ([]string, int) {
			recs, pages := h.hsSearch(hs, "contacts", map[string]any{
				"limit": size, "sorts": []any{map[string]any{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}},
			})
			return ids(t, recs, "id"), pages
		}},
		{"dynamics accounts", crmsim.Dynamics, cfg.Accounts, func() ([]string, int) {
			rows, _, pages := h.dynList(dyn, "accounts?$select=name", "odata.maxpagesize=7")
			return ids(t, rows, "accountid"), pages
		}},
		{"dynamics opportunities ordered", crmsim.Dynamics, cfg.Opportunities, func() ([]string, int) {
			rows, _, pages := h.dynList(dyn, "opportunities?$select=name&$orderby=modifiedon%20desc", "odata.maxpagesize=7")
			return ids(t, rows, "opportunityid"), pages
		}},
		{"dynamics contacts tracked", crmsim.Dynamics, cfg.Contacts, func() ([]string, int) {
			rows, delta, pages := h.dynList(dyn, "contacts?$select=lastname", "odata.maxpagesize=7, odata.track-changes")
			if delta == "" {
				t.Error("no deltaLink on the last page")
			}
			return ids(t, rows, "contactid"), pages
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.sim.Requests(tc.system)
			got, pages := tc.fetch()
			if len(got) != tc.want {
				t.Errorf("%d records, want %d", len(got), tc.want)
			}
			seen := map[string]bool{}
			for _, id := range got {
				if seen[id] {
					t.Errorf("record %s seen twice", id)
				}
				seen[id] = true
			}
			wantPages := (tc.want + size - 1) / size
			if pages != wantPages {
				t.Errorf("%d pages, want %d", pages, wantPages)
			}
			if n := h.sim.Requests(tc.system) - before; n != pages {
				t.Errorf("Requests grew by %d, want %d", n, pages)
			}
		})
	}
}

func TestDefaultPageSize(t *testing.T) {
	h := newHarness(t, crmsim.Config{Seed: 5, Accounts: 12, PageSize: 5})
	cases := []struct {
		name  string
		fetch func() int
	}{
		{"salesforce", func() int {
			_, pages := h.sfQuery(h.sfLogin(), "query", "SELECT Id FROM Account", 0)
			return pages
		}},
		{"hubspot", func() int {
			_, pages := h.hsList(h.hsLogin(), "companies", "")
			return pages
		}},
		{"dynamics", func() int {
			_, _, pages := h.dynList(h.dynLogin(), "accounts", "")
			return pages
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.fetch(); got != 3 {
				t.Errorf("%d pages of 12 records at page size 5, want 3", got)
			}
		})
	}
}

// changedSince fetches, per system, every record of every object modified
// after since, using each system's own incremental filter, and returns the
// modified stamps.
func changedSince(t *testing.T, h *harness, since time.Time) map[string][]time.Time {
	t.Helper()
	out := map[string][]time.Time{}
	sf := h.sfLogin()
	for _, obj := range []string{"Account", "Opportunity", "Contact"} {
		recs, _ := h.sfQuery(sf, "query", fmt.Sprintf("SELECT Id, SystemModstamp FROM %s WHERE SystemModstamp > %s", obj, since.Format(time.RFC3339)), 0)
		for _, r := range recs {
			out[crmsim.Salesforce] = append(out[crmsim.Salesforce], parseTime(t, r["SystemModstamp"]))
		}
	}
	hs := h.hsLogin()
	for obj, stamp := range map[string]string{"companies": "hs_lastmodifieddate", "deals": "hs_lastmodifieddate", "contacts": "lastmodifieddate"} {
		recs, _ := h.hsSearch(hs, obj, map[string]any{
			"filterGroups": []any{map[string]any{"filters": []any{map[string]any{
				"propertyName": stamp, "operator": "GT", "value": strconv.FormatInt(since.UnixMilli(), 10),
			}}}},
			"properties": []string{stamp},
		})
		for _, r := range recs {
			out[crmsim.HubSpot] = append(out[crmsim.HubSpot], parseTime(t, r["properties"].(map[string]any)[stamp]))
		}
	}
	dyn := h.dynLogin()
	for _, set := range []string{"accounts", "opportunities", "contacts"} {
		rows, _, _ := h.dynList(dyn, set+"?$select=modifiedon&$filter="+url.QueryEscape("modifiedon gt "+since.Format(time.RFC3339)), "")
		for _, r := range rows {
			out[crmsim.Dynamics] = append(out[crmsim.Dynamics], parseTime(t, r["modifiedon"]))
		}
	}
	return out
}

func parseTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	for _, l := range []string{"2006-01-02T15:04:05.000-0700", time.RFC3339Nano} {
		if ts, err := time.Parse(l, s); err == nil {
			return ts
		}
	}
	t.Fatalf("bad timestamp %v", v)
	return time.Time{}
}

func TestIncrementalFilterAndEvolve(t *testing.T) {
	h := newHarness(t, crmsim.Config{Seed: 6})
	before := changedSince(t, h, t0)
	for _, sys := range []string{crmsim.Salesforce, crmsim.HubSpot, crmsim.Dynamics} {
		if n := len(before[sys]); n != 0 {
			t.Fatalf("%s: %d records modified after now before any change", sys, n)
		}
	}
	h.clock.Advance(time.Hour)
	h.sim.Evolve(8) // 8 modified + 2 created per system
	after := changedSince(t, h, t0)
	for _, sys := range []string{crmsim.Salesforce, crmsim.HubSpot, crmsim.Dynamics} {
		t.Run(sys, func(t *testing.T) {
			stamps := after[sys]
			if len(stamps) != 10 {
				t.Errorf("%d records modified after %s, want 10", len(stamps), t0)
			}
			for _, s := range stamps {
				if !s.Equal(t0.Add(time.Hour)) {
					t.Errorf("stamp %s, want the clock's %s", s, t0.Add(time.Hour))
				}
			}
		})
	}

	// A second change in the same instant still moves each stamp forward.
	h.sim.Evolve(200)
	again := changedSince(t, h, t0.Add(time.Hour))
	if len(again[crmsim.Salesforce]) == 0 || len(again[crmsim.HubSpot]) == 0 || len(again[crmsim.Dynamics]) == 0 {
		t.Errorf("changes at an unchanged clock not found after the previous stamp: %v", again)
	}
}

func TestDeleteIsVisible(t *testing.T) {
	cases := []struct {
		system, object string
		firstID        func(h *harness) string
		check          func(t *testing.T, h *harness, id string)
	}{
		{crmsim.Salesforce, "Account", func(h *harness) string {
			recs, _ := h.sfQuery(h.sfLogin(), "query", "SELECT Id FROM Account LIMIT 1", 0)
			return recs[0]["Id"].(string)
		}, func(t *testing.T, h *harness, id string) {
			tok := h.sfLogin()
			soql := "SELECT Id, IsDeleted FROM Account WHERE Id = '" + id + "'"
			if recs, _ := h.sfQuery(tok, "query", soql, 0); len(recs) != 0 {
				t.Errorf("query returns the deleted record: %v", recs)
			}
			recs, _ := h.sfQuery(tok, "queryAll", soql, 0)
			if len(recs) != 1 || recs[0]["IsDeleted"] != true {
				t.Errorf("queryAll: %v, want the record with IsDeleted true", recs)
			}
			if recs, _ := h.sfQuery(tok, "queryAll", "SELECT Id FROM Account WHERE IsDeleted = true", 0); len(recs) != 1 {
				t.Errorf("queryAll IsDeleted = true: %d records, want 1", len(recs))
			}
		}},
		{crmsim.HubSpot, "companies", func(h *harness) string {
			recs, _ := h.hsList(h.hsLogin(), "companies", "limit=1")
			return recs[0]["id"].(string)
		}, func(t *testing.T, h *harness, id string) {
			live, _ := h.hsList(h.hsLogin(), "companies", "")
			if slices.Contains(ids(t, live, "id"), id) {
				t.Error("list returns the archived record")
			}
			archived, _ := h.hsList(h.hsLogin(), "companies", "archived=true")
			if len(archived) != 1 || archived[0]["id"] != id || archived[0]["archived"] != true || archived[0]["archivedAt"] == nil {
				t.Errorf("archived=true: %v", archived)
			}
		}},
		{crmsim.Dynamics, "accounts", func(h *harness) string {
			rows, _, _ := h.dynList(h.dynLogin(), "accounts?$top=1", "")
			return rows[0]["accountid"].(string)
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.system, func(t *testing.T) {
			h := newHarness(t, crmsim.Config{Seed: 7})
			var delta string
			if tc.system == crmsim.Dynamics {
				_, delta, _ = h.dynList(h.dynLogin(), "accounts?$select=name", "odata.track-changes")
			}
			id := tc.firstID(h)
			if err := h.sim.Delete(tc.system, tc.object, id); err != nil {
				t.Fatal(err)
			}
			if err := h.sim.Delete(tc.system, tc.object, "no-such-id"); !errors.Is(err, crmsim.ErrNotFound) {
				t.Errorf("delete unknown id: %v, want ErrNotFound", err)
			}
			if tc.check != nil {
				tc.check(t, h, id)
				return
			}
			rows, next, _ := h.dynList(h.dynLogin(), strings.TrimPrefix(delta, h.srv.URL+dynAPI+"/"), "")
			if len(rows) != 1 || rows[0]["id"] != id || rows[0]["reason"] != "deleted" ||
				!strings.HasSuffix(rows[0]["@odata.context"].(string), "#accounts/$deletedEntity") {
				t.Errorf("delta after delete: %v", rows)
			}
			if next == "" || next == delta {
				t.Errorf("delta response deltaLink %q, want a new one", next)
			}
			rows, _, _ = h.dynList(h.dynLogin(), strings.TrimPrefix(next, h.srv.URL+dynAPI+"/"), "")
			if len(rows) != 0 {
				t.Errorf("second delta without changes: %v", rows)
			}
		})
	}
}

func TestDynamicsDeltaCarriesChanges(t *testing.T) {
	h := newHarness(t, crmsim.Config{Seed: 8, Accounts: 5, Opportunities: 5, Contacts: 5})
	tok := h.dynLogin()
	_, delta, _ := h.dynList(tok, "accounts?$select=name,numberofemployees", "odata.track-changes")
	h.clock.Advance(time.Minute)
	id, err := h.sim.Put(crmsim.Dynamics, "accounts", map[string]any{"name": "Brand New Ltd.", "numberofemployees": 12})
	if err != nil {
		t.Fatal(err)
	}
	resp := h.get(delta, tok).expect(t, http.StatusOK).object(t)
	if ctx := resp["@odata.context"].(string); !strings.HasSuffix(ctx, "#accounts(name,numberofemployees)/$delta") {
		t.Errorf("context %q", ctx)
	}
	rows := records(t, resp["value"])
	if len(rows) != 1 || rows[0]["accountid"] != id || rows[0]["name"] != "Brand New Ltd." {
		t.Errorf("delta rows %v, want the new account %s", rows, id)
	}
}

func TestFailNext(t *testing.T) {
	type probe struct {
		call  func(h *harness) response
		token func(h *harness)
		code  map[int]string
	}
	systems := map[string]probe{
		crmsim.Salesforce: {
			call:  func(h *harness) response { return h.get(sfAPI+"/query?q=SELECT+Id+FROM+Account", h.sfLogin()) },
			token: func(h *harness) { h.sfLogin() },
			code:  map[int]string{429: "REQUEST_LIMIT_EXCEEDED", 503: "SERVER_UNAVAILABLE"},
		},
		crmsim.HubSpot: {
			call:  func(h *harness) response { return h.get("/hubspot/crm/v3/objects/contacts", h.hsLogin()) },
			token: func(h *harness) {},
			code:  map[int]string{429: "RATE_LIMITS"},
		},
		crmsim.Dynamics: {
			call:  func(h *harness) response { return h.get(dynAPI+"/contacts", h.dynLogin()) },
			token: func(h *harness) { h.dynLogin() },
			code:  map[int]string{429: "0x80072322", 503: "0x80040216"},
		},
	}
	for _, name := range []string{crmsim.Salesforce, crmsim.HubSpot, crmsim.Dynamics} {
		for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
			t.Run(fmt.Sprintf("%s %d", name, status), func(t *testing.T) {
				p := systems[name]
				h := newHarness(t, crmsim.Config{Seed: 9})
				h.sim.FailNext(name, 2, status)
				for i := range 2 {
					p.token(h) // token requests neither fail nor use up failures
					r := p.call(h).expect(t, status)
					if got := r.header.Get("Retry-After"); got != "1" {
						t.Errorf("request %d: Retry-After %q, want 1", i, got)
					}
					if want, ok := p.code[status]; ok {
						if got := errorCode(t, r); got != want {
							t.Errorf("request %d: code %q, want %q", i, got, want)
						}
					}
					if name == crmsim.HubSpot && status == 429 {
						if body := r.object(t); body["errorType"] != "RATE_LIMIT" || body["status"] != "error" {
							t.Errorf("hubspot 429 body %v", body)
						}
					}
				}
				p.call(h).expect(t, http.StatusOK)
				if got := h.sim.Requests(name); got != 3 {
					t.Errorf("Requests = %d, want 3", got)
				}
			})
		}
	}
}

func TestRenameField(t *testing.T) {
	cases := []struct {
		system, object, old, new string
		check                    func(t *testing.T, h *harness)
	}{
		{crmsim.Salesforce, "Account", "Industry", "Sector__c", func(t *testing.T, h *harness) {
			tok := h.sfLogin()
			r := h.get(sfAPI+"/query?q="+url.QueryEscape("SELECT Id, Industry FROM Account"), tok).expect(t, http.StatusBadRequest)
			if code := errorCode(t, r); code != "INVALID_FIELD" {
				t.Errorf("selecting the old name: %s, want INVALID_FIELD", code)
			}
			recs, _ := h.sfQuery(tok, "query", "SELECT Id, Sector__c FROM Account LIMIT 1", 0)
			if _, ok := recs[0]["Sector__c"]; !ok {
				t.Errorf("new name not served: %v", recs[0])
			}
			recs, _ = h.sfQuery(tok, "query", "SELECT FIELDS(ALL) FROM Account LIMIT 1", 0)
			if _, ok := recs[0]["Industry"]; ok {
				t.Errorf("FIELDS(ALL) still has the old name: %v", recs[0])
			}
			desc := h.get(sfAPI+"/sobjects/Account/describe", tok).expect(t, http.StatusOK).object(t)
			var names []string
			for _, f := range records(t, desc["fields"]) {
				names = append(names, f["name"].(string))
			}
			if !slices.Contains(names, "Sector__c") || slices.Contains(names, "Industry") {
				t.Errorf("describe fields %v", names)
			}
		}},
		{crmsim.HubSpot, "companies", "industry", "company_industry", func(t *testing.T, h *harness) {
			recs, _ := h.hsList(h.hsLogin(), "companies", "limit=3&properties=industry,company_industry")
			props := recs[0]["properties"].(map[string]any)
			if _, ok := props["industry"]; ok {
				t.Errorf("old property still served: %v", props)
			}
			if _, ok := props["company_industry"]; !ok {
				t.Errorf("new property missing: %v", props)
			}
		}},
		{crmsim.Dynamics, "accounts", "revenue", "annualrevenue", func(t *testing.T, h *harness) {
			tok := h.dynLogin()
			r := h.get(dynAPI+"/accounts?$select=name,revenue", tok).expect(t, http.StatusBadRequest)
			if code := errorCode(t, r); code != "0x80060888" {
				t.Errorf("selecting the old name: %s", code)
			}
			rows, _, _ := h.dynList(tok, "accounts?$select=name,annualrevenue&$filter=annualrevenue%20ne%20null", "")
			if len(rows) == 0 {
				t.Fatal("no rows with the new name")
			}
			if _, ok := rows[0]["annualrevenue"]; !ok {
				t.Errorf("new name not served: %v", rows[0])
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.system, func(t *testing.T) {
			h := newHarness(t, crmsim.Config{Seed: 10})
			if err := h.sim.RenameField(tc.system, tc.object, tc.old, tc.new); err != nil {
				t.Fatal(err)
			}
			if err := h.sim.RenameField(tc.system, tc.object, tc.old, "x"); !errors.Is(err, crmsim.ErrNotFound) {
				t.Errorf("renaming a gone field: %v, want ErrNotFound", err)
			}
			tc.check(t, h)
			h.sim.Evolve(30) // evolution keeps writing the renamed field
			tc.check(t, h)
		})
	}
}

func TestHubSpotSearchLimits(t *testing.T) {
	h := newHarness(t, crmsim.Config{Seed: 11})
	tok := h.hsLogin()
	cases := []struct {
		name   string
		body   map[string]any
		status int
	}{
		{"after at the cap", map[string]any{"after": "10000"}, http.StatusBadRequest},
		{"after past the cap", map[string]any{"after": 12000, "limit": 100}, http.StatusBadRequest},
		{"after just below the cap", map[string]any{"after": "9999"}, http.StatusOK},
		{"limit above 200", map[string]any{"limit": 201}, http.StatusBadRequest},
		{"unknown property", map[string]any{"filterGroups": []any{map[string]any{"filters": []any{map[string]any{"propertyName": "nope", "operator": "EQ", "value": "x"}}}}}, http.StatusBadRequest},
		{"unknown operator", map[string]any{"filterGroups": []any{map[string]any{"filters": []any{map[string]any{"propertyName": "name", "operator": "LIKE", "value": "x"}}}}}, http.StatusBadRequest},
		{"six groups", map[string]any{"filterGroups": []any{map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}, map[string]any{}}}, http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.postJSON("/hubspot/crm/v3/objects/companies/search", tok, tc.body).expect(t, tc.status)
			if tc.status == http.StatusBadRequest {
				if code := errorCode(t, r); code != "VALIDATION_ERROR" {
					t.Errorf("category %q, want VALIDATION_ERROR", code)
				}
			}
		})
	}
}

func TestHubSpotSearchFilters(t *testing.T) {
	h := newHarness(t, crmsim.Config{Seed: 12})
	tok := h.hsLogin()
	all, _ := h.hsList(tok, "deals", "properties=amount,dealstage")
	var won int
	for _, d := range all {
		if d["properties"].(map[string]any)["dealstage"] == "closedwon" {
			won++
		}
	}
	filter := func(fs ...map[string]any) map[string]any {
		var list []any
		for _, f := range fs {
			list = append(list, f)
		}
		return map[string]any{"filterGroups": []any{map[string]any{"filters": list}}, "properties": []string{"amount", "dealstage"}, "limit": 200}
	}
	got, _ := h.hsSearch(tok, "deals", filter(map[string]any{"propertyName": "dealstage", "operator": "EQ", "value": "closedwon"}))
	if len(got) != won {
		t.Errorf("dealstage EQ closedwon: %d, want %d", len(got), won)
	}
	got, _ = h.hsSearch(tok, "deals", filter(map[string]any{"propertyName": "amount", "operator": "GTE", "value": "100000"}))
	for _, d := range got {
		a, _ := strconv.ParseFloat(d["properties"].(map[string]any)["amount"].(string), 64)
		if a < 100000 {
			t.Errorf("amount %v < 100000 matched GTE", a)
		}
	}
	got, _ = h.hsSearch(tok, "deals", filter(map[string]any{"propertyName": "amount", "operator": "NOT_HAS_PROPERTY"}))
	for _, d := range got {
		if d["properties"].(map[string]any)["amount"] != nil {
			t.Errorf("NOT_HAS_PROPERTY matched %v", d)
		}
	}
}

func TestSOQL(t *testing.T) {
	h := newHarness(t, crmsim.Config{Seed: 13, Accounts: 10, Opportunities: 30, Contacts: 10})
	tok := h.sfLogin()
	run := func(q string) response { return h.get(sfAPI+"/query?q="+url.QueryEscape(q), tok) }
	errCases := []struct {
		name, q, code string
	}{
		{"typo", "SELEC Id FROM Account", "MALFORMED_QUERY"},
		{"no FROM", "SELECT Id Account", "MALFORMED_QUERY"},
		{"quoted datetime", "SELECT Id FROM Account WHERE SystemModstamp > '2024-01-01T00:00:00Z'", "INVALID_FIELD"},
		{"unquoted string", "SELECT Id FROM Account WHERE Name = Acme", "MALFORMED_QUERY"},
		{"number for text", "SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD"},
		{"unknown object", "SELECT Id FROM Lead", "INVALID_TYPE"},
		{"unknown order field", "SELECT Id FROM Account ORDER BY Nope", "INVALID_FIELD"},
		{"duplicate field", "SELECT Id, id FROM Account", "MALFORMED_QUERY"},
		{"trailing junk", "SELECT Id FROM Account LIMIT 5 garbage", "MALFORMED_QUERY"},
		{"unterminated string", "SELECT Id FROM Account WHERE Name = 'x", "MALFORMED_QUERY"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(tc.q).expect(t, http.StatusBadRequest)
			if code := errorCode(t, r); code != tc.code {
				t.Errorf("code %s, want %s (%s)", code, tc.code, r.body)
			}
		})
	}
	t.Run("column in message", func(t *testing.T) {
		r := run("SELECT Id, Nope FROM Account").expect(t, http.StatusBadRequest)
		msg := r.json(t).([]any)[0].(map[string]any)["message"].(string)
		if !strings.Contains(msg, "ERROR at Row:1:Column:12") || !strings.Contains(msg, "No such column 'Nope' on entity 'Account'") {
			t.Errorf("message %q", msg)
		}
	})

	all, _ := h.sfQuery(tok, "query", "SELECT Id, Name, StageName, Amount, CloseDate, AccountId FROM Opportunity", 0)
	count := func(pred func(map[string]any) bool) int {
		n := 0
		for _, r := range all {
			if pred(r) {
				n++
			}
		}
		return n
	}
	amount := func(r map[string]any) float64 {
		f, _ := strconv.ParseFloat(fmt.Sprint(r["Amount"]), 64)
		return f
	}
	okCases := []struct {
		name string
		q    string
		want int
	}{
		{"IN", "SELECT Id FROM Opportunity WHERE StageName IN ('Closed Won', 'Closed Lost')", count(func(r map[string]any) bool {
			return r["StageName"] == "Closed Won" || r["StageName"] == "Closed Lost"
		})},
		{"NOT IN", "SELECT Id FROM Opportunity WHERE StageName NOT IN ('Closed Won')", count(func(r map[string]any) bool { return r["StageName"] != "Closed Won" })},
		{"case-insensitive equals", "SELECT Id FROM Opportunity WHERE StageName = 'closed won'", count(func(r map[string]any) bool { return r["StageName"] == "Closed Won" })},
		{"number and null", "SELECT Id FROM Opportunity WHERE Amount > 100000.5 OR Amount = null", count(func(r map[string]any) bool { return r["Amount"] == nil || amount(r) > 100000.5 })},
		{"date literal", "SELECT Id FROM Opportunity WHERE CloseDate >= 2024-06-01", count(func(r map[string]any) bool { return r["CloseDate"].(string) >= "2024-06-01" })},
		{"LIKE", "SELECT Id FROM Opportunity WHERE Name LIKE '%Renewal%'", count(func(r map[string]any) bool { return strings.Contains(r["Name"].(string), "Renewal") })},
		{"NOT and parentheses", "SELECT Id FROM Opportunity WHERE NOT (StageName = 'Closed Won' AND Amount != null)", count(func(r map[string]any) bool {
			return !(r["StageName"] == "Closed Won" && r["Amount"] != nil)
		})},
		{"LIMIT OFFSET", "SELECT Id FROM Opportunity ORDER BY Name LIMIT 5 OFFSET 3", 5},
		{"datetime with offset", "SELECT Id FROM Opportunity WHERE CreatedDate < 2030-01-01T00:00:00.000+02:00", len(all)},
	}
	for _, tc := range okCases {
		t.Run(tc.name, func(t *testing.T) {
			recs, _ := h.sfQuery(tok, "query", tc.q, 0)
			if len(recs) != tc.want {
				t.Errorf("%d records, want %d", len(recs), tc.want)
			}
		})
	}
	t.Run("ORDER BY DESC", func(t *testing.T) {
		recs, _ := h.sfQuery(tok, "query", "SELECT Id, Amount FROM Opportunity WHERE Amount != null ORDER BY Amount DESC", 4)
		for i := 1; i < len(recs); i++ {
			if amount(recs[i-1]) < amount(recs[i]) {
				t.Fatalf("not descending at %d: %v then %v", i, recs[i-1]["Amount"], recs[i]["Amount"])
			}
		}
	})
	t.Run("bad locator", func(t *testing.T) {
		r := h.get(sfAPI+"/query/01gXXXXXXXXXXXXXXX-200", tok).expect(t, http.StatusBadRequest)
		if code := errorCode(t, r); code != "INVALID_QUERY_LOCATOR" {
			t.Errorf("code %s", code)
		}
	})
}

func TestDynamicsQuery(t *testing.T) {
	h := newHarness(t, crmsim.Config{Seed: 14})
	tok := h.dynLogin()
	errCases := []struct{ name, pathQuery string }{
		{"unknown select", "accounts?$select=nope"},
		{"unknown filter property", "accounts?$filter=nope%20eq%201"},
		{"string for datetime", "accounts?$filter=modifiedon%20gt%20'2024-01-01'"},
		{"syntax", "accounts?$filter=modifiedon%20gtt%202024-01-01T00:00:00Z"},
		{"filter with tracking", "accounts?$filter=statecode%20eq%200&$deltatoken=1"},
		{"bad skiptoken", "accounts?$skiptoken=nope"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.get(dynAPI+"/"+tc.pathQuery, tok).expect(t, http.StatusBadRequest)
			if code := errorCode(t, r); code != "0x80060888" {
				t.Errorf("code %s: %s", code, r.body)
			}
		})
	}
	t.Run("unknown entity set", func(t *testing.T) {
		h.get(dynAPI+"/leads", tok).expect(t, http.StatusNotFound)
	})

	accounts, _, _ := h.dynList(tok, "accounts", "")
	opps, _, _ := h.dynList(tok, "opportunities?$select=name,_parentaccountid_value,estimatedvalue,salesstage", "")
	acct := accounts[0]["accountid"].(string)
	want := 0
	for _, o := range opps {
		if o["_parentaccountid_value"] == acct {
			want++
		}
	}
	rows, _, _ := h.dynList(tok, "opportunities?$filter=_parentaccountid_value%20eq%20"+acct+"%20and%20(salesstage%20ge%200%20or%20salesstage%20eq%20null)", "")
	if len(rows) != want {
		t.Errorf("lookup filter: %d rows, want %d", len(rows), want)
	}

	one := h.get(dynAPI+"/accounts("+acct+")?$select=name,industrycode", tok, "Prefer", `odata.include-annotations="OData.Community.Display.V1.FormattedValue"`).expect(t, http.StatusOK)
	body := one.object(t)
	if !strings.HasSuffix(body["@odata.context"].(string), "#accounts(name,industrycode)/$entity") || body["accountid"] != acct {
		t.Errorf("single entity %v", body)
	}
	if body["industrycode"] != nil {
		if _, ok := body["industrycode"].(interface{ Int64() (int64, error) }); !ok {
			t.Errorf("industrycode %v is not an integer", body["industrycode"])
		}
		if _, ok := body["industrycode@OData.Community.Display.V1.FormattedValue"].(string); !ok {
			t.Errorf("industrycode has no formatted value: %v", body)
		}
	}
	if got := one.header.Get("Preference-Applied"); got != `odata.include-annotations="OData.Community.Display.V1.FormattedValue"` {
		t.Errorf("Preference-Applied %q", got)
	}
	plain := h.get(dynAPI+"/accounts("+acct+")", tok).expect(t, http.StatusOK).object(t)
	for k := range plain {
		if strings.Contains(k, "@OData.Community") {
			t.Errorf("annotation %s without the preference", k)
		}
	}
	h.get(dynAPI+"/accounts(00000000-0000-4000-8000-000000000000)", tok).expect(t, http.StatusNotFound)

	count := h.get(dynAPI+"/accounts?$count=true&$top=3", tok).expect(t, http.StatusOK).object(t)
	if n := num(t, count["@odata.count"]); n != 3 {
		t.Errorf("@odata.count %d", n)
	}
}

func TestReferencesPointToAccountsOfTheSameSystem(t *testing.T) {
	h := newHarness(t, crmsim.Config{Seed: 15})
	sf := h.sfLogin()
	accts, _ := h.sfQuery(sf, "query", "SELECT Id FROM Account", 0)
	sfAccts := ids(t, accts, "Id")
	for _, obj := range []string{"Opportunity", "Contact"} {
		recs, _ := h.sfQuery(sf, "query", "SELECT Id, AccountId FROM "+obj, 0)
		for _, r := range recs {
			if id := r["AccountId"].(string); !slices.Contains(sfAccts, id) || len(id) != 18 || !strings.HasPrefix(id, "001") {
				t.Errorf("salesforce %s %s points at %s", obj, r["Id"], id)
			}
		}
	}
	hs := h.hsLogin()
	companies, _ := h.hsList(hs, "companies", "")
	hsAccts := ids(t, companies, "id")
	for _, obj := range []string{"deals", "contacts"} {
		recs, _ := h.hsList(hs, obj, "associations=companies")
		for _, r := range recs {
			a := r["associations"].(map[string]any)["companies"].(map[string]any)["results"].([]any)
			if id := a[0].(map[string]any)["id"].(string); !slices.Contains(hsAccts, id) {
				t.Errorf("hubspot %s %s associated with %s", obj, r["id"], id)
			}
		}
	}
	deal, _ := h.hsList(hs, "deals", "limit=1&associations=companies")
	v4 := h.get("/hubspot/crm/v4/objects/deals/"+deal[0]["id"].(string)+"/associations/companies", hs).expect(t, http.StatusOK).object(t)
	if len(v4["results"].([]any)) != 1 {
		t.Errorf("v4 associations %v", v4)
	}
	batch := h.postJSON("/hubspot/crm/v4/associations/deals/companies/batch/read", hs, map[string]any{"inputs": []any{map[string]any{"id": deal[0]["id"]}}}).expect(t, http.StatusOK).object(t)
	if len(batch["results"].([]any)) != 1 || batch["status"] != "COMPLETE" {
		t.Errorf("v4 batch read %v", batch)
	}
	dyn := h.dynLogin()
	rows, _, _ := h.dynList(dyn, "accounts?$select=name", "")
	dynAccts := ids(t, rows, "accountid")
	for set, ref := range map[string]string{"opportunities": "_parentaccountid_value", "contacts": "_parentcustomerid_value"} {
		rows, _, _ := h.dynList(dyn, set+"?$select="+ref, "")
		for _, r := range rows {
			if id, _ := r[ref].(string); !slices.Contains(dynAccts, id) {
				t.Errorf("dynamics %s points at %q", set, id)
			}
		}
	}
}

func TestDeterministicData(t *testing.T) {
	fetch := func(seed int64) string {
		h := newHarness(t, crmsim.Config{Seed: seed, Accounts: 5, Opportunities: 5, Contacts: 5})
		var b strings.Builder
		b.Write(h.get(sfAPI+"/query?q="+url.QueryEscape("SELECT FIELDS(ALL) FROM Opportunity"), h.sfLogin()).body)
		b.Write(h.get("/hubspot/crm/v3/objects/companies?properties=name,industry,annualrevenue", h.hsLogin()).body)
		b.Write(h.get(dynAPI+"/contacts", h.dynLogin()).body)
		return strings.ReplaceAll(b.String(), h.srv.URL, "")
	}
	a, b, c := fetch(42), fetch(42), fetch(43)
	if a != b {
		t.Error("same seed, different data")
	}
	if a == c {
		t.Error("different seeds, same data")
	}
}

func TestPut(t *testing.T) {
	h := newHarness(t, crmsim.Config{Seed: 16, Accounts: 3})
	tok := h.sfLogin()
	id, err := h.sim.Put(crmsim.Salesforce, "Account", map[string]any{"Name": "Zeta Holdings", "AnnualRevenue": 1234.5, "Region__c": "EMEA"})
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := h.sfQuery(tok, "query", "SELECT Id, Name, AnnualRevenue, Region__c FROM Account WHERE Region__c = 'EMEA'", 0)
	if len(recs) != 1 || recs[0]["Id"] != id || recs[0]["AnnualRevenue"].(fmt.Stringer).String() != "1234.5" {
		t.Fatalf("put record: %v", recs)
	}
	desc := h.get(sfAPI+"/sobjects/Account/describe", tok).expect(t, http.StatusOK).object(t)
	fields := records(t, desc["fields"])
	if last := fields[len(fields)-1]; last["name"] != "Region__c" || last["custom"] != true {
		t.Errorf("describe: last field %v, want the custom Region__c", last)
	}

	h.clock.Advance(time.Minute)
	if _, err := h.sim.Put(crmsim.Salesforce, "account", map[string]any{"Id": id, "Name": "Zeta Holdings AG"}); err != nil {
		t.Fatal(err)
	}
	rec := h.get(sfAPI+"/sobjects/Account/"+id, tok).expect(t, http.StatusOK).object(t)
	if rec["Name"] != "Zeta Holdings AG" || rec["Region__c"] != "EMEA" || !parseTime(t, rec["SystemModstamp"]).Equal(t0.Add(time.Minute)) {
		t.Errorf("upsert: %v", rec)
	}

	deal, err := h.sim.Put(crmsim.HubSpot, "deals", map[string]any{"dealname": "Big one", "amount": "99.95", "associations.companies": "123"})
	if err != nil {
		t.Fatal(err)
	}
	got := h.get("/hubspot/crm/v3/objects/deals/"+deal+"?properties=dealname,amount", h.hsLogin()).expect(t, http.StatusOK).object(t)
	if got["properties"].(map[string]any)["amount"] != "99.95" {
		t.Errorf("hubspot put: %v", got)
	}
	if _, err := h.sim.Put(crmsim.Dynamics, "accounts", map[string]any{"numberofemployees": "many"}); err == nil {
		t.Error("put with a bad integer: no error")
	}
	if _, err := h.sim.Put("pipedrive", "deals", nil); !errors.Is(err, crmsim.ErrNotFound) {
		t.Errorf("unknown system: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	h := newHarness(t, crmsim.Config{Seed: 17, Now: time.Now})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.sim.Run(ctx, time.Millisecond) }()
	sf, hs, dyn := h.sfLogin(), h.hsLogin(), h.dynLogin()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				switch i % 3 {
				case 0:
					h.sfQuery(sf, "queryAll", "SELECT Id FROM Contact", 9)
				case 1:
					h.hsList(hs, "deals", "limit=9&associations=companies")
				default:
					h.dynList(dyn, "opportunities", "odata.maxpagesize=9")
				}
			}
		}()
	}
	start := h.sim.Requests(crmsim.Salesforce)
	eventually(t, 5*time.Second, func() error {
		if h.sim.Requests(crmsim.Salesforce) == start {
			return errors.New("no salesforce requests yet")
		}
		return nil
	})
	wg.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v after cancel", err)
	}
	if err := h.sim.Run(context.Background(), 0); err == nil {
		t.Error("Run with a zero period: no error")
	}
}
