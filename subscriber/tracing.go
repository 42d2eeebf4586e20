package subscriber

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/telemetry"
)

// A batch holds the events of many traces (one upload's, a sync's, ...),
// while a span has one parent. So a batch gets a consume span in each trace
// its events came from — a child of the span that made them, read from the
// events' traceparent extension (or a root in the trace their traceid
// names, for events made before traceparent was carried) — and an upsert
// span below each for every sink transaction that held that trace's events.
// The traces of one batch are few (a whole page of an upload is one), so
// the cost is a string comparison per event and a few spans per batch, none
// per event. A batch of more than maxBatchTraces traces puts the rest in one
// more consume span of its own trace, linked to (at most maxBatchLinks of)
// their contexts.
const (
	maxBatchTraces = 32
	maxBatchLinks  = 128
)

// batchTrace is the spans of one batch. It is used by the applier's
// goroutine only; its methods do nothing on a nil *batchTrace (no tracing).
type batchTrace struct {
	tracer trace.Tracer
	attrs  []attribute.KeyValue
	total  int                    // events of the batch
	groups []*traceGroup          // consume spans
	keys   map[string]*traceGroup // traceKey → its group (but the overflow's, once its links are full)
	// overflow is the group of the traces past maxBatchTraces (nil: none).
	overflow *traceGroup
}

// traceGroup is the events of one trace within a batch, and its consume span.
type traceGroup struct {
	ctx   context.Context
	span  trace.Span
	n     int
	links []trace.Link // the overflow group's
}

type batchTraceKey struct{}

func withBatchTrace(ctx context.Context, bt *batchTrace) context.Context {
	if bt == nil {
		return ctx
	}
	return context.WithValue(ctx, batchTraceKey{}, bt)
}

func batchTraceOf(ctx context.Context) *batchTrace {
	bt, _ := ctx.Value(batchTraceKey{}).(*batchTrace)
	return bt
}

// traceKey is what groups an event: its traceparent, else its trace id.
func traceKey(ev *canonical.Event) string {
	if ev.Traceparent != "" {
		return ev.Traceparent
	}
	if ev.TraceID != "" {
		return "t:" + ev.TraceID
	}
	return ""
}

// startBatchTrace groups events by trace and starts a consume span in each
// trace, as of taken (when the batch was taken off the consumer). It
// returns nil when the subscriber does not trace.
func (s *Subscriber) startBatchTrace(ctx context.Context, taken time.Time, events []*canonical.Event) *batchTrace {
	if s.tracer == nil || len(events) == 0 {
		return nil
	}
	bt := &batchTrace{tracer: s.tracer, total: len(events), keys: make(map[string]*traceGroup, 4),
		attrs: []attribute.KeyValue{attribute.String("messaging.system", "nats"),
			attribute.String("messaging.consumer.group.name", s.cfg.Durable), attribute.String("autonomos.sink", s.sink.Name())}}
	lastKey, last := "", (*traceGroup)(nil)
	for _, ev := range events {
		k := traceKey(ev)
		if last == nil || k != lastKey {
			if last = bt.keys[k]; last == nil {
				last = bt.group(ctx, k, ev)
			}
			lastKey = k
		}
		last.n++
	}
	for _, g := range bt.groups {
		opts := []trace.SpanStartOption{trace.WithTimestamp(taken), trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(bt.attrs...), trace.WithAttributes(attribute.Int("messaging.batch.message_count", g.n),
				attribute.Int("autonomos.batch_size", len(events)))}
		if g == bt.overflow {
			opts = append(opts, trace.WithNewRoot(), trace.WithLinks(g.links...),
				trace.WithAttributes(attribute.Int("autonomos.linked_traces", len(g.links))))
		}
		g.ctx, g.span = bt.tracer.Start(g.ctx, "consume", opts...)
	}
	return bt
}

// group returns the group of a trace the batch has not shown before: a new
// one, or past maxBatchTraces the overflow group, which links the trace.
func (bt *batchTrace) group(ctx context.Context, k string, ev *canonical.Event) *traceGroup {
	if len(bt.groups) < maxBatchTraces {
		g := &traceGroup{ctx: groupParent(ctx, ev)}
		bt.groups = append(bt.groups, g)
		bt.keys[k] = g
		return g
	}
	if bt.overflow == nil {
		bt.overflow = &traceGroup{ctx: ctx}
		bt.groups = append(bt.groups, bt.overflow)
	}
	g := bt.overflow
	if len(g.links) < maxBatchLinks {
		// Remembered so the trace is linked once; past the bound upsert
		// counts unknown traces as the overflow group's without.
		bt.keys[k] = g
		if sc := trace.SpanContextFromContext(groupParent(ctx, ev)); sc.IsValid() {
			g.links = append(g.links, trace.Link{SpanContext: sc})
		}
	}
	return g
}

// groupParent is ctx with the parent of the consume span of ev's trace.
func groupParent(ctx context.Context, ev *canonical.Event) context.Context {
	return telemetry.Parent(ctx, ev.Traceparent, ev.TraceID)
}

// upsert starts an upsert span in each trace that has events among events
// (all of the batch, or a part being applied again) and returns the func
// that ends them with the sink's answer.
func (bt *batchTrace) upsert(events []*canonical.Event) func(error) {
	if bt == nil {
		return func(error) {}
	}
	counts := make(map[*traceGroup]int, len(bt.groups))
	if len(events) == bt.total {
		for _, g := range bt.groups {
			counts[g] = g.n
		}
	} else {
		for _, ev := range events {
			g := bt.keys[traceKey(ev)]
			if g == nil {
				g = bt.overflow
			}
			counts[g]++
		}
	}
	spans := make([]trace.Span, 0, len(counts))
	for _, g := range bt.groups {
		n, ok := counts[g]
		if !ok {
			continue
		}
		_, sp := bt.tracer.Start(g.ctx, "upsert", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(bt.attrs...),
			trace.WithAttributes(attribute.Int("autonomos.records", n), attribute.Int("autonomos.transaction_size", len(events))))
		spans = append(spans, sp)
	}
	return func(err error) {
		for _, sp := range spans {
			telemetry.End(sp, err)
		}
	}
}

// end ends the consume spans with the batch's outcome.
func (bt *batchTrace) end(applied, deadLettered uint64) {
	if bt == nil {
		return
	}
	for _, g := range bt.groups {
		telemetry.End(g.span, nil, attribute.Int64("autonomos.applied", int64(applied)),
			attribute.Int64("autonomos.dead_lettered", int64(deadLettered)))
	}
}
