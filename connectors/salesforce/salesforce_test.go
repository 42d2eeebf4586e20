package salesforce_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/connectortest"
	"github.com/autonomos/autonomos/connectors/crmsim"
	"github.com/autonomos/autonomos/connectors/httpx"
	"github.com/autonomos/autonomos/connectors/salesforce"
)

// testFactory has a budget generous enough not to slow the suite down.
var testFactory = salesforce.NewFactory(salesforce.Options{Limits: httpx.Limits{PerSecond: 1000, Burst: 1000}})

func TestConformance(t *testing.T) {
	connectortest.Run(t, connectortest.Harness{
		System:  salesforce.System,
		Factory: testFactory,
		NewSource: func(t *testing.T) connectortest.Source {
			return connectortest.NewSim(t, crmsim.Salesforce, connectortest.SimOptions{})
		},
		BadConfigs: []connectortest.BadConfig{
			{Name: "no instance_url", Config: map[string]any{"instance_url": nil}, Field: "config.instance_url"},
			{Name: "relative instance_url", Config: map[string]any{"instance_url": "example.my.salesforce.com"}, Field: "config.instance_url"},
			{Name: "login_url with a query", Config: map[string]any{"login_url": "https://login.salesforce.com/?x=1"}, Field: "config.login_url"},
			{Name: "bad api_version", Config: map[string]any{"api_version": "59"}, Field: "config.api_version"},
			{Name: "bad object name", Config: map[string]any{"objects": []any{"Account", "Drop Table"}}, Field: "config.objects"},
			{Name: "objects not a list", Config: map[string]any{"objects": 7}, Field: "config.objects"},
			{Name: "page_size too big", Config: map[string]any{"page_size": 5000}, Field: "config.page_size"},
			{Name: "no client_id", Secrets: map[string]string{"client_id": ""}, Field: "secrets.client_id"},
			{Name: "no client_secret", Secrets: map[string]string{"client_secret": ""}, Field: "secrets.client_secret"},
		},
	})
}

