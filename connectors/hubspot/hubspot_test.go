package hubspot_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/connectortest"
	"github.com/autonomos/autonomos/connectors/crmsim"
	"github.com/autonomos/autonomos/connectors/httpx"
	"github.com/autonomos/autonomos/connectors/hubspot"
)

var fastLimits = httpx.Limits{PerSecond: 1000, Burst: 1000}

func TestConformance(t *testing.T) {
	connectortest.Run(t, connectortest.Harness{
		System:  hubspot.System,
		Factory: hubspot.NewFactory(hubspot.Options{Limits: fastLimits}),
		NewSource: func(t *testing.T) connectortest.Source {
			return connectortest.NewSim(t, crmsim.HubSpot, connectortest.SimOptions{})
		},
		BadConfigs: []connectortest.BadConfig{
			{Name: "base_url not a URL", Config: map[string]any{"base_url": "api.hubapi.com"}, Field: "config.base_url"},
			{Name: "unknown object", Config: map[string]any{"objects": []any{"companies", "tickets"}}, Field: "config.objects"},
			{Name: "page_size over 100", Config: map[string]any{"page_size": 101}, Field: "config.page_size"},
			{Name: "page_size not whole", Config: map[string]any{"page_size": 2.5}, Field: "config.page_size"},
			{Name: "no credentials", Secrets: map[string]string{"client_id": "", "client_secret": "", "refresh_token": ""}, Field: "secrets.access_token"},
			{Name: "OAuth without refresh_token", Secrets: map[string]string{"refresh_token": ""}, Field: "secrets.refresh_token"},
			{Name: "both kinds of credentials", Secrets: map[string]string{"access_token": "pat-na1-x"}, Field: "secrets.access_token"},
		},
	})
}

