package connectors

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/streams"
)

// TestRemapRedrivesMappingDeadLetters: a record the mapping refused is
// dead-lettered with its source values; a redrive before the mapping is
// fixed leaves it (naming the field), and after a new mapping version it is
// re-mapped into a canonical event and leaves the DLQ.
func TestRemapRedrivesMappingDeadLetters(t *testing.T) {
	l := newLifecycle(t)
	ctx := testCtx(t)
	v := l.create(t, "acme", "crm", "")
	conn := Connection{ID: v.ID, Tenant: "acme", System: fakeSystem}
	values := map[string]any{"ext": "X-1", "name": "Acme"} // no id: account_id is required
	em := Emitter{Tenant: "acme", System: fakeSystem, ConnectionID: v.ID}
	m, err := l.runner.mappings.Get(ctx, "acme", fakeSystem, "account")
	if err != nil {
		t.Fatal(err)
	}
	em.Mapping = m
	_, msg, errs := em.Messages(0, values)
	if msg != nil || len(errs) == 0 {
		t.Fatalf("the shipped mapping accepted a record without an id: %v", errs)
	}
	l.runner.deadLetter(ctx, conn, "account", "", values, errs)

	q := streams.NewDLQ(l.JS, NewRemapper(l.runner.mappings, l.conns, l.store).Remap)
	res, err := q.Redrive(ctx, "acme", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Redriven != 0 || len(res.Failed) != 1 || !strings.Contains(res.Failed[0].Reason, "account_id") {
		t.Fatalf("redrive before the fix = %+v, want one failure naming account_id", res)
	}
	// Another tenant sees nothing to redrive.
	if other, err := q.Redrive(ctx, "globex", nil, true); err != nil || other.Redriven != 0 || len(other.Failed) != 0 {
		t.Fatalf("tenant globex redrive = %+v, %v", other, err)
	}

	// The fix: version 2 reads the id from ext.
	spec := m.Spec
	spec.Fields = append(spec.Fields[:0:0], spec.Fields...)
	for i := range spec.Fields {
		if spec.Fields[i].Target == "account_id" {
			spec.Fields[i].Source = "ext"
		}
	}
	b, _ := json.Marshal(StoredMapping{System: fakeSystem, Spec: spec, Version: 2, Author: "user:test"})
	mkv, err := l.JS.KeyValue(ctx, streams.BucketMappings)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mkv.Put(ctx, mappingKey("acme", fakeSystem, "account"), b); err != nil {
		t.Fatal(err)
	}
	res, err = q.Redrive(ctx, "acme", nil, true)
	if err != nil || res.Redriven != 1 || len(res.Failed) != 0 {
		t.Fatalf("redrive after the fix = %+v, %v", res, err)
	}
	left, _, err := q.List(ctx, "acme", 10, 0)
	if err != nil || len(left) != 0 {
		t.Fatalf("DLQ after the redrive: %v, %v", left, err)
	}
	cons, err := l.JS.OrderedConsumer(ctx, streams.StreamCanonical, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"canonical.acme.>"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("no canonical event after the redrive: %v", err)
	}
	var ev struct {
		Subject        string `json:"subject"`
		MappingVersion int    `json:"mappingversion"`
	}
	if err := json.Unmarshal(got.Data(), &ev); err != nil || ev.Subject != "X-1" || ev.MappingVersion != 2 {
		t.Fatalf("redriven event %s (%v), want subject X-1 under mapping v2", got.Data(), err)
	}
}
