package gateway

import (
	"context"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
)

// DeadLetters reads and redrives the DLQ stream. tenant is always the
// verified token's tenant and must not be empty; the implementation returns
// only that tenant's dead letters (another tenant's sequence is
// streams.ErrNotFound). Calls may be concurrent; *streams.DLQ fits. The
// gateway never closes it.
type DeadLetters interface {
	List(ctx context.Context, tenant string, limit int, before uint64) ([]streams.DeadLetterEntry, uint64, error)
	Get(ctx context.Context, tenant string, seq uint64) (*streams.DeadLetterEntry, error)
	Redrive(ctx context.Context, tenant string, seqs []uint64, all bool) (streams.RedriveResult, error)
}

// Rebuilder rebuilds a tenant's materialized tables from the CANONICAL
// stream beside the live ones and swaps them in atomically (entity "" means
// every entity). It runs synchronously and honours ctx; the result is
// JSON-ready. Calls may be concurrent.
type Rebuilder interface {
	Rebuild(ctx context.Context, tenant string, entity canonical.Entity) (any, error)
}

var _ DeadLetters = (*streams.DLQ)(nil)

var (
	docDLQList = opDoc{tag: "dcl", summary: "The tenant's dead letters, newest first",
		description: "Each item: {seq, stage, reason, subject, sequence, attempts, consumer, trace_id, time, data}. " +
			"seq is the DLQ stream sequence; cursor is the seq to page below (next_cursor of the previous page).",
		params: []paramDoc{{name: "limit", in: "query", description: "1..1000, default 100", schema: intParam},
			{name: "cursor", in: "query", description: "a DLQ sequence: items below it", schema: str}},
		status: 200, result: "DataList"}
	docDLQGet = opDoc{tag: "dcl", summary: "One dead letter by its DLQ sequence",
		params: []paramDoc{{name: "seq", in: "path", required: true, schema: intParam}}, status: 200, result: "AnyObject"}
	docDLQRedrive = opDoc{tag: "dcl", summary: "Redrive dead letters (admins): republish each original message to its original subject and delete it from the DLQ",
		description: "Body: {\"seqs\": [N, ...]} or {\"all\": true}. Answers {\"redriven\": N, \"failed\": [{\"seq\", \"reason\"}]}. " +
			"Mapping-stage dead letters hold a source record, not a message: they are reported as not redrivable (fix the mapping and re-sync or re-upload).",
		body: &bodyDoc{"application/json", "AnyObject"}, status: 200, result: "AnyObject", errors: []int{415}}
	docRebuild = opDoc{tag: "dcl", summary: "Rebuild the tenant's materialized tables from the CANONICAL stream (admins)",
		description: "Body (optional): {\"entity\": \"account\"|\"opportunity\"|\"contact\"}; default every entity. " +
			"Synchronous: fresh tables are filled beside the live ones and swapped in per tenant in one transaction per store, " +
			"so readers never see a half-built table; events that arrive meanwhile are re-applied after the swap. " +
			"Answers {\"tenant\", \"entities\", \"events\", \"stores\", \"caught_up\", \"took_ms\"}.",
		body: &bodyDoc{"application/json", "AnyObject"}, status: 200, result: "AnyObject", errors: []int{415}}
)

func dlqRoutes(s *Server) []*route {
	var rs []*route
	if s.deps.DeadLetters != nil {
		rs = append(rs,
			&route{http.MethodGet, "/api/v1/dcl/dlq", s.handleDLQList, accessViewer, docDLQList},
			&route{http.MethodGet, "/api/v1/dcl/dlq/:seq", s.handleDLQGet, accessViewer, docDLQGet},
			&route{http.MethodPost, "/api/v1/dcl/dlq/redrive", s.handleDLQRedrive, accessAdmin, docDLQRedrive})
	}
	if s.deps.Rebuilder != nil {
		rs = append(rs, &route{http.MethodPost, "/api/v1/dcl/rebuild", s.handleRebuild, accessAdmin, docRebuild})
	}
	return rs
}

func (s *Server) handleDLQList(c echo.Context) error {
	limit, err := intQuery(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	var before uint64
	if v := c.QueryParam("cursor"); v != "" {
		if before, err = strconv.ParseUint(v, 10, 64); err != nil || before == 0 {
			return invalid("cursor", "want a DLQ sequence (a positive integer), got %q", clip(v))
		}
	}
	items, next, err := s.deps.DeadLetters.List(c.Request().Context(), stateOf(c).principal.Tenant, limit, before)
	if err != nil {
		return err
	}
	var nc any
	if next > 0 {
		nc = strconv.FormatUint(next, 10)
	}
	return c.JSON(http.StatusOK, map[string]any{"data": items, "next_cursor": nc})
}

func (s *Server) handleDLQGet(c echo.Context) error {
	seq, err := strconv.ParseUint(c.Param("seq"), 10, 64)
	if err != nil || seq == 0 {
		return invalid("seq", "want a DLQ sequence (a positive integer), got %q", clip(c.Param("seq")))
	}
	e, err := s.deps.DeadLetters.Get(c.Request().Context(), stateOf(c).principal.Tenant, seq)
	return objOf(e, err, c)
}

func (s *Server) handleDLQRedrive(c echo.Context) error {
	var body struct {
		Seqs []uint64 `json:"seqs"`
		All  bool     `json:"all"`
	}
	if err := s.decodeJSON(c, &body); err != nil {
		return err
	}
	if body.All == (len(body.Seqs) > 0) {
		return invalid("seqs", "give either seqs (a list of DLQ sequences) or all: true")
	}
	if len(body.Seqs) > 10_000 {
		return invalid("seqs", "at most 10000 per request")
	}
	res, err := s.deps.DeadLetters.Redrive(c.Request().Context(), stateOf(c).principal.Tenant, body.Seqs, body.All)
	return objOf(res, err, c)
}

func (s *Server) handleRebuild(c echo.Context) error {
	var body struct {
		Entity string `json:"entity"`
	}
	if c.Request().ContentLength != 0 {
		if err := s.decodeJSON(c, &body); err != nil {
			return err
		}
	}
	e := canonical.Entity(body.Entity)
	if body.Entity != "" {
		if _, ok := canonical.SchemaOf(e); !ok {
			return invalid("entity", "want account, opportunity or contact, got %q", clip(body.Entity))
		}
	}
	res, err := s.deps.Rebuilder.Rebuild(c.Request().Context(), stateOf(c).principal.Tenant, e)
	return objOf(res, err, c)
}
