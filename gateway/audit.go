package gateway

import (
	"context"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/telemetry"
)

// AuditEventType is the CloudEvents type of an audit record.
const AuditEventType = "com.autonomos.audit.request"

// AuditRecord is the data of one audit CloudEvent, published to
// audit.<tenant> on the AUDIT stream for every mutating call that can be
// attributed to a tenant: authenticated calls (including those refused by
// the rate limit or the idempotency check, and replays), and public auth
// calls once the handler knows the account (register, login — failed ones
// too —, refresh).
type AuditRecord struct {
	Tenant         string `json:"tenant"`
	User           string `json:"user"`
	Route          string `json:"route"`
	Method         string `json:"method"`
	Path           string `json:"path"`
	Status         int    `json:"status"`
	LatencyMS      int64  `json:"latency_ms"`
	TraceID        string `json:"trace_id"`
	BodySHA256     string `json:"body_sha256"` // "" when the body was not read to its end
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	Outcome        string `json:"outcome"` // handled, replayed, refused
	ClientIP       string `json:"client_ip"`
}

// audit is the fifth middleware: after the handler of a mutating call it
// renders the response (so the status is final) and publishes the audit
// record. Publishing uses a context detached from the client's, bounded to
// 5s; a failure is logged and counted, never turned into a client error
// (the response is already sent).
func (s *Server) audit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !mutating(c.Request().Method) {
			return next(c)
		}
		if err := next(c); err != nil {
			c.Error(err)
		}
		s.recordAudit(c, stateOf(c), "handled")
		return nil
	}
}

// refuse answers a request stopped by a middleware before audit (rate
// limit, idempotency): the error is rendered and, for a mutating call, the
// refusal audited.
func (s *Server) refuse(c echo.Context, err error) error {
	if !mutating(c.Request().Method) {
		return err
	}
	c.Error(err)
	s.recordAudit(c, stateOf(c), "refused")
	return nil
}

// recordAudit publishes the request's audit record once.
func (s *Server) recordAudit(c echo.Context, st *reqState, outcome string) {
	if st.audited {
		return
	}
	st.audited = true
	who := st.principal
	if who == nil {
		who = st.subject
	}
	ctx := c.Request().Context()
	if who == nil {
		s.log.DebugContext(ctx, "mutating call not audited: no tenant", "route", c.Path())
		return
	}
	req := c.Request()
	key := st.idemKey
	if key == "" { // refused before the idempotency step looked at it
		key = clip(req.Header.Get(HeaderIdempotencyKey))
	}
	rec := AuditRecord{
		Tenant:         who.Tenant,
		User:           who.UserID,
		Route:          c.Path(),
		Method:         req.Method,
		Path:           req.URL.Path,
		Status:         c.Response().Status,
		LatencyMS:      time.Since(st.start).Milliseconds(),
		TraceID:        st.traceID,
		BodySHA256:     st.body.rawSHA256(),
		IdempotencyKey: key,
		Outcome:        outcome,
		ClientIP:       c.RealIP(),
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.publishAudit(pctx, rec); err != nil {
		s.metrics.auditFailures.Inc()
		s.log.ErrorContext(ctx, "audit record not published", "tenant", rec.Tenant, "route", rec.Route,
			"status", rec.Status, "error", err)
	}
}

func (s *Server) publishAudit(ctx context.Context, rec AuditRecord) error {
	subj, err := streams.AuditSubject(rec.Tenant)
	if err != nil {
		return err
	}
	ev := cloudevents.New()
	ev.SetID(streams.NewID())
	ev.SetSource("/gateway")
	ev.SetType(AuditEventType)
	ev.SetSubject(rec.Route)
	ev.SetTime(time.Now().UTC())
	ev.SetExtension("tenantid", rec.Tenant)
	ev.SetExtension("traceid", rec.TraceID)
	if err := ev.SetData(cloudevents.ApplicationJSON, rec); err != nil {
		return err
	}
	b, err := ev.MarshalJSON()
	if err != nil {
		return err
	}
	m := nats.NewMsg(subj)
	m.Data = b
	m.Header.Set(jetstream.MsgIDHeader, ev.ID())
	m.Header.Set(streams.HeaderContentType, streams.ContentTypeCloudEvent)
	m.Header.Set(streams.HeaderTenant, rec.Tenant)
	if tp := telemetry.Traceparent(trace.SpanContextFromContext(ctx)); tp != "" {
		m.Header.Set(streams.HeaderTraceparent, tp) // the request's span
	} else if tp := streams.Traceparent(rec.TraceID); tp != "" {
		m.Header.Set(streams.HeaderTraceparent, tp)
	}
	_, err = s.deps.JetStream.PublishMsg(ctx, m)
	return err
}
