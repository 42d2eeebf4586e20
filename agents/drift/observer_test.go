package drift_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/agents/drift"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
)

type harness struct {
	env      *streamstest.Env
	fps      *drift.Fingerprints
	findings *drift.Store
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	env := streamstest.Start(t)
	ctx := context.Background()
	kv, err := env.JS.KeyValue(ctx, streams.BucketFingerprints)
	if err != nil {
		t.Fatal(err)
	}
	st, err := drift.OpenStore(ctx, env.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{env: env, fps: drift.NewFingerprints(kv), findings: st}
}

// start runs an observer until the test ends (or stop is called).
func (h *harness) start(t *testing.T) (stop func()) {
	t.Helper()
	obs, err := drift.NewObserver(h.env.JS, h.fps, h.findings, drift.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := obs.Run(ctx); err != nil {
			t.Errorf("observer: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

func (h *harness) publish(t *testing.T, tenant, conn, system, object string, recs ...map[string]any) {
	t.Helper()
	subj, err := streams.RawSubject(tenant, system, object)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		b, _ := json.Marshal(r)
		m := nats.NewMsg(subj)
		m.Data = b
		m.Header.Set(streams.HeaderTenant, tenant)
		m.Header.Set(drift.HeaderConnection, conn)
		if _, err := h.env.JS.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

// detected counts the drift.detected events of a tenant on DRIFT.
func (h *harness) detected(t *testing.T, tenant string) []*drift.Event {
	t.Helper()
	ctx := context.Background()
	var out []*drift.Event
	cons, err := h.env.JS.OrderedConsumer(ctx, streams.StreamDrift, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"drift." + tenant + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		mb, err := cons.FetchNoWait(100)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range mb.Messages() {
			n++
			if m.Headers().Get(drift.HeaderEventType) != drift.EventDetected {
				continue
			}
			ev, err := drift.ParseEvent(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ev)
		}
		if n == 0 {
			return out
		}
	}
}

func (h *harness) waitSeen(t *testing.T, tenant, conn, system, object string, records int64) *drift.Fingerprint {
	t.Helper()
	var fp *drift.Fingerprint
	streamstest.Eventually(t, 10*time.Second, func() error {
		var err error
		fp, _, err = h.fps.Load(context.Background(), tenant, conn, system, object)
		if err != nil {
			return err
		}
		if fp.Records < records {
			return fmt.Errorf("fingerprint has seen %d records, want %d", fp.Records, records)
		}
		return nil
	})
	return fp
}

func (h *harness) waitFindings(t *testing.T, tenant string, n int) []*drift.Finding {
	t.Helper()
	var fs []*drift.Finding
	streamstest.Eventually(t, 10*time.Second, func() error {
		var err error
		fs, err = h.findings.List(context.Background(), tenant, drift.Filter{})
		if err != nil {
			return err
		}
		if len(fs) != n {
			return fmt.Errorf("%d findings, want %d", len(fs), n)
		}
		return nil
	})
	return fs
}

func series(from, n int, f func(map[string]any)) []map[string]any {
	var out []map[string]any
	for i := from; i < from+n; i++ {
		r := opp(i)
		if f != nil {
			f(r)
		}
		out = append(out, r)
	}
	return out
}

func TestObserverFindings(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	tests := []struct {
		tenant   string
		change   func(map[string]any)
		severity drift.Severity
		check    func(t *testing.T, f *drift.Finding)
	}{
		{"added", func(r map[string]any) { r["Competitor__c"] = "Globex" }, drift.SeverityMedium, func(t *testing.T, f *drift.Finding) {
			if len(f.Added) != 1 || f.Added[0].Name != "Competitor__c" {
				t.Errorf("added %+v", f.Added)
			}
		}},
		{"removed", func(r map[string]any) { delete(r, "StageName") }, drift.SeverityCritical, func(t *testing.T, f *drift.Finding) {
			if len(f.Removed) != 1 || f.Removed[0].Name != "StageName" {
				t.Errorf("removed %+v", f.Removed)
			}
		}},
		{"renamed", func(r map[string]any) { r["Deal_Amount__c"] = r["Amount"]; delete(r, "Amount") }, drift.SeverityHigh, func(t *testing.T, f *drift.Finding) {
			if len(f.Renames) != 1 || f.Renames[0].From != "Amount" || f.Renames[0].To != "Deal_Amount__c" {
				t.Errorf("renames %+v", f.Renames)
			}
		}},
		{"retyped", func(r map[string]any) { r["CloseDate"] = "07/31/2024" }, drift.SeverityHigh, func(t *testing.T, f *drift.Finding) {
			if len(f.TypeChanged) != 1 || f.TypeChanged[0].Field != "CloseDate" || f.TypeChanged[0].To != "string" {
				t.Errorf("type changed %+v", f.TypeChanged)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.tenant, func(t *testing.T) {
			h.publish(t, tt.tenant, "c1", "salesforce", "Opportunity", series(1, 10, nil)...)
			h.waitSeen(t, tt.tenant, "c1", "salesforce", "Opportunity", 10)
			h.publish(t, tt.tenant, "c1", "salesforce", "Opportunity", series(11, 30, tt.change)...)
			h.waitSeen(t, tt.tenant, "c1", "salesforce", "Opportunity", 40)
			fs := h.waitFindings(t, tt.tenant, 1)
			f := fs[0]
			if f.Severity != tt.severity || f.Status != drift.StatusOpen || f.ConnectionID != "c1" || f.FirstSeq == 0 {
				t.Errorf("finding %+v", f)
			}
			tt.check(t, f)
			if evs := h.detected(t, tt.tenant); len(evs) != 1 || evs[0].FindingID != f.ID {
				t.Fatalf("%d drift.detected events, want exactly 1: %+v", len(evs), evs)
			}
		})
	}
}

func TestObserverRestartKeepsFingerprints(t *testing.T) {
	h := newHarness(t)
	stop := h.start(t)
	h.publish(t, "acme", "c1", "salesforce", "Opportunity", series(1, 10, nil)...)
	h.publish(t, "acme", "c1", "salesforce", "Opportunity", series(11, 8, func(r map[string]any) { r["Competitor__c"] = "Globex" })...)
	before := h.waitSeen(t, "acme", "c1", "salesforce", "Opportunity", 18)
	h.waitFindings(t, "acme", 1)
	stop()

	h.start(t) // a new observer on the same buckets and consumer
	h.publish(t, "acme", "c1", "salesforce", "Opportunity", series(19, 25, func(r map[string]any) { r["Competitor__c"] = "Initech" })...)
	after := h.waitSeen(t, "acme", "c1", "salesforce", "Opportunity", 43)
	if after.Version != before.Version || after.Hash != before.Hash {
		t.Fatalf("schema moved across a restart: version %d→%d hash %s→%s", before.Version, after.Version, before.Hash, after.Hash)
	}
	if _, ok := after.Fields["Competitor__c"]; !ok {
		t.Fatal("the learned field was lost")
	}
	h.waitFindings(t, "acme", 1)
	if evs := h.detected(t, "acme"); len(evs) != 1 {
		t.Fatalf("%d drift.detected events after a restart, want 1", len(evs))
	}
}

func TestObserverTermsGarbage(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	subj, _ := streams.RawSubject("acme", "salesforce", "Opportunity")
	if _, err := h.env.JS.Publish(context.Background(), subj, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	h.publish(t, "acme", "c1", "salesforce", "Opportunity", series(1, 3, nil)...)
	h.waitSeen(t, "acme", "c1", "salesforce", "Opportunity", 3)
	info, err := h.env.JS.Consumer(context.Background(), streams.StreamRaw, drift.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	streamstest.Eventually(t, 5*time.Second, func() error {
		ci, err := info.Info(context.Background())
		if err != nil {
			return err
		}
		if ci.NumAckPending != 0 || ci.NumPending != 0 {
			return errors.New("records left unacknowledged")
		}
		return nil
	})
}

func TestObserverQuietOnAnUnchangedSchema(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.publish(t, "acme", "c1", "salesforce", "Opportunity", series(1, 300, nil)...)
	fp := h.waitSeen(t, "acme", "c1", "salesforce", "Opportunity", 300)
	if fp.Version != 1 || fp.Pending != nil {
		t.Fatalf("fingerprint version %d pending %+v", fp.Version, fp.Pending)
	}
	if fs, _ := h.findings.List(context.Background(), "acme", drift.Filter{}); len(fs) != 0 {
		t.Fatalf("%d findings for an unchanged schema", len(fs))
	}
	if evs := h.detected(t, "acme"); len(evs) != 0 {
		t.Fatalf("%d drift events for an unchanged schema", len(evs))
	}
	if got := fp.Fields["Amount"].Type(); got != "decimal" {
		t.Fatalf("Amount is %s", got)
	}
}
