package agents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"time"

	"github.com/autonomos/autonomos/agents/drift"
	"github.com/autonomos/autonomos/agents/match"
	"github.com/autonomos/autonomos/agents/search"
	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/streams"
)

// ErrConflict is returned when a request does not fit the state it acts
// on (approving a finding with nothing waiting, rolling back to the version
// in force). The API answers 409. It is drift.ErrConflict.
var ErrConflict = drift.ErrConflict

// Service is what the gateway calls: drift findings and their review,
// mapping versions (list, get, diff, rollback, preview), semantic search
// and intelligence metrics. Every method is scoped to the tenant it is
// given (the verified token's), answers streams.ErrNotFound for what the
// tenant does not have, a *canonical.FieldError (or a joined list) for bad
// input, ErrConflict for a state conflict. Safe for concurrent use; it owns
// nothing to close.
type Service struct {
	findings *drift.Store
	versions *Versions
	repairer *Repairer
	index    *search.Index
	matcher  *match.Matcher
	js       rawReader
	log      *slog.Logger
	now      func() time.Time
}

var userRE = regexp.MustCompile(`^[A-Za-z0-9._@:-]{1,128}$`)

func checkUser(user string) error {
	if !userRE.MatchString(user) {
		return &canonical.FieldError{Field: "user", Reason: fmt.Sprintf("invalid user id %q", user)}
	}
	return nil
}

// Findings lists a tenant's findings, newest first, optionally only those
// with a status ("open", "queued", "applied", "rejected") and at most limit
// (0: all).
func (s *Service) Findings(ctx context.Context, tenant, status string, limit int) ([]*drift.Finding, error) {
	st, err := drift.ParseStatus(status)
	if err != nil {
		return nil, &canonical.FieldError{Field: "status", Reason: err.Error()}
	}
	return s.findings.List(ctx, tenant, drift.Filter{Status: st, Limit: limit})
}

// Finding returns one finding with its proposals (confidence, reasons,
// candidates).
func (s *Service) Finding(ctx context.Context, tenant, id string) (*drift.Finding, error) {
	return s.findings.Get(ctx, tenant, id)
}

