package agents_test

import (
	"fmt"

	"github.com/autonomos/autonomos/agents/drift"
	"github.com/autonomos/autonomos/agents/match"
	"github.com/autonomos/autonomos/canonical"
)

// A source renamed Amount to Deal_Value__c: the observer's change
// detection finds the rename, and the matcher proposes the new field for
// the canonical amount with a confidence high enough to apply it.
func Example() {
	old := []map[string]any{{"Id": "0065g00000Zx1AbAAJ", "Name": "Acme renewal", "Amount": 185000.5}}
	now := []map[string]any{{"Id": "0065g00000Zx2CdAAJ", "Name": "Globex rollout", "Deal_Value__c": 42500.0}}
	fp, ch := drift.Compare(old, now)
	fmt.Println("severity:", ch.Severity, "rename:", ch.Renames[0].From, "→", ch.Renames[0].To)

	spec := canonical.ObjectSpec{Object: "Opportunity", Entity: canonical.OpportunityEntity, Fields: []canonical.FieldSpec{
		{Target: "opportunity_id", Source: "Id"}, {Target: "name", Source: "Name"}, {Target: "amount", Source: "Amount"}}}
	m, _ := match.New(match.Config{}) // 0.85 auto, 0.60 queue
	added := map[string]bool{"Deal_Value__c": true}
	for _, p := range m.Match(match.Input{System: "salesforce", Spec: spec, Fields: fp.MatchFields(added), Removed: ch.Removed}) {
		fmt.Printf("%s ← %s (was %s): %s\n", p.Target, p.Source, p.Previous, p.Decision)
	}
	// Output:
	// severity: high rename: Amount → Deal_Value__c
	// amount ← Deal_Value__c (was Amount): auto
}
