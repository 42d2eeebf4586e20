package gateway

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
)

// AOARunInput is the body of POST /api/v1/aoa/run.
type AOARunInput struct {
	// Connections to sync; empty means every connection of the tenant.
	Connections []string `json:"connections"`
	// WebhookURL, when set, receives the finished orchestration job as a
	// signed POST (X-Autonomos-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
	// "<t>.<body>">).
	WebhookURL string `json:"webhook_url"`
	User       string `json:"-"` // the caller, from the token
	TraceID    string `json:"-"`
}

// AOAService orchestrates a tenant's syncs as one job. Run starts an
// orchestration and returns its job (it runs in the background, beyond the
// request); an orchestration already active answers an error wrapping
// ErrConflict (409). State is the tenant's current or last orchestration
// with every connection's job. Reset rebuilds the tenant's materialized
// tables from the CANONICAL stream without touching the streams. Errors as
// ConnectionService's. Calls may be concurrent; the gateway never closes it.
type AOAService interface {
	Run(ctx context.Context, tenant string, in AOARunInput) (any, error)
	State(ctx context.Context, tenant string) (any, error)
	Reset(ctx context.Context, tenant, traceID string) (any, error)
	// WebhookSecret is the tenant's webhook signing secret.
	WebhookSecret(ctx context.Context, tenant string) (string, error)
}

var (
	docAOARun = opDoc{tag: "aoa", summary: "Sync a set of connections, or all, as one orchestrated job (admins)",
		description: "Body (optional): {\"connections\": [ids], \"webhook_url\"}. One active orchestration per tenant: 409 otherwise. Each connection's sync is queued as its own job (retried at growing intervals) and followed by the orchestration job (kind orchestration, with bounded logs). When webhook_url is set the finished job is POSTed there with X-Autonomos-Signature: t=<unix>,v1=<hex HMAC-SHA256 over \"<t>.<body>\"> under the tenant's webhook secret.",
		body:        &bodyDoc{"application/json", "AnyObject"}, status: 202, result: "AnyObject", errors: []int{409, 415}}
	docAOAState = opDoc{tag: "aoa", summary: "The tenant's current (or last) orchestration: per connection status, counts and errors",
		status: 200, result: "AnyObject"}
	docAOAReset = opDoc{tag: "aoa", summary: "Rebuild the tenant's materialized tables from the CANONICAL stream (admins)",
		description: "Deletes the tenant's materialized rows and re-applies every canonical event of the tenant from the stream, in order. Source history (the streams) is never deleted. 409 while an orchestration is active.",
		status:      200, result: "AnyObject", errors: []int{409}}
	docAOASecret = opDoc{tag: "aoa", summary: "The tenant's webhook signing secret (admins)",
		description: "Verify a webhook: split X-Autonomos-Signature into t and v1, compute hex(HMAC-SHA256(secret, t + \".\" + raw body)), compare in constant time with v1, and reject a t older than a few minutes.",
		status:      200, result: "AnyObject"}
)

func aoaRoutes(s *Server) []*route {
	if s.deps.AOA == nil {
		return nil
	}
	return []*route{
		{http.MethodPost, "/api/v1/aoa/run", s.handleAOARun, accessAdmin, docAOARun},
		{http.MethodGet, "/api/v1/aoa/state", s.handleAOAState, accessViewer, docAOAState},
		{http.MethodPost, "/api/v1/aoa/reset", s.handleAOAReset, accessAdmin, docAOAReset},
		{http.MethodGet, "/api/v1/aoa/webhook-secret", s.handleAOASecret, accessAdmin, docAOASecret},
	}
}

func (s *Server) handleAOARun(c echo.Context) error {
	var in AOARunInput
	if c.Request().ContentLength != 0 {
		if err := s.decodeJSON(c, &in); err != nil {
			return err
		}
	}
	ctx := c.Request().Context()
	p := stateOf(c).principal
	in.User, in.TraceID = p.UserID, TraceID(ctx)
	v, err := s.deps.AOA.Run(ctx, p.Tenant, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, v)
}

func (s *Server) handleAOAState(c echo.Context) error {
	v, err := s.deps.AOA.State(c.Request().Context(), stateOf(c).principal.Tenant)
	return objOf(v, err, c)
}

func (s *Server) handleAOAReset(c echo.Context) error {
	ctx := c.Request().Context()
	v, err := s.deps.AOA.Reset(ctx, stateOf(c).principal.Tenant, TraceID(ctx))
	return objOf(v, err, c)
}

func (s *Server) handleAOASecret(c echo.Context) error {
	v, err := s.deps.AOA.WebhookSecret(c.Request().Context(), stateOf(c).principal.Tenant)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, map[string]string{"secret": v, "header": "X-Autonomos-Signature", "scheme": "t=<unix>,v1=<hex hmac-sha256 of \"<t>.<body>\">"})
}
