package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/autonomos/autonomos/streams"
)

// HubConfig tunes the live fan-out behind GET /dcl/ws. The zero value is
// usable: NewHub fills the defaults.
type HubConfig struct {
	// QueueSize is how many messages wait for one client's write loop. A
	// client whose queue is full is too slow: it is dropped with close code
	// 1013 (try again later) and nobody else waits for it. Default 256.
	QueueSize int `yaml:"queue_size"`
	// WriteTimeout bounds one frame's write to a client. Default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// PingInterval is how often a client is pinged. Default 25s.
	PingInterval time.Duration `yaml:"ping_interval"`
	// PongWait is how long a client may stay silent (no pong, no frame)
	// before it is considered gone; more than PingInterval. Default 60s.
	PongWait time.Duration `yaml:"pong_wait"`
	// StatsInterval is the coalescing period of "stats" messages: at most
	// one per tenant per interval, and none while nothing happens.
	// Default 100ms.
	StatsInterval time.Duration `yaml:"stats_interval"`
	// MaxReplay bounds the events replayed to a client resuming with
	// ?since=; one further behind gets a "resync" message instead (it
	// should reload /dcl/state) and continues live. Default 10000.
	MaxReplay int `yaml:"max_replay"`
	// MaxClients bounds the WebSocket clients of this instance; more are
	// refused with 503. Default 10000.
	MaxClients int `yaml:"max_clients"`
	// SocketBuffer, when positive, sets each client socket's kernel send
	// buffer (SO_SNDBUF, bytes), so that a stalled client fills its queue,
	// and is dropped, after at most that many bytes rather than the
	// several MB an autotuned buffer may hold. 0: the OS default.
	SocketBuffer int `yaml:"socket_buffer"`
	// ChangeMemory is how many records per tenant with live clients the
	// hub remembers (a hash per field of the last version) to name the
	// changed_fields of the next version. Default 20000.
	ChangeMemory int `yaml:"change_memory"`
}

func (c *HubConfig) defaults() {
	if c.ChangeMemory == 0 {
		c.ChangeMemory = 20000
	}
	if c.QueueSize == 0 {
		c.QueueSize = 256
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.PingInterval == 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.PongWait == 0 {
		c.PongWait = 60 * time.Second
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = 100 * time.Millisecond
	}
	if c.MaxReplay == 0 {
		c.MaxReplay = 10000
	}
	if c.MaxClients == 0 {
		c.MaxClients = 10000
	}
}

func (c *HubConfig) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("hub config %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.QueueSize < 1 || c.QueueSize > 1<<20 {
		bad("queue_size", "must be 1..1048576, got %d", c.QueueSize)
	}
	if c.WriteTimeout < 10*time.Millisecond {
		bad("write_timeout", "must be at least 10ms, got %v", c.WriteTimeout)
	}
	if c.PingInterval < 10*time.Millisecond {
		bad("ping_interval", "must be at least 10ms, got %v", c.PingInterval)
	}
	if c.PongWait <= c.PingInterval {
		bad("pong_wait", "must be more than ping_interval (%v), got %v", c.PingInterval, c.PongWait)
	}
	if c.StatsInterval < 10*time.Millisecond {
		bad("stats_interval", "must be at least 10ms, got %v", c.StatsInterval)
	}
	if c.MaxReplay < 1 {
		bad("max_replay", "must be at least 1, got %d", c.MaxReplay)
	}
	if c.MaxClients < 1 {
		bad("max_clients", "must be at least 1, got %d", c.MaxClients)
	}
	if c.ChangeMemory < 1 {
		bad("change_memory", "must be at least 1, got %d", c.ChangeMemory)
	}
	if c.SocketBuffer < 0 {
		bad("socket_buffer", "must not be negative, got %d", c.SocketBuffer)
	}
	return errors.Join(errs...)
}

