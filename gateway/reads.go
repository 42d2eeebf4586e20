package gateway

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
)

// Job list bounds.
const (
	defaultJobLimit = 50
	maxJobLimit     = 500
)

// JobList is the body of GET /api/v1/aoa/jobs.
type JobList struct {
	Data []*streams.Job `json:"data"`
}

// handleJobs lists the tenant's jobs, newest first.
func (s *Server) handleJobs(c echo.Context) error {
	limit := defaultJobLimit
	for k, vs := range c.QueryParams() {
		switch {
		case k != "limit":
			return invalid(k, "unknown parameter (only limit is accepted)")
		case len(vs) != 1:
			return invalid(k, "give the parameter once")
		}
		n, err := strconv.Atoi(vs[0])
		if err != nil || n < 1 || n > maxJobLimit {
			return invalid("limit", "must be an integer from 1 to %d, got %q", maxJobLimit, clip(vs[0]))
		}
		limit = n
	}
	p := stateOf(c).principal
	jobs, err := s.deps.Jobs.List(c.Request().Context(), p.Tenant, limit)
	if err != nil {
		return err
	}
	out := make([]*streams.Job, 0, len(jobs))
	for _, j := range jobs {
		if j.Tenant != p.Tenant {
			s.log.ErrorContext(c.Request().Context(), "job reader returned another tenant's job", "tenant", p.Tenant, "job_id", j.ID)
			continue
		}
		out = append(out, normalizeJob(j))
	}
	return c.JSON(http.StatusOK, JobList{Data: out})
}

// handleJob returns one of the tenant's jobs; another tenant's is 404.
func (s *Server) handleJob(c echo.Context) error {
	p := stateOf(c).principal
	j, err := s.deps.Jobs.Get(c.Request().Context(), p.Tenant, c.Param("id"))
	if errors.Is(err, streams.ErrNotFound) || err == nil && j.Tenant != p.Tenant {
		return newError(http.StatusNotFound, CodeNotFound, "job not found")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, normalizeJob(j))
}

// normalizeJob makes errors an empty list rather than null.
func normalizeJob(j *streams.Job) *streams.Job {
	if j.Errors != nil {
		return j
	}
	cp := *j
	cp.Errors = []streams.RowError{}
	return &cp
}

// ViewResponse is the body of GET /api/v1/dcl/views/{entity}.
type ViewResponse struct {
	Data       []map[string]any `json:"data"`
	NextCursor *string          `json:"next_cursor"`
}

func viewRoutes(s *Server) []*route {
	var rs []*route
	for _, e := range canonical.Entities {
		rs = append(rs, &route{http.MethodGet, "/api/v1/dcl/views/" + e.Plural(), s.handleView(e), accessViewer, docView(e)})
	}
	return rs
}

// handleView answers one page of an entity's materialized rows, for the
// token's tenant only.
func (s *Server) handleView(e canonical.Entity) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := stateOf(c).principal
		q, err := canonical.ParseViewQuery(p.Tenant, e, c.QueryParams())
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		page, err := s.deps.Views.Query(ctx, q)
		if err != nil {
			return err
		}
		rows := make([]map[string]any, 0, len(page.Rows))
		for _, r := range page.Rows {
			// Defence in depth: a store bug must not show another tenant's row.
			if t, ok := r["tenant_id"]; ok && t != p.Tenant {
				s.log.ErrorContext(ctx, "view reader returned another tenant's row", "tenant", p.Tenant, "entity", string(e))
				continue
			}
			rows = append(rows, r)
		}
		resp := ViewResponse{Data: rows}
		if page.NextCursor != "" {
			resp.NextCursor = &page.NextCursor
		}
		return c.JSON(http.StatusOK, resp)
	}
}

// HealthResponse is the body of GET /health.
type HealthResponse struct {
	Status     string            `json:"status"` // ok or degraded
	Components []ComponentHealth `json:"components"`
}

// handleHealth reports the HealthChecker's truth: 200 "ok" when every
// component is ok, 200 "degraded" when some are degraded, 503 "degraded"
// when any is down (or reports a status it should not).
func (s *Server) handleHealth(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 5*time.Second)
	defer cancel()
	comps := s.deps.Health.Check(ctx)
	resp := HealthResponse{Status: StatusOK, Components: make([]ComponentHealth, 0, len(comps))}
	code := http.StatusOK
	for _, ch := range comps {
		switch ch.Status {
		case StatusOK:
		case StatusDegraded:
			resp.Status = StatusDegraded
		default:
			if ch.Status != StatusDown {
				ch.Detail = "unknown status " + strconv.Quote(ch.Status) + ": " + ch.Detail
				ch.Status = StatusDown
			}
			resp.Status = StatusDegraded
			code = http.StatusServiceUnavailable
		}
		resp.Components = append(resp.Components, ch)
	}
	sort.SliceStable(resp.Components, func(a, b int) bool { return resp.Components[a].Name < resp.Components[b].Name })
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(code, resp)
}

// DebugConfig is the body of GET /api/v1/debug/config.
type DebugConfig struct {
	Settings   map[string]any `json:"settings"`
	Middleware []string       `json:"middleware"`
	Routes     []string       `json:"routes"`
}

// handleDebugConfig shows the effective settings (never a secret), the
// middleware order and the routes.
func (s *Server) handleDebugConfig(c echo.Context) error {
	cfg := s.cfg
	return c.JSON(http.StatusOK, DebugConfig{
		Settings: map[string]any{
			"addr": cfg.Addr, "jwt_issuer": cfg.JWTIssuer, "jwt_audience": cfg.JWTAudience,
			"jwt_previous_secret_set": cfg.JWTPreviousSecret != "",
			"access_ttl":              cfg.AccessTTL.String(), "refresh_ttl": cfg.RefreshTTL.String(),
			"clock_leeway": cfg.ClockLeeway.String(), "rate_read": cfg.RateRead, "rate_write": cfg.RateWrite,
			"login_rate_account": cfg.LoginRateAccount, "login_rate_address": cfg.LoginRateAddress,
			"trusted_proxies": cfg.TrustedProxies, "idempotency_ttl": cfg.IdempotencyTTL.String(),
			"idempotency_lease": cfg.IdempotencyLease.String(), "max_upload_bytes": cfg.MaxUploadBytes,
			"max_body_bytes": cfg.MaxBodyBytes, "ui": cfg.UI != nil, "metrics_public": cfg.MetricsPublic,
			"file_ingestion": s.deps.Ingester != nil,
		},
		Middleware: s.Middleware(),
		Routes:     s.Routes(),
	})
}
