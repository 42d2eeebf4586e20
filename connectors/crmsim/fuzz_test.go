package crmsim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/autonomos/autonomos/connectors/crmsim"
)

// serve sends a request straight to the handler, without a network.
func serve(h http.Handler, method, target, token string, form url.Values) *httptest.ResponseRecorder {
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func fuzzToken(f *testing.F, h http.Handler, target string, form url.Values) string {
	rec := serve(h, http.MethodPost, target, "", form)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || tok.AccessToken == "" {
		f.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	return tok.AccessToken
}

// checkAnswer asserts the simulator answered bad input with a JSON 200 or
// 400, never a 500 or a panic.
func checkAnswer(t *testing.T, input string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
		t.Fatalf("%q: status %d: %s", input, rec.Code, rec.Body)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("%q: invalid JSON %s", input, rec.Body)
	}
}

func FuzzSOQL(f *testing.F) {
	sim := crmsim.New(crmsim.Config{Seed: 1, Accounts: 3, Opportunities: 3, Contacts: 3})
	h := sim.Handler()
	c := sim.Credentials().Salesforce
	tok := fuzzToken(f, h, "/salesforce/services/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}})
	for _, q := range []string{
		"SELECT Id FROM Account",
		"SELECT Id, Name FROM Account WHERE SystemModstamp > 2024-01-01T00:00:00Z AND (Name LIKE 'A%' OR Name = null) ORDER BY Name DESC NULLS LAST LIMIT 5 OFFSET 1",
		"SELECT FIELDS(ALL) FROM Opportunity WHERE StageName NOT IN ('Closed Won','x') AND Amount >= -1.5",
		"SELECT Id FROM Contact WHERE CreatedDate < 2030-01-01T00:00:00.000+01:00 AND NOT Email != 'a\\'b'",
		"SELECT Id FROM Account WHERE",
		"SELECT (SELECT Id FROM Contacts) FROM Account",
		"SELECT Id FROM Account WHERE " + strings.Repeat("(", 10000) + "Name = 'x'" + strings.Repeat(")", 10000),
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		checkAnswer(t, q, serve(h, http.MethodGet, "/salesforce/services/data/v59.0/queryAll?q="+url.QueryEscape(q), tok, nil))
	})
}

func FuzzODataFilter(f *testing.F) {
	sim := crmsim.New(crmsim.Config{Seed: 1, Accounts: 3, Opportunities: 3, Contacts: 3})
	h := sim.Handler()
	c := sim.Credentials().Dynamics
	tok := fuzzToken(f, h, "/dynamics/"+c.TenantID+"/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}, "scope": {"http://example.com/.default"}})
	for _, q := range []string{
		"modifiedon gt 2024-01-01T00:00:00Z",
		"(statecode eq 0 or revenue ge 10.5) and not (name eq 'O''Brien') and _ownerid_value ne 00000000-0000-0000-0000-000000000000",
		"industrycode eq null",
		"contains(name,'a')",
		"name eq",
		strings.Repeat("not ", 100000) + "statecode eq 0",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		checkAnswer(t, q, serve(h, http.MethodGet, "/dynamics/api/data/v9.2/accounts?$filter="+url.QueryEscape(q)+"&$orderby="+url.QueryEscape("name desc"), tok, nil))
	})
}

func FuzzHubSpotSearch(f *testing.F) {
	sim := crmsim.New(crmsim.Config{Seed: 1, Accounts: 3, Opportunities: 3, Contacts: 3})
	h := sim.Handler()
	tok := sim.Credentials().HubSpot.AccessToken
	for _, body := range []string{
		`{"filterGroups":[{"filters":[{"propertyName":"hs_lastmodifieddate","operator":"GTE","value":"1700000000000"}]}],"sorts":[{"propertyName":"createdate","direction":"DESCENDING"}],"limit":2,"after":"1"}`,
		`{"filterGroups":[{"filters":[{"propertyName":"amount","operator":"BETWEEN","value":1,"highValue":"2e9"}]}],"sorts":["-amount"]}`,
		`{"after":10000}`,
		`{"limit":"x"}`,
		`[]`,
	} {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/hubspot/crm/v3/objects/deals/search", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		checkAnswer(t, body, rec)
	})
}
