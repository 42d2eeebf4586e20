package agents

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/agents/drift"
	"github.com/autonomos/autonomos/agents/llm"
	"github.com/autonomos/autonomos/agents/match"
	"github.com/autonomos/autonomos/agents/search"
	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/streams"
)

// StatusSetter moves a connection through the drift statuses (DRIFTED,
// HEALING, MANUAL_REVIEW_REQUIRED, back to ACTIVE). *connectors.Connections
// fits. Called concurrently; an error (a connection that is gone) is
// logged, never fatal.
type StatusSetter interface {
	SetStatus(ctx context.Context, tenant, id string, status connectors.Status, reason string) (*connectors.ConnectionView, error)
}

var _ StatusSetter = (*connectors.Connections)(nil)

// RepairConsumer is the repairer's durable consumer on DRIFT.
const RepairConsumer = "drift-repair"

// Repairer is the repair agent: a durable consumer (RepairConsumer) on
// DRIFT. For each drift.detected event it asks the matcher (and the LLM
// proposers, when configured) for proposals, applies those at or above the
// auto threshold when autofix is on (writing a mapping version), queues
// the uncertain ones for a person and rejects the rest; for each
// drift.repair.applied or drift.mapping.rolledback event it re-derives the
// object's canonical events from RAW with the mapping in force.
//
// Delivery: at least once; every step is idempotent (a finding that is no
// longer open is not proposed for again, a version already written for a
// finding is not written again, re-derived events carry
// "<event id>.m<version>" message ids). Run handles one event at a time.
type Repairer struct {
	js        jetstream.JetStream
	findings  *drift.Store
	versions  *Versions
	index     *search.Index
	matcher   *match.Matcher
	proposers []llm.Proposer
	status    StatusSetter
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
}

// ConsumerConfig is the repairer's durable consumer.
func (r *Repairer) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       RepairConsumer,
		Description:   "drift repair: proposals, automatic repairs, re-derivation",
		FilterSubject: "drift.>",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       2 * time.Minute,
		MaxDeliver:    20,
		MaxAckPending: 64,
	}
}

// Run consumes DRIFT until ctx is cancelled (then it returns nil).
func (r *Repairer) Run(ctx context.Context) error {
	cons, err := r.js.CreateOrUpdateConsumer(ctx, streams.StreamDrift, r.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("consumer %s: %w", RepairConsumer, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(16))
	if err != nil {
		return fmt.Errorf("consume %s: %w", RepairConsumer, err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
		case <-stop:
		}
		it.Stop()
	}()
	defer func() { close(stop); wg.Wait() }()
	r.log.Info("drift repairer started", "autofix", r.cfg.Autofix, "llm_providers", len(r.proposers))
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			r.log.Warn("next drift event", "error", err)
			continue
		}
		r.handle(ctx, msg)
	}
}

// permanent marks an error retrying cannot fix.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

func (r *Repairer) handle(ctx context.Context, msg jetstream.Msg) {
	typ := msg.Headers().Get(drift.HeaderEventType)
	if typ != drift.EventDetected && typ != drift.EventApplied && typ != drift.EventRolledBack {
		_ = msg.Ack()
		return
	}
	ev, err := drift.ParseEvent(msg.Data())
	if err != nil {
		r.log.Warn("a drift event that does not decode", "subject", msg.Subject(), "error", err)
		_ = msg.Term()
		return
	}
	switch typ {
	case drift.EventDetected:
		err = r.propose(ctx, ev)
	default:
		err = r.rederiveEvent(ctx, ev, func() { _ = msg.InProgress() })
	}
	if err == nil {
		_ = msg.Ack()
		return
	}
	var p permanent
	meta, _ := msg.Metadata()
	delivered := 1
	if meta != nil {
		delivered = int(meta.NumDelivered)
	}
	if errors.As(err, &p) {
		r.log.Warn("drop a drift event", "tenant", ev.Tenant, "finding_id", ev.FindingID, "type", typ, "error", err)
		_ = msg.Term()
		return
	}
	r.log.Warn("handle a drift event", "tenant", ev.Tenant, "finding_id", ev.FindingID, "type", typ, "delivered", delivered, "error", err)
	_ = msg.NakWithDelay(min(time.Second<<min(delivered-1, 6), time.Minute))
}

