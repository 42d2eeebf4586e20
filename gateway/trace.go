package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/autonomos/autonomos/telemetry"
)

// Header names the gateway reads or writes.
const (
	HeaderTraceID          = "X-Trace-Id"
	HeaderTraceparent      = "traceparent"
	HeaderIdempotencyKey   = "Idempotency-Key"
	HeaderIdempotentReplay = "Idempotent-Replay"
)

type traceKey struct{}

// TraceID returns the trace id the tracing middleware put in a request's
// context ("" outside a request). Handlers pass it on, so the CloudEvents a
// request causes carry it in their traceid extension.
func TraceID(ctx context.Context) string {
	id, _ := ctx.Value(traceKey{}).(string)
	return id
}

func withTraceID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, traceKey{}, id)
}

// NewTraceID returns a random W3C trace id: 32 lower-case hex digits.
func NewTraceID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ParseTraceparent returns the trace id of a W3C traceparent header
// ("00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>"), or false when
// the header is not valid (all-zero ids and version ff are invalid; a future
// version may append fields). It judges as the tracing middleware's
// OpenTelemetry propagator does.
func ParseTraceparent(h string) (string, bool) {
	sc := telemetry.ParseTraceparent(strings.TrimSpace(h))
	if !sc.IsValid() {
		return "", false
	}
	return sc.TraceID().String(), true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return s != ""
}

func allZero(s string) bool { return strings.Trim(s, "0") == "" }

// clientTraceID is a valid 32-hex X-Trace-Id the client sent, or "".
func clientTraceID(r *http.Request) string {
	if id := strings.ToLower(strings.TrimSpace(r.Header.Get(HeaderTraceID))); len(id) == 32 && isHex(id) && !allZero(id) {
		return id
	}
	return ""
}

// tracing is the first middleware: it starts the request's server span — a
// child of the W3C traceparent the client sent, else the root of a new
// trace (whose id is the client's X-Trace-Id when it sent a valid one) —
// and gives the request the span's trace id (in the request context, the
// X-Trace-Id response header and every log line). It renders errors so the
// final status is known, and records the request in the span, the metrics
// and the debug log. Without Deps.Tracing there is no span, and the trace
// id is the traceparent's, the X-Trace-Id's or a new one.
func (s *Server) tracing(next echo.HandlerFunc) echo.HandlerFunc {
	var tracer trace.Tracer = noop.NewTracerProvider().Tracer(telemetry.Scope)
	if s.deps.Tracing != nil {
		tracer = s.deps.Tracing.Tracer(telemetry.Scope)
	}
	return func(c echo.Context) error {
		start := time.Now()
		req := c.Request()
		route := s.routeOf(c)
		ctx := propagation.TraceContext{}.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
		seed := ""
		if !trace.SpanContextFromContext(ctx).IsValid() {
			seed = clientTraceID(req)
			ctx = telemetry.WithTraceID(ctx, seed)
		}
		name := req.Method
		if route != nil {
			name += " " + route.path
		}
		ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
			trace.WithAttributes(attribute.String("http.request.method", req.Method)))
		if route != nil && span.IsRecording() {
			span.SetAttributes(attribute.String("http.route", route.path))
		}
		id := telemetry.TraceID(ctx)
		if id == "" {
			if id = seed; id == "" {
				id = NewTraceID()
			}
		}
		ctx = withTraceID(ctx, id)
		c.SetRequest(req.WithContext(ctx))
		st := &reqState{traceID: id, start: start, route: route}
		c.Set(stateKey, st)
		c.Response().Header().Set(HeaderTraceID, id)

		if err := next(c); err != nil {
			c.Error(err)
		}

		status := c.Response().Status
		label := c.Path()
		if st.route == nil {
			label = "unmatched"
		}
		if span.IsRecording() {
			span.SetAttributes(attribute.Int("http.response.status_code", status))
			if p := st.principal; p != nil {
				span.SetAttributes(attribute.String("autonomos.tenant", p.Tenant))
			}
			if status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
		}
		span.End()
		s.metrics.requests.WithLabelValues(label, req.Method, statusLabel(status)).Observe(time.Since(start).Seconds())
		s.log.DebugContext(ctx, "request", "method", req.Method, "route", label, "status", status,
			"latency_ms", time.Since(start).Milliseconds())
		return nil
	}
}

// statusLabel keeps the status label's cardinality bounded.
func statusLabel(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status)
}

// LogHandler wraps h so that every record logged with a request's context
// carries its trace_id. New wraps the logger it is given; cmd may wrap its
// root handler so other packages' context logging carries it too.
func LogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(traceLogHandler); ok {
		return h
	}
	return traceLogHandler{h}
}

type traceLogHandler struct{ slog.Handler }

func (h traceLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := TraceID(ctx); id != "" {
		r.AddAttrs(slog.String("trace_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceLogHandler{h.Handler.WithAttrs(as)}
}

func (h traceLogHandler) WithGroup(name string) slog.Handler {
	return traceLogHandler{h.Handler.WithGroup(name)}
}
