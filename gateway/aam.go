package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/autonomos/autonomos/streams"
)

// MonitoredConnection is one connection as the AAM monitor shows it.
type MonitoredConnection struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	System       string     `json:"system"`
	Status       string     `json:"status"` // ACTIVE, PAUSED, DRIFTED, HEALING, MANUAL_REVIEW_REQUIRED, FAILED
	StatusReason string     `json:"status_reason"`
	LastSyncAt   *time.Time `json:"last_sync_at"`
	LastError    string     `json:"last_error"`
	LastJobID    string     `json:"last_job_id"`
}

// ConnectionEvent is one connection status transition.
type ConnectionEvent struct {
	Seq          uint64    `json:"status_seq"` // per tenant, increasing
	ConnectionID string    `json:"connection_id"`
	Status       string    `json:"status"`
	Previous     string    `json:"previous,omitempty"`
	Reason       string    `json:"reason"`
	Time         time.Time `json:"time"`
}

// ConnectionMonitor reads a tenant's connections and their status history
// for the AAM monitor. ConnectionEvents returns the newest events first,
// at most limit. Both answer only the given tenant's. Called concurrently;
// the gateway never closes it.
type ConnectionMonitor interface {
	MonitoredConnections(ctx context.Context, tenant string) ([]MonitoredConnection, error)
	ConnectionEvents(ctx context.Context, tenant string, limit int) ([]ConnectionEvent, error)
}

// Connection statuses the monitor counts as active or healthy.
const (
	connActive = "ACTIVE"
	connPaused = "PAUSED"
	connFailed = "FAILED"
)

// AAMStatus is the body of GET /api/v1/aam/status: every component's real
// health — the HealthChecker's (NATS, the stores), JetStream as the gateway
// sees it, each durable consumer (a stalled one is degraded), and the live
// fan-out. status is ok only when every component is.
type AAMStatus struct {
	Status     string            `json:"status"` // ok or degraded
	Components []ComponentHealth `json:"components"`
	Consumers  []ConsumerState   `json:"consumers"` // null when JetStream did not answer
}

// handleAAMStatus answers GET /api/v1/aam/status (system-wide).
func (s *Server) handleAAMStatus(c echo.Context) error {
	if err := noParams(c); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), partTimeout)
	defer cancel()
	out := AAMStatus{Components: []ComponentHealth{}}
	out.Components = append(out.Components, s.deps.Health.Check(ctx)...)
	jsHealth := ComponentHealth{Name: "jetstream", Status: StatusOK}
	if ai, err := s.deps.JetStream.AccountInfo(ctx); err != nil {
		jsHealth.Status, jsHealth.Detail = StatusDown, "JetStream did not answer"
		s.log.WarnContext(ctx, "aam status: jetstream", "error", err)
	} else {
		jsHealth.Detail = fmt.Sprintf("%d streams, %d consumers", ai.Streams, ai.Consumers)
	}
	out.Components = append(out.Components, jsHealth)
	states, err := consumerStates(ctx, s.deps.JetStream)
	if err != nil {
		s.log.WarnContext(ctx, "aam status: consumers", "error", err)
		out.Components = append(out.Components, ComponentHealth{Name: "consumers", Status: StatusDown, Detail: "JetStream did not report its consumers"})
	} else {
		out.Consumers = states
		for _, cs := range states {
			ch := ComponentHealth{Name: "consumer " + cs.Stream + "/" + cs.Name, Status: StatusOK,
				Detail: fmt.Sprintf("pending %d, ack pending %d of %d, redelivered %d, waiting pulls %d",
					cs.Pending, cs.AckPending, cs.MaxAckPending, cs.Redelivered, cs.Waiting)}
			if cs.Stalled {
				ch.Status = StatusDegraded
				ch.Detail = "stalled: ack pending reached max ack pending, JetStream delivers nothing more; " + ch.Detail
			}
			out.Components = append(out.Components, ch)
		}
	}
	if h := s.deps.Live; h != nil {
		ch := ComponentHealth{Name: "live fan-out", Status: StatusOK, Detail: fmt.Sprintf("%d clients", h.Clients())}
		h.mu.RLock()
		if !h.running {
			ch.Status, ch.Detail = StatusDown, "not subscribed to the bus"
		}
		h.mu.RUnlock()
		out.Components = append(out.Components, ch)
	}
	out.Status = StatusOK
	for i, ch := range out.Components {
		if ch.Status != StatusOK && ch.Status != StatusDegraded && ch.Status != StatusDown {
			out.Components[i].Detail = "unknown status " + strconv.Quote(ch.Status) + ": " + ch.Detail
			out.Components[i].Status = StatusDown
		}
		if out.Components[i].Status != StatusOK {
			out.Status = StatusDegraded
		}
	}
	sort.SliceStable(out.Components, func(a, b int) bool { return out.Components[a].Name < out.Components[b].Name })
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, out)
}