// baseFor returns the mapping the finding is repaired against: the
// version in force, or — when that version is the finding's own repair
// (a retry after a crash) — the one before it, with the repair's version.
func (r *Repairer) baseFor(ctx context.Context, f *drift.Finding) (base MappingVersion, written int, err error) {
	cur, _, err := r.versions.Current(ctx, f.Tenant, f.System, f.Object)
	if err != nil {
		return cur, 0, err
	}
	if cur.FindingID != f.ID || cur.Author != "auto" {
		return cur, 0, nil
	}
	prev, err := r.versions.Get(ctx, f.Tenant, f.System, f.Object, cur.Version-1)
	if err != nil {
		return cur, 0, err
	}
	return prev, cur.Version, nil
}

func (r *Repairer) propose(ctx context.Context, ev *drift.Event) error {
	f, err := r.findings.Get(ctx, ev.Tenant, ev.FindingID)
	if errors.Is(err, streams.ErrNotFound) {
		return errors.New("finding not stored yet") // the observer publishes, then stores
	}
	if err != nil {
		return err
	}
	if f.Status != drift.StatusOpen || f.MappingVersion != 0 || f.Note != "" {
		if f.DecidedBy == "auto" && f.AppliedVersion > 0 && f.Rederive == nil {
			// Handled, but perhaps not announced (a crash before the
			// acknowledgement): announce again; the event id dedupes.
			return r.announce(ctx, f, f.AppliedVersion, "auto")
		}
		return nil
	}
	r.setStatus(ctx, f.Tenant, f.ConnectionID, connectors.StatusDrifted, fmt.Sprintf("schema drift %s (%s)", f.ID, f.Severity))
	base, written, err := r.baseFor(ctx, f)
	if errors.Is(err, streams.ErrNotFound) {
		_, err := r.findings.Update(ctx, f.Tenant, f.ID, func(x *drift.Finding) error {
			x.Note = fmt.Sprintf("no mapping reads %s %s", f.System, f.Object)
			return nil
		})
		r.setStatus(ctx, f.Tenant, f.ConnectionID, connectors.StatusActive, "drift on an unmapped object: nothing to repair")
		return err
	}
	if err != nil {
		return err
	}
	in := MatchInputFields(f.System, base.Spec, f.Fields, f.Removed, f.TypeChanged, r.index.Known(f.Tenant, base.Spec.Entity))
	props := r.matcher.Match(in)
	props = r.consult(ctx, f, in, props)
	dp := make([]drift.Proposal, len(props))
	var apply []drift.Proposal
	for i, p := range props {
		st := drift.StatusRejected
		switch p.Decision {
		case match.Auto:
			st = drift.StatusQueued
			if r.cfg.Autofix {
				st = drift.StatusApplied
				apply = append(apply, drift.Proposal{Proposal: p, Status: st})
			}
		case match.Queue:
			st = drift.StatusQueued
		}
		dp[i] = drift.Proposal{Proposal: p, Status: st}
	}
	version := written
	if len(apply) > 0 && version == 0 {
		version, err = r.write(ctx, f, apply, "auto")
		var fe *canonical.FieldError
		if errors.As(err, &fe) {
			// The canonical model refused the repair: a person decides.
			r.log.Warn("an automatic repair does not compile; queued", "tenant", f.Tenant, "finding_id", f.ID, "error", err)
			for i := range dp {
				if dp[i].Status == drift.StatusApplied {
					dp[i].Status = drift.StatusQueued
					dp[i].Reasons = append(dp[i].Reasons, "the repaired mapping does not compile: "+fe.Reason)
				}
			}
			version, err = 0, nil
		}
		if err != nil {
			return err
		}
	}
	now := r.now().UTC()
	f, err = r.findings.Update(ctx, f.Tenant, f.ID, func(x *drift.Finding) error {
		if x.Status != drift.StatusOpen || x.MappingVersion != 0 {
			return drift.ErrConflict
		}
		x.Entity = string(base.Spec.Entity)
		x.MappingVersion = base.Version
		x.Proposals = dp
		if version > 0 {
			x.AppliedVersion, x.DecidedBy, x.DecidedAt = version, "auto", &now
		}
		x.RecomputeStatus()
		if len(dp) == 0 {
			x.Note = "nothing to repair: the mapping reads none of the changed fields"
		}
		return nil
	})
	if errors.Is(err, drift.ErrConflict) {
		return nil
	}
	if err != nil {
		return err
	}
	r.log.Info("drift proposals", "tenant", f.Tenant, "finding_id", f.ID, "status", f.Status, "proposals", len(dp), "applied_version", version)
	return r.announce(ctx, f, version, "auto")
}

