package dynamics_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/crmsim"
	"github.com/autonomos/autonomos/connectors/dynamics"
)

// The first read of an entity set ends with a delta link in the cursor;
// the next read from that cursor returns only what changed since.
func ExampleFactory() {
	sim := crmsim.New(crmsim.Config{Seed: 1, Accounts: 3, Opportunities: -1, Contacts: -1,
		Now: func() time.Time { return time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC) }})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()

	creds := sim.Credentials().Dynamics
	con, err := dynamics.Factory(connectors.Connection{ID: "c1", Tenant: "t1", System: dynamics.System,
		Config: map[string]any{"base_url": srv.URL + "/dynamics", "token_url": srv.URL + "/dynamics/" + creds.TenantID + "/oauth2/v2.0/token",
			"objects": []any{"account"}},
		Secrets: map[string]string{"client_id": creds.ClientID, "client_secret": creds.ClientSecret},
	}, connectors.Deps{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	first, err := con.Fetch(ctx, "accounts", "")
	if err != nil {
		fmt.Println(err)
		return
	}
	sim.Evolve(1)
	next, err := con.Fetch(ctx, "accounts", first.Cursor)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(first.Records), strings.Contains(first.Cursor, "deltatoken"), len(next.Records) > 0, next.More)
	// Output: 3 true true false
}
