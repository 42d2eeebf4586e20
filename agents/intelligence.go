package agents

import (
	"context"
	"math"
	"time"

	"github.com/autonomos/autonomos/agents/drift"
)

// Intelligence is the drift and repair metrics of a tenant, computed from
// its stored findings. A figure with no data behind it is null, never
// made up.
type Intelligence struct {
	// DriftEvents24h counts findings detected in the last 24 hours.
	DriftEvents24h int `json:"drift_events_24h"`
	// Repairs24h counts findings repaired (a mapping version written) in
	// the last 24 hours.
	Repairs24h int `json:"repairs_24h"`
	// ManualReviewsPending counts proposals waiting for a person.
	ManualReviewsPending int `json:"manual_reviews_pending"`
	// AverageConfidence is the mean confidence of every proposal that names
	// a source; null when there is none.
	AverageConfidence *float64 `json:"average_confidence"`
	// AverageRepairSeconds is the mean time from detection to the repair
	// being in force (re-derived when known, else written); null when
	// nothing was repaired.
	AverageRepairSeconds *float64 `json:"average_repair_seconds"`
	// FindingsByStatus counts every stored finding by status.
	FindingsByStatus map[drift.Status]int `json:"findings_by_status"`
	// AutoRepairs and ManualRepairs split the applied findings by who
	// decided.
	AutoRepairs   int       `json:"auto_repairs"`
	ManualRepairs int       `json:"manual_repairs"`
	ComputedAt    time.Time `json:"computed_at"`
}

// Intelligence computes the tenant's metrics.
func (s *Service) Intelligence(ctx context.Context, tenant string) (*Intelligence, error) {
	fs, err := s.findings.List(ctx, tenant, drift.Filter{})
	if err != nil {
		return nil, err
	}
	return ComputeIntelligence(fs, s.now()), nil
}

// ComputeIntelligence derives the metrics from findings at time now.
func ComputeIntelligence(fs []*drift.Finding, now time.Time) *Intelligence {
	out := &Intelligence{FindingsByStatus: map[drift.Status]int{}, ComputedAt: now.UTC()}
	since := now.Add(-24 * time.Hour)
	var confSum, repairSum float64
	var confN, repairN int
	for _, f := range fs {
		out.FindingsByStatus[f.Status]++
		if !f.DetectedAt.Before(since) {
			out.DriftEvents24h++
		}
		for _, p := range f.Proposals {
			if p.Status == drift.StatusQueued {
				out.ManualReviewsPending++
			}
			if p.Source != "" {
				confSum += p.Confidence
				confN++
			}
		}
		if f.AppliedVersion == 0 || f.DecidedAt == nil {
			continue
		}
		if f.DecidedBy == "auto" {
			out.AutoRepairs++
		} else {
			out.ManualRepairs++
		}
		done := *f.DecidedAt
		if f.Rederive != nil && f.Rederive.FinishedAt != nil && f.Rederive.FinishedAt.After(done) {
			done = *f.Rederive.FinishedAt
		}
		if !done.Before(since) {
			out.Repairs24h++
		}
		repairSum += math.Max(0, done.Sub(f.DetectedAt).Seconds())
		repairN++
	}
	if confN > 0 {
		v := math.Round(confSum/float64(confN)*1000) / 1000
		out.AverageConfidence = &v
	}
	if repairN > 0 {
		v := math.Round(repairSum/float64(repairN)*1000) / 1000
		out.AverageRepairSeconds = &v
	}
	return out
}

// DriftEvents lists the findings detected since a time, newest first.
func (s *Service) DriftEvents(ctx context.Context, tenant string, since time.Time) ([]*drift.Finding, error) {
	return s.findings.List(ctx, tenant, drift.Filter{Since: since})
}