// announce publishes the decision on a finding and moves the connection.
func (r *Repairer) announce(ctx context.Context, f *drift.Finding, version int, author string) error {
	ev := &drift.Event{FindingID: f.ID, Tenant: f.Tenant, ConnectionID: f.ConnectionID, System: f.System, Object: f.Object,
		Entity: f.Entity, Severity: f.Severity, Proposals: f.Proposals, Author: author, Time: r.now().UTC()}
	switch {
	case version > 0:
		ev.Type, ev.ID, ev.MappingVersion, ev.FromSeq = drift.EventApplied, fmt.Sprintf("applied.%s.%d", f.ID, version), version, f.FirstSeq
		r.setStatus(ctx, f.Tenant, f.ConnectionID, connectors.StatusHealing, fmt.Sprintf("mapping version %d repairs %s", version, f.ID))
	case f.Status == drift.StatusQueued:
		ev.Type, ev.ID = drift.EventQueued, "queued."+f.ID
		r.setStatus(ctx, f.Tenant, f.ConnectionID, connectors.StatusManualReview, fmt.Sprintf("%s waits for review", f.ID))
	case f.Status == drift.StatusRejected:
		ev.Type, ev.ID = drift.EventRejected, "rejected."+f.ID+"."+strings.TrimPrefix(author, "user:")
		status := connectors.StatusActive
		if hasBroken(f) {
			status = connectors.StatusManualReview // a broken field with no repair needs a person
		}
		r.setStatus(ctx, f.Tenant, f.ConnectionID, status, fmt.Sprintf("%s: no repair proposed", f.ID))
	default:
		r.setStatus(ctx, f.Tenant, f.ConnectionID, connectors.StatusActive, fmt.Sprintf("%s: nothing to repair", f.ID))
		return nil
	}
	return r.publish(ctx, ev)
}

func hasBroken(f *drift.Finding) bool {
	for _, p := range f.Proposals {
		if p.Kind != match.NeedUnmapped && p.Status != drift.StatusApplied {
			return true
		}
	}
	return false
}

func (r *Repairer) publish(ctx context.Context, ev *drift.Event) error {
	m, err := ev.Msg()
	if err != nil {
		return err
	}
	if _, err := r.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	return nil
}

func (r *Repairer) setStatus(ctx context.Context, tenant, conn string, s connectors.Status, reason string) {
	if r.status == nil || conn == "" || conn == "unknown" || conn == drift.MappingsConnection {
		return
	}
	if _, err := r.status.SetStatus(ctx, tenant, conn, s, reason); err != nil {
		r.log.Debug("set connection status", "tenant", tenant, "connection_id", conn, "status", s, "error", err)
	}
}

// write stores a new mapping version with the proposals applied, unless
// the version in force is already this finding's repair by author.
func (r *Repairer) write(ctx context.Context, f *drift.Finding, props []drift.Proposal, author string) (int, error) {
	for attempt := 0; ; attempt++ {
		cur, rev, err := r.versions.Current(ctx, f.Tenant, f.System, f.Object)
		if err != nil {
			return 0, err
		}
		if cur.FindingID == f.ID && cur.Author == author {
			return cur.Version, nil
		}
		spec := Patch(cur.Spec, props)
		var parts []string
		for _, p := range props {
			was := ""
			if p.Previous != "" {
				was = ", was " + p.Previous
			}
			parts = append(parts, fmt.Sprintf("%s ← %s (%s %.2f%s)", p.Target, p.Source, p.Proposer, p.Confidence, was))
		}
		next := MappingVersion{StoredVersion: StoredVersion{
			StoredMapping: connectors.StoredMapping{System: f.System, Spec: spec, Version: cur.Version + 1, Author: author,
				Reason: fmt.Sprintf("drift finding %s: %s", f.ID, strings.Join(parts, "; "))},
			FindingID: f.ID, FromSeq: f.FirstSeq,
		}}
		err = r.versions.Write(ctx, f.Tenant, next, rev)
		if errors.Is(err, errStale) && attempt < 20 {
			continue
		}
		if err != nil {
			return 0, err
		}
		r.log.Info("mapping version written", "tenant", f.Tenant, "system", f.System, "object", f.Object, "version", next.Version,
			"author", author, "finding_id", f.ID)
		return next.Version, nil
	}
}