// AAMMetrics is the body of GET /api/v1/aam/metrics: the seed's figures,
// computed from real data for the token's tenant. A figure with no source
// on this instance, or no data behind it, is null; a source that failed is
// named in problems (status degraded).
type AAMMetrics struct {
	Status               string    `json:"status"`
	TotalConnections     *int      `json:"total_connections"`
	ActiveConnections    *int      `json:"active_connections"`
	DriftDetections24h   *int      `json:"drift_detections_24h"`
	SuccessfulRepairs24h *int      `json:"successful_repairs_24h"`
	ManualReviewsPending *int      `json:"manual_reviews_pending"`
	AverageConfidence    *float64  `json:"average_confidence"`
	AverageRepairTimeMS  *float64  `json:"average_repair_time_ms"`
	DLQDepth             *int64    `json:"dlq_depth"`
	ActiveJobs           *int      `json:"active_jobs"`
	Problems             []Problem `json:"problems"`
}

// handleAAMMetrics answers GET /api/v1/aam/metrics.
func (s *Server) handleAAMMetrics(c echo.Context) error {
	if err := noParams(c); err != nil {
		return err
	}
	tenant := stateOf(c).principal.Tenant
	var m AAMMetrics
	r := s.newReport(c.Request().Context())
	if s.deps.ConnMonitor != nil {
		r.part("connections", "the connection registry", func(ctx context.Context) error {
			cs, err := s.deps.ConnMonitor.MonitoredConnections(ctx, tenant)
			if err != nil {
				return err
			}
			total, active := len(cs), 0
			for _, c := range cs {
				if c.Status == connActive {
					active++
				}
			}
			m.TotalConnections, m.ActiveConnections = &total, &active
			return nil
		})
	}
	if s.deps.Drift != nil {
		r.part("drift", "the drift store", func(ctx context.Context) error {
			d, err := s.deps.Drift.DriftSummary(ctx, tenant)
			if err != nil {
				return err
			}
			m.DriftDetections24h, m.SuccessfulRepairs24h = d.Detections24h, d.Repairs24h
			m.ManualReviewsPending, m.AverageConfidence = d.ManualReviewsPending, d.AverageConfidence
			if d.AverageRepairSeconds != nil {
				ms := *d.AverageRepairSeconds * 1000
				m.AverageRepairTimeMS = &ms
			}
			return nil
		})
	}
	r.part("dlq_depth", "the DLQ stream", func(ctx context.Context) error {
		n, _, err := dlqDepth(ctx, s.deps.JetStream, tenant)
		if err == nil {
			m.DLQDepth = &n
		}
		return err
	})
	r.part("active_jobs", "the job store", func(ctx context.Context) error {
		n, err := s.activeJobs(ctx, tenant)
		if err == nil {
			m.ActiveJobs = &n
		}
		return err
	})
	m.Problems = r.wait()
	m.Status = statusOf(m.Problems)
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, m)
}