func TestConfigDefaultsAndAliases(t *testing.T) {
	cfg, err := salesforce.ParseConfig(connectors.Connection{
		Config:  map[string]any{"instance_url": "https://acme.my.salesforce.com/", "objects": "contact, Opportunity,account,contact"},
		Secrets: map[string]string{"client_id": "id-4711", "client_secret": "secret-0815"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LoginURL != salesforce.DefaultLoginURL || cfg.APIVersion != salesforce.DefaultAPIVersion || cfg.InstanceURL != "https://acme.my.salesforce.com" {
		t.Errorf("defaults: %+v", cfg)
	}
	if got := strings.Join(cfg.Objects, ","); got != "Contact,Opportunity,Account" {
		t.Errorf("objects = %s", got)
	}
	if s := fmt.Sprintf("%v %+v", cfg, cfg); strings.Contains(s, "id-4711") || strings.Contains(s, "secret-0815") {
		t.Errorf("a printed config shows its secret: %s", s)
	}
}

// newConnector returns a connector of sim's org and the sim.
func newConnector(t *testing.T, o connectortest.SimOptions, config map[string]any, secrets map[string]string) (*salesforce.Connector, *connectortest.Sim) {
	t.Helper()
	src := connectortest.NewSim(t, crmsim.Salesforce, o)
	cfg, sec := src.Config(), src.Secrets()
	for k, v := range config {
		cfg[k] = v
	}
	for k, v := range secrets {
		sec[k] = v
	}
	c, err := salesforce.New(connectors.Connection{ID: "c1", Tenant: "t1", System: salesforce.System, Config: cfg, Secrets: sec},
		connectors.Deps{}, salesforce.Options{Limits: httpx.Limits{PerSecond: 1000, Burst: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	return c, src
}

// drain fetches object until caught up, returning the records and the cursor.
func drain(t *testing.T, c connectors.Connector, object, cursor string) ([]connectors.Record, string) {
	t.Helper()
	var out []connectors.Record
	for range 1000 {
		p, err := c.Fetch(context.Background(), object, cursor)
		if err != nil {
			t.Fatalf("fetch %s after %q: %v", object, cursor, err)
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

func TestRefreshTokenGrant(t *testing.T) {
	src := connectortest.NewSim(t, crmsim.Salesforce, connectortest.SimOptions{})
	creds := src.Sim.Credentials().Salesforce
	cfg := src.Config()
	con, err := salesforce.New(connectors.Connection{Config: cfg, Secrets: map[string]string{
		"client_id": creds.ClientID, "client_secret": creds.ClientSecret, "refresh_token": creds.RefreshToken}}, connectors.Deps{}, salesforce.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := con.Check(context.Background()); err != nil {
		t.Fatalf("Check with a refresh token: %v", err)
	}
	bad, err := salesforce.New(connectors.Connection{Config: cfg, Secrets: map[string]string{
		"client_id": creds.ClientID, "client_secret": creds.ClientSecret, "refresh_token": "5Aep861-revoked"}}, connectors.Deps{}, salesforce.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Check(context.Background()); err == nil || strings.Contains(err.Error(), "5Aep861-revoked") {
		t.Fatalf("a revoked refresh token: %v", err)
	}
}

func TestRecordsCarryDescribedFields(t *testing.T) {
	c, _ := newConnector(t, connectortest.SimOptions{}, nil, nil)
	recs, _ := drain(t, c, "Contact", "")
	if len(recs) != 10 {
		t.Fatalf("%d contacts, want 10", len(recs))
	}
	v := recs[0].Values
	if _, ok := v["attributes"]; ok {
		t.Errorf("the attributes key is kept")
	}
	for _, f := range []string{"Id", "LastName", "Department", "SystemModstamp", "IsDeleted", "CreatedDate"} {
		if _, ok := v[f]; !ok {
			t.Errorf("record lacks %s (unmapped fields must reach extras): %v", f, v)
		}
	}
}

func TestAmountsStayExact(t *testing.T) {
	c, src := newConnector(t, connectortest.SimOptions{}, nil, nil)
	id, err := src.Sim.Put(crmsim.Salesforce, "Opportunity", map[string]any{"Name": "Big", "Amount": json.Number("12345678901234567890.12")})
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := drain(t, c, "Opportunity", "")
	for _, r := range recs {
		if r.Values["Id"] == id {
			if got := r.Values["Amount"]; got != json.Number("12345678901234567890.12") {
				t.Errorf("Amount = %#v", got)
			}
			return
		}
	}
	t.Fatal("created opportunity not read")
}

// A field renamed at the source (schema drift) must not stop the sync: the
// query is rebuilt from a fresh describe and the renamed field is read under
// its new name.
func TestRenamedFieldDoesNotStopTheSync(t *testing.T) {
	c, src := newConnector(t, connectortest.SimOptions{}, nil, nil)
	recs, cur := drain(t, c, "Account", "")
	if len(recs) != 12 {
		t.Fatalf("%d accounts", len(recs))
	}
	if err := src.Sim.RenameField(crmsim.Salesforce, "Account", "Industry", "Sector__c"); err != nil {
		t.Fatal(err)
	}
	id := recs[0].Values["Id"].(string)
	if err := src.Modify("Account", id); err != nil {
		t.Fatal(err)
	}
	// The same connector still has the old SELECT list: INVALID_FIELD.
	recs, _ = drain(t, c, "Account", cur)
	if len(recs) != 1 || recs[0].Values["Id"] != id {
		t.Fatalf("after a rename read %v", recs)
	}
	if _, ok := recs[0].Values["Sector__c"]; !ok {
		t.Errorf("the renamed field is not read: %v", recs[0].Values)
	}
	if _, ok := recs[0].Values["Industry"]; ok {
		t.Errorf("the old field is still selected")
	}
}

// Many records changed within one second straddle pages; a later change in
// that same second is still found, and nothing is read twice.
func TestSameSecondChanges(t *testing.T) {
	c, src := newConnector(t, connectortest.SimOptions{Accounts: 3, Opportunities: -1, Contacts: -1}, map[string]any{"page_size": 2}, nil)
	_, cur := drain(t, c, "Account", "")
	var ids []string
	for range 5 {
		id, err := src.Create("Account")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	recs, cur := drain(t, c, "Account", cur)
	if len(recs) != 5 {
		t.Fatalf("read %d of 5 new accounts", len(recs))
	}
	// The frozen clock puts this change on the same stamp as the five.
	if err := src.Modify("Account", ids[0]); err != nil {
		t.Fatal(err)
	}
	extra, err := src.Create("Account")
	if err != nil {
		t.Fatal(err)
	}
	recs, cur = drain(t, c, "Account", cur)
	got := map[string]bool{}
	for _, r := range recs {
		got[r.Values["Id"].(string)] = true
	}
	if len(recs) != 2 || !got[ids[0]] || !got[extra] {
		t.Fatalf("read %v, want %s and %s", got, ids[0], extra)
	}
	if recs, _ := drain(t, c, "Account", cur); len(recs) != 0 {
		t.Errorf("read %d records with nothing changed", len(recs))
	}
}

// An expired query locator (the server forgot the query) re-queries from
// the cursor's stamp without losing or repeating records.
func TestExpiredQueryLocator(t *testing.T) {
	c, _ := newConnector(t, connectortest.SimOptions{}, nil, nil)
	p, err := c.Fetch(context.Background(), "Opportunity", "")
	if err != nil || !p.More {
		t.Fatalf("first page: %v %+v", err, p)
	}
	var cur map[string]any
	_ = json.Unmarshal([]byte(p.Cursor), &cur)
	next := cur["next"].(string)
	cur["next"] = next[:strings.LastIndex(next, "/")] + "/01g5g00000ZZZZZ-5"
	b, _ := json.Marshal(cur)
	recs, _ := drain(t, c, "Opportunity", string(b))
	seen := map[string]bool{}
	for _, r := range append(p.Records, recs...) {
		id := r.Values["Id"].(string)
		if seen[id] {
			t.Errorf("%s read twice", id)
		}
		seen[id] = true
	}
	if len(seen) != 15 {
		t.Errorf("read %d of 15 opportunities", len(seen))
	}
}

func TestNextRecordsURLMustStayOnTheInstance(t *testing.T) {
	c, _ := newConnector(t, connectortest.SimOptions{}, nil, nil)
	_, err := c.Fetch(context.Background(), "Account", `{"v":1,"next":"https://evil.example.com/services/data/v59.0/query/x-5"}`)
	if err == nil || !strings.Contains(err.Error(), "not on the instance") {
		t.Fatalf("err = %v", err)
	}
}

func TestCancelDuringRetries(t *testing.T) {
	c, src := newConnector(t, connectortest.SimOptions{}, nil, nil)
	src.FailNext(100, 429)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Fetch(ctx, "Account", ""); err == nil {
		t.Fatal("want an error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Fetch took %v after its deadline", d)
	}
}

func TestSettleWindow(t *testing.T) {
	src := connectortest.NewSim(t, crmsim.Salesforce, connectortest.SimOptions{Accounts: 2, Opportunities: -1, Contacts: -1, Now: time.Now})
	if _, err := src.Create("Account"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		settle time.Duration
		want   int
	}{{time.Hour, 0}, {0, 1}} {
		c, err := salesforce.New(connectors.Connection{Config: src.Config(), Secrets: src.Secrets()}, connectors.Deps{},
			salesforce.Options{Limits: httpx.Limits{PerSecond: 1000}, Settle: tc.settle})
		if err != nil {
			t.Fatal(err)
		}
		cur := fmt.Sprintf(`{"v":1,"phase":"incremental","stamp":%q}`, time.Now().Add(-30*time.Minute).UTC().Format(time.RFC3339))
		recs, _ := drain(t, c, "Account", cur)
		if len(recs) != tc.want {
			t.Errorf("settle %v: read %d records, want %d", tc.settle, len(recs), tc.want)
		}
	}
}
