package subscriber

import (
	"context"
	"fmt"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/autonomos/autonomos/canonical"
)

type discardSink struct{}

func (discardSink) Name() string                                    { return "discard" }
func (discardSink) Apply(context.Context, []*canonical.Event) error { return nil }

func tracedEvents(traces, each int) []*canonical.Event {
	var evs []*canonical.Event
	for i := range traces {
		tp := fmt.Sprintf("00-%032x-%016x-01", i+1, i+1)
		for range each {
			evs = append(evs, &canonical.Event{Traceparent: tp, TraceID: tp[3:35]})
		}
	}
	return evs
}

// TestBatchTraceBounds: a batch of many traces gets maxBatchTraces consume
// spans in their traces and one more, linked to the rest (at most
// maxBatchLinks); a part of the batch applied again gets upsert spans only
// in the traces it holds.
func TestBatchTraceBounds(t *testing.T) {
	cases := []struct {
		name          string
		traces, each  int
		wantConsume   int
		wantLinks     int // of the overflow span; -1: none
		partUpsertsIn int // traces of the first 10 events
	}{
		{"one trace", 1, 1000, 1, -1, 1},
		{"a few traces", 3, 10, 3, -1, 1},
		{"at the bound", maxBatchTraces, 2, maxBatchTraces, -1, 5},
		{"over the bound", maxBatchTraces + 40, 1, maxBatchTraces + 1, 40, 10},
		{"far over the bound", 1000, 1, maxBatchTraces + 1, maxBatchLinks, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			s := &Subscriber{sink: discardSink{}, cfg: Config{Durable: "dcl-test"},
				tracer: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")}
			evs := tracedEvents(tc.traces, tc.each)
			bt := s.startBatchTrace(context.Background(), time.Now(), evs)
			bt.upsert(evs)(nil)
			part := bt.upsert(evs[:10])
			part(nil)
			bt.end(uint64(len(evs)), 0)
			consume, upserts, links := 0, 0, -1
			for _, sp := range rec.Ended() {
				switch sp.Name() {
				case "consume":
					consume++
					if len(sp.Links()) > 0 || !sp.Parent().IsValid() {
						links = len(sp.Links())
					}
				case "upsert":
					upserts++
				}
			}
			if consume != tc.wantConsume || links != tc.wantLinks {
				t.Fatalf("%d consume spans (overflow links %d), want %d (%d)", consume, links, tc.wantConsume, tc.wantLinks)
			}
			if want := tc.wantConsume + tc.partUpsertsIn; upserts != want {
				t.Fatalf("%d upsert spans, want %d", upserts, want)
			}
		})
	}
}

// BenchmarkBatchTrace is the tracing cost of one 1,000-event batch: group,
// consume spans, one upsert, end; "unsampled" is the provider without an
// exporter (valid ids, nothing recorded), "recorded" samples everything.
func BenchmarkBatchTrace(b *testing.B) {
	for _, sampled := range []bool{false, true} {
		for _, traces := range []int{1, 10, 1000} {
			name := fmt.Sprintf("unsampled/traces=%d", traces)
			sampler := sdktrace.NeverSample()
			if sampled {
				name, sampler = fmt.Sprintf("recorded/traces=%d", traces), sdktrace.AlwaysSample()
			}
			b.Run(name, func(b *testing.B) {
				s := &Subscriber{sink: discardSink{}, cfg: Config{Durable: "dcl-bench"},
					tracer: sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler)).Tracer("bench")}
				evs := tracedEvents(traces, 1000/traces)
				b.ReportAllocs()
				for b.Loop() {
					bt := s.startBatchTrace(context.Background(), time.Now(), evs)
					bt.upsert(evs)(nil)
					bt.end(1000, 0)
				}
			})
		}
	}
}
