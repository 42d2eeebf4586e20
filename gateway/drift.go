package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// DriftService is the drift and mapping side of the agents, as the gateway
// needs it. Results are JSON-ready. Errors: streams.ErrNotFound → 404,
// *canonical.FieldError → 422, errors wrapping ErrConflict → 409. Calls may
// be concurrent.
type DriftService interface {
	Findings(ctx context.Context, tenant, status string, limit int) (any, error)
	Finding(ctx context.Context, tenant, id string) (any, error)
	Approve(ctx context.Context, tenant, id, user string, choices map[string]string) (any, error)
	Reject(ctx context.Context, tenant, id, user, reason string) (any, error)
	MappingObjects(ctx context.Context, tenant string) (any, error)
	MappingVersions(ctx context.Context, tenant, system, object string) (any, error)
	MappingVersion(ctx context.Context, tenant, system, object string, version int) (any, error)
	DiffMappings(ctx context.Context, tenant, system, object string, from, to int) (any, error)
	Rollback(ctx context.Context, tenant, system, object string, to int, user string) (any, error)
	Preview(ctx context.Context, tenant string, req json.RawMessage) (any, error)
	Search(ctx context.Context, tenant, q string, k int) (any, error)
	DriftEvents24h(ctx context.Context, tenant string) (any, error)
	ReviewQueue(ctx context.Context, tenant string) (any, error)
	Intelligence(ctx context.Context, tenant string) (any, error)
}

var (
	pathID      = paramDoc{name: "id", in: "path", required: true, schema: str}
	pathSystem  = paramDoc{name: "system", in: "path", required: true, schema: str}
	pathObject  = paramDoc{name: "object", in: "path", required: true, schema: str}
	intParam    = map[string]any{"type": "integer"}
	docFindings = opDoc{tag: "drift", summary: "Drift findings of the tenant, newest first",
		params: []paramDoc{{name: "status", in: "query", description: "open, queued, applied or rejected", schema: str},
			{name: "limit", in: "query", schema: intParam}},
		status: 200, result: "DataList"}
	docFinding = opDoc{tag: "drift", summary: "One finding with its repair proposals, confidences and reasons",
		params: []paramDoc{pathID}, status: 200, result: "AnyObject"}
	docApprove = opDoc{tag: "drift", summary: "Approve a finding's proposals (admins): writes a new mapping version and re-derives the data",
		description: "Body (optional): {\"choices\": {\"<canonical field>\": \"<source field>\"}} to pick among proposals.",
		params:      []paramDoc{pathID}, body: &bodyDoc{"application/json", "AnyObject"}, status: 200, result: "AnyObject", errors: []int{409, 415}}
	docReject = opDoc{tag: "drift", summary: "Reject a finding's proposals (admins)",
		params: []paramDoc{pathID}, body: &bodyDoc{"application/json", "AnyObject"}, status: 200, result: "AnyObject", errors: []int{409, 415}}
	docMappings = opDoc{tag: "mappings", summary: "Mapped source objects with their current versions", status: 200, result: "DataList"}
	docVersions = opDoc{tag: "mappings", summary: "Every stored version of one mapping",
		params: []paramDoc{pathSystem, pathObject}, status: 200, result: "DataList"}
	docVersion = opDoc{tag: "mappings", summary: "One mapping version",
		params: []paramDoc{pathSystem, pathObject, {name: "version", in: "path", required: true, schema: intParam}}, status: 200, result: "AnyObject"}
	docDiff = opDoc{tag: "mappings", summary: "Difference between two versions of a mapping",
		params: []paramDoc{pathSystem, pathObject, {name: "from", in: "query", required: true, schema: intParam}, {name: "to", in: "query", required: true, schema: intParam}},
		status: 200, result: "AnyObject"}
	docRollback = opDoc{tag: "mappings", summary: "Roll a mapping back to an earlier version (admins); the data is re-derived",
		description: "Body: {\"version\": N}. Writes a new version equal to version N.",
		params:      []paramDoc{pathSystem, pathObject}, body: &bodyDoc{"application/json", "AnyObject"}, status: 200, result: "AnyObject", errors: []int{409, 415}}
	docPreview = opDoc{tag: "mappings", summary: "Apply a draft mapping to sample rows or the last raw records; publishes nothing (admins)",
		description: "Body: {\"system\", \"spec\": <object mapping>, \"rows\"?: [...], \"last\"?: N}.",
		body:        &bodyDoc{"application/json", "AnyObject"}, status: 200, result: "AnyObject", errors: []int{415}}
	docSearch = opDoc{tag: "aam", summary: "Semantic search over canonical fields and mappings",
		params: []paramDoc{{name: "q", in: "query", required: true, schema: str}, {name: "k", in: "query", schema: intParam}},
		status: 200, result: "DataList"}
	docIntelMappings = opDoc{tag: "aam", summary: "Mappings in use, with versions", status: 200, result: "DataList"}
	docIntelDrift    = opDoc{tag: "aam", summary: "Drift findings of the last 24 hours", status: 200, result: "DataList"}
	docIntelQueue    = opDoc{tag: "aam", summary: "Repair proposals waiting for a person", status: 200, result: "DataList"}
	docIntelRepair   = opDoc{tag: "aam", summary: "Repair metrics computed from stored findings (null where there is no data)", status: 200, result: "AnyObject"}
)

