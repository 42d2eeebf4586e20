package canonical_test

import (
	"fmt"
	"log"

	"github.com/autonomos/autonomos/canonical"
)

func ExampleMapping_Apply() {
	const spec = `
system: erp
objects:
  - object: deals
    entity: opportunity
    version_field: changed
    deleted_field: removed
    fields:
      - {target: opportunity_id, source: id}
      - {target: name, source: title, transforms: [trim]}
      - {target: amount, source: value, transforms: [{decimal: [",", "."]}]}
      - {target: currency, source: cur, transforms: [upper], default: EUR}
      - {target: close_date, source: due, transforms: [{date: "02.01.2006"}]}
      - {target: probability, source: chance, transforms: [{scale: "100"}]}
`
	_, mappings, err := canonical.ParseMappingFile("erp.yaml", []byte(spec))
	if err != nil {
		log.Fatal(err)
	}
	res, err := mappings[0].Apply(map[string]any{
		"id":      "D-17",
		"title":   " Rollout phase 2 ",
		"value":   "1.234,50",
		"cur":     "",
		"due":     "30.06.2024",
		"chance":  "0.4",
		"changed": "2024-05-01T10:00:00Z",
		"removed": false,
		"region":  "DACH",
	})
	if err != nil {
		log.Fatal(err)
	}
	opp := res.Record.(*canonical.Opportunity)
	fmt.Println(res.Op, opp.OpportunityID, opp.Name)
	fmt.Println(opp.Amount, *opp.Currency, opp.CloseDate, opp.Probability)
	fmt.Println("version", res.Version, "extras", opp.Extras)

	_, err = mappings[0].Apply(map[string]any{"id": "D-18", "title": "  "})
	fmt.Println(err)
	// Output:
	// upserted D-17 Rollout phase 2
	// 1234.5 EUR 2024-06-30 40
	// version 2024-05-01T10:00:00Z extras map[region:DACH]
	// name (from title): required field is missing
}

func ExampleParseEvent() {
	ev, err := canonical.ParseEvent([]byte(`{
		"specversion": "1.0",
		"id": "97212c31b17b43cb81de0e5dc168ca99",
		"source": "/connections/conn-7f3a",
		"type": "com.autonomos.canonical.opportunity.upserted",
		"subject": "9001",
		"datacontenttype": "application/json",
		"time": "2024-05-01T10:00:00Z",
		"tenantid": "acme",
		"schemaversion": "v1",
		"sourcesystem": "hubspot",
		"mappingversion": 3,
		"data": {"opportunity_id": "9001", "name": "Acme renewal", "amount": "125000.50", "currency": "EUR", "probability": 20}
	}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.Entity(), ev.Op, ev.Tenant, ev.ConnectionID, ev.Time)
	fmt.Println(ev.Record.Key(), ev.Record.Value("amount"), ev.Record.Value("currency"))

	_, err = canonical.ParseEvent([]byte(`{"specversion": "1.0", "id": "x", "source": "/connections/c1",
		"type": "com.autonomos.canonical.account.upserted", "subject": "9001", "time": "2024-05-01T10:00:00Z",
		"tenantid": "acme", "schemaversion": "v1", "sourcesystem": "hubspot",
		"data": {"opportunity_id": "9001", "name": "Acme renewal"}}`))
	fmt.Println(err)
	// Output:
	// opportunity upserted acme conn-7f3a 2024-05-01 10:00:00 +0000 UTC
	// 9001 125000.5 EUR
	// data: "opportunity_id" is not a field of account, which type com.autonomos.canonical.account.upserted says the data is
}