// Hub fans the bus out to WebSocket clients, each receiving its own
// tenant's messages only. One hub runs per gateway instance with its own
// ordered consumers (CANONICAL, DRIFT, DLQ; new messages only) and a core
// subscription on live.*.> — never a database poll — so several instances
// each deliver every event to their own clients.
//
// Contract: cmd creates it with NewHub, hands it to the gateway in
// Deps.Live, runs Run in the gateway's run group and cancels it when the
// gateway stops; Run then closes every client (1001) and waits for them.
// The hub owns no connection: the JetStream context stays the caller's.
// Its methods are safe for concurrent use.
type Hub struct {
	js       jetstream.JetStream
	cfg      HubConfig
	log      *slog.Logger
	m        *hubMetrics
	upgrader websocket.Upgrader

	ready   chan struct{}
	started atomic.Bool
	runCtx  context.Context // set before ready closes

	mu      sync.RWMutex
	clients map[string]map[*liveClient]struct{} // tenant → clients
	n       int
	running bool
	wg      sync.WaitGroup // one per registered client

	statsMu sync.Mutex
	stats   map[string]*tenantStats

	changes *changeTracker
}

// NewHub checks cfg (after defaults; one joined error naming every bad
// field) and returns a hub that does nothing until Run.
func NewHub(js jetstream.JetStream, cfg HubConfig, log *slog.Logger) (*Hub, error) {
	cfg.defaults()
	err := cfg.validate()
	if js == nil {
		err = errors.Join(err, errors.New("hub: JetStream is required"))
	}
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{
		js: js, cfg: cfg, log: log.With("component", "live_hub"), m: newHubMetrics(),
		ready: make(chan struct{}), clients: map[string]map[*liveClient]struct{}{},
		stats: map[string]*tenantStats{}, changes: newChangeTracker(cfg.ChangeMemory),
	}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  8192,
		Error:            wsHandshakeError,
	}
	return h, nil
}

// Ready is closed once Run has subscribed to the bus: events published
// after it are delivered.
func (h *Hub) Ready() <-chan struct{} { return h.ready }

// Clients is the number of connected WebSocket clients.
func (h *Hub) Clients() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.n
}

// Run subscribes to the bus (retrying while NATS cannot create the
// consumers) and fans out until ctx is cancelled; then it closes every
// client with 1001 and waits for their goroutines (at most WriteTimeout
// plus a second). It returns nil on a clean cancel. Run may be called once.
func (h *Hub) Run(ctx context.Context) error {
	if !h.started.CompareAndSwap(false, true) {
		return errors.New("hub: Run called twice")
	}
	var subs []func()
	defer func() {
		for _, stop := range subs {
			stop()
		}
	}()
	for backoff := 500 * time.Millisecond; ; backoff = min(2*backoff, 30*time.Second) {
		var err error
		subs, err = h.subscribe(ctx)
		if err == nil {
			break
		}
		for _, stop := range subs {
			stop()
		}
		subs = nil
		h.log.Warn("cannot subscribe to the bus; retrying", "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
	h.mu.Lock()
	h.runCtx = ctx
	h.running = true
	h.mu.Unlock()
	close(h.ready)
	h.log.Info("live fan-out started")

	tick := time.NewTicker(h.cfg.StatsInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			h.stop()
			return nil
		case <-tick.C:
			h.flushStats()
		}
	}
}

// subscribe starts the hub's consumers; the returned functions stop them.
func (h *Hub) subscribe(ctx context.Context) ([]func(), error) {
	var stops []func()
	for _, s := range []struct {
		stream, filter string
		headersOnly    bool
		handle         func(jetstream.Msg)
	}{
		{streams.StreamCanonical, "canonical.>", false, h.onCanonical},
		{streams.StreamDrift, "drift.>", false, h.onDrift},
		{streams.StreamDLQ, "dlq.>", true, h.onDLQ},
	} {
		oc, err := h.js.OrderedConsumer(ctx, s.stream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{s.filter}, DeliverPolicy: jetstream.DeliverNewPolicy, HeadersOnly: s.headersOnly})
		if err != nil {
			return stops, fmt.Errorf("ordered consumer on %s: %w", s.stream, err)
		}
		stream := s.stream
		cc, err := oc.Consume(s.handle, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			h.log.Debug("live consumer", "stream", stream, "error", err)
		}))
		if err != nil {
			return stops, fmt.Errorf("consume %s: %w", s.stream, err)
		}
		stops = append(stops, cc.Stop)
	}
	nc := h.js.Conn()
	sub, err := nc.Subscribe("live.*.>", h.onLive)
	if err != nil {
		return stops, fmt.Errorf("subscribe live.*.>: %w", err)
	}
	stops = append(stops, func() { _ = sub.Unsubscribe() })
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		return stops, fmt.Errorf("flush: %w", err)
	}
	return stops, nil
}