func newConnector(t *testing.T, src *connectortest.Sim, config map[string]any, secrets map[string]string) *hubspot.Connector {
	t.Helper()
	cfg, sec := src.Config(), src.Secrets()
	for k, v := range config {
		cfg[k] = v
	}
	if secrets != nil {
		sec = secrets
	}
	c, err := hubspot.New(connectors.Connection{ID: "c1", Tenant: "t1", System: hubspot.System, Config: cfg, Secrets: sec},
		connectors.Deps{}, hubspot.Options{Limits: fastLimits})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func drain(t *testing.T, c connectors.Connector, object, cursor string) ([]connectors.Record, string) {
	t.Helper()
	var out []connectors.Record
	for range 100000 {
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

func byID(t *testing.T, recs []connectors.Record) map[string]connectors.Record {
	t.Helper()
	out := map[string]connectors.Record{}
	for _, r := range recs {
		id := r.Values["hs_object_id"].(string)
		if _, dup := out[id]; dup {
			t.Errorf("record %s read twice", id)
		}
		out[id] = r
	}
	return out
}

func TestPrivateAppToken(t *testing.T) {
	src := connectortest.NewSim(t, crmsim.HubSpot, connectortest.SimOptions{})
	pat := src.Sim.Credentials().HubSpot.AccessToken
	c := newConnector(t, src, nil, map[string]string{"access_token": pat})
	if err := c.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs, _ := drain(t, c, "companies", "")
	if len(recs) != 12 {
		t.Errorf("read %d companies, want 12", len(recs))
	}
	// A rotated private app token cannot be refreshed: a permanent error
	// that does not quote the token.
	src.ExpireTokens()
	_, err := c.Fetch(context.Background(), "companies", "")
	var pe *connectors.PermanentError
	if !errors.As(err, &pe) || strings.Contains(err.Error(), pat) {
		t.Fatalf("after rotation: %v", err)
	}
}

// Deals and contacts carry their company, the same through the list (inline
// associations) and through the search (a batch association read).
func TestAssociatedCompany(t *testing.T) {
	src := connectortest.NewSim(t, crmsim.HubSpot, connectortest.SimOptions{})
	c := newConnector(t, src, nil, nil)
	companies, _ := drain(t, c, "companies", "")
	known := byID(t, companies)
	for _, obj := range []string{"deals", "contacts"} {
		listed, cur := drain(t, c, obj, "")
		byList := byID(t, listed)
		for id, r := range byList {
			co, _ := r.Values["associatedcompanyid"].(string)
			if _, ok := known[co]; !ok {
				t.Errorf("%s %s: associatedcompanyid %q is no company", obj, id, co)
			}
			if err := src.Modify(obj, id); err != nil {
				t.Fatal(err)
			}
		}
		searched, _ := drain(t, c, obj, cur)
		bySearch := byID(t, searched)
		if len(bySearch) != len(byList) {
			t.Fatalf("%s: search read %d of %d changed records", obj, len(bySearch), len(byList))
		}
		for id, r := range bySearch {
			if got, want := r.Values["associatedcompanyid"], byList[id].Values["associatedcompanyid"]; got != want {
				t.Errorf("%s %s: search says company %v, list says %v", obj, id, got, want)
			}
		}
	}
}

// More than 10,000 changed records are read through the search, whose
// offset may not reach 10,000: keyset paging on the modified stamp.
func TestSearchPastTenThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("10,050 records")
	}
	const n = 10050
	src := connectortest.NewSim(t, crmsim.HubSpot, connectortest.SimOptions{Accounts: 1, Opportunities: -1, Contacts: n})
	c := newConnector(t, src, map[string]any{"page_size": 100}, nil)
	recs, _ := drain(t, c, "contacts", `{"v":1,"phase":"search"}`)
	if got := len(byID(t, recs)); got != n {
		t.Fatalf("read %d of %d contacts", got, n)
	}
}

// Hundreds of records on one millisecond (a bulk import) are walked by id
// at that stamp, each read once, and the search goes on after them.
func TestManyRecordsOnOneStamp(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	src := connectortest.NewSim(t, crmsim.HubSpot, connectortest.SimOptions{Accounts: 2, Opportunities: -1, Contacts: 3, Now: clock})
	c := newConnector(t, src, map[string]any{"page_size": 20}, nil)
	_, cur := drain(t, c, "contacts", "")
	for i := range 75 {
		if _, err := src.Sim.Put(crmsim.HubSpot, "contacts", map[string]any{"lastname": fmt.Sprintf("Bulk %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	recs, cur := drain(t, c, "contacts", cur)
	if got := len(byID(t, recs)); got != 75 {
		t.Fatalf("read %d of 75 bulk contacts", got)
	}
	if !strings.Contains(cur, `"strict":true`) {
		t.Errorf("after a walk of one stamp the cursor should go on strictly after it: %s", cur)
	}
	// A change a millisecond later is found, and only it.
	mu.Lock()
	now = now.Add(time.Millisecond)
	mu.Unlock()
	id, err := src.Create("contacts")
	if err != nil {
		t.Fatal(err)
	}
	recs, _ = drain(t, c, "contacts", cur)
	if len(recs) != 1 || recs[0].Values["hs_object_id"] != id {
		t.Errorf("after one change read %d records", len(recs))
	}
}

func TestArchivedBeforeFirstSyncAreNotDeletes(t *testing.T) {
	src := connectortest.NewSim(t, crmsim.HubSpot, connectortest.SimOptions{})
	c := newConnector(t, src, nil, nil)
	listed, _ := drain(t, c, "companies", "")
	victim := listed[0].Values["hs_object_id"].(string)
	if err := src.Delete("companies", victim); err != nil {
		t.Fatal(err)
	}
	// A new connection syncing from scratch sees the archived company
	// nowhere: not as a live record, not as a delete.
	recs, cur := drain(t, c, "companies", "")
	for _, r := range recs {
		if r.Values["hs_object_id"] == victim {
			t.Errorf("the archived company was read: %+v", r)
		}
	}
	if len(recs) != 11 {
		t.Errorf("read %d companies, want 11", len(recs))
	}
	// A later archive is a delete.
	other := recs[0].Values["hs_object_id"].(string)
	if err := src.Delete("companies", other); err != nil {
		t.Fatal(err)
	}
	recs, _ = drain(t, c, "companies", cur)
	if len(recs) != 1 || !recs[0].Deleted || recs[0].Values["hs_object_id"] != other || recs[0].Values["archived"] != true {
		t.Fatalf("after an archive read %+v", recs)
	}
}

// A change younger than the settle window is left for a later search (the
// search index may not hold its neighbours yet); without a window it is
// read at once.
func TestSettleWindow(t *testing.T) {
	src := connectortest.NewSim(t, crmsim.HubSpot, connectortest.SimOptions{Now: time.Now})
	if _, err := src.Create("companies"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		settle time.Duration
		want   int
	}{{time.Hour, 0}, {-1, 1}} {
		c, err := hubspot.New(connectors.Connection{Config: src.Config(), Secrets: src.Secrets()}, connectors.Deps{},
			hubspot.Options{Limits: fastLimits, Settle: tc.settle})
		if err != nil {
			t.Fatal(err)
		}
		// Search from an hour ago: only the new company is that fresh.
		cur := fmt.Sprintf(`{"v":1,"phase":"search","stamp":%q}`, time.Now().Add(-30*time.Minute).UTC().Format(time.RFC3339))
		p, err := c.Fetch(context.Background(), "companies", cur)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Records) != tc.want {
			t.Errorf("settle %v: read %d records, want %d", tc.settle, len(p.Records), tc.want)
		}
	}
}
