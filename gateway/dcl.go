package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
)

// RecordCount is how many of a tenant's live (not deleted) records of one
// entity the materialized store holds from one source system and object.
type RecordCount struct {
	Entity       canonical.Entity
	SourceSystem string // "" when the store cannot break the entity down
	SourceObject string // "" when the store cannot tell
	Count        int64
}

// RecordCounter counts a tenant's records in the store that answers the
// views, so /dcl/state and /dcl/graph show what the views hold. It returns
// an error — never a guess — when the store does not answer. Called
// concurrently; it stops when ctx is cancelled. The gateway never closes
// it.
type RecordCounter interface {
	CountRecords(ctx context.Context, tenant string) ([]RecordCount, error)
}

// EntityStore is what StoreCounts needs of a materialized store: its views
// and a count of a tenant's live rows of an entity. Both subscriber stores
// fit.
type EntityStore interface {
	ViewReader
	Count(ctx context.Context, tenant string, e canonical.Entity) (int64, error)
}

// StoreCounts is a RecordCounter for a store that counts only per entity:
// an entity of at most MaxScan rows is broken down by source system by
// paging its view; a larger one is reported whole (SourceSystem ""),
// never estimated. SourceObject is always "": view rows do not carry it. A
// store with a grouped count (source_system, source_object) should be
// given to the gateway as a RecordCounter of its own instead.
type StoreCounts struct {
	Store EntityStore
	// MaxScan bounds the rows paged per entity. Default 20000.
	MaxScan int64
}

// CountRecords implements RecordCounter.
func (sc StoreCounts) CountRecords(ctx context.Context, tenant string) ([]RecordCount, error) {
	maxScan := sc.MaxScan
	if maxScan <= 0 {
		maxScan = 20000
	}
	var out []RecordCount
	for _, e := range canonical.Entities {
		n, err := sc.Store.Count(ctx, tenant, e)
		if err != nil {
			return nil, fmt.Errorf("count %s: %w", e.Plural(), err)
		}
		switch {
		case n == 0:
			continue
		case n > maxScan:
			out = append(out, RecordCount{Entity: e, Count: n})
			continue
		}
		bySystem, err := sc.scan(ctx, tenant, e)
		if err != nil {
			return nil, err
		}
		for sys, k := range bySystem {
			out = append(out, RecordCount{Entity: e, SourceSystem: sys, Count: k})
		}
	}
	sortCounts(out)
	return out, nil
}

// scan pages an entity's view and counts rows by source system.
func (sc StoreCounts) scan(ctx context.Context, tenant string, e canonical.Entity) (map[string]int64, error) {
	out := map[string]int64{}
	key := e.KeyField()
	q := canonical.ViewQuery{Tenant: tenant, Entity: e, Limit: canonical.MaxViewLimit}
	for {
		page, err := sc.Store.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", e.Plural(), err)
		}
		for _, r := range page.Rows {
			if t, ok := r["tenant_id"]; ok && t != tenant {
				continue
			}
			sys, _ := r["source_system"].(string)
			out[sys]++
		}
		if page.NextCursor == "" || len(page.Rows) == 0 {
			return out, nil
		}
		last, _ := page.Rows[len(page.Rows)-1][key].(string)
		if last == "" || last <= q.After {
			return nil, fmt.Errorf("scan %s: the store's pages do not advance", e.Plural())
		}
		q.After = last
	}
}

func sortCounts(cs []RecordCount) {
	sort.Slice(cs, func(a, b int) bool {
		x, y := cs[a], cs[b]
		if x.Entity != y.Entity {
			return x.Entity < y.Entity
		}
		if x.SourceSystem != y.SourceSystem {
			return x.SourceSystem < y.SourceSystem
		}
		return x.SourceObject < y.SourceObject
	})
}

// MappingCoverage tells which canonical fields the tenant's mapping in
// force fills for a source system's object producing entity e (object ""
// when the caller does not know the object: the system's mapping for e).
// It returns streams.ErrNotFound when there is no such mapping. Called
// concurrently; the gateway never closes it.
type MappingCoverage interface {
	MappedFields(ctx context.Context, tenant, system, object string, e canonical.Entity) ([]string, error)
}

// DriftSummary is a tenant's drift and repair figures. A nil field is one
// the reporter has no data for; the gateway shows it as null.
type DriftSummary struct {
	OpenFindings         *int
	Detections24h        *int
	Repairs24h           *int
	ManualReviewsPending *int
	AverageConfidence    *float64
	AverageRepairSeconds *float64
}

