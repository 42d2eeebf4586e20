package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
)

// OntologyService answers the DCL's description of itself for a tenant:
// the canonical entities with the source fields that feed them (through the
// tenant's current mappings), the source schemas the agents observed, and a
// preview of recent raw records through the current mapping. Results are
// JSON-ready. Errors: streams.ErrNotFound → 404 (also for another tenant's
// connection), *canonical.FieldError → 422. Calls may be concurrent; the
// gateway never closes it. A preview publishes nothing.
type OntologyService interface {
	// Sources lists, per canonical entity, each mapped source object with
	// its mapping version and field mapping.
	Sources(ctx context.Context, tenant string) (map[canonical.Entity][]OntologySource, error)
	SourceSchemas(ctx context.Context, tenant string) (any, error)
	Preview(ctx context.Context, tenant, connection, object string, limit int) (any, error)
}

// OntologySource is one source object feeding a canonical entity.
type OntologySource struct {
	System         string              `json:"system"`
	Object         string              `json:"object"`
	MappingVersion int                 `json:"mapping_version"`
	Fields         []OntologyFieldFeed `json:"fields"`
}

// OntologyFieldFeed says which source field(s) feed one canonical field,
// and how.
type OntologyFieldFeed struct {
	Target     string                `json:"target"`
	Source     string                `json:"source,omitempty"`
	Sources    []string              `json:"sources,omitempty"`
	Constant   *string               `json:"constant,omitempty"`
	Default    *string               `json:"default,omitempty"`
	Transforms []canonical.Transform `json:"transforms"`
}

// OntologyEntity is one canonical entity of GET /api/v1/dcl/ontology.
type OntologyEntity struct {
	Name    canonical.Entity  `json:"name"`
	Fields  []canonical.Field `json:"fields"`
	Sources []OntologySource  `json:"sources"`
}

var (
	docOntology = opDoc{tag: "dcl", summary: "Canonical entities, their fields, and which source field feeds each per system",
		description: "Each entity's fields (name, type, required, description) and, per mapped source system and object, the tenant's current mapping version with each target field's source, transforms, default or constant.",
		status:      200, result: "AnyObject"}
	docSourceSchemas = opDoc{tag: "dcl", summary: "Observed source fields per connection and object, with inferred types",
		description: "From the schema observer's persisted fingerprints: only what was actually seen in RAW.",
		status:      200, result: "DataList"}
	docDCLPreview = opDoc{tag: "dcl", summary: "Recent raw records of a connection's object beside their canonical form; publishes nothing",
		params: []paramDoc{{name: "connection", in: "query", required: true, description: "connection id (or \"filesource\" for uploaded files)", schema: str},
			{name: "object", in: "query", required: true, description: "source object, as in raw.<tenant>.<system>.<object>", schema: str},
			{name: "limit", in: "query", description: "1 to 200, default 20", schema: intParam}},
		status: 200, result: "AnyObject", errors: []int{404}}
	docLastCanonical = opDoc{tag: "debug", summary: "The tenant's last canonical events of an entity, newest first (DEV_DEBUG only)",
		params: []paramDoc{{name: "entity", in: "query", required: true, description: "account, opportunity or contact", schema: str},
			{name: "limit", in: "query", description: "1 to 200, default 20", schema: intParam}},
		status: 200, result: "DataList"}
)

// ontologyRoutes serves the ontology (always: canonical schemas need no
// dependency), and source schemas and preview when an OntologyService is
// set; with DEV_DEBUG, the debug read of the CANONICAL stream.
func ontologyRoutes(s *Server) []*route {
	rs := []*route{{http.MethodGet, "/api/v1/dcl/ontology", s.handleOntology, accessViewer, docOntology}}
	if s.deps.Ontology != nil {
		rs = append(rs,
			&route{http.MethodGet, "/api/v1/dcl/source-schemas", s.handleSourceSchemas, accessViewer, docSourceSchemas},
			&route{http.MethodGet, "/api/v1/dcl/preview", s.handleDCLPreview, accessViewer, docDCLPreview})
	}
	if s.cfg.Debug {
		rs = append(rs, &route{http.MethodGet, "/api/v1/debug/last-canonical", s.handleLastCanonical, accessViewer, docLastCanonical})
	}
	return rs
}

func (s *Server) handleOntology(c echo.Context) error {
	var sources map[canonical.Entity][]OntologySource
	if s.deps.Ontology != nil {
		var err error
		if sources, err = s.deps.Ontology.Sources(c.Request().Context(), stateOf(c).principal.Tenant); err != nil {
			return err
		}
	}
	out := []OntologyEntity{}
	for _, e := range canonical.Entities {
		sc, _ := canonical.SchemaOf(e)
		src := sources[e]
		if src == nil {
			src = []OntologySource{}
		}
		out = append(out, OntologyEntity{Name: e, Fields: slices.Clone(sc.Fields), Sources: src})
	}
	return c.JSON(http.StatusOK, map[string]any{"entities": out})
}

func (s *Server) handleSourceSchemas(c echo.Context) error {
	v, err := s.deps.Ontology.SourceSchemas(c.Request().Context(), stateOf(c).principal.Tenant)
	return dataOf(v, err, c)
}

func (s *Server) handleDCLPreview(c echo.Context) error {
	conn, obj := c.QueryParam("connection"), c.QueryParam("object")
	if conn == "" {
		return invalid("connection", "required")
	}
	if obj == "" {
		return invalid("object", "required")
	}
	limit, err := intQuery(c, "limit", 20, 1, 200)
	if err != nil {
		return err
	}
	v, err := s.deps.Ontology.Preview(c.Request().Context(), stateOf(c).principal.Tenant, conn, obj, limit)
	return objOf(v, err, c)
}

// handleLastCanonical reads the newest canonical events of the caller's
// tenant and one entity straight from the CANONICAL stream.
func (s *Server) handleLastCanonical(c echo.Context) error {
	e, err := canonical.ParseEntity(c.QueryParam("entity"))
	if err != nil {
		return invalid("entity", "%s", err.Error())
	}
	limit, err := intQuery(c, "limit", 20, 1, 200)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	subj, err := streams.CanonicalSubject(stateOf(c).principal.Tenant, string(e))
	if err != nil {
		return invalid("tenant", "%s", err.Error())
	}
	msgs, err := tail(ctx, s.deps.JetStream, streams.StreamCanonical, subj, limit, false)
	if err != nil {
		return err
	}
	out := make([]json.RawMessage, 0, len(msgs))
	for i := len(msgs) - 1; i >= 0; i-- {
		// Only valid CloudEvents are shown, re-encoded as parsed.
		ev, err := canonical.ParseEvent(msgs[i].Data())
		if err != nil {
			continue
		}
		b, err := ev.MarshalJSON()
		if err != nil {
			continue
		}
		out = append(out, b)
	}
	return c.JSON(http.StatusOK, map[string]any{"data": out})
}