// Approve applies a finding's queued proposals as user (an admin's id):
// it writes a new mapping version (author "user:<id>") and re-derives the
// object's canonical events in the background (the finding's Rederive
// fills in when done). choices, when given, picks another source for a
// target (canonical field → source field); a choice may also revive a
// rejected proposal. Every choice is validated against the canonical
// model first.
func (s *Service) Approve(ctx context.Context, tenant, id, user string, choices map[string]string) (*drift.Finding, error) {
	if err := checkUser(user); err != nil {
		return nil, err
	}
	f, err := s.findings.Get(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	base, err := s.versions.Get(ctx, tenant, f.System, f.Object, max(f.MappingVersion, 1))
	if err != nil {
		if base, _, err = s.versions.Current(ctx, tenant, f.System, f.Object); err != nil {
			return nil, err
		}
	}
	in := MatchInputFields(f.System, base.Spec, f.Fields, f.Removed, f.TypeChanged, s.index.Known(tenant, base.Spec.Entity))
	var errs []error
	for t := range choices {
		found := false
		for _, p := range f.Proposals {
			found = found || p.Target == t
		}
		if !found {
			errs = append(errs, &canonical.FieldError{Field: "choices." + t, Reason: "the finding has no proposal for this field"})
		}
	}
	var apply []drift.Proposal
	for _, p := range f.Proposals {
		src, chosen := choices[p.Target]
		if p.Status == drift.StatusApplied || (p.Status == drift.StatusRejected && !chosen) {
			continue
		}
		if !chosen {
			src = p.Source
		}
		if src == "" {
			continue
		}
		c, ok := s.matcher.Score(in, p.Need, src)
		if !ok {
			reason := fmt.Sprintf("%s cannot fill %s", src, p.Target)
			if len(c.Reasons) > 0 {
				reason += ": " + c.Reasons[0]
			}
			errs = append(errs, &canonical.FieldError{Field: "choices." + p.Target, Source: src, Reason: reason})
			continue
		}
		q := p
		if chosen && src != p.Source {
			q.Source, q.Confidence, q.Proposer = src, c.Confidence, "user"
			q.Reasons = append([]string{"chosen by user:" + user}, c.Reasons...)
		}
		apply = append(apply, q)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(apply) == 0 {
		return nil, fmt.Errorf("%w: finding %s has no proposal waiting for approval", ErrConflict, id)
	}
	author := "user:" + user
	version, err := s.repairer.write(ctx, f, apply, author)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	byTarget := map[string]drift.Proposal{}
	for _, p := range apply {
		byTarget[p.Target] = p
	}
	decide := func(x *drift.Finding) {
		for i := range x.Proposals {
			if p, ok := byTarget[x.Proposals[i].Target]; ok {
				p.Status = drift.StatusApplied
				x.Proposals[i] = p
			}
		}
		x.AppliedVersion, x.DecidedBy, x.DecidedAt = version, author, &now
		x.RecomputeStatus()
	}
	// Announce (which starts the re-derivation) before the finding says
	// applied: a failure in between leaves a finding that can be approved
	// again, never an applied repair nobody re-derives.
	decide(f)
	if err := s.repairer.announce(ctx, f, version, author); err != nil {
		return nil, err
	}
	f, err = s.findings.Update(ctx, tenant, id, func(x *drift.Finding) error {
		decide(x)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("drift repair approved", "tenant", tenant, "finding_id", id, "user", user, "version", version)
	return f, nil
}

// Reject turns down a finding's queued proposals as user, with a reason.
func (s *Service) Reject(ctx context.Context, tenant, id, user, reason string) (*drift.Finding, error) {
	if err := checkUser(user); err != nil {
		return nil, err
	}
	if len(reason) > 1000 {
		return nil, &canonical.FieldError{Field: "reason", Reason: "longer than 1000 characters"}
	}
	now := s.now().UTC()
	f, err := s.findings.Update(ctx, tenant, id, func(x *drift.Finding) error {
		n := 0
		for i := range x.Proposals {
			if x.Proposals[i].Status == drift.StatusQueued {
				x.Proposals[i].Status = drift.StatusRejected
				n++
			}
		}
		if n == 0 && x.Status != drift.StatusOpen {
			return fmt.Errorf("%w: finding %s has nothing waiting (status %s)", ErrConflict, id, x.Status)
		}
		x.DecidedBy, x.DecidedAt = "user:"+user, &now
		if reason != "" {
			x.Note = "rejected by user:" + user + ": " + reason
		}
		x.RecomputeStatus()
		if x.Status == drift.StatusOpen {
			x.Status = drift.StatusRejected
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("drift proposals rejected", "tenant", tenant, "finding_id", id, "user", user)
	return f, s.repairer.announce(ctx, f, 0, "user:"+user)
}

// MappingObjects lists the tenant's mapped source objects with the version
// in force.
func (s *Service) MappingObjects(ctx context.Context, tenant string) ([]MappingObject, error) {
	return s.versions.Objects(ctx, tenant)
}

// MappingVersions lists the versions of a tenant's mapping of system and
// object, oldest first.
func (s *Service) MappingVersions(ctx context.Context, tenant, system, object string) ([]MappingVersion, error) {
	return s.versions.List(ctx, tenant, system, object)
}

// MappingVersion returns one version.
func (s *Service) MappingVersion(ctx context.Context, tenant, system, object string, version int) (*MappingVersion, error) {
	mv, err := s.versions.Get(ctx, tenant, system, object, version)
	if err != nil {
		return nil, err
	}
	return &mv, nil
}

// DiffMappings compares two versions field by field.
func (s *Service) DiffMappings(ctx context.Context, tenant, system, object string, from, to int) (*MappingDiff, error) {
	a, err := s.versions.Get(ctx, tenant, system, object, from)
	if err != nil {
		return nil, err
	}
	b, err := s.versions.Get(ctx, tenant, system, object, to)
	if err != nil {
		return nil, err
	}
	d := Diff(system, a, b)
	return &d, nil
}

// Rollback makes an earlier version's spec current again as a new version
// (author "user:<id>"; versions only grow, so re-derived events with the
// higher mapping version replace the ones made since), then re-derives in
// the background the RAW records the undone versions changed.
func (s *Service) Rollback(ctx context.Context, tenant, system, object string, to int, user string) (*MappingVersion, error) {
	if err := checkUser(user); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		all, err := s.versions.List(ctx, tenant, system, object)
		if err != nil {
			return nil, err
		}
		_, rev, err := s.versions.Current(ctx, tenant, system, object)
		if err != nil {
			return nil, err
		}
		cur := all[len(all)-1]
		if to == cur.Version {
			return nil, fmt.Errorf("%w: version %d is already in force", ErrConflict, to)
		}
		var target *MappingVersion
		var fromSeq uint64
		first := true
		for i := range all {
			switch {
			case all[i].Version == to:
				target = &all[i]
			case all[i].Version > to:
				if first || all[i].FromSeq < fromSeq {
					fromSeq = all[i].FromSeq
				}
				first = false
			}
		}
		if target == nil {
			return nil, streams.ErrNotFound
		}
		next := MappingVersion{StoredVersion: StoredVersion{
			StoredMapping: connectors.StoredMapping{System: system, Spec: target.Spec, Version: cur.Version + 1,
				Author: "user:" + user, Reason: fmt.Sprintf("rollback to version %d", to)},
			RollbackOf: to, FromSeq: fromSeq,
		}}
		err = s.versions.Write(ctx, tenant, next, rev)
		if errors.Is(err, errStale) && attempt < 20 {
			continue
		}
		if err != nil {
			return nil, err
		}
		next.Tenant, next.Current, next.CreatedAt = tenant, true, s.now().UTC()
		s.log.Info("mapping rolled back", "tenant", tenant, "system", system, "object", object, "to", to, "version", next.Version, "user", user)
		err = s.repairer.publish(ctx, &drift.Event{Type: drift.EventRolledBack, ID: fmt.Sprintf("rolledback.%s.%s.%d", system, object, next.Version),
			Tenant: tenant, ConnectionID: drift.MappingsConnection, System: system, Object: object, MappingVersion: next.Version,
			FromSeq: fromSeq, Author: next.Author, Time: next.CreatedAt})
		return &next, err
	}
}

// Search ranks canonical fields and mapping entries like q (k results,
// default 10).
func (s *Service) Search(ctx context.Context, tenant, q string, k int) ([]search.Hit, error) {
	if !streams.ValidToken(tenant) {
		return []search.Hit{}, nil
	}
	if len(q) > 500 {
		return nil, &canonical.FieldError{Field: "q", Reason: "longer than 500 characters"}
	}
	return s.index.Search(ctx, tenant, q, k)
}

// ReviewItem is one proposal waiting for a person (the seed's "RAG queue").
type ReviewItem struct {
	FindingID  string    `json:"finding_id"`
	System     string    `json:"system"`
	Object     string    `json:"object"`
	Entity     string    `json:"entity"`
	Target     string    `json:"target"`
	Previous   string    `json:"previous,omitempty"`
	Source     string    `json:"source"`
	Confidence float64   `json:"confidence"`
	Reasons    []string  `json:"reasons"`
	Proposer   string    `json:"proposer"`
	DetectedAt time.Time `json:"detected_at"`
}

// ReviewQueue lists the queued proposals, oldest finding first.
func (s *Service) ReviewQueue(ctx context.Context, tenant string) ([]ReviewItem, error) {
	fs, err := s.findings.List(ctx, tenant, drift.Filter{Status: drift.StatusQueued})
	if err != nil {
		return nil, err
	}
	out := []ReviewItem{}
	for _, f := range fs {
		for _, p := range f.Proposals {
			if p.Status != drift.StatusQueued {
				continue
			}
			out = append(out, ReviewItem{FindingID: f.ID, System: f.System, Object: f.Object, Entity: f.Entity, Target: p.Target,
				Previous: p.Previous, Source: p.Source, Confidence: p.Confidence, Reasons: p.Reasons, Proposer: p.Proposer, DetectedAt: f.DetectedAt})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].DetectedAt.Before(out[j].DetectedAt) })
	return out, nil
}
