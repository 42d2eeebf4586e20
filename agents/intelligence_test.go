package agents_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/autonomos/autonomos/agents"
	"github.com/autonomos/autonomos/agents/drift"
	"github.com/autonomos/autonomos/agents/match"
)

func TestIntelligence(t *testing.T) {
	now := time.Date(2024, 5, 10, 12, 0, 0, 0, time.UTC)
	empty := agents.ComputeIntelligence(nil, now)
	b, _ := json.Marshal(empty)
	if !strings.Contains(string(b), `"average_confidence":null`) || !strings.Contains(string(b), `"average_repair_seconds":null`) {
		t.Fatalf("no data must read null: %s", b)
	}
	at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
	prop := func(conf float64, st drift.Status) drift.Proposal {
		return drift.Proposal{Proposal: match.Proposal{Source: "x", Confidence: conf}, Status: st}
	}
	fs := []*drift.Finding{
		{DetectedAt: now.Add(-time.Hour), Status: drift.StatusApplied, AppliedVersion: 2, DecidedBy: "auto", DecidedAt: at(-time.Hour + 30*time.Second),
			Rederive: &drift.Rederive{FinishedAt: at(-time.Hour + 90*time.Second)}, Proposals: []drift.Proposal{prop(0.9, drift.StatusApplied)}},
		{DetectedAt: now.Add(-2 * time.Hour), Status: drift.StatusQueued, Proposals: []drift.Proposal{prop(0.7, drift.StatusQueued), prop(0.2, drift.StatusRejected)}},
		{DetectedAt: now.Add(-48 * time.Hour), Status: drift.StatusApplied, AppliedVersion: 3, DecidedBy: "user:u1", DecidedAt: at(-47 * time.Hour),
			Proposals: []drift.Proposal{prop(0.8, drift.StatusApplied)}},
	}
	in := agents.ComputeIntelligence(fs, now)
	if in.DriftEvents24h != 2 || in.Repairs24h != 1 || in.ManualReviewsPending != 1 || in.AutoRepairs != 1 || in.ManualRepairs != 1 {
		t.Fatalf("counts %+v", in)
	}
	if *in.AverageConfidence != 0.65 {
		t.Fatalf("average confidence %v", *in.AverageConfidence)
	}
	if *in.AverageRepairSeconds != (90+3600)/2.0 {
		t.Fatalf("average repair seconds %v", *in.AverageRepairSeconds)
	}
}