// DriftReporter summarises a tenant's drift findings and repairs from
// their store (never from memory). Called concurrently; the gateway never
// closes it.
type DriftReporter interface {
	DriftSummary(ctx context.Context, tenant string) (DriftSummary, error)
}

// Problem names a part of a report that could not be read; its field is
// null in the report. The detail never holds the underlying error (which
// is logged with the trace id).
type Problem struct {
	Part   string `json:"part"`
	Detail string `json:"detail"`
}

// StateCount is one row of DCLState.Counts.
type StateCount struct {
	Entity       string  `json:"entity"`
	SourceSystem *string `json:"source_system"` // null: the store could not break the entity down
	Count        int64   `json:"count"`
}

// DCLState is the body of GET /dcl/state, a dashboard's first paint. Each
// part is read from where it lives (the store, CANONICAL, JetStream
// consumer info, the DLQ stream, the job store, the drift store); a part
// that could not be read is null and named in problems, and status is
// "degraded". A part this instance has no source for is null too.
type DCLState struct {
	Status       string          `json:"status"` // ok or degraded
	Counts       []StateCount    `json:"counts"`
	RecentEvents []RecordMessage `json:"recent_events"` // oldest first
	Consumers    []ConsumerState `json:"consumers"`
	DLQDepth     *int64          `json:"dlq_depth"`
	ActiveJobs   *int            `json:"active_jobs"`
	OpenDrift    *int            `json:"open_drift"`
	Problems     []Problem       `json:"problems"`
}

// recentEvents is how many record events /dcl/state returns.
const recentEvents = 50

// partTimeout bounds each part of a report.
const partTimeout = 5 * time.Second

// report gathers the parts of a report concurrently; a part's error is
// logged and becomes a Problem.
type report struct {
	s        *Server
	ctx      context.Context
	wg       sync.WaitGroup
	mu       sync.Mutex
	problems []Problem
}

func (s *Server) newReport(ctx context.Context) *report {
	return &report{s: s, ctx: ctx, problems: []Problem{}}
}

func (r *report) part(name, what string, f func(ctx context.Context) error) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(r.ctx, partTimeout)
		defer cancel()
		if err := f(ctx); err != nil {
			r.s.log.WarnContext(r.ctx, "report part unavailable", "part", name, "error", err)
			r.mu.Lock()
			r.problems = append(r.problems, Problem{Part: name, Detail: what + " did not answer"})
			r.mu.Unlock()
		}
	}()
}

func (r *report) wait() []Problem {
	r.wg.Wait()
	sort.Slice(r.problems, func(a, b int) bool { return r.problems[a].Part < r.problems[b].Part })
	return r.problems
}

func statusOf(problems []Problem) string {
	if len(problems) > 0 {
		return StatusDegraded
	}
	return StatusOK
}

// handleDCLState answers GET /dcl/state for the token's tenant.
func (s *Server) handleDCLState(c echo.Context) error {
	if err := noParams(c); err != nil {
		return err
	}
	tenant := stateOf(c).principal.Tenant
	var st DCLState
	r := s.newReport(c.Request().Context())
	if s.deps.Counts != nil {
		r.part("counts", "the record store", func(ctx context.Context) error {
			cs, err := s.deps.Counts.CountRecords(ctx, tenant)
			if err != nil {
				return err
			}
			st.Counts = stateCounts(cs)
			return nil
		})
	}
	r.part("recent_events", "the CANONICAL stream", func(ctx context.Context) error {
		ev, err := s.recentRecords(ctx, tenant, recentEvents)
		st.RecentEvents = ev
		return err
	})
	r.part("consumers", "JetStream", func(ctx context.Context) error {
		cs, err := consumerStates(ctx, s.deps.JetStream)
		st.Consumers = cs
		return err
	})
	r.part("dlq_depth", "the DLQ stream", func(ctx context.Context) error {
		n, _, err := dlqDepth(ctx, s.deps.JetStream, tenant)
		if err == nil {
			st.DLQDepth = &n
		}
		return err
	})
	r.part("active_jobs", "the job store", func(ctx context.Context) error {
		n, err := s.activeJobs(ctx, tenant)
		if err == nil {
			st.ActiveJobs = &n
		}
		return err
	})
	if s.deps.Drift != nil {
		r.part("open_drift", "the drift store", func(ctx context.Context) error {
			d, err := s.deps.Drift.DriftSummary(ctx, tenant)
			st.OpenDrift = d.OpenFindings
			return err
		})
	}
	st.Problems = r.wait()
	if st.Problems == nil {
		st.Problems = []Problem{}
	}
	for _, p := range st.Problems {
		// A part that failed shows null, never half-read values.
		switch p.Part {
		case "counts":
			st.Counts = nil
		case "recent_events":
			st.RecentEvents = nil
		case "consumers":
			st.Consumers = nil
		case "open_drift":
			st.OpenDrift = nil
		}
	}
	st.Status = statusOf(st.Problems)
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, st)
}