// Patch returns spec with each proposal's source in place: the field that
// read the proposal's previous source reads the new one (transforms kept),
// and an unmapped target gets a field of its own.
func Patch(spec canonical.ObjectSpec, props []drift.Proposal) canonical.ObjectSpec {
	spec = cloneSpec(spec)
	for _, p := range props {
		if p.Source == "" {
			continue
		}
		found := false
		for i := range spec.Fields {
			f := &spec.Fields[i]
			if f.Target != p.Target {
				continue
			}
			found = true
			switch {
			case len(f.Sources) > 0 && p.Previous != "":
				for j, s := range f.Sources {
					if s == p.Previous {
						f.Sources[j] = p.Source
					}
				}
			default:
				f.Source, f.Sources, f.Constant = p.Source, nil, nil
			}
		}
		if !found {
			spec.Fields = append(spec.Fields, canonical.FieldSpec{Target: p.Target, Source: p.Source, Transforms: defaultTransforms(spec.Entity, p.Target)})
		}
	}
	return spec
}

func defaultTransforms(e canonical.Entity, target string) []canonical.Transform {
	s, _ := canonical.SchemaOf(e)
	fd, _ := s.Field(target)
	switch fd.Type {
	case canonical.TypeString, canonical.TypeURL:
		return []canonical.Transform{{Name: "trim"}}
	case canonical.TypeEmail:
		return []canonical.Transform{{Name: "trim"}, {Name: "lower"}}
	case canonical.TypeCurrency:
		return []canonical.Transform{{Name: "trim"}, {Name: "upper"}}
	}
	return nil
}

func cloneSpec(s canonical.ObjectSpec) canonical.ObjectSpec {
	b, _ := json.Marshal(s)
	var out canonical.ObjectSpec
	_ = json.Unmarshal(b, &out)
	return out
}