// AAMEvent is one entry of the AAM event feed.
type AAMEvent struct {
	ID           string    `json:"id"`     // unique in the feed: <source>-<its own id>
	Type         string    `json:"type"`   // connection.status, job.<status>, drift.*, dlq.added
	Source       string    `json:"source"` // connection, job, drift or dlq
	ConnectionID string    `json:"connection_id,omitempty"`
	Message      string    `json:"message"`
	Time         time.Time `json:"time"`
	Detail       any       `json:"detail"` // the source's own record (ConnectionEvent, job, DriftMessage, DLQMessage)
}

// AAMEventPage is the body of GET /api/v1/aam/events.
type AAMEventPage struct {
	Data       []AAMEvent `json:"data"`
	NextCursor *string    `json:"next_cursor"`
}

// Event feed bounds.
const (
	defaultEventLimit = 25
	maxEventLimit     = 200
	// feedWindow is how many of each source's newest items the feed holds.
	feedWindow = 200
)

// handleAAMEvents answers GET /api/v1/aam/events: the tenant's recent
// connection status changes, jobs, drift events and dead letters, newest
// first, each source's newest feedWindow items merged; cursor pages on.
// A source that does not answer is a 503, not a partial feed.
func (s *Server) handleAAMEvents(c echo.Context) error {
	limit := defaultEventLimit
	var after *feedCursor
	for k, vs := range c.QueryParams() {
		if len(vs) != 1 {
			return invalid(k, "give the parameter once")
		}
		switch k {
		case "limit":
			n, err := strconv.Atoi(vs[0])
			if err != nil || n < 1 || n > maxEventLimit {
				return invalid("limit", "must be an integer from 1 to %d, got %q", maxEventLimit, clip(vs[0]))
			}
			limit = n
		case "cursor":
			fc, err := decodeFeedCursor(vs[0])
			if err != nil {
				return invalid("cursor", "is not a cursor this feed returned")
			}
			after = &fc
		default:
			return invalid(k, "unknown parameter (limit and cursor are accepted)")
		}
	}
	tenant := stateOf(c).principal.Tenant
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*partTimeout)
	defer cancel()
	all, err := s.eventFeed(ctx, tenant)
	if err != nil {
		return s.unavailable(ctx, "an event source did not answer", err)
	}
	page := AAMEventPage{Data: []AAMEvent{}}
	for _, ev := range all {
		if after != nil && !after.before(ev) {
			continue
		}
		if len(page.Data) == limit {
			last := page.Data[len(page.Data)-1]
			cur := feedCursor{T: last.Time.UnixNano(), ID: last.ID}.encode()
			page.NextCursor = &cur
			break
		}
		page.Data = append(page.Data, ev)
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, page)
}

// eventFeed merges the sources, newest first (ties by id).
func (s *Server) eventFeed(ctx context.Context, tenant string) ([]AAMEvent, error) {
	var all []AAMEvent
	if s.deps.ConnMonitor != nil {
		evs, err := s.deps.ConnMonitor.ConnectionEvents(ctx, tenant, feedWindow)
		if err != nil {
			return nil, fmt.Errorf("connection events: %w", err)
		}
		for _, e := range evs {
			all = append(all, connectionFeedEvent(e))
		}
	}
	jobs, err := s.deps.Jobs.List(ctx, tenant, feedWindow)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	for _, j := range jobs {
		if j.Tenant == tenant {
			all = append(all, jobFeedEvent(normalizeJob(j)))
		}
	}
	drift, err := s.driftEvents(ctx, tenant, feedWindow)
	if err != nil {
		return nil, err
	}
	for _, d := range drift {
		all = append(all, driftFeedEvent(d))
	}
	dlq, err := s.deadLetters(ctx, tenant, feedWindow)
	if err != nil {
		return nil, err
	}
	for _, d := range dlq {
		all = append(all, dlqFeedEvent(d))
	}
	sort.Slice(all, func(a, b int) bool {
		if !all[a].Time.Equal(all[b].Time) {
			return all[a].Time.After(all[b].Time)
		}
		return all[a].ID > all[b].ID
	})
	return all, nil
}