func stateCounts(cs []RecordCount) []StateCount {
	type key struct{ entity, system string }
	sum := map[key]int64{}
	var order []key
	for _, rc := range cs {
		k := key{string(rc.Entity), rc.SourceSystem}
		if _, ok := sum[k]; !ok {
			order = append(order, k)
		}
		sum[k] += rc.Count
	}
	out := make([]StateCount, 0, len(order))
	for _, k := range order {
		sc := StateCount{Entity: k.entity, Count: sum[k]}
		if k.system != "" {
			sys := k.system
			sc.SourceSystem = &sys
		}
		out = append(out, sc)
	}
	return out
}

// recentRecords reads the tenant's newest record events from CANONICAL,
// oldest first.
func (s *Server) recentRecords(ctx context.Context, tenant string, n int) ([]RecordMessage, error) {
	msgs, err := tail(ctx, s.deps.JetStream, streams.StreamCanonical, streams.CanonicalFilter(tenant), n, false)
	if err != nil {
		return nil, err
	}
	out := make([]RecordMessage, 0, len(msgs))
	for _, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		rec, t, err := parseRecord(m.Subject(), md.Sequence.Stream, m.Data())
		if err != nil || t != tenant {
			continue
		}
		out = append(out, rec)
	}
	return out, nil
}

// GraphNode is a d3-sankey node. Kinds: system, object, entity, table,
// consumer.
type GraphNode struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	Kind  string `json:"kind"`
}

// GraphLink is a d3-sankey link weighted by live record counts. On links
// into a canonical entity, MappedFields is how many canonical fields the
// mapping in force fills and ExtrasFields how many distinct source fields
// land in extras among a sample of the materialized rows; both are null
// elsewhere or when unknown.
type GraphLink struct {
	Source       string `json:"source"`
	Target       string `json:"target"`
	Value        int64  `json:"value"`
	MappedFields *int   `json:"mapped_fields"`
	ExtrasFields *int   `json:"extras_fields"`
}

// Graph is the body of GET /dcl/graph.
type Graph struct {
	Nodes []GraphNode `json:"nodes"`
	Links []GraphLink `json:"links"`
}

// extrasSample is how many rows per source system and entity are read to
// count extras keys.
const extrasSample = 200

// handleDCLGraph answers GET /dcl/graph: source system → source object
// (when the store can tell) → canonical entity → materialized table → the
// views API, weighted by the store's counts. A store that does not answer
// is a 503, never a graph.
func (s *Server) handleDCLGraph(c echo.Context) error {
	if err := noParams(c); err != nil {
		return err
	}
	if s.deps.Counts == nil {
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "record counts are not available on this instance")
	}
	tenant := stateOf(c).principal.Tenant
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*partTimeout)
	defer cancel()
	counts, err := s.deps.Counts.CountRecords(ctx, tenant)
	if err != nil {
		return s.unavailable(ctx, "the record store did not answer", err)
	}
	g, err := s.buildGraph(ctx, tenant, counts)
	if err != nil {
		return s.unavailable(ctx, "the record store did not answer", err)
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, g)
}