// consult asks the LLM proposers about the needs the matcher is not sure
// of, and folds in their suggestions that pass validation: the source is a
// field of the object the mapping does not read, the canonical engine reads
// its values as the target, and the patched mapping compiles. A provider
// never makes a proposal automatic on its own; agreeing with the matcher
// raises the matcher's confidence, a different answer can at most queue.
func (r *Repairer) consult(ctx context.Context, f *drift.Finding, in match.Input, props []match.Proposal) []match.Proposal {
	if len(r.proposers) == 0 {
		return props
	}
	var needs []match.Need
	for _, p := range props {
		if p.Decision != match.Auto {
			needs = append(needs, p.Need)
		}
	}
	if len(needs) == 0 {
		return props
	}
	req := llm.Request{System: f.System, Object: f.Object, Entity: in.Spec.Entity, Needs: needs, Fields: in.Fields, Removed: in.Removed, Mapping: in.Spec}
	mc := r.matcher.Config()
	for _, p := range r.proposers {
		cctx, cancel := context.WithTimeout(ctx, r.cfg.LLMTimeout)
		sugg, err := p.Propose(cctx, req)
		cancel()
		if err != nil {
			level := slog.LevelWarn
			if llm.IsRateLimited(err) {
				level = slog.LevelInfo
			}
			r.log.Log(ctx, level, "llm proposer failed; the built-in matcher answers", "provider", p.Name(), "tenant", f.Tenant, "finding_id", f.ID, "error", err)
			continue
		}
		for _, s := range sugg {
			i := -1
			for k := range props {
				if props[k].Target == s.Target && props[k].Decision != match.Auto {
					i = k
				}
			}
			if i < 0 || s.Source == "" {
				continue
			}
			taken := false
			for k := range props {
				if k != i && props[k].Source == s.Source && props[k].Decision != match.Reject {
					taken = true
				}
			}
			c, ok := r.matcher.Score(in, props[i].Need, s.Source)
			if taken || !ok {
				r.log.Debug("llm suggestion failed validation", "provider", p.Name(), "target", s.Target, "source", s.Source)
				continue
			}
			if _, err := canonical.Compile(f.System, Patch(in.Spec, []drift.Proposal{{Proposal: match.Proposal{Need: props[i].Need, Source: s.Source}}})); err != nil {
				continue
			}
			reason := fmt.Sprintf("%s proposes %s (%.2f): %s", p.Name(), s.Source, s.Confidence, s.Reason)
			pr := &props[i]
			if s.Source == pr.Source {
				conf := 1 - (1-pr.Confidence)*(1-0.5*s.Confidence)
				if !c.Sure {
					conf = math.Min(conf, mc.AutoApply-0.01)
				}
				pr.Confidence = math.Round(math.Max(pr.Confidence, conf)*1000) / 1000
				pr.Reasons = append(pr.Reasons, reason)
			} else {
				conf := math.Min(mc.AutoApply-0.01, 0.6*c.Confidence+0.4*s.Confidence)
				conf = math.Round(conf*1000) / 1000
				if conf > pr.Confidence {
					pr.Source, pr.Confidence, pr.Proposer = s.Source, conf, p.Name()
					pr.Reasons = append(append([]string{reason}, c.Reasons...), "the matcher's own score: "+strconv.FormatFloat(c.Confidence, 'f', 2, 64))
					pr.Candidates = append([]match.Candidate{{Source: s.Source, Confidence: conf, Reasons: c.Reasons}}, pr.Candidates...)
				} else {
					pr.Reasons = append(pr.Reasons, reason)
				}
			}
			pr.Decision = mc.Decide(pr.Confidence)
		}
	}
	return props
}

// rederiveEvent re-derives after an applied repair or a rollback and
// records the result.
func (r *Repairer) rederiveEvent(ctx context.Context, ev *drift.Event, heartbeat func()) error {
	cur, _, err := r.versions.Current(ctx, ev.Tenant, ev.System, ev.Object)
	if err != nil {
		if errors.Is(err, streams.ErrNotFound) {
			return permanent{err}
		}
		return err
	}
	if cur.Version < ev.MappingVersion {
		return fmt.Errorf("mapping version %d not visible yet (current %d)", ev.MappingVersion, cur.Version)
	}
	rd, err := r.Rederive(ctx, ev.Tenant, ev.System, ev.Object, cur, ev.FromSeq, heartbeat)
	if err != nil {
		return err
	}
	if ev.FindingID != "" {
		if _, err := r.findings.Update(ctx, ev.Tenant, ev.FindingID, func(f *drift.Finding) error {
			f.Rederive = &rd
			return nil
		}); err != nil && !errors.Is(err, streams.ErrNotFound) {
			return err
		}
	}
	r.log.Info("canonical events re-derived", "tenant", ev.Tenant, "system", ev.System, "object", ev.Object,
		"version", rd.Version, "records", rd.Records, "published", rd.Published, "errors", rd.Errors)
	r.setStatus(ctx, ev.Tenant, ev.ConnectionID, connectors.StatusActive, fmt.Sprintf("repaired: mapping version %d, %d events re-derived", rd.Version, rd.Published))
	return r.publish(ctx, &drift.Event{Type: drift.EventRederived, ID: fmt.Sprintf("rederived.%s.%s.%d.%d", ev.System, ev.Object, rd.Version, ev.FromSeq),
		FindingID: ev.FindingID, Tenant: ev.Tenant, ConnectionID: ev.ConnectionID, System: ev.System, Object: ev.Object,
		MappingVersion: rd.Version, FromSeq: ev.FromSeq, Records: rd.Records, Published: rd.Published, Errors: rd.Errors, Time: r.now().UTC()})
}

