package lexicon_test

import (
	"slices"
	"testing"

	"github.com/autonomos/autonomos/agents/lexicon"
)

func TestStrip(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Amount__c", "Amount"},
		{"acme__Amount__c", "Amount"},
		{"_parentaccountid_value", "parentaccountid"},
		{"cr4f2_website", "website"},
		{"new_annualrevenue", "annualrevenue"},
		{"hs_industry", "industry"},
		{"amount_c", "amount"},
		{"transactioncurrencyid.isocurrencycode", "transactioncurrencyid.isocurrencycode"},
		{"name", "name"},
		{"__c", "__c"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := lexicon.Strip(tt.in); got != tt.want {
				t.Fatalf("Strip(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestWordsAndConcepts(t *testing.T) {
	tests := []struct {
		in       string
		words    []string
		concepts []string
	}{
		{"NumberOfEmployees", []string{"number", "of", "employees"}, []string{"count", "employee"}},
		{"numberofemployees", []string{"numberofemployees"}, []string{"employee", "count"}},
		{"hubspot_owner_id", []string{"hubspot", "owner", "id"}, []string{"hubspot", "owner"}},
		{"annualrevenue", []string{"annual", "revenue"}, []string{"annual", "amount"}},
		{"Deal_Value__c", []string{"dealvalue"}, []string{"opportunity", "amount"}},
		{"LinkedIn_URL__c", []string{"linkedin", "url"}, []string{"linkedin", "website"}},
		{"emailaddress1", []string{"emailaddress1"}, []string{"email"}},
		{"given_name", []string{"givenname"}, []string{"first"}},
		{"URLValue", []string{"url", "value"}, []string{"website", "amount"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := lexicon.Words(tt.in); !slices.Equal(got, tt.words) {
				t.Errorf("Words(%q) = %v, want %v", tt.in, got, tt.words)
			}
			if got := lexicon.Concepts(tt.in); !slices.Equal(got, tt.concepts) {
				t.Errorf("Concepts(%q) = %v, want %v", tt.in, got, tt.concepts)
			}
		})
	}
}

func TestSimilarity(t *testing.T) {
	tests := []struct {
		a, b     string
		min, max float64
	}{
		{"Amount", "amount", 1, 1},
		{"Amount", "Amount__c", 1, 1},
		{"Industry", "Sector__c", 0.95, 0.95},
		{"telephone1", "mobilephone", 0.95, 0.95},
		{"NumberOfEmployees", "Headcount__c", 0.95, 0.95},
		{"CloseDate", "ExpectedCloseDate__c", 0.7, 0.94},
		{"Amount", "TotalAmount", 0.7, 0.94},
		{"Phone", "Fax", 0, 0.2},
		{"FirstName", "Full_Name__c", 0, 0.4},
		{"OwnerId", "CreatedById", 0, 0.4},
	}
	for _, tt := range tests {
		t.Run(tt.a+"~"+tt.b, func(t *testing.T) {
			got := lexicon.Similarity(tt.a, tt.b)
			if got < tt.min || got > tt.max {
				t.Fatalf("Similarity(%q, %q) = %.3f, want [%.2f, %.2f]", tt.a, tt.b, got, tt.min, tt.max)
			}
			if back := lexicon.Similarity(tt.b, tt.a); back != got {
				t.Fatalf("not symmetric: %.3f vs %.3f", got, back)
			}
		})
	}
}

func TestSimilarityInDropsTheEntity(t *testing.T) {
	if got := lexicon.SimilarityIn("Amount", "Deal_Value__c", "opportunity"); got != 0.95 {
		t.Fatalf("in an opportunity, Deal_Value__c ~ Amount = %.2f, want 0.95", got)
	}
	if got := lexicon.Similarity("Amount", "Deal_Value__c"); got >= 0.95 {
		t.Fatalf("without context = %.2f, want less than 0.95", got)
	}
}

func TestUnitMismatch(t *testing.T) {
	if !lexicon.UnitMismatch("amount", "amount_in_cents") {
		t.Error("cents not seen")
	}
	if lexicon.UnitMismatch("Amount", "Amount__c") {
		t.Error("a unit where there is none")
	}
}
