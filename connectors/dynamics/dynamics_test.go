package dynamics_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/connectortest"
	"github.com/autonomos/autonomos/connectors/crmsim"
	"github.com/autonomos/autonomos/connectors/dynamics"
	"github.com/autonomos/autonomos/connectors/httpx"
)

var fastLimits = httpx.Limits{PerSecond: 1000, Burst: 1000}

func TestConformance(t *testing.T) {
	connectortest.Run(t, connectortest.Harness{
		System:  dynamics.System,
		Factory: dynamics.NewFactory(dynamics.Options{Limits: fastLimits}),
		NewSource: func(t *testing.T) connectortest.Source {
			return connectortest.NewSim(t, crmsim.Dynamics, connectortest.SimOptions{})
		},
		BadConfigs: []connectortest.BadConfig{
			{Name: "no base_url", Config: map[string]any{"base_url": nil, "scope": "https://org.crm.dynamics.com/.default"}, Field: "config.base_url"},
			{Name: "no token_url", Config: map[string]any{"token_url": nil}, Field: "config.token_url"},
			{Name: "scope without /.default", Config: map[string]any{"scope": "https://org.crm.dynamics.com/user_impersonation"}, Field: "config.scope"},
			{Name: "bad entity set", Config: map[string]any{"objects": []any{"Accounts;drop"}}, Field: "config.objects"},
			{Name: "page_size zero", Config: map[string]any{"page_size": 0}, Field: "config.page_size"},
			{Name: "bad api_version", Config: map[string]any{"api_version": "9.2"}, Field: "config.api_version"},
			{Name: "no client_secret", Secrets: map[string]string{"client_secret": ""}, Field: "secrets.client_secret"},
		},
	})
}

func newConnector(t *testing.T, src *connectortest.Sim, config map[string]any) *dynamics.Connector {
	t.Helper()
	cfg := src.Config()
	for k, v := range config {
		cfg[k] = v
	}
	c, err := dynamics.New(connectors.Connection{ID: "c1", Tenant: "t1", System: dynamics.System, Config: cfg, Secrets: src.Secrets()},
		connectors.Deps{}, dynamics.Options{Limits: fastLimits})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func drain(t *testing.T, c connectors.Connector, object, cursor string) ([]connectors.Record, string) {
	t.Helper()
	var out []connectors.Record
	for range 1000 {
		p, err := c.Fetch(context.Background(), object, cursor)
		if err != nil {
			t.Fatalf("fetch %s: %v", object, err)
		}
		out = append(out, p.Records...)
		cursor = p.Cursor
		if !p.More {
			return out, cursor
		}
	}
	t.Fatal("no end of pages")
	return nil, ""
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := dynamics.ParseConfig(connectors.Connection{
		Config:  map[string]any{"base_url": "https://org.crm.dynamics.com/", "token_url": "https://login.microsoftonline.com/t/oauth2/v2.0/token", "objects": []any{"account", "contacts"}},
		Secrets: map[string]string{"client_id": "id", "client_secret": "secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Scope != "https://org.crm.dynamics.com/.default" || cfg.APIVersion != "v9.2" || strings.Join(cfg.Objects, ",") != "accounts,contacts" || cfg.PageSize != 1000 {
		t.Errorf("%+v", cfg)
	}
}

func TestRecordsCarryAllColumns(t *testing.T) {
	src := connectortest.NewSim(t, crmsim.Dynamics, connectortest.SimOptions{})
	c := newConnector(t, src, nil)
	recs, _ := drain(t, c, "opportunities", "")
	if len(recs) != 15 {
		t.Fatalf("%d opportunities", len(recs))
	}
	v := recs[0].Values
	for _, f := range []string{"opportunityid", "name", "salesstage", "_parentaccountid_value", "_transactioncurrencyid_value", "createdon", "modifiedon"} {
		if _, ok := v[f]; !ok {
			t.Errorf("record lacks %s: %v", f, v)
		}
	}
	if _, ok := v["estimatedvalue"].(json.Number); !ok && v["estimatedvalue"] != nil {
		t.Errorf("estimatedvalue is %T, want an exact json.Number", v["estimatedvalue"])
	}
}

// The delta link keeps working after a column is renamed: its $select is
// rebuilt from the metadata.
func TestRenamedColumnDoesNotStopTheSync(t *testing.T) {
	src := connectortest.NewSim(t, crmsim.Dynamics, connectortest.SimOptions{})
	c := newConnector(t, src, nil)
	recs, cur := drain(t, c, "accounts", "")
	id := recs[0].Values["accountid"].(string)
	if err := src.Sim.RenameField(crmsim.Dynamics, "accounts", "websiteurl", "websiteaddress"); err != nil {
		t.Fatal(err)
	}
	if err := src.Modify("accounts", id); err != nil {
		t.Fatal(err)
	}
	recs, _ = drain(t, c, "accounts", cur)
	if len(recs) != 1 || recs[0].Values["accountid"] != id {
		t.Fatalf("after a rename read %v", recs)
	}
	if _, ok := recs[0].Values["websiteaddress"]; !ok {
		t.Errorf("the renamed column is not read: %v", recs[0].Values)
	}
}

func TestExpiredDeltaTokenReadsInFull(t *testing.T) {
	src := connectortest.NewSim(t, crmsim.Dynamics, connectortest.SimOptions{})
	c := newConnector(t, src, nil)
	_, cur := drain(t, c, "contacts", "")
	var st map[string]string
	_ = json.Unmarshal([]byte(cur), &st)
	u, _ := url.Parse(st["delta"])
	q := u.Query()
	q.Set("$deltatoken", "999999!01/01/2030 00:00:00")
	u.RawQuery = q.Encode()
	st["delta"] = u.String()
	b, _ := json.Marshal(map[string]any{"v": 1, "delta": st["delta"]})
	recs, _ := drain(t, c, "contacts", string(b))
	if len(recs) != 10 {
		t.Errorf("after an expired delta token read %d contacts, want all 10", len(recs))
	}
}

func TestLinksMustStayOnTheOrg(t *testing.T) {
	src := connectortest.NewSim(t, crmsim.Dynamics, connectortest.SimOptions{})
	c := newConnector(t, src, nil)
	_, err := c.Fetch(context.Background(), "accounts", `{"v":1,"next":"https://evil.example.com/api/data/v9.2/accounts?$skiptoken=x"}`)
	if err == nil || !strings.Contains(err.Error(), "not on the org") {
		t.Fatalf("err = %v", err)
	}
}
