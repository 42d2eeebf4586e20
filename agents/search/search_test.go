package search_test

import (
	"context"
	"errors"
	"testing"

	"github.com/autonomos/autonomos/agents/search"
	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/config"
	"github.com/autonomos/autonomos/connectors"
)

func shipped(t *testing.T) []*canonical.Mapping {
	t.Helper()
	ms, err := connectors.NewMappings(config.MappingFS(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return ms.Shipped()
}

func TestSearch(t *testing.T) {
	ix := search.New(shipped(t), nil, nil)
	tests := []struct {
		q            string
		kind, entity string
		field        string
	}{
		{"deal value", search.KindField, "opportunity", "amount"},
		{"headcount", search.KindField, "account", "employee_count"},
		{"family name", search.KindField, "contact", "last_name"},
		{"win likelihood", search.KindField, "opportunity", "probability"},
		{"emailaddress1", search.KindMapping, "contact", "email"},
		{"hs_probability", search.KindMapping, "opportunity", "probability"},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			hits, err := ix.Search(context.Background(), "acme", tt.q, 10) // one mapping hit per shipped system may rank above the field
			if err != nil {
				t.Fatal(err)
			}
			if len(hits) == 0 || hits[0].Entity != tt.entity || hits[0].Field != tt.field {
				t.Fatalf("top hits %+v", hits)
			}
			kind := false
			for _, h := range hits {
				kind = kind || h.Kind == tt.kind && h.Field == tt.field
			}
			if !kind {
				t.Fatalf("no %s hit for %s in %+v", tt.kind, tt.field, hits)
			}
			for i := 1; i < len(hits); i++ {
				if hits[i].Score > hits[i-1].Score || hits[i].Score <= 0 || hits[i].Score > 1 {
					t.Fatalf("scores out of order or range: %+v", hits)
				}
			}
		})
	}
	if hits, _ := ix.Search(context.Background(), "acme", "  ", 3); len(hits) != 0 {
		t.Fatalf("a blank query found %+v", hits)
	}
}

func TestTenantVersionsStayWithTheirTenant(t *testing.T) {
	ix := search.New(shipped(t), nil, nil)
	spec := canonical.ObjectSpec{Object: "Opportunity", Entity: canonical.OpportunityEntity, Fields: []canonical.FieldSpec{{Target: "amount", Source: "Zorblax_Value__c"}}}
	ix.AddMapping("acme", "salesforce", spec, 2)
	ix.AddMapping("acme", "salesforce", spec, 2) // kept once
	hits, _ := ix.Search(context.Background(), "acme", "Zorblax", 5)
	if len(hits) != 1 || hits[0].Version != 2 || hits[0].Source != "Zorblax_Value__c" {
		t.Fatalf("acme: %+v", hits)
	}
	if hits, _ := ix.Search(context.Background(), "globex", "Zorblax", 5); len(hits) != 0 {
		t.Fatalf("globex sees acme's version: %+v", hits)
	}
	known := ix.Known("acme", canonical.OpportunityEntity)
	found := false
	for _, k := range known {
		found = found || k.Source == "Zorblax_Value__c" && k.Target == "amount"
	}
	if !found {
		t.Fatal("the tenant's version is not a neighbour")
	}
	for _, k := range ix.Known("globex", canonical.OpportunityEntity) {
		if k.Source == "Zorblax_Value__c" {
			t.Fatal("another tenant's version is a neighbour")
		}
	}
}

type fakeEmbedder struct{ err error }

// Embed puts texts mentioning "stage" on one axis and the rest on another.
func (f fakeEmbedder) Embed(_ context.Context, texts []string) ([][]float32, error) {
	if f.err != nil {
		return nil, f.err
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if contains(t, "stage") || contains(t, "pipeline step") {
			out[i] = []float32{1, 0}
		} else {
			out[i] = []float32{0, 1}
		}
	}
	return out, nil
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestEmbedderBlendsAndFailsSoft(t *testing.T) {
	ctx := context.Background()
	ix := search.New(shipped(t), fakeEmbedder{}, nil)
	hits, err := ix.Search(ctx, "acme", "pipeline step", 3)
	if err != nil || len(hits) == 0 || hits[0].Field != "stage" {
		t.Fatalf("with embeddings: %+v (%v)", hits, err)
	}
	broken := search.New(shipped(t), fakeEmbedder{err: errors.New("HTTP 429")}, nil)
	hits, err = broken.Search(ctx, "acme", "deal value", 3)
	if err != nil || len(hits) == 0 || hits[0].Field != "amount" {
		t.Fatalf("with a failing embedder: %+v (%v)", hits, err)
	}
}
