package match_test

import (
	"strings"
	"testing"

	"github.com/autonomos/autonomos/agents/match"
	"github.com/autonomos/autonomos/agents/shape"
	"github.com/autonomos/autonomos/canonical"
)

func field(name string, added bool, samples ...string) match.Field {
	var m shape.Mask
	for _, s := range samples {
		if vm, ok := shape.InferText(s); ok {
			m = m.Meet(vm)
		}
	}
	return match.Field{Name: name, Types: m, Samples: samples, Added: added}
}

func oppSpec() canonical.ObjectSpec {
	return canonical.ObjectSpec{Object: "Opportunity", Entity: canonical.OpportunityEntity, VersionField: "SystemModstamp", Fields: []canonical.FieldSpec{
		{Target: "opportunity_id", Source: "Id"},
		{Target: "name", Source: "Name"},
		{Target: "stage", Source: "StageName"},
		{Target: "amount", Source: "Amount"},
		{Target: "close_date", Source: "CloseDate", Transforms: []canonical.Transform{{Name: "date", Args: []string{"2006-01-02"}}}},
		{Target: "owner_id", Source: "OwnerId"},
	}}
}

var oppFields = []match.Field{
	field("Id", false, "0065g00000Zx1AbAAJ"),
	field("Name", false, "Acme - Renewal"),
	field("StageName", false, "Closed Won"),
	field("CloseDate", false, "2024-07-31"),
	field("OwnerId", false, "0055g00000AbCdEAAV"),
	field("SystemModstamp", false, "2024-05-03T09:00:00.000+0000"),
	field("Probability__c", false, "80"),
}

func TestMatch(t *testing.T) {
	m, err := match.New(match.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		fields   []match.Field
		removed  []match.Field
		spec     func(canonical.ObjectSpec) canonical.ObjectSpec
		known    []match.Known
		target   string
		source   string
		decision match.Decision
		reason   string // a reason that must be given
	}{
		{
			name:    "custom field replaces a standard one",
			fields:  []match.Field{field("Amount__c", true, "185000", "42500.5")},
			removed: []match.Field{field("Amount", false, "185000", "42500.5")},
			target:  "amount", source: "Amount__c", decision: match.Auto, reason: "carries the values",
		},
		{
			name:    "synonym rename with other values",
			fields:  []match.Field{field("Deal_Value__c", true, "9800", "1250000")},
			removed: []match.Field{field("Amount", false, "185000", "42500.5")},
			target:  "amount", source: "Deal_Value__c", decision: match.Auto, reason: "name like",
		},
		{
			name:    "values that do not read as a decimal are no candidate",
			fields:  []match.Field{field("Amount_Text__c", true, "USD 185,000.00", "EUR 9,800.00")},
			removed: []match.Field{field("Amount", false, "185000")},
			target:  "amount", source: "", decision: match.Reject,
		},
		{
			name:    "a unit word never applies automatically",
			fields:  []match.Field{field("amount_in_cents", true, "18500000", "980000")},
			removed: []match.Field{field("Amount", false, "185000", "9800")},
			target:  "amount", source: "amount_in_cents", decision: match.Queue, reason: "unit or qualifier",
		},
		{
			name: "two equally good candidates are ambiguous",
			fields: []match.Field{
				field("Amount_Net__c", true, "150000", "8000"),
				field("Amount_Gross__c", true, "185000", "9800"),
			},
			removed: []match.Field{field("Amount", false, "175000")},
			target:  "amount", decision: match.Queue, reason: "ambiguous",
		},
		{
			name:    "an unrelated field of the same shape is rejected",
			fields:  []match.Field{field("Fax", true, "+1 (415) 555-0199")},
			removed: []match.Field{field("Phone", false, "+1 (415) 555-0132")},
			spec: func(s canonical.ObjectSpec) canonical.ObjectSpec {
				s.Entity = canonical.ContactEntity
				s.Fields = []canonical.FieldSpec{{Target: "contact_id", Source: "Id"}, {Target: "phone", Source: "Phone"}}
				return s
			},
			target: "phone", source: "Fax", decision: match.Reject,
		},
		{
			name:   "a new field fills an unmapped canonical field",
			fields: []match.Field{field("Currency__c", true, "USD", "EUR")},
			target: "currency", source: "Currency__c", decision: match.Auto, reason: "name like canonical currency",
		},
		{
			name:   "an old unused field is not proposed for an unmapped target",
			fields: []match.Field{field("Winner__c", true, "Globex")},
			target: "", // no proposal at all
		},
		{
			name:    "a neighbour from past mappings",
			fields:  []match.Field{field("ARR", true, "185000")},
			removed: []match.Field{field("AR_2__c", false, "185000.5")},
			known:   []match.Known{{Source: "estimatedvalue", Target: "amount", System: "dynamics", Object: "opportunities"}, {Source: "ARR", Target: "amount", System: "tenant", Object: "Opportunity"}},
			spec: func(s canonical.ObjectSpec) canonical.ObjectSpec {
				s.Fields[3].Source = "AR_2__c"
				return s
			},
			target: "amount", source: "ARR", decision: match.Auto, reason: "which tenant Opportunity maps to amount",
		},
		{
			name:    "the date layout of the old field must read the new values",
			fields:  []match.Field{field("Close_Date__c", true, "07/31/2024")},
			removed: []match.Field{field("CloseDate", false, "2024-07-31")},
			target:  "close_date", source: "", decision: match.Reject,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := oppSpec()
			if tt.spec != nil {
				spec = tt.spec(spec)
			}
			fields := append(append([]match.Field{}, oppFields...), tt.fields...)
			props := m.Match(match.Input{System: "salesforce", Spec: spec, Fields: fields, Removed: tt.removed, Known: tt.known})
			if tt.target == "" {
				if len(props) != 0 {
					t.Fatalf("proposals %+v, want none", props)
				}
				return
			}
			var got *match.Proposal
			for i := range props {
				if props[i].Target == tt.target {
					got = &props[i]
				}
			}
			if got == nil {
				t.Fatalf("no proposal for %s in %+v", tt.target, props)
			}
			if tt.source != "" && got.Source != tt.source {
				t.Fatalf("source = %q (%.2f), want %q; reasons %v", got.Source, got.Confidence, tt.source, got.Reasons)
			}
			if got.Decision != tt.decision {
				t.Fatalf("decision = %s (%.3f), want %s; reasons %v", got.Decision, got.Confidence, tt.decision, got.Reasons)
			}
			if got.Confidence < 0 || got.Confidence > 1 {
				t.Fatalf("confidence %v out of [0,1]", got.Confidence)
			}
			if tt.reason != "" && !strings.Contains(strings.Join(got.Reasons, "; "), tt.reason) {
				t.Fatalf("reasons %v lack %q", got.Reasons, tt.reason)
			}
		})
	}
}

