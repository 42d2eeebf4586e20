package subscriber_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/subscriber"
)

// memorySink keeps the newest version of every record in memory. It shows
// the Sink contract: Apply is all-or-nothing, idempotent, never lets an older
// version overwrite a newer one, is safe for concurrent calls, and keeps
// nothing of the slice it is given.
type memorySink struct {
	mu   sync.Mutex
	rows map[string]canonical.Event // tenant/entity/key → newest event
}

func (m *memorySink) Name() string { return "memory" }

func (m *memorySink) Apply(ctx context.Context, events []*canonical.Event) error {
	if err := ctx.Err(); err != nil {
		return err // cancelled: nothing applied
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ev := range events {
		k := ev.Tenant + "/" + string(ev.Entity()) + "/" + ev.Record.Key()
		old, ok := m.rows[k]
		if ok && (old.Time.After(ev.Time) || old.Time.Equal(ev.Time) && old.MappingVersion > ev.MappingVersion) {
			continue // never overwrite a newer version
		}
		m.rows[k] = *ev // a copy: the caller owns events
	}
	return nil
}

func ExampleSink() {
	sink := &memorySink{rows: map[string]canonical.Event{}}
	var _ subscriber.Sink = sink

	at := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	version := func(name string, at time.Time) *canonical.Event {
		return &canonical.Event{ID: name, Tenant: "acme", Op: canonical.OpUpsert, ConnectionID: "c1",
			SourceSystem: "filesource", Time: at, MappingVersion: 1,
			Record: &canonical.Opportunity{OpportunityID: "O-1", Name: name}}
	}
	ctx := context.Background()
	// Batches may arrive out of order and more than once.
	sink.Apply(ctx, []*canonical.Event{version("second", at.Add(time.Hour))})
	sink.Apply(ctx, []*canonical.Event{version("first", at)})
	sink.Apply(ctx, []*canonical.Event{version("second", at.Add(time.Hour))})

	ev := sink.rows["acme/opportunity/O-1"]
	fmt.Println(len(sink.rows), ev.Record.(*canonical.Opportunity).Name)

	// A Subscriber feeds the sink from the CANONICAL stream:
	//
	//	sub, err := subscriber.New(js, pub, sink, subscriber.Config{}, log)
	//	...
	//	err = sub.Run(ctx) // until ctx is cancelled; then close the sink
	// Output: 1 second
}
