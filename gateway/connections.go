package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/autonomos/autonomos/canonical"
)

// ConnectionInput is the body of connection create and update. Secrets are
// write-only: no response ever carries them.
type ConnectionInput struct {
	Name     string            `json:"name"`
	System   string            `json:"system"`
	Config   map[string]any    `json:"config"`
	Secrets  map[string]string `json:"secrets"`
	Interval string            `json:"interval"`
	// Reconcile is the period of scheduled reconciliation passes ("" none).
	Reconcile string `json:"reconcile,omitempty"`
}

// ConnectionService manages a tenant's connections. Views returned are
// JSON-ready and never hold secrets. Errors: streams.ErrNotFound (also for
// another tenant's id), *canonical.FieldError (joined) for bad input, and
// errors wrapping ErrConflict for state conflicts. Calls may be concurrent.
type ConnectionService interface {
	Create(ctx context.Context, tenant string, in ConnectionInput) (any, error)
	List(ctx context.Context, tenant string) (any, error)
	Get(ctx context.Context, tenant, id string) (any, error)
	Update(ctx context.Context, tenant, id string, in ConnectionInput) (any, error)
	Delete(ctx context.Context, tenant, id string) error
	// Test calls the source with the connection's settings; a refusal by
	// the source is a nil error with ok false.
	Test(ctx context.Context, tenant, id string) (ok bool, message string, err error)
	// Sync queues a sync job and returns its id; mode is "" (incremental)
	// or "reconcile" (a full pass that also finds deleted records).
	Sync(ctx context.Context, tenant, id, traceID, mode string) (string, error)
	Pause(ctx context.Context, tenant, id string) (any, error)
	Resume(ctx context.Context, tenant, id string) (any, error)
}

// JobCanceller cancels a tenant's queued or running job; errors as
// ConnectionService's.
type JobCanceller interface {
	Cancel(ctx context.Context, tenant, id string) error
}

// ErrConflict marks an error that answers 409 (a sync already running, a
// job already finished, a status that forbids the change).
var ErrConflict = errors.New("conflict")

var (
	docConnCreate = opDoc{tag: "aam", summary: "Create a connection (admins)",
		description: "system: salesforce, hubspot, dynamics, postgres or filesource; config keys per system in DESIGN.md; secrets are write-only and stored encrypted; interval is a Go duration (at least 1m) or empty for manual syncs. Creating does not start a sync.",
		body:        &bodyDoc{"application/json", "ConnectionInput"}, status: 201, result: "Connection", errors: []int{415}}
	docConnList   = opDoc{tag: "aam", summary: "The tenant's connections", status: 200, result: "ConnectionList"}
	docConnGet    = opDoc{tag: "aam", summary: "One connection", status: 200, result: "Connection"}
	docConnUpdate = opDoc{tag: "aam", summary: "Replace a connection's name, config and interval (admins)",
		description: "Secrets are merged: an omitted secret keeps its value, one sent as an empty string is removed. The system cannot change.",
		body:        &bodyDoc{"application/json", "ConnectionInput"}, status: 200, result: "Connection", errors: []int{415}}
	docConnDelete = opDoc{tag: "aam", summary: "Delete a connection and forget its cursors (admins)", status: 204}
	docConnTest   = opDoc{tag: "aam", summary: "Call the source with the connection's settings (admins)", status: 200, result: "ConnectionTest"}
	docConnSync   = opDoc{tag: "aam", summary: "Queue a sync now (admins)",
		description: "409 while a sync of the connection is queued or running. Follow the job at /api/v1/aoa/jobs/{id}. " +
			"mode=reconcile runs a full reconciliation pass: every object read from the beginning, changes that did not bump the modified stamp applied, " +
			"and records the source no longer has (compared with the previous full read) deleted.",
		params: []paramDoc{{name: "mode", in: "query", description: "incremental (default) or reconcile",
			schema: map[string]any{"type": "string", "enum": []string{"incremental", "reconcile"}}}},
		status: 202, result: "UploadAccepted", errors: []int{409, 422}}
	docConnPause  = opDoc{tag: "aam", summary: "Pause the connection's schedule (admins)", status: 200, result: "Connection"}
	docConnResume = opDoc{tag: "aam", summary: "Resume the connection's schedule (admins)", status: 200, result: "Connection", errors: []int{409}}
	docJobCancel  = opDoc{tag: "aoa", summary: "Cancel a queued or running job (admins)", status: 202, result: "Job", errors: []int{409}}
)