func TestThresholdsAreConfigurable(t *testing.T) {
	strict, err := match.New(match.Config{AutoApply: 0.99, Queue: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	props := strict.Match(match.Input{System: "salesforce", Spec: oppSpec(),
		Fields:  append(append([]match.Field{}, oppFields...), field("TotalAmount", true, "9800")),
		Removed: []match.Field{field("Amount", false, "185000")}})
	if len(props) != 1 || props[0].Target != "amount" || props[0].Decision == match.Auto {
		t.Fatalf("with auto at 0.99: %+v", props)
	}
	if _, err := match.New(match.Config{AutoApply: 0.5, Queue: 0.7}); err == nil {
		t.Fatal("queue above auto accepted")
	}
}

func TestACandidateFillsOneTarget(t *testing.T) {
	m, _ := match.New(match.Config{})
	spec := canonical.ObjectSpec{Object: "Contact", Entity: canonical.ContactEntity, Fields: []canonical.FieldSpec{
		{Target: "contact_id", Source: "Id"}, {Target: "first_name", Source: "FirstName"}, {Target: "last_name", Source: "LastName"}}}
	props := m.Match(match.Input{System: "salesforce", Spec: spec,
		Fields:  []match.Field{field("Id", false, "0035g00000MnOpQAAV"), field("First_Name__c", true, "Maria")},
		Removed: []match.Field{field("FirstName", false, "Maria"), field("LastName", false, "Lopez")}})
	used := 0
	for _, p := range props {
		if p.Source == "First_Name__c" {
			used++
			if p.Target != "first_name" {
				t.Fatalf("First_Name__c went to %s", p.Target)
			}
		}
	}
	if used != 1 {
		t.Fatalf("First_Name__c used %d times: %+v", used, props)
	}
}
