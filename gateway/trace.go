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
// version may append fields).
func ParseTraceparent(h string) (string, bool) {
	h = strings.TrimSpace(h)
	if len(h) < 55 {
		return "", false
	}
	ver, traceID, parent, flags := h[0:2], h[3:35], h[36:52], h[53:55]
	if h[2] != '-' || h[35] != '-' || h[52] != '-' {
		return "", false
	}
	if !isHex(ver) || ver == "ff" || !isHex(traceID) || !isHex(parent) || !isHex(flags) {
		return "", false
	}
	if ver == "00" && len(h) != 55 {
		return "", false
	}
	if ver != "00" && len(h) > 55 && h[55] != '-' {
		return "", false
	}
	if allZero(traceID) || allZero(parent) {
		return "", false
	}
	return traceID, true
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

// traceFromRequest takes the trace id of a valid traceparent, else a valid
// 32-hex X-Trace-Id the client sent, else makes a new one.
func traceFromRequest(r *http.Request) string {
	if id, ok := ParseTraceparent(r.Header.Get(HeaderTraceparent)); ok {
		return id
	}
	if id := strings.ToLower(strings.TrimSpace(r.Header.Get(HeaderTraceID))); len(id) == 32 && isHex(id) && !allZero(id) {
		return id
	}
	return NewTraceID()
}

// tracing is the first middleware: it gives the request its trace id (in
// the request context, the X-Trace-Id response header and every log line),
// renders errors so the final status is known, and records the request in
// the metrics and the debug log.
func (s *Server) tracing(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		req := c.Request()
		id := traceFromRequest(req)
		ctx := withTraceID(req.Context(), id)
		c.SetRequest(req.WithContext(ctx))
		st := &reqState{traceID: id, start: start, route: s.routeOf(c)}
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