func driftRoutes(s *Server) []*route {
	if s.deps.Repairs == nil {
		return nil
	}
	const m = "/api/v1/aam/mappings"
	return []*route{
		{http.MethodGet, "/api/v1/aam/drift", s.handleFindings, accessViewer, docFindings},
		{http.MethodGet, "/api/v1/aam/drift/:id", s.handleFinding, accessViewer, docFinding},
		{http.MethodPost, "/api/v1/aam/drift/:id/approve", s.handleApprove, accessAdmin, docApprove},
		{http.MethodPost, "/api/v1/aam/drift/:id/reject", s.handleReject, accessAdmin, docReject},
		{http.MethodGet, m, s.handleMappings, accessViewer, docMappings},
		{http.MethodPost, m + "/preview", s.handlePreview, accessAdmin, docPreview},
		{http.MethodGet, m + "/:system/:object/versions", s.handleVersions, accessViewer, docVersions},
		{http.MethodGet, m + "/:system/:object/versions/:version", s.handleVersion, accessViewer, docVersion},
		{http.MethodGet, m + "/:system/:object/diff", s.handleDiff, accessViewer, docDiff},
		{http.MethodPost, m + "/:system/:object/rollback", s.handleRollback, accessAdmin, docRollback},
		{http.MethodGet, "/api/v1/aam/search", s.handleSearch, accessViewer, docSearch},
		{http.MethodGet, "/api/v1/aam/intelligence/mappings", s.handleIntelMappings, accessViewer, docIntelMappings},
		{http.MethodGet, "/api/v1/aam/intelligence/drift_events_24h", s.handleIntelDrift, accessViewer, docIntelDrift},
		{http.MethodGet, "/api/v1/aam/intelligence/rag_queue", s.handleIntelQueue, accessViewer, docIntelQueue},
		{http.MethodGet, "/api/v1/aam/intelligence/repair_metrics", s.handleIntelRepair, accessViewer, docIntelRepair},
	}
}

func intQuery(c echo.Context, name string, def, min, max int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, newError(http.StatusUnprocessableEntity, CodeValidation, "%s: want an integer from %d to %d, got %q", name, min, max, clip(v))
	}
	return n, nil
}

func intParamOf(c echo.Context, name string) (int, error) {
	n, err := strconv.Atoi(c.Param(name))
	if err != nil {
		return 0, newError(http.StatusUnprocessableEntity, CodeValidation, "%s: want an integer, got %q", name, clip(c.Param(name)))
	}
	return n, nil
}

func dataOf(v any, err error, c echo.Context) error {
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"data": v})
}