// rederiveBatch is how many events are published between acknowledgement
// waits.
const rederiveBatch = 256

// Rederive reads the object's RAW records from fromSeq (0: the start) up
// to the last one there now, maps each with mv, and publishes the
// canonical events with Nats-Msg-Id "<event id>.m<version>" (the event id
// itself does not change for a source version, so the stream's duplicate
// window would drop them otherwise). Records the mapping cannot map are
// counted, not published. heartbeat is called after each batch.
func (r *Repairer) Rederive(ctx context.Context, tenant, system, object string, mv MappingVersion, fromSeq uint64, heartbeat func()) (drift.Rederive, error) {
	rd := drift.Rederive{Version: mv.Version, FromSeq: fromSeq, StartedAt: r.now().UTC()}
	m, err := canonical.Compile(system, mv.Spec)
	if err != nil {
		return rd, permanent{fmt.Errorf("mapping version %d: %w", mv.Version, err)}
	}
	m.Version = mv.Version
	subj, err := streams.RawSubject(tenant, system, object)
	if err != nil {
		return rd, permanent{err}
	}
	last, err := lastRawSeq(ctx, r.js, subj)
	if err != nil {
		return rd, err
	}
	trace := newTraceID()
	batch := streams.NewPublisher(r.js).NewBatch()
	flush := func() error {
		n, err := batch.Wait(ctx)
		rd.Published += n
		if heartbeat != nil {
			heartbeat()
		}
		return err
	}
	scan := func(from, to uint64) error {
		return scanRaw(ctx, r.js, subj, from, to, func(msg jetstream.Msg, _ uint64) error {
			rd.Records++
			values, err := drift.DecodeRecord(msg.Data())
			if err != nil {
				rd.Errors++
				return nil
			}
			conn := msg.Headers().Get(drift.HeaderConnection)
			if conn == "" {
				conn = "unknown"
			}
			em := connectors.Emitter{Tenant: tenant, System: system, ConnectionID: conn, TraceID: trace, Mapping: m}
			ev, errs := em.Event(0, values)
			if len(errs) > 0 {
				rd.Errors++
				return nil
			}
			out, err := streams.EventMsg(ev)
			if err != nil {
				rd.Errors++
				return nil
			}
			out.Header.Set(jetstream.MsgIDHeader, ev.ID+".m"+strconv.Itoa(m.Version))
			if err := batch.Add(out); err != nil {
				return err
			}
			if batch.Len() >= rederiveBatch {
				return flush()
			}
			return nil
		})
	}
	// Records of the object may still be arriving, mapped with the old
	// version by a sync or upload that started before the repair: follow
	// the subject until it has been quiet for rederiveSettle (at most
	// rederiveTail in all), so they are re-derived too.
	from, tailEnd := max(fromSeq, 1), r.now().Add(rederiveTail)
	for {
		if err := scan(from, last); err != nil {
			return rd, err
		}
		if err := flush(); err != nil {
			return rd, err
		}
		next, err := r.awaitMore(ctx, subj, last, tailEnd)
		if err != nil {
			return rd, err
		}
		if next <= last {
			return r.finish(rd), nil
		}
		from, last = last+1, next
	}
}

// Re-derivation follows a subject until it is quiet for rederiveSettle, for
// at most rederiveTail.
const (
	rederiveSettle = 2 * time.Second
	rederiveTail   = 5 * time.Minute
)

// awaitMore returns the subject's last sequence once it passes last, or
// last when nothing new arrives within rederiveSettle (or past tailEnd).
func (r *Repairer) awaitMore(ctx context.Context, subj string, last uint64, tailEnd time.Time) (uint64, error) {
	settle := time.NewTimer(rederiveSettle)
	defer settle.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-settle.C:
			return last, nil
		case <-tick.C:
			if r.now().After(tailEnd) {
				return last, nil
			}
			n, err := lastRawSeq(ctx, r.js, subj)
			if err != nil {
				return last, err
			}
			if n > last {
				return n, nil
			}
		}
	}
}

func (r *Repairer) finish(rd drift.Rederive) drift.Rederive {
	t := r.now().UTC()
	rd.FinishedAt = &t
	return rd
}

func newTraceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
