package telemetry

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HeaderTraceparent is the W3C trace-context header, and the name of the
// CloudEvents distributed-tracing extension that carries the same value.
const HeaderTraceparent = "traceparent"

// one is a carrier of the traceparent alone.
type one struct{ traceparent string }

func (c *one) Get(k string) string {
	if k == HeaderTraceparent {
		return c.traceparent
	}
	return ""
}

func (c *one) Set(k, v string) {
	if k == HeaderTraceparent {
		c.traceparent = v
	}
}

func (c *one) Keys() []string { return []string{HeaderTraceparent} }

// Traceparent renders sc as a W3C traceparent ("00-<trace id>-<span id>-<flags>"),
// or "" when sc is not valid.
func Traceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	var c one
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), &c)
	return c.traceparent
}

// ParseTraceparent reads a W3C traceparent as a remote span context; the
// result is not valid when the header is not (all-zero ids, version ff,
// upper-case hex, a version-00 header with more fields, ...).
func ParseTraceparent(s string) trace.SpanContext {
	if s == "" {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), &one{s}))
}

// TraceID is the trace id of ctx's span as 32 lower-case hex digits, or ""
// when ctx carries no valid span context.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

// Parent returns ctx with the parent a piece of work recorded when it was
// queued: the remote span context of traceparent when that is valid, else
// a request for a new trace with traceID (see WithTraceID), else ctx.
func Parent(ctx context.Context, traceparent, traceID string) context.Context {
	if sc := ParseTraceparent(traceparent); sc.IsValid() {
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return WithTraceID(ctx, traceID)
}

type seedKey struct{}

// WithTraceID asks a Provider of this package to give the next root span
// started with ctx the trace id id (32 hex digits), so that a trace id
// known before any span — one a client sent in X-Trace-Id, or one recorded
// on a job before tracing carried parents — stays the trace's id. An
// invalid id leaves ctx as it is. Other TracerProviders ignore it.
func WithTraceID(ctx context.Context, id string) context.Context {
	var tid trace.TraceID
	if len(id) != 2*len(tid) {
		return ctx
	}
	if _, err := hex.Decode(tid[:], []byte(id)); err != nil || !tid.IsValid() {
		return ctx
	}
	return context.WithValue(ctx, seedKey{}, tid)
}

// idGenerator makes random ids, and a root span's trace id from
// WithTraceID when ctx asks for one.
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	tid, ok := ctx.Value(seedKey{}).(trace.TraceID)
	for !ok || !tid.IsValid() {
		binary.NativeEndian.PutUint64(tid[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(tid[8:], rand.Uint64())
		ok = true
	}
	return tid, newSpanID()
}

func (idGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

func newSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.NativeEndian.PutUint64(sid[:], rand.Uint64())
	}
	return sid
}
