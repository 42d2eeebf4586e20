package subscriber_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams/streamstest"
	"github.com/autonomos/autonomos/subscriber"
	"github.com/autonomos/autonomos/telemetry"
)

// recorded returns a provider that keeps every span in a SpanRecorder.
func recorded(t testing.TB) (*telemetry.Provider, *tracetest.SpanRecorder) {
	t.Helper()
	t.Setenv(telemetry.EnvEndpoint, "")
	t.Setenv(telemetry.EnvTracesEndpoint, "")
	rec := tracetest.NewSpanRecorder()
	p, err := telemetry.New(context.Background(), telemetry.Config{SpanProcessors: []sdktrace.SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	return p, rec
}

func attrInt(s sdktrace.ReadOnlySpan, key string) int64 {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.AsInt64()
		}
	}
	return -1
}

// TestBatchSpansJoinTheEventsTraces: the consume span of each trace in a
// batch is a child of the span that made its events (their traceparent), or
// a root in the trace their traceid names; upserts are children of consume
// spans; no span is made per event.
func TestBatchSpansJoinTheEventsTraces(t *testing.T) {
	env := streamstest.Start(t)
	duck := openDuckDB(t)
	tp, rec := recorded(t)
	const (
		traceA, spanA = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		traceB, spanB = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
		traceC        = "9a3f2c4e5b6d7e8f9a0b1c2d3e4f5a6b"
	)
	var evs []*canonical.Event
	add := func(n int, traceID, traceparent string) {
		for range n {
			ev := upsert(t, "acme", opp(fmt.Sprintf("006%03d", len(evs)), "Deal"), t0, 1)
			ev.TraceID, ev.Traceparent = traceID, traceparent
			evs = append(evs, ev)
		}
	}
	add(30, traceA, "00-"+traceA+"-"+spanA+"-01")
	add(20, traceB, "00-"+traceB+"-"+spanB+"-01")
	add(5, traceC, "") // an event from before traceparent was carried
	add(3, "", "")     // no trace at all
	add(2, traceA, "00-"+traceA+"-"+spanA+"-01")
	publish(t, env, evs)
	start(t, env, duck, subscriber.Config{Tracing: tp})
	streamstest.Eventually(t, 20*time.Second, wantCount(duck, "acme", canonical.OpportunityEntity, int64(len(evs))))
	// The consume spans end after the acks, just after the rows are there.
	var consume, upserts []sdktrace.ReadOnlySpan
	streamstest.Eventually(t, 10*time.Second, func() error {
		consume, upserts = nil, nil
		var n int64
		for _, s := range rec.Ended() {
			switch s.Name() {
			case "consume":
				consume = append(consume, s)
				n += attrInt(s, "messaging.batch.message_count")
			case "upsert":
				upserts = append(upserts, s)
			default:
				t.Fatalf("unexpected span %q", s.Name())
			}
		}
		if n != int64(len(evs)) {
			return fmt.Errorf("consume spans count %d events, want %d", n, len(evs))
		}
		return nil
	})
	perTrace := map[string]int64{}
	consumeIDs := map[string]bool{}
	for _, s := range consume {
		tid, parent := s.SpanContext().TraceID().String(), s.Parent()
		n := attrInt(s, "messaging.batch.message_count")
		switch tid {
		case traceA, traceB:
			want := map[string]string{traceA: spanA, traceB: spanB}[tid]
			if parent.SpanID().String() != want || !parent.IsRemote() {
				t.Errorf("consume span of %s has parent %s, want the events' span %s", tid, parent.SpanID(), want)
			}
		case traceC:
			if parent.IsValid() {
				t.Errorf("consume span of an event without traceparent has parent %s", parent.SpanID())
			}
		default:
			if parent.IsValid() || n != 3 {
				t.Errorf("consume span of trace %s: parent %v, %d events", tid, parent.SpanID(), n)
			}
			tid = "none"
		}
		perTrace[tid] += n
		consumeIDs[s.SpanContext().SpanID().String()] = true
		if s.SpanKind().String() != "consumer" || attrInt(s, "autonomos.applied") < n {
			t.Errorf("consume span %s: kind %s, applied %d", tid, s.SpanKind(), attrInt(s, "autonomos.applied"))
		}
	}
	if want := map[string]int64{traceA: 32, traceB: 20, traceC: 5, "none": 3}; fmt.Sprint(perTrace) != fmt.Sprint(want) {
		t.Errorf("events per trace %v, want %v", perTrace, want)
	}
	if len(upserts) < len(consume) {
		t.Errorf("%d upsert spans for %d consume spans", len(upserts), len(consume))
	}
	for _, s := range upserts {
		if !consumeIDs[s.Parent().SpanID().String()] || s.Status().Code.String() != "Unset" {
			t.Errorf("upsert span %v: parent %s not a consume span, or status %v", s.SpanContext().TraceID(), s.Parent().SpanID(), s.Status())
		}
	}
	t.Logf("%d events in %d consume and %d upsert spans", len(evs), len(consume), len(upserts))
}