// stop refuses new clients, closes every client and waits for them.
func (h *Hub) stop() {
	h.mu.Lock()
	h.running = false
	for _, set := range h.clients {
		for c := range set {
			c.kick(websocket.CloseGoingAway, "server shutting down")
		}
	}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(h.cfg.WriteTimeout + time.Second):
		h.log.Warn("live clients still closing after shutdown timeout")
	}
	h.log.Info("live fan-out stopped")
}

// errHubUnavailable refuses a client when the hub does not run.
var errHubUnavailable = errors.New("live updates are not running on this instance")

// errHubFull refuses a client beyond MaxClients.
var errHubFull = errors.New("too many live clients on this instance")

// register adds a client of tenant. A resuming client starts in replay
// mode: live messages wait in its pending list until the replay is done.
func (h *Hub) register(tenant string, resume bool) (*liveClient, context.Context, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running {
		return nil, nil, errHubUnavailable
	}
	if h.n >= h.cfg.MaxClients {
		return nil, nil, errHubFull
	}
	c := &liveClient{hub: h, tenant: tenant, queue: make(chan outMsg, h.cfg.QueueSize),
		kicked: make(chan struct{}), replaying: resume}
	set := h.clients[tenant]
	if set == nil {
		set = map[*liveClient]struct{}{}
		h.clients[tenant] = set
		h.changes.forget(tenant) // anything kept predates this client: stale
	}
	set[c] = struct{}{}
	h.n++
	h.wg.Add(1)
	h.m.clients.Inc()
	return c, h.runCtx, nil
}

func (h *Hub) unregister(c *liveClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.clients[c.tenant]
	if _, ok := set[c]; !ok {
		return
	}
	delete(set, c)
	if len(set) == 0 {
		delete(h.clients, c.tenant)
		h.changes.forget(c.tenant)
	}
	h.n--
	h.m.clients.Dec()
	h.wg.Done()
}

func (h *Hub) hasClients(tenant string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.clients[tenant]) > 0
}

// broadcast offers m to every client of tenant without blocking.
func (h *Hub) broadcast(tenant string, m outMsg) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.clients[tenant] {
		c.offer(m)
	}
}

func (h *Hub) onCanonical(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		return
	}
	rec, tenant, err := parseRecord(msg.Subject(), md.Sequence.Stream, msg.Data())
	if err != nil {
		h.m.invalid.WithLabelValues(streams.StreamCanonical).Inc()
		h.log.Debug("canonical event not forwarded", "stream_seq", md.Sequence.Stream, "error", err)
		return
	}
	h.m.published.WithLabelValues(tenant, rec.Entity, rec.Type).Inc()
	h.count(tenant, func(s *tenantStats) { s.records[[2]string{rec.Entity, rec.SourceSystem}]++ })
	if !h.hasClients(tenant) {
		return
	}
	rec.ChangedFields = h.changes.observe(tenant, rec.Entity, rec.ID, rec.Type == MsgRecordDeleted, rec.data)
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	h.broadcast(tenant, outMsg{seq: rec.Seq, data: b})
}

func (h *Hub) onDLQ(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		return
	}
	d, tenant, err := parseDLQ(msg.Subject(), md.Sequence.Stream, msg.Headers(), md.Timestamp)
	if err != nil {
		h.m.invalid.WithLabelValues(streams.StreamDLQ).Inc()
		h.log.Debug("dead letter not forwarded", "stream_seq", md.Sequence.Stream, "error", err)
		return
	}
	h.m.failed.WithLabelValues(tenant, d.Stage).Inc()
	h.count(tenant, func(s *tenantStats) { s.dlq++ })
	h.send(tenant, d)
}