func objOf(v any, err error, c echo.Context) error {
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Server) handleFindings(c echo.Context) error {
	limit, err := intQuery(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	v, err := s.deps.Repairs.Findings(c.Request().Context(), stateOf(c).principal.Tenant, c.QueryParam("status"), limit)
	return dataOf(v, err, c)
}

func (s *Server) handleFinding(c echo.Context) error {
	v, err := s.deps.Repairs.Finding(c.Request().Context(), stateOf(c).principal.Tenant, c.Param("id"))
	return objOf(v, err, c)
}

func (s *Server) handleApprove(c echo.Context) error {
	var body struct {
		Choices map[string]string `json:"choices"`
	}
	if c.Request().ContentLength != 0 {
		if err := s.decodeJSON(c, &body); err != nil {
			return err
		}
	}
	p := stateOf(c).principal
	v, err := s.deps.Repairs.Approve(c.Request().Context(), p.Tenant, c.Param("id"), p.UserID, body.Choices)
	return objOf(v, err, c)
}

func (s *Server) handleReject(c echo.Context) error {
	var body struct {
		Reason string `json:"reason"`
	}
	if c.Request().ContentLength != 0 {
		if err := s.decodeJSON(c, &body); err != nil {
			return err
		}
	}
	p := stateOf(c).principal
	v, err := s.deps.Repairs.Reject(c.Request().Context(), p.Tenant, c.Param("id"), p.UserID, body.Reason)
	return objOf(v, err, c)
}

func (s *Server) handleMappings(c echo.Context) error {
	v, err := s.deps.Repairs.MappingObjects(c.Request().Context(), stateOf(c).principal.Tenant)
	return dataOf(v, err, c)
}

func (s *Server) handleVersions(c echo.Context) error {
	v, err := s.deps.Repairs.MappingVersions(c.Request().Context(), stateOf(c).principal.Tenant, c.Param("system"), c.Param("object"))
	return dataOf(v, err, c)
}

func (s *Server) handleVersion(c echo.Context) error {
	n, err := intParamOf(c, "version")
	if err != nil {
		return err
	}
	v, err := s.deps.Repairs.MappingVersion(c.Request().Context(), stateOf(c).principal.Tenant, c.Param("system"), c.Param("object"), n)
	return objOf(v, err, c)
}

func (s *Server) handleDiff(c echo.Context) error {
	from, err := intQuery(c, "from", 0, 1, 1<<30)
	if err != nil {
		return err
	}
	to, err := intQuery(c, "to", 0, 1, 1<<30)
	if err != nil {
		return err
	}
	if from == 0 || to == 0 {
		return newError(http.StatusUnprocessableEntity, CodeValidation, "from and to: both versions are required")
	}
	v, err := s.deps.Repairs.DiffMappings(c.Request().Context(), stateOf(c).principal.Tenant, c.Param("system"), c.Param("object"), from, to)
	return objOf(v, err, c)
}

func (s *Server) handleRollback(c echo.Context) error {
	var body struct {
		Version int `json:"version"`
	}
	if err := s.decodeJSON(c, &body); err != nil {
		return err
	}
	if body.Version < 1 {
		return newError(http.StatusUnprocessableEntity, CodeValidation, "version: want the version to roll back to (1 or more)")
	}
	p := stateOf(c).principal
	v, err := s.deps.Repairs.Rollback(c.Request().Context(), p.Tenant, c.Param("system"), c.Param("object"), body.Version, p.UserID)
	return objOf(v, err, c)
}

func (s *Server) handlePreview(c echo.Context) error {
	var body json.RawMessage
	if err := s.decodeJSON(c, &body); err != nil {
		return err
	}
	v, err := s.deps.Repairs.Preview(c.Request().Context(), stateOf(c).principal.Tenant, body)
	return objOf(v, err, c)
}

func (s *Server) handleSearch(c echo.Context) error {
	q := c.QueryParam("q")
	if q == "" || len(q) > 500 {
		return newError(http.StatusUnprocessableEntity, CodeValidation, "q: want 1 to 500 characters")
	}
	k, err := intQuery(c, "k", 10, 1, 100)
	if err != nil {
		return err
	}
	v, err := s.deps.Repairs.Search(c.Request().Context(), stateOf(c).principal.Tenant, q, k)
	return dataOf(v, err, c)
}

func (s *Server) handleIntelMappings(c echo.Context) error {
	v, err := s.deps.Repairs.MappingObjects(c.Request().Context(), stateOf(c).principal.Tenant)
	return dataOf(v, err, c)
}

func (s *Server) handleIntelDrift(c echo.Context) error {
	v, err := s.deps.Repairs.DriftEvents24h(c.Request().Context(), stateOf(c).principal.Tenant)
	return dataOf(v, err, c)
}

func (s *Server) handleIntelQueue(c echo.Context) error {
	v, err := s.deps.Repairs.ReviewQueue(c.Request().Context(), stateOf(c).principal.Tenant)
	return dataOf(v, err, c)
}

func (s *Server) handleIntelRepair(c echo.Context) error {
	v, err := s.deps.Repairs.Intelligence(c.Request().Context(), stateOf(c).principal.Tenant)
	return objOf(v, err, c)
}
