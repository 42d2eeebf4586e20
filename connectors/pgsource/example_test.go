package pgsource_test

import (
	"fmt"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/pgsource"
)

// A connection names its tables, each with an optional object name and
// entity; the slot and publication default to names derived from the
// connection id. The registry builds the connector without contacting the
// database; Check, Fetch and Close do.
func ExampleParseConfig() {
	reg := connectors.Registry{pgsource.System: pgsource.Factory}
	con, err := reg.New(connectors.Connection{ID: "c-7", Tenant: "acme", System: "postgres",
		Config: map[string]any{
			"tables": []any{"crm.accounts", map[string]any{"table": "crm.deals", "object": "opportunities", "entity": "opportunity"}},
			"mode":   "cdc",
		},
		Secrets: map[string]string{"dsn": "postgres://replicator:secret@db.internal:5432/crm"},
	}, connectors.Deps{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer con.(*pgsource.Connector).Close()
	cfg := con.(*pgsource.Connector).Config()
	fmt.Println(con.Objects(), cfg.Slot, cfg.Publication)

	_, err = pgsource.ParseConfig(connectors.Connection{Config: map[string]any{"tables": "accounts", "mode": "stream"}})
	fmt.Println(err)
	// Output:
	// [accounts opportunities] autonomos_c_7 autonomos_c_7
	// config.mode: want cdc or poll, got "stream"
	// secrets.dsn: required (a Postgres URL or key=value connection string)
}
