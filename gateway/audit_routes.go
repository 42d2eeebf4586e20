package gateway

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
)

// AuditReader reads the materialized audit log. tenant is always the
// verified token's tenant; AuditLog returns only that tenant's entries,
// newest first, at most limit, below the cursor before ("" for the first
// page), with the cursor of the next page ("" at the end). A cursor it did
// not give is a *canonical.FieldError (422). Calls may be concurrent and
// stop with ctx.Err() when ctx is cancelled; the gateway never closes it.
type AuditReader interface {
	AuditLog(ctx context.Context, tenant string, limit int, before string) ([]map[string]any, string, error)
}

var docAuditLog = opDoc{tag: "auth", summary: "The tenant's audit log, newest first (admins)",
	description: "One entry per mutating call: {event_id, time, user_id, route, method, status, latency_ms, trace_id, " +
		"body_sha256, idempotency_key, outcome}. Entries appear once the audit materializer has stored them (usually within a second).",
	params: []paramDoc{{name: "limit", in: "query", description: "1..1000, default 100", schema: intParam},
		{name: "cursor", in: "query", description: "next_cursor of the previous page", schema: str}},
	status: 200, result: "DataList"}

func auditRoutes(s *Server) []*route {
	if s.deps.Audit == nil {
		return nil
	}
	return []*route{{http.MethodGet, "/api/v1/audit", s.handleAuditLog, accessAdmin, docAuditLog}}
}

func (s *Server) handleAuditLog(c echo.Context) error {
	limit, err := intQuery(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	cursor := c.QueryParam("cursor")
	if len(cursor) > 1024 {
		return invalid("cursor", "too long")
	}
	items, next, err := s.deps.Audit.AuditLog(c.Request().Context(), stateOf(c).principal.Tenant, limit, cursor)
	if err != nil {
		return err
	}
	var nc any
	if next != "" {
		nc = next
	}
	return c.JSON(http.StatusOK, map[string]any{"data": items, "next_cursor": nc})
}
