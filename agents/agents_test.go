package agents_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/autonomos/autonomos/agents"
	"github.com/autonomos/autonomos/agents/drift"
	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/config"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
)

const (
	tenant = "acme"
	conn   = "c1"
	sfOpp  = "Opportunity"
)

type system struct {
	env      *streamstest.Env
	ag       *agents.Agents
	mappings *connectors.Mappings
	statuses *statusLog
}

// statusLog records connection status changes (a StatusSetter).
type statusLog struct {
	mu  sync.Mutex
	log []connectors.Status
}

func (l *statusLog) SetStatus(_ context.Context, _, _ string, s connectors.Status, _ string) (*connectors.ConnectionView, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.log); n == 0 || l.log[n-1] != s {
		l.log = append(l.log, s)
	}
	return &connectors.ConnectionView{}, nil
}

func (l *statusLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprint(l.log)
}

// start runs the agents on an embedded server until the test ends.
func start(t *testing.T, cfg agents.Config) *system {
	t.Helper()
	env := streamstest.Start(t)
	ctx := context.Background()
	mkv, err := env.JS.KeyValue(ctx, streams.BucketMappings)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := connectors.NewMappings(config.MappingFS(), mkv)
	if err != nil {
		t.Fatal(err)
	}
	statuses := &statusLog{}
	ag, err := agents.New(ctx, cfg, agents.Deps{JetStream: env.JS, Mappings: ms, Connections: statuses})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := ag.Run(rctx); err != nil {
			t.Errorf("agents: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &system{env: env, ag: ag, mappings: ms, statuses: statuses}
}

func opportunity(i int, amount float64, amountField string) map[string]any {
	id := fmt.Sprintf("0065g00000Zx%04dAAJ", i)
	r := map[string]any{
		"attributes":      map[string]any{"type": "Opportunity", "url": "/services/data/v59.0/sobjects/Opportunity/" + id},
		"Id":              id,
		"AccountId":       "0015g00000QxYzAAAF",
		"Name":            fmt.Sprintf("Deal %d", i),
		"StageName":       "Prospecting",
		"CurrencyIsoCode": "USD",
		"CloseDate":       "2024-07-31",
		"Probability":     40.0,
		"OwnerId":         "0055g00000AbCdEAAV",
		"SystemModstamp":  time.Date(2024, 5, 1, 0, 0, i, 0, time.UTC).Format("2006-01-02T15:04:05.000+0000"),
		"IsDeleted":       false,
	}
	r[amountField] = amount
	return r
}

// ingest publishes records as a connector does: raw, then canonical with
// the mapping in force.
func (s *system) ingest(t *testing.T, recs ...map[string]any) {
	t.Helper()
	ctx := context.Background()
	m, err := s.mappings.Get(ctx, tenant, "salesforce", sfOpp)
	if err != nil {
		t.Fatal(err)
	}
	em := connectors.Emitter{Tenant: tenant, System: "salesforce", ConnectionID: conn, Mapping: m}
	for _, r := range recs {
		raw, ev, errs := em.Messages(0, r)
		if raw == nil {
			t.Fatalf("raw message: %v", errs)
		}
		if _, err := s.env.JS.PublishMsg(ctx, raw); err != nil {
			t.Fatal(err)
		}
		if ev != nil {
			if _, err := s.env.JS.PublishMsg(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
}

type published struct {
	ev    *canonical.Event
	msgID string
}

// canonicalEvents reads every opportunity event of the tenant.
func (s *system) canonicalEvents(t *testing.T) []published {
	t.Helper()
	ctx := context.Background()
	subj, _ := streams.CanonicalSubject(tenant, "opportunity")
	cons, err := s.env.JS.OrderedConsumer(ctx, streams.StreamCanonical, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		t.Fatal(err)
	}
	var out []published
	for {
		mb, err := cons.FetchNoWait(500)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range mb.Messages() {
			n++
			ev, err := canonical.ParseEvent(m.Data())
			if err != nil {
				t.Fatalf("a canonical event that does not parse: %v", err)
			}
			out = append(out, published{ev: ev, msgID: m.Headers().Get(jetstream.MsgIDHeader)})
		}
		if n == 0 {
			return out
		}
	}
}

// waitRederived waits until every record has an event with the mapping
// version carrying the amount wanted (nil: no amount).
func (s *system) waitRederived(t *testing.T, version int, want map[string]*decimal.Decimal) {
	t.Helper()
	streamstest.Eventually(t, 20*time.Second, func() error {
		got := map[string]published{}
		for _, p := range s.canonicalEvents(t) {
			if p.ev.MappingVersion == version {
				got[p.ev.Record.Key()] = p
			}
		}
		for id, amount := range want {
			p, ok := got[id]
			if !ok {
				return fmt.Errorf("no event for %s with mapping version %d", id, version)
			}
			if p.msgID != p.ev.ID+fmt.Sprintf(".m%d", version) {
				return fmt.Errorf("event %s has Nats-Msg-Id %q", p.ev.ID, p.msgID)
			}
			a := p.ev.Record.(*canonical.Opportunity).Amount
			switch {
			case amount == nil && a != nil:
				return fmt.Errorf("%s: amount %s, want none", id, a)
			case amount != nil && (a == nil || !a.Equal(*amount)):
				return fmt.Errorf("%s: amount %v, want %s", id, a, amount)
			}
		}
		return nil
	})
}

func (s *system) waitFinding(t *testing.T, status drift.Status) *drift.Finding {
	t.Helper()
	var f *drift.Finding
	streamstest.Eventually(t, 20*time.Second, func() error {
		fs, err := s.ag.Service.Findings(context.Background(), tenant, "", 0)
		if err != nil {
			return err
		}
		if len(fs) != 1 {
			return fmt.Errorf("%d findings, want 1", len(fs))
		}
		f = fs[0]
		if f.Status != status {
			return fmt.Errorf("finding %s is %s, want %s", f.ID, f.Status, status)
		}
		return nil
	})
	return f
}

// driftScenario ingests ten opportunities, then five whose source renamed
// Amount to Amount__c, and returns the amounts the renamed ones carry.
func driftScenario(t *testing.T, s *system) map[string]*decimal.Decimal {
	t.Helper()
	for i := 1; i <= 10; i++ {
		s.ingest(t, opportunity(i, float64(1000*i)+0.25, "Amount"))
	}
	want := map[string]*decimal.Decimal{}
	for i := 11; i <= 15; i++ {
		amount := float64(7000*i) + 0.5
		r := opportunity(i, amount, "Amount__c")
		s.ingest(t, r)
		d := decimal.NewFromFloat(amount)
		want[r["Id"].(string)] = &d
	}
	return want
}

func TestAutomaticRepairRederives(t *testing.T) {
	s := start(t, agents.Config{Autofix: true})
	want := driftScenario(t, s)
	f := s.waitFinding(t, drift.StatusApplied)
	if f.AppliedVersion != 2 || f.DecidedBy != "auto" || f.Severity != drift.SeverityHigh {
		t.Fatalf("finding %+v", f)
	}
	var p *drift.Proposal
	for i := range f.Proposals {
		if f.Proposals[i].Target == "amount" {
			p = &f.Proposals[i]
		}
	}
	if p == nil || p.Source != "Amount__c" || p.Previous != "Amount" || p.Confidence < 0.85 || len(p.Reasons) == 0 {
		t.Fatalf("amount proposal %+v", p)
	}
	mv, err := s.ag.Service.MappingVersion(context.Background(), tenant, "salesforce", sfOpp, 2)
	if err != nil {
		t.Fatal(err)
	}
	if mv.Author != "auto" || !strings.Contains(mv.Reason, f.ID) || mv.FindingID != f.ID || !mv.Current {
		t.Fatalf("version 2 = %+v", mv.StoredMapping)
	}
	// connectors read the new version too.
	m, err := s.mappings.Get(context.Background(), tenant, "salesforce", sfOpp)
	if err != nil || m.Version != 2 {
		t.Fatalf("connectors see version %v (%v)", m, err)
	}
	s.waitRederived(t, 2, want)
	streamstest.Eventually(t, 10*time.Second, func() error {
		f, err := s.ag.Service.Finding(context.Background(), tenant, f.ID)
		if err != nil {
			return err
		}
		if f.Rederive == nil || f.Rederive.FinishedAt == nil || f.Rederive.Published < len(want) {
			return fmt.Errorf("rederive %+v", f.Rederive)
		}
		return nil
	})
	streamstest.Eventually(t, 5*time.Second, func() error {
		if got := s.statuses.String(); got != "[DRIFTED HEALING ACTIVE]" {
			return fmt.Errorf("connection statuses %s", got)
		}
		return nil
	})
	in, err := s.ag.Service.Intelligence(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	if in.DriftEvents24h != 1 || in.Repairs24h != 1 || in.AverageConfidence == nil || in.AverageRepairSeconds == nil || in.ManualReviewsPending != 0 {
		t.Fatalf("intelligence %+v", in)
	}
}

func TestQueuedRepairApprovedAndRolledBack(t *testing.T) {
	s := start(t, agents.Config{Autofix: false})
	want := driftScenario(t, s)
	f := s.waitFinding(t, drift.StatusQueued)
	ctx := context.Background()
	if q, err := s.ag.Service.ReviewQueue(ctx, tenant); err != nil || len(q) != 1 || q[0].Source != "Amount__c" {
		t.Fatalf("review queue %+v (%v)", q, err)
	}
	if _, err := s.mappings.Get(ctx, tenant, "salesforce", sfOpp); err != nil {
		t.Fatal(err)
	}
	if vs, _ := s.ag.Service.MappingVersions(ctx, tenant, "salesforce", sfOpp); len(vs) != 1 {
		t.Fatalf("a version was written with autofix off: %+v", vs)
	}
	// A choice the canonical model cannot read is refused.
	_, err := s.ag.Service.Approve(ctx, tenant, f.ID, "u1", map[string]string{"amount": "Name"})
	var fe *canonical.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("approve with a text field for amount: %v", err)
	}
	f, err = s.ag.Service.Approve(ctx, tenant, f.ID, "u1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Status != drift.StatusApplied || f.AppliedVersion != 2 || f.DecidedBy != "user:u1" {
		t.Fatalf("approved finding %+v", f)
	}
	if _, err := s.ag.Service.Approve(ctx, tenant, f.ID, "u1", nil); !errors.Is(err, agents.ErrConflict) {
		t.Fatalf("second approve: %v", err)
	}
	s.waitRederived(t, 2, want)

	d, err := s.ag.Service.DiffMappings(ctx, tenant, "salesforce", sfOpp, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Fields) != 1 || d.Fields[0].Target != "amount" || d.Fields[0].To.Source != "Amount__c" {
		t.Fatalf("diff %+v", d)
	}

	mv, err := s.ag.Service.Rollback(ctx, tenant, "salesforce", sfOpp, 1, "u2")
	if err != nil {
		t.Fatal(err)
	}
	if mv.Version != 3 || mv.RollbackOf != 1 || mv.Author != "user:u2" {
		t.Fatalf("rollback version %+v", mv)
	}
	none := map[string]*decimal.Decimal{}
	for id := range want {
		none[id] = nil // version 1 reads Amount, which these records lack
	}
	s.waitRederived(t, 3, none)
	vs, err := s.ag.Service.MappingVersions(ctx, tenant, "salesforce", sfOpp)
	if err != nil || len(vs) != 3 || !vs[2].Current || vs[0].Author != "shipped" {
		t.Fatalf("versions %+v (%v)", vs, err)
	}
	if _, err := s.ag.Service.Rollback(ctx, tenant, "salesforce", sfOpp, 3, "u2"); !errors.Is(err, agents.ErrConflict) {
		t.Fatalf("rollback to the current version: %v", err)
	}
	if _, err := s.ag.Service.Rollback(ctx, tenant, "salesforce", sfOpp, 9, "u2"); !errors.Is(err, streams.ErrNotFound) {
		t.Fatalf("rollback to a missing version: %v", err)
	}
}

func TestRejectQueued(t *testing.T) {
	s := start(t, agents.Config{Autofix: false})
	driftScenario(t, s)
	f := s.waitFinding(t, drift.StatusQueued)
	ctx := context.Background()
	f, err := s.ag.Service.Reject(ctx, tenant, f.ID, "u1", "Amount__c is a staging field")
	if err != nil {
		t.Fatal(err)
	}
	if f.Status != drift.StatusRejected || !strings.Contains(f.Note, "staging") {
		t.Fatalf("rejected finding %+v", f)
	}
	if _, err := s.ag.Service.Reject(ctx, tenant, f.ID, "u1", ""); !errors.Is(err, agents.ErrConflict) {
		t.Fatalf("second reject: %v", err)
	}
	if fs, _ := s.ag.Service.Findings(ctx, tenant, "queued", 0); len(fs) != 0 {
		t.Fatalf("queued findings after reject: %d", len(fs))
	}
	if _, err := s.ag.Service.Findings(ctx, tenant, "bogus", 0); err == nil {
		t.Fatal("a bogus status filter accepted")
	}
	if _, err := s.ag.Service.Finding(ctx, "other", f.ID); !errors.Is(err, streams.ErrNotFound) {
		t.Fatalf("another tenant reads the finding: %v", err)
	}
}

func TestPreview(t *testing.T) {
	s := start(t, agents.Config{})
	ctx := context.Background()
	driftScenario(t, s)
	cur, err := s.ag.Service.MappingVersion(ctx, tenant, "salesforce", sfOpp, 1)
	if err != nil {
		t.Fatal(err)
	}
	draft := agents.Patch(cur.Spec, []drift.Proposal{{Proposal: matchProposal("amount", "Amount", "Amount__c")}})
	res, err := s.ag.Service.Preview(ctx, tenant, agents.PreviewRequest{System: "salesforce", Spec: draft, Last: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 5 || res.Mapped != 5 || res.Failed != 0 {
		t.Fatalf("preview of the last 5: %+v", res)
	}
	for _, r := range res.Rows {
		if !strings.Contains(string(r.Event), `"amount":"`) {
			t.Fatalf("preview row without an amount: %s", r.Event)
		}
	}
	res, err = s.ag.Service.Preview(ctx, tenant, agents.PreviewRequest{System: "salesforce", Spec: draft,
		Rows: []map[string]any{{"Id": "x1", "Name": "Good", "Amount__c": "12.5"}, {"Id": "x2", "Amount__c": "lots"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mapped != 1 || res.Failed != 1 || len(res.Rows[1].Errors) == 0 {
		t.Fatalf("preview of sample rows: %+v", res)
	}
	bad := draft
	bad.Fields = append(bad.Fields, canonical.FieldSpec{Target: "no_such_field", Source: "x"})
	var fe *canonical.FieldError
	if _, err := s.ag.Service.Preview(ctx, tenant, agents.PreviewRequest{System: "salesforce", Spec: bad}); !errors.As(err, &fe) {
		t.Fatalf("a draft that does not compile: %v", err)
	}
	// Nothing was published by the previews.
	for _, p := range s.canonicalEvents(t) {
		if p.ev.ConnectionID == "preview" {
			t.Fatal("a preview published an event")
		}
	}
}

func TestSearch(t *testing.T) {
	s := start(t, agents.Config{Autofix: true})
	ctx := context.Background()
	hits, err := s.ag.Service.Search(ctx, tenant, "deal value", 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 0 || hits[0].Entity != "opportunity" || hits[0].Field != "amount" {
		t.Fatalf("search deal value: %+v", hits)
	}
	driftScenario(t, s)
	s.waitFinding(t, drift.StatusApplied)
	// The repaired version is indexed for its tenant only.
	streamstest.Eventually(t, 10*time.Second, func() error {
		hits, err := s.ag.Service.Search(ctx, tenant, "Amount__c", 3)
		if err != nil {
			return err
		}
		if len(hits) == 0 || hits[0].Source != "Amount__c" || hits[0].Version != 2 {
			return fmt.Errorf("hits %+v", hits)
		}
		return nil
	})
	other, err := s.ag.Service.Search(ctx, "other", "Amount__c", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range other {
		if h.Source == "Amount__c" {
			t.Fatalf("another tenant sees %+v", h)
		}
	}
}
