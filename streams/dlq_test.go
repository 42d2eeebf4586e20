package streams_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
)

func TestDLQListGetRedrive(t *testing.T) {
	env := streamstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// acme: 5 sink dead letters of canonical messages, the last two of the
	// same original message (both consumers gave it up), and a mapping one.
	for i := range 4 {
		d := streams.DeadLetter{Tenant: "acme", Stage: "validation", Reason: fmt.Sprintf("bad %d", i),
			Subject: "canonical.acme.account", Sequence: uint64(100 + i), Attempts: 1, TraceID: "t",
			Data: []byte(fmt.Sprintf(`{"n":%d}`, i)), Header: nats.Header{"Autonomos-Dlq-Consumer": {"dcl-postgres"}}}
		if err := env.Pub.PublishDLQ(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	dup := streams.DeadLetter{Tenant: "acme", Stage: "validation", Reason: "bad 3", Subject: "canonical.acme.account", Sequence: 103, Data: []byte(`{"n":3}`)}
	if err := env.Pub.PublishDLQ(ctx, dup); err != nil {
		t.Fatal(err)
	}
	if err := env.Pub.PublishDLQ(ctx, streams.DeadLetter{Tenant: "acme", Stage: "mapping", Reason: "line 2: name required", Data: []byte(`{"record":{}}`)}); err != nil {
		t.Fatal(err)
	}
	if err := env.Pub.PublishDLQ(ctx, streams.DeadLetter{Tenant: "globex", Stage: "validation", Reason: "x", Subject: "canonical.globex.account", Data: []byte("not json")}); err != nil {
		t.Fatal(err)
	}
	q := streams.NewDLQ(env.JS, nil)

	page, next, err := q.List(ctx, "acme", 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 4 || page[0].Seq != 6 || page[3].Seq != 3 || next != 3 {
		t.Fatalf("first page: %d items, first %d, next %d", len(page), page[0].Seq, next)
	}
	if page[0].Stage != "mapping" || page[1].Sequence != 103 || page[3].Consumer != "dcl-postgres" || page[3].Attempts != 1 {
		t.Errorf("entries: %+v", page)
	}
	page, next, err = q.List(ctx, "acme", 4, next)
	if err != nil || len(page) != 2 || next != 0 || page[1].Seq != 1 {
		t.Fatalf("second page: %+v next %d err %v", page, next, err)
	}
	everyone, _, err := q.List(ctx, "", 100, 0)
	if err != nil || len(everyone) != 7 || string(everyone[0].Data) != `"not json"` {
		t.Fatalf("every tenant: %d, %v", len(everyone), err)
	}
	if _, err := q.Get(ctx, "acme", 7); !errors.Is(err, streams.ErrNotFound) {
		t.Errorf("another tenant's dead letter: %v, want ErrNotFound", err)
	}
	if _, _, err := q.List(ctx, "a.b", 10, 0); err == nil {
		t.Errorf("an invalid tenant was accepted")
	}

	res, err := q.Redrive(ctx, "acme", []uint64{1, 6, 7, 99}, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Redriven != 1 || len(res.Failed) != 3 {
		t.Fatalf("redrive: %+v", res)
	}
	res, err = q.Redrive(ctx, "acme", nil, true)
	if err != nil || res.Redriven != 4 || len(res.Failed) != 1 || res.Failed[0].Seq != 6 {
		t.Fatalf("redrive all: %+v %v", res, err)
	}
	left, _, _ := q.List(ctx, "", 100, 0)
	if len(left) != 2 {
		t.Errorf("left in the DLQ: %d, want the mapping one and globex's", len(left))
	}
	// The originals are back on their subject, once each (4 distinct), without DLQ headers.
	n := 0
	_, err = streams.ScanStream(ctx, env.JS, streams.StreamCanonical, streams.ScanOptions{Filters: []string{"canonical.acme.>"}}, func(m jetstream.Msg) error {
		n++
		if m.Headers().Get(streams.HeaderDLQReason) != "" || m.Headers().Get(streams.HeaderRedrivenFrom) == "" {
			t.Errorf("redriven message headers: %v", m.Headers())
		}
		return nil
	})
	if err != nil || n != 4 {
		t.Errorf("CANONICAL holds %d redriven messages (%v), want 4", n, err)
	}
}
