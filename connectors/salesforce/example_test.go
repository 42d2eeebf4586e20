package salesforce_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/crmsim"
	"github.com/autonomos/autonomos/connectors/httpx"
	"github.com/autonomos/autonomos/connectors/salesforce"
)

// A process registers the connector with one set of budgets shared by every
// Salesforce connection, so two connections to one org never together
// exceed its limits. Fetch pages through an object from a cursor.
func ExampleNewFactory() {
	sim := crmsim.New(crmsim.Config{Seed: 1, Accounts: 3, Opportunities: -1, Contacts: -1,
		Now: func() time.Time { return time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC) }})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()

	budgets := httpx.NewLocalBudgets()
	reg := connectors.Registry{salesforce.System: salesforce.NewFactory(salesforce.Options{Budgets: budgets})}
	creds := sim.Credentials().Salesforce
	con, err := reg.New(connectors.Connection{ID: "c1", Tenant: "t1", System: salesforce.System,
		Config:  map[string]any{"instance_url": srv.URL + "/salesforce", "login_url": srv.URL + "/salesforce", "objects": []any{"account"}},
		Secrets: map[string]string{"client_id": creds.ClientID, "client_secret": creds.ClientSecret},
	}, connectors.Deps{})
	if err != nil {
		fmt.Println(err)
		return
	}
	page, err := con.Fetch(context.Background(), "Account", "")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(con.Objects(), len(page.Records), page.More)
	// Output: [Account] 3 false
}
