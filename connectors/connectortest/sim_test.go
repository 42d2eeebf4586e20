package connectortest

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors/crmsim"
)

// The Sim source keeps its counts in step with the simulator and hands out
// credentials the simulator accepts.
func TestSim(t *testing.T) {
	cases := []struct {
		system, object, token string
	}{
		{crmsim.Salesforce, "Account", "/salesforce/services/oauth2/token"},
		{crmsim.HubSpot, "companies", "/hubspot/oauth/v1/token"},
		{crmsim.Dynamics, "accounts", ""},
	}
	for _, tc := range cases {
		t.Run(tc.system, func(t *testing.T) {
			s := NewSim(t, tc.system, SimOptions{Accounts: 4})
			if n := s.Count(tc.object); n != 4 {
				t.Fatalf("Count = %d, want 4", n)
			}
			id, err := s.Create(tc.object)
			if err != nil || id == "" {
				t.Fatalf("Create: %q, %v", id, err)
			}
			if err := s.Modify(tc.object, id); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(tc.object, id); err != nil {
				t.Fatal(err)
			}
			if n := s.Count(tc.object); n != 4 {
				t.Errorf("Count after create and delete = %d, want 4", n)
			}
			form := url.Values{"grant_type": {"client_credentials"}}
			for k, v := range s.Secrets() {
				form.Set(k, v)
			}
			tokenURL := s.URL + tc.token
			switch tc.system {
			case crmsim.HubSpot:
				form.Set("grant_type", "refresh_token")
			case crmsim.Dynamics:
				tokenURL = s.Config()["token_url"].(string)
				form.Set("scope", s.Config()["scope"].(string))
			}
			resp, err := http.PostForm(tokenURL, form)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("the simulator refuses the Sim's secrets: %d", resp.StatusCode)
			}
			s.FailNext(1, http.StatusServiceUnavailable)
			before := s.Requests()
			r2, err := http.Get(s.URL + map[string]string{crmsim.Salesforce: "/salesforce/services/data/v59.0/query?q=x",
				crmsim.HubSpot: "/hubspot/crm/v3/objects/companies", crmsim.Dynamics: "/dynamics/api/data/v9.2/accounts"}[tc.system])
			if err != nil {
				t.Fatal(err)
			}
			_ = r2.Body.Close()
			if r2.StatusCode != http.StatusServiceUnavailable || s.Requests() != before+1 {
				t.Errorf("FailNext: status %d, requests %d → %d", r2.StatusCode, before, s.Requests())
			}
		})
	}
}

func TestNamesField(t *testing.T) {
	fe := func(f string) error { return &canonical.FieldError{Field: f, Reason: "bad"} }
	cases := []struct {
		name  string
		err   error
		field string
		want  bool
	}{
		{"nil", nil, "config.x", false},
		{"plain", fe("config.x"), "config.x", true},
		{"joined", errors.Join(fe("config.a"), fe("secrets.b")), "secrets.b", true},
		{"wrapped join", fmt.Errorf("salesforce: %w", errors.Join(fe("config.a"), fe("config.b"))), "config.b", true},
		{"other field", fe("config.a"), "config.b", false},
		{"not a field error", errors.New("config.a is bad"), "config.a", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := namesField(tc.err, tc.field); got != tc.want {
				t.Errorf("namesField(%v, %s) = %v", tc.err, tc.field, got)
			}
		})
	}
}
