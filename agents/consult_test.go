package agents

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/autonomos/autonomos/agents/drift"
	"github.com/autonomos/autonomos/agents/llm"
	"github.com/autonomos/autonomos/agents/match"
	"github.com/autonomos/autonomos/agents/shape"
	"github.com/autonomos/autonomos/canonical"
)

type fakeProposer struct {
	sugg []llm.Suggestion
	err  error
}

func (f fakeProposer) Name() string { return "fake" }
func (f fakeProposer) Propose(context.Context, llm.Request) ([]llm.Suggestion, error) {
	return f.sugg, f.err
}

func mf(name string, added bool, samples ...string) match.Field {
	var m shape.Mask
	for _, s := range samples {
		if v, ok := shape.InferText(s); ok {
			m = m.Meet(v)
		}
	}
	return match.Field{Name: name, Types: m, Samples: samples, Added: added}
}

func TestConsultValidatesSuggestions(t *testing.T) {
	m, _ := match.New(match.Config{})
	spec := canonical.ObjectSpec{Object: "Opportunity", Entity: canonical.OpportunityEntity, Fields: []canonical.FieldSpec{
		{Target: "opportunity_id", Source: "Id"}, {Target: "name", Source: "Name"}, {Target: "amount", Source: "Amount"}}}
	in := match.Input{System: "salesforce", Spec: spec,
		Fields: []match.Field{mf("Id", false, "0065g00000Zx1AbAAJ"), mf("Name", false, "Deal"),
			mf("Xq_9__c", true, "185000.5"), mf("Notes__c", true, "call back in May")},
		Removed: []match.Field{mf("Amount", false, "9800")}}
	base := m.Match(in)
	if len(base) != 1 || base[0].Decision == match.Auto {
		t.Fatalf("the matcher alone: %+v", base)
	}
	f := &drift.Finding{ID: "drf1", Tenant: "acme", System: "salesforce", Object: "Opportunity"}
	tests := []struct {
		name     string
		p        fakeProposer
		source   string
		decision match.Decision
	}{
		{"a hallucinated field is dropped", fakeProposer{sugg: []llm.Suggestion{{Target: "amount", Source: "Amount_Total__c", Confidence: 0.99}}}, base[0].Source, base[0].Decision},
		{"a field whose values do not fit is dropped", fakeProposer{sugg: []llm.Suggestion{{Target: "amount", Source: "Notes__c", Confidence: 0.99}}}, base[0].Source, base[0].Decision},
		{"a field read by the mapping is dropped", fakeProposer{sugg: []llm.Suggestion{{Target: "amount", Source: "Name", Confidence: 0.99}}}, base[0].Source, base[0].Decision},
		{"an unknown target is ignored", fakeProposer{sugg: []llm.Suggestion{{Target: "stage", Source: "Xq_9__c", Confidence: 0.99}}}, base[0].Source, base[0].Decision},
		{"a valid suggestion never applies on its own", fakeProposer{sugg: []llm.Suggestion{{Target: "amount", Source: "Xq_9__c", Confidence: 1}}}, "Xq_9__c", ""},
		{"a failing provider changes nothing", fakeProposer{err: &llm.ProviderError{Provider: "fake", Status: http.StatusTooManyRequests}}, base[0].Source, base[0].Decision},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Repairer{matcher: m, proposers: []llm.Proposer{tt.p}, cfg: Config{LLMTimeout: time.Second}, log: slog.New(slog.DiscardHandler)}
			got := r.consult(context.Background(), f, in, m.Match(in))
			if tt.decision == "" {
				if len(got) != 1 || got[0].Source != tt.source || got[0].Decision == match.Auto || got[0].Confidence <= base[0].Confidence {
					t.Fatalf("after consulting: %+v", got)
				}
				return
			}
			if len(got) != 1 || got[0].Source != tt.source || got[0].Decision != tt.decision {
				t.Fatalf("after consulting: %+v", got)
			}
		})
	}
}

func TestConsultAgreementRaisesConfidence(t *testing.T) {
	m, _ := match.New(match.Config{})
	spec := canonical.ObjectSpec{Object: "Opportunity", Entity: canonical.OpportunityEntity, Fields: []canonical.FieldSpec{
		{Target: "opportunity_id", Source: "Id"}, {Target: "name", Source: "Name"}, {Target: "amount", Source: "Amount"}}}
	in := match.Input{System: "salesforce", Spec: spec,
		Fields:  []match.Field{mf("Id", false, "1"), mf("Name", false, "Deal"), mf("Booked_Total__c", true, "185000.5")},
		Removed: []match.Field{mf("Amount", false, "9800")}}
	before := m.Match(in)
	r := &Repairer{matcher: m, cfg: Config{LLMTimeout: time.Second}, log: slog.New(slog.DiscardHandler),
		proposers: []llm.Proposer{fakeProposer{sugg: []llm.Suggestion{{Target: "amount", Source: before[0].Source, Confidence: 0.9, Reason: "total booked"}}}}}
	after := r.consult(context.Background(), &drift.Finding{ID: "drf1", System: "salesforce"}, in, m.Match(in))
	if after[0].Confidence <= before[0].Confidence || after[0].Source != before[0].Source {
		t.Fatalf("before %+v, after %+v", before[0], after[0])
	}
}