func (h *Hub) onDrift(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		return
	}
	d, tenant, err := parseDrift(msg.Subject(), md.Sequence.Stream, msg.Data(), md.Timestamp)
	if err != nil {
		h.m.invalid.WithLabelValues(streams.StreamDrift).Inc()
		h.log.Debug("drift event not forwarded", "stream_seq", md.Sequence.Stream, "error", err)
		return
	}
	h.m.drift.WithLabelValues(tenant, d.Type).Inc()
	h.count(tenant, func(s *tenantStats) { s.drift++ })
	h.send(tenant, d)
}

func (h *Hub) onLive(msg *nats.Msg) {
	b, tenant, err := parseLive(msg.Subject, msg.Data)
	if err != nil {
		h.m.invalid.WithLabelValues("live").Inc()
		h.log.Debug("live notification not forwarded", "subject", msg.Subject, "error", err)
		return
	}
	h.broadcast(tenant, outMsg{data: b})
}

// send encodes v and broadcasts it when tenant has clients.
func (h *Hub) send(tenant string, v any) {
	if !h.hasClients(tenant) {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	h.broadcast(tenant, outMsg{data: b})
}

// tenantStats counts one tenant's events since the last stats message.
type tenantStats struct {
	records    map[[2]string]int // (entity, source system) → events
	dlq, drift int
}

func (h *Hub) count(tenant string, f func(*tenantStats)) {
	h.statsMu.Lock()
	defer h.statsMu.Unlock()
	s := h.stats[tenant]
	if s == nil {
		s = &tenantStats{records: map[[2]string]int{}}
		h.stats[tenant] = s
	}
	f(s)
}

// StatsMessage is the coalesced "stats" message: what happened for the
// tenant in the last interval (events, not record totals; see /dcl/state
// for those). It is sent only when something happened.
type StatsMessage struct {
	Type       string       `json:"type"` // stats
	IntervalMS int64        `json:"interval_ms"`
	Records    int          `json:"records"` // record events in the interval
	Counts     []EventCount `json:"counts"`  // record events by entity and source system
	DLQ        int          `json:"dlq"`
	Drift      int          `json:"drift"`
}

// EventCount counts record events of one entity from one source system.
type EventCount struct {
	Entity       string `json:"entity"`
	SourceSystem string `json:"source_system"`
	Count        int    `json:"count"`
}

func (h *Hub) flushStats() {
	h.statsMu.Lock()
	stats := h.stats
	h.stats = map[string]*tenantStats{}
	h.statsMu.Unlock()
	for tenant, s := range stats {
		m := StatsMessage{Type: MsgStats, IntervalMS: h.cfg.StatsInterval.Milliseconds(), DLQ: s.dlq, Drift: s.drift, Counts: []EventCount{}}
		for k, n := range s.records {
			m.Records += n
			m.Counts = append(m.Counts, EventCount{Entity: k[0], SourceSystem: k[1], Count: n})
		}
		sort.Slice(m.Counts, func(a, b int) bool {
			if m.Counts[a].Entity != m.Counts[b].Entity {
				return m.Counts[a].Entity < m.Counts[b].Entity
			}
			return m.Counts[a].SourceSystem < m.Counts[b].SourceSystem
		})
		h.send(tenant, m)
	}
}

// outMsg is one encoded frame; seq is its CANONICAL sequence (0 for other
// messages), used to resume and to deduplicate.
type outMsg struct {
	seq  uint64
	data []byte
}

// liveClient is one WebSocket connection's fan-out state.
type liveClient struct {
	hub    *Hub
	tenant string
	queue  chan outMsg

	kickOnce sync.Once
	kicked   chan struct{} // closed when the client must go
	code     int           // close code sent when kicked (0: none, the peer left)
	reason   string

	mu        sync.Mutex
	replaying bool     // messages wait in pending while a replay runs
	pending   []outMsg // bounded by MaxReplay + QueueSize
	lastSeq   uint64   // highest CANONICAL sequence queued
}

// kick makes the client leave with a close code; the first call wins.
func (c *liveClient) kick(code int, reason string) {
	c.kickOnce.Do(func() {
		c.code, c.reason = code, reason
		close(c.kicked)
	})
}

func (c *liveClient) gone() bool {
	select {
	case <-c.kicked:
		return true
	default:
		return false
	}
}

// offer queues m without blocking: a full queue drops the client.
func (c *liveClient) offer(m outMsg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone() {
		return
	}
	if c.replaying {
		if len(c.pending) >= c.hub.cfg.MaxReplay+c.hub.cfg.QueueSize {
			c.hub.m.dropped.WithLabelValues("slow").Inc()
			c.kick(websocket.CloseTryAgainLater, "too slow: fell behind while catching up")
			return
		}
		c.pending = append(c.pending, m)
		return
	}
	if m.seq != 0 && m.seq <= c.lastSeq {
		return // already delivered by the replay
	}
	select {
	case c.queue <- m:
		if m.seq != 0 {
			c.lastSeq = m.seq
		}
	default:
		c.hub.m.dropped.WithLabelValues("slow").Inc()
		c.kick(websocket.CloseTryAgainLater, "too slow: message queue full")
	}
}

// push queues m for a replay, waiting at most WriteTimeout for room; it
// reports whether the client is still there. Only the replay goroutine
// calls it, while offers go to pending.
func (c *liveClient) push(ctx context.Context, m outMsg) bool {
	if m.seq != 0 {
		c.mu.Lock()
		dup := m.seq <= c.lastSeq
		c.mu.Unlock()
		if dup {
			return true
		}
	}
	t := time.NewTimer(c.hub.cfg.WriteTimeout)
	defer t.Stop()
	select {
	case c.queue <- m:
		if m.seq != 0 {
			c.mu.Lock()
			c.lastSeq = max(c.lastSeq, m.seq)
			c.mu.Unlock()
		}
		return true
	case <-c.kicked:
		return false
	case <-ctx.Done():
		return false
	case <-t.C:
		c.hub.m.dropped.WithLabelValues("slow").Inc()
		c.kick(websocket.CloseTryAgainLater, "too slow: message queue full")
		return false
	}
}

// hubMetrics are the hub's Prometheus collectors.
type hubMetrics struct {
	clients   prometheus.Gauge
	dropped   *prometheus.CounterVec
	delivered prometheus.Counter
	published *prometheus.CounterVec
	failed    *prometheus.CounterVec
	drift     *prometheus.CounterVec
	invalid   *prometheus.CounterVec
}

func newHubMetrics() *hubMetrics {
	return &hubMetrics{
		clients: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "autonomos", Subsystem: "ws", Name: "clients",
			Help: "Connected WebSocket clients of GET /dcl/ws on this instance."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "autonomos", Subsystem: "ws", Name: "dropped_total",
			Help: "WebSocket clients dropped, by reason (slow: queue full, close code 1013; write_error)."}, []string{"reason"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "autonomos", Subsystem: "ws", Name: "messages_delivered_total",
			Help: "Messages written to WebSocket clients."}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "autonomos", Subsystem: "events", Name: "published_total",
			Help: "Canonical events appended to CANONICAL, as this instance's live consumer saw them, by tenant, entity and type (record.upserted, record.deleted)."},
			[]string{"tenant", "entity", "type"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "autonomos", Subsystem: "events", Name: "failed_total",
			Help: "Messages dead-lettered to DLQ, as this instance's live consumer saw them, by tenant and stage."},
			[]string{"tenant", "stage"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "autonomos", Subsystem: "events", Name: "drift_total",
			Help: "DRIFT stream events (detections, repairs), by tenant and type."}, []string{"tenant", "type"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "autonomos", Subsystem: "ws", Name: "invalid_messages_total",
			Help: "Bus messages the live fan-out refused (malformed, or a tenant mismatch between subject and body), by source."},
			[]string{"source"}),
	}
}

func (m *hubMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.clients, m.dropped, m.delivered, m.published, m.failed, m.drift, m.invalid}
}

// wsHandshakeError renders a refused WebSocket handshake (bad version,
// cross-origin) in the gateway's error shape.
func wsHandshakeError(w http.ResponseWriter, r *http.Request, status int, reason error) {
	code, ok := statusCodes[status]
	if !ok {
		code = CodeBadRequest
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Sec-Websocket-Version", "13")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: ErrorDetail{Code: code, Message: reason.Error(), TraceID: TraceID(r.Context())}})
}
