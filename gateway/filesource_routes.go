package gateway

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
)

// FileReplayInput is the body of POST /api/v1/filesource/replay.
type FileReplayInput struct {
	// Paths limits the replay to these discovered files (their "path" in
	// discover); empty replays every discovered file of the tenant.
	Paths   []string `json:"paths"`
	TraceID string   `json:"-"`
}

// FileSourceService is the tenant's watch folder: the files found there
// (with the entity and system each maps to), a replay of them, and the
// watcher's status. Results are JSON-ready; errors as ConnectionService's.
// Calls may be concurrent; the gateway never closes it.
type FileSourceService interface {
	Discover(ctx context.Context, tenant string) (any, error)
	Replay(ctx context.Context, tenant string, in FileReplayInput) (any, error)
	Status(ctx context.Context, tenant string) (any, error)
}

var (
	docFSDiscover = opDoc{tag: "filesource", summary: "CSV files in the tenant's watch folder, with the entity and system each maps to",
		description: "Layout: <watch-dir>/<tenant>/<entity>/*.csv (system filesource) or <watch-dir>/<tenant>/<system>/<entity>/*.csv. Each file shows its content hash and whether it was ingested (and by which job).",
		status:      200, result: "DataList"}
	docFSReplay = opDoc{tag: "filesource", summary: "Ingest discovered files again (admins)",
		description: "Body (optional): {\"paths\": [...]} to replay only some files. Re-ingesting is safe: event ids are deterministic, so the views do not change unless the mapping did.",
		body:        &bodyDoc{"application/json", "AnyObject"}, status: 202, result: "AnyObject", errors: []int{415}}
	docFSStatus = opDoc{tag: "filesource", summary: "The watcher's state for the tenant: folder, last scan, files by state, recent jobs",
		status: 200, result: "AnyObject"}
)

// fileSourceRoutes are absent with FEATURE_USE_FILESOURCE=false.
func fileSourceRoutes(s *Server) []*route {
	if s.deps.FileSource == nil || s.deps.FileSourceOff {
		return nil
	}
	return []*route{
		{http.MethodGet, "/api/v1/filesource/discover", s.handleFSDiscover, accessViewer, docFSDiscover},
		{http.MethodPost, "/api/v1/filesource/replay", s.handleFSReplay, accessAdmin, docFSReplay},
		{http.MethodGet, "/api/v1/filesource/status", s.handleFSStatus, accessViewer, docFSStatus},
	}
}

// withoutFileSource drops the upload route when the file source is off.
func withoutFileSource(s *Server, rs []*route) []*route {
	if !s.deps.FileSourceOff {
		return rs
	}
	out := rs[:0]
	for _, r := range rs {
		if r.method == http.MethodPost && r.path == "/api/v1/filesource/upload" {
			continue
		}
		out = append(out, r)
	}
	return out
}

func (s *Server) handleFSDiscover(c echo.Context) error {
	v, err := s.deps.FileSource.Discover(c.Request().Context(), stateOf(c).principal.Tenant)
	return dataOf(v, err, c)
}

func (s *Server) handleFSReplay(c echo.Context) error {
	var in FileReplayInput
	if c.Request().ContentLength != 0 {
		if err := s.decodeJSON(c, &in); err != nil {
			return err
		}
	}
	ctx := c.Request().Context()
	in.TraceID = TraceID(ctx)
	v, err := s.deps.FileSource.Replay(ctx, stateOf(c).principal.Tenant, in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, v)
}

func (s *Server) handleFSStatus(c echo.Context) error {
	v, err := s.deps.FileSource.Status(c.Request().Context(), stateOf(c).principal.Tenant)
	return objOf(v, err, c)
}