// driftEvents reads the tenant's newest DRIFT events, newest first.
func (s *Server) driftEvents(ctx context.Context, tenant string, n int) ([]DriftMessage, error) {
	msgs, err := tail(ctx, s.deps.JetStream, streams.StreamDrift, "drift."+tenant+".>", n, false)
	if err != nil {
		return nil, fmt.Errorf("drift events: %w", err)
	}
	out := make([]DriftMessage, 0, len(msgs))
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		d, t, err := parseDrift(m.Subject(), md.Sequence.Stream, m.Data(), md.Timestamp)
		if err == nil && t == tenant {
			out = append(out, d)
		}
	}
	return out, nil
}

// deadLetters reads the tenant's newest dead letters (headers only),
// newest first.
func (s *Server) deadLetters(ctx context.Context, tenant string, n int) ([]DLQMessage, error) {
	msgs, err := tail(ctx, s.deps.JetStream, streams.StreamDLQ, streams.DLQFilter(tenant), n, true)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	out := make([]DLQMessage, 0, len(msgs))
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		d, t, err := parseDLQ(m.Subject(), md.Sequence.Stream, m.Headers(), md.Timestamp)
		if err == nil && t == tenant {
			out = append(out, d)
		}
	}
	return out, nil
}

func connectionFeedEvent(e ConnectionEvent) AAMEvent {
	msg := "status " + e.Status
	if e.Previous != "" {
		msg = "status " + e.Previous + " → " + e.Status
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return AAMEvent{ID: "connection-" + strconv.FormatUint(e.Seq, 10), Type: MsgConnectionStatus, Source: "connection",
		ConnectionID: e.ConnectionID, Message: msg, Time: e.Time.UTC(), Detail: e}
}

func jobFeedEvent(j *streams.Job) AAMEvent {
	t := j.CreatedAt
	switch {
	case j.FinishedAt != nil:
		t = *j.FinishedAt
	case j.StartedAt != nil:
		t = *j.StartedAt
	}
	what := j.Kind
	if j.Entity != "" {
		what += " " + j.Entity
	}
	msg := fmt.Sprintf("%s job %s: %d read, %d published, %d rejected", strings.TrimSpace(what), j.Status, j.RowsRead, j.Published, j.Rejected)
	if j.Message != "" {
		msg += ": " + j.Message
	}
	return AAMEvent{ID: "job-" + j.ID, Type: "job." + j.Status, Source: "job", ConnectionID: j.ConnectionID,
		Message: msg, Time: t.UTC(), Detail: j}
}

func driftFeedEvent(d DriftMessage) AAMEvent {
	t, _ := time.Parse(time.RFC3339Nano, d.Time)
	msg := strings.TrimPrefix(d.Type, "drift.")
	if d.System != "" || d.Object != "" {
		msg += " on " + d.System + "/" + d.Object
	}
	if d.Severity != "" {
		msg += " (" + d.Severity + ")"
	}
	return AAMEvent{ID: "drift-" + strconv.FormatUint(d.DriftSeq, 10), Type: d.Type, Source: "drift",
		ConnectionID: d.ConnectionID, Message: msg, Time: t.UTC(), Detail: d}
}

func dlqFeedEvent(d DLQMessage) AAMEvent {
	t, _ := time.Parse(time.RFC3339Nano, d.Time)
	return AAMEvent{ID: "dlq-" + strconv.FormatUint(d.DLQSeq, 10), Type: MsgDLQAdded, Source: "dlq",
		Message: "dead-lettered at " + d.Stage + ": " + d.Reason, Time: t.UTC(), Detail: d}
}

// feedCursor is the position after the last item of a page.
type feedCursor struct {
	T  int64  `json:"t"`
	ID string `json:"id"`
}

func (f feedCursor) encode() string {
	b, _ := json.Marshal(f)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeFeedCursor(s string) (feedCursor, error) {
	var f feedCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 512 {
		return f, fmt.Errorf("bad cursor")
	}
	if err := json.Unmarshal(b, &f); err != nil || f.ID == "" {
		return f, fmt.Errorf("bad cursor")
	}
	return f, nil
}

// before reports whether ev comes after the cursor in the feed's order
// (older, or as old with a smaller id).
func (f feedCursor) before(ev AAMEvent) bool {
	t := ev.Time.UnixNano()
	return t < f.T || t == f.T && ev.ID < f.ID
}

// ConnectionHealthReport is the body of GET
// /api/v1/aam/connections/{id}/health.
type ConnectionHealthReport struct {
	MonitoredConnection
	// Health: ok (ACTIVE), paused, degraded (DRIFTED, HEALING,
	// MANUAL_REVIEW_REQUIRED) or down (FAILED).
	Health       string            `json:"health"`
	LastJob      *streams.Job      `json:"last_job"`      // null when it never ran (or the job expired)
	RecentEvents []ConnectionEvent `json:"recent_events"` // its status changes, newest first
	DriftEvents  []DriftMessage    `json:"drift_events"`  // its drift events, newest first
}

// connectionHealthEvents bounds the history in a health report.
const connectionHealthEvents = 20

// handleConnectionHealth answers GET /api/v1/aam/connections/{id}/health.
func (s *Server) handleConnectionHealth(c echo.Context) error {
	if err := noParams(c); err != nil {
		return err
	}
	if s.deps.ConnMonitor == nil {
		return newError(http.StatusServiceUnavailable, CodeUnavailable, "connections are not available on this instance")
	}
	tenant, id := stateOf(c).principal.Tenant, c.Param("id")
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*partTimeout)
	defer cancel()
	conns, err := s.deps.ConnMonitor.MonitoredConnections(ctx, tenant)
	if err != nil {
		return s.unavailable(ctx, "the connection registry did not answer", err)
	}
	var rep *ConnectionHealthReport
	for _, mc := range conns {
		if mc.ID == id {
			rep = &ConnectionHealthReport{MonitoredConnection: mc, RecentEvents: []ConnectionEvent{}, DriftEvents: []DriftMessage{}}
		}
	}
	if rep == nil {
		return newError(http.StatusNotFound, CodeNotFound, "connection not found")
	}
	switch rep.Status {
	case connActive:
		rep.Health = StatusOK
	case connPaused:
		rep.Health = "paused"
	case connFailed:
		rep.Health = StatusDown
	default:
		rep.Health = StatusDegraded
	}
	if rep.LastJobID != "" {
		j, err := s.deps.Jobs.Get(ctx, tenant, rep.LastJobID)
		switch {
		case err == nil && j.Tenant == tenant:
			rep.LastJob = normalizeJob(j)
		case err != nil && !errors.Is(err, streams.ErrNotFound):
			return s.unavailable(ctx, "the job store did not answer", err)
		}
	}
	evs, err := s.deps.ConnMonitor.ConnectionEvents(ctx, tenant, feedWindow)
	if err != nil {
		return s.unavailable(ctx, "the connection registry did not answer", err)
	}
	for _, e := range evs {
		if e.ConnectionID == id && len(rep.RecentEvents) < connectionHealthEvents {
			rep.RecentEvents = append(rep.RecentEvents, e)
		}
	}
	drift, err := s.driftEvents(ctx, tenant, feedWindow)
	if err != nil {
		return s.unavailable(ctx, "the DRIFT stream did not answer", err)
	}
	for _, d := range drift {
		if d.ConnectionID == id && len(rep.DriftEvents) < connectionHealthEvents {
			rep.DriftEvents = append(rep.DriftEvents, d)
		}
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusOK, rep)
}
