package hubspot_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/crmsim"
	"github.com/autonomos/autonomos/connectors/httpx"
	"github.com/autonomos/autonomos/connectors/hubspot"
)

// A private app token is the simplest credential. The first sync of an
// object walks a few phases (probe, archived watermark, list, search,
// archived), so the caller fetches until More is false.
func ExampleNewFactory() {
	sim := crmsim.New(crmsim.Config{Seed: 1, Accounts: 3, Opportunities: 4, Contacts: -1,
		Now: func() time.Time { return time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC) }})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()

	factory := hubspot.NewFactory(hubspot.Options{Budgets: httpx.NewLocalBudgets()})
	con, err := factory(connectors.Connection{ID: "c1", Tenant: "t1", System: hubspot.System,
		Config:  map[string]any{"base_url": srv.URL + "/hubspot", "objects": "deals"},
		Secrets: map[string]string{"access_token": sim.Credentials().HubSpot.AccessToken},
	}, connectors.Deps{})
	if err != nil {
		fmt.Println(err)
		return
	}
	cursor, records, withCompany := "", 0, 0
	for {
		page, err := con.Fetch(context.Background(), "deals", cursor)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, r := range page.Records {
			records++
			if r.Values["associatedcompanyid"] != nil {
				withCompany++
			}
		}
		if cursor = page.Cursor; !page.More {
			break
		}
	}
	fmt.Println(records, "deals,", withCompany, "with their company")
	// Output: 4 deals, 4 with their company
}