func connectionRoutes(s *Server) []*route {
	if s.deps.Connections == nil {
		return nil
	}
	const base = "/api/v1/aam/connections"
	rs := []*route{
		{http.MethodPost, base, s.handleConnCreate, accessAdmin, docConnCreate},
		{http.MethodGet, base, s.handleConnList, accessViewer, docConnList},
		{http.MethodGet, base + "/:id", s.handleConnGet, accessViewer, docConnGet},
		{http.MethodPut, base + "/:id", s.handleConnUpdate, accessAdmin, docConnUpdate},
		{http.MethodDelete, base + "/:id", s.handleConnDelete, accessAdmin, docConnDelete},
		{http.MethodPost, base + "/:id/test", s.handleConnTest, accessAdmin, docConnTest},
		{http.MethodPost, base + "/:id/sync", s.handleConnSync, accessAdmin, docConnSync},
		{http.MethodPost, base + "/:id/pause", s.handleConnPause, accessAdmin, docConnPause},
		{http.MethodPost, base + "/:id/resume", s.handleConnResume, accessAdmin, docConnResume},
	}
	if s.deps.JobCancel != nil {
		rs = append(rs, &route{http.MethodPost, "/api/v1/aoa/jobs/:id/cancel", s.handleJobCancel, accessAdmin, docJobCancel})
	}
	return rs
}

func (s *Server) handleConnCreate(c echo.Context) error {
	var in ConnectionInput
	if err := s.decodeJSON(c, &in); err != nil {
		return err
	}
	v, err := s.deps.Connections.Create(c.Request().Context(), stateOf(c).principal.Tenant, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, v)
}

func (s *Server) handleConnList(c echo.Context) error {
	v, err := s.deps.Connections.List(c.Request().Context(), stateOf(c).principal.Tenant)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"data": v})
}

func (s *Server) handleConnGet(c echo.Context) error {
	v, err := s.deps.Connections.Get(c.Request().Context(), stateOf(c).principal.Tenant, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Server) handleConnUpdate(c echo.Context) error {
	var in ConnectionInput
	if err := s.decodeJSON(c, &in); err != nil {
		return err
	}
	v, err := s.deps.Connections.Update(c.Request().Context(), stateOf(c).principal.Tenant, c.Param("id"), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Server) handleConnDelete(c echo.Context) error {
	if err := s.deps.Connections.Delete(c.Request().Context(), stateOf(c).principal.Tenant, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) handleConnTest(c echo.Context) error {
	ok, msg, err := s.deps.Connections.Test(c.Request().Context(), stateOf(c).principal.Tenant, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"ok": ok, "message": msg})
}

func (s *Server) handleConnSync(c echo.Context) error {
	ctx := c.Request().Context()
	mode := c.QueryParam("mode")
	switch mode {
	case "", "incremental":
		mode = ""
	case "reconcile":
	default:
		return &canonical.FieldError{Field: "mode", Reason: fmt.Sprintf("want incremental or reconcile, got %q", mode)}
	}
	id, err := s.deps.Connections.Sync(ctx, stateOf(c).principal.Tenant, c.Param("id"), TraceID(ctx), mode)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, UploadAccepted{JobID: id})
}

func (s *Server) handleConnPause(c echo.Context) error {
	v, err := s.deps.Connections.Pause(c.Request().Context(), stateOf(c).principal.Tenant, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Server) handleConnResume(c echo.Context) error {
	v, err := s.deps.Connections.Resume(c.Request().Context(), stateOf(c).principal.Tenant, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Server) handleJobCancel(c echo.Context) error {
	ctx := c.Request().Context()
	p := stateOf(c).principal
	if err := s.deps.JobCancel.Cancel(ctx, p.Tenant, c.Param("id")); err != nil {
		return err
	}
	j, err := s.deps.Jobs.Get(ctx, p.Tenant, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, normalizeJob(j))
}