func (s *Server) buildGraph(ctx context.Context, tenant string, counts []RecordCount) (*Graph, error) {
	g := &Graph{Nodes: []GraphNode{}, Links: []GraphLink{}}
	nodes := map[string]bool{}
	node := func(id, label, kind string) string {
		if !nodes[id] {
			nodes[id] = true
			g.Nodes = append(g.Nodes, GraphNode{ID: id, Label: label, Kind: kind})
		}
		return id
	}
	links := map[[2]string]int{}
	link := func(from, to string, n int64) *GraphLink {
		k := [2]string{from, to}
		i, ok := links[k]
		if !ok {
			i = len(g.Links)
			links[k] = i
			g.Links = append(g.Links, GraphLink{Source: from, Target: to})
		}
		g.Links[i].Value += n
		return &g.Links[i]
	}
	views := node("consumer:views", "Views API", "consumer")
	type cov struct {
		system, object string
		entity         canonical.Entity
	}
	var covered []cov
	for _, rc := range counts {
		if rc.Count <= 0 {
			continue
		}
		ent := node("entity:"+string(rc.Entity), string(rc.Entity), "entity")
		tbl := "materialized_" + rc.Entity.Plural()
		tableID := node("table:"+tbl, tbl, "table")
		link(ent, tableID, rc.Count)
		link(tableID, views, rc.Count)
		if rc.SourceSystem == "" {
			continue
		}
		sys := node("system:"+rc.SourceSystem, rc.SourceSystem, "system")
		from := sys
		if rc.SourceObject != "" {
			from = node("object:"+rc.SourceSystem+"/"+rc.SourceObject, rc.SourceObject, "object")
			link(sys, from, rc.Count)
		}
		if _, ok := links[[2]string{from, ent}]; !ok {
			covered = append(covered, cov{rc.SourceSystem, rc.SourceObject, rc.Entity})
		}
		link(from, ent, rc.Count)
	}
	if len(nodes) == 1 {
		return &Graph{Nodes: []GraphNode{}, Links: []GraphLink{}}, nil // nothing stored yet
	}
	for _, cv := range covered {
		from := "system:" + cv.system
		if cv.object != "" {
			from = "object:" + cv.system + "/" + cv.object
		}
		l := &g.Links[links[[2]string{from, "entity:" + string(cv.entity)}]]
		if s.deps.Coverage != nil {
			fields, err := s.deps.Coverage.MappedFields(ctx, tenant, cv.system, cv.object, cv.entity)
			switch {
			case err == nil:
				n := len(fields)
				l.MappedFields = &n
			case !errors.Is(err, streams.ErrNotFound):
				s.log.WarnContext(ctx, "mapping coverage unavailable", "system", cv.system, "entity", string(cv.entity), "error", err)
			}
		}
		n, err := s.extrasKeys(ctx, tenant, cv.system, cv.entity)
		if err != nil {
			return nil, err
		}
		l.ExtrasFields = &n
	}
	return g, nil
}

// extrasKeys counts the distinct extras keys among a sample of a source
// system's materialized rows of an entity.
func (s *Server) extrasKeys(ctx context.Context, tenant, system string, e canonical.Entity) (int, error) {
	page, err := s.deps.Views.Query(ctx, canonical.ViewQuery{Tenant: tenant, Entity: e, Limit: extrasSample,
		Filters: []canonical.Filter{{Column: "source_system", Value: system}}})
	if err != nil {
		return 0, fmt.Errorf("sample %s of %s: %w", e.Plural(), system, err)
	}
	keys := map[string]bool{}
	for _, r := range page.Rows {
		if t, ok := r["tenant_id"]; ok && t != tenant {
			continue
		}
		switch x := r["extras"].(type) {
		case map[string]any:
			for k := range x {
				keys[k] = true
			}
		case string:
			var m map[string]json.RawMessage
			if json.Unmarshal([]byte(x), &m) == nil {
				for k := range m {
					keys[k] = true
				}
			}
		case []byte:
			var m map[string]json.RawMessage
			if json.Unmarshal(x, &m) == nil {
				for k := range m {
					keys[k] = true
				}
			}
		}
	}
	return len(keys), nil
}

// unavailable is a 503 whose cause is logged, not shown.
func (s *Server) unavailable(ctx context.Context, msg string, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		msg += " in time"
	}
	return &apiError{status: http.StatusServiceUnavailable, code: CodeUnavailable, message: msg, err: err}
}

// noParams refuses any query parameter (422), like the other routes do.
func noParams(c echo.Context) error {
	for k := range c.QueryParams() {
		return invalid(k, "unknown parameter (this route takes none)")
	}
	return nil
}

// activeJobs counts the tenant's jobs that have not finished.
func (s *Server) activeJobs(ctx context.Context, tenant string) (int, error) {
	jobs, err := s.deps.Jobs.List(ctx, tenant, 0)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, j := range jobs {
		if j.Tenant == tenant && !j.Finished() {
			n++
		}
	}
	return n, nil
}
