package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/agents"
	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/config"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/filesource"
	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/subscriber"
	"github.com/autonomos/autonomos/telemetry"
	"github.com/autonomos/autonomos/ui"
)

// store is what the system needs of a materialized store.
type store interface {
	subscriber.Sink
	Query(ctx context.Context, q canonical.ViewQuery) (canonical.ViewPage, error)
	Count(ctx context.Context, tenant string, e canonical.Entity) (int64, error)
	Ping(ctx context.Context) error
	Close() error
	CountBySource(ctx context.Context, tenant string) ([]subscriber.GroupCount, error)
	subscriber.AuditSink
	AuditLog(ctx context.Context, tenant string, limit int, before string) ([]map[string]any, string, error)
}

// system is one running AutonomOS process: the parts its roles ask for.
type system struct {
	log      *slog.Logger
	httpAddr string // the gateway's bound address, when it runs
	natsURL  string
	replicas int // of every stream and bucket

	embedded *streams.Embedded
	nc       *nats.Conn
	js       jetstream.JetStream
	// pubNC carries the bulk publishes (connectors, re-derivation, DLQ) on
	// a connection of their own: on nc, every request (a pull, an ack, a
	// KV update, an API call) would queue behind up to the publisher's
	// whole in-flight window of events, in the socket and in the server's
	// per-connection reader.
	pubNC    *nats.Conn
	pubJS    jetstream.JetStream
	pub      *streams.Publisher
	jobs     *streams.JobStore
	mappings *connectors.Mappings
	duck     *subscriber.DuckDB
	pg       *subscriber.Postgres
	stores   []store
	subs     []*subscriber.Subscriber
	ingester *filesource.Ingester
	conns    *connectors.Connections
	events   *connectors.EventLog
	syncJobs *connectors.Jobs
	agents   *agents.Agents
	// sinkMetrics observe every store's upsert batches.
	sinkMetrics *sinkMetrics
	gw          *gateway.Server
	watcher     *filesource.Watcher      // the watch folder, when --watch-dir
	orch        *connectors.Orchestrator // AOA orchestrations, with the gateway

	// limits are the rate limits and org budgets shared through NATS.
	limits *sharedLimits
	// tracing makes every part's spans; they are exported when the
	// OTEL_EXPORTER_OTLP_* environment names an endpoint.
	tracing *telemetry.Provider

	// Each group is cancelled and awaited in shutdown order.
	gatewayRun, connectorRun, agentRun, subscriberRun runGroup
	done                                              chan struct{}
}

// runGroup owns goroutines that stop together, when the group is stopped
// (not when the process context ends: shutdown orders the groups).
type runGroup struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (g *runGroup) start(parent context.Context, log *slog.Logger, name string, f func(context.Context) error) {
	if g.ctx == nil {
		g.ctx, g.cancel = context.WithCancel(context.WithoutCancel(parent))
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := f(g.ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("component stopped with an error", "component", name, "error", err)
		}
	}()
}

// stop cancels the group and waits at most d for it.
func (g *runGroup) stop(d time.Duration) bool {
	if g.cancel == nil {
		return true
	}
	g.cancel()
	ch := make(chan struct{})
	go func() { g.wg.Wait(); close(ch) }()
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// startSystem wires and starts every part the roles of o ask for. The system
// runs until ctx is cancelled; wait() then returns after the ordered shutdown.
func startSystem(ctx context.Context, o options, log *slog.Logger) (sys *system, err error) {
	roles, err := o.roles()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	s := &system{log: log, done: make(chan struct{})}
	defer func() {
		if err != nil {
			s.shutdown()
		}
	}()

	// Tracing first, so every part makes its spans with it; shutdown
	// flushes it last.
	if s.tracing, err = telemetry.New(ctx, telemetry.Config{SpanProcessors: o.spans}); err != nil {
		return nil, err
	}
	if ep := s.tracing.Endpoint(); ep != "" {
		log.Info("exporting spans over OTLP/HTTP", "endpoint", ep)
	}

	// The bus: embedded unless --nats-url.
	s.natsURL = o.NATSURL
	if s.natsURL == "" {
		s.embedded, err = streams.StartEmbedded(streams.EmbeddedConfig{Listen: o.NATSListen, StoreDir: filepath.Join(o.DataDir, "jetstream")})
		if err != nil {
			return nil, err
		}
		s.natsURL = s.embedded.ClientURL()
		log.Info("embedded NATS started", "url", s.natsURL)
	}
	if s.nc, err = streams.Connect(s.natsURL, "autonomos"); err != nil {
		return nil, err
	}
	if s.js, err = streams.NewJetStream(s.nc, 8192); err != nil {
		return nil, err
	}
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.ensureTopology(ectx, o); err != nil {
		return nil, err
	}
	if s.pubNC, err = streams.Connect(s.natsURL, "autonomos-publish"); err != nil {
		return nil, err
	}
	if s.pubJS, err = streams.NewJetStream(s.pubNC, 8192); err != nil {
		return nil, err
	}
	s.pub = streams.NewPublisher(s.pubJS)
	if s.jobs, err = streams.OpenJobStore(ectx, s.js); err != nil {
		return nil, err
	}
	if s.limits, err = openSharedLimits(ectx, s.js, log); err != nil {
		return nil, err
	}
	mkv, err := s.js.KeyValue(ectx, streams.BucketMappings)
	if err != nil {
		return nil, err
	}
	if s.mappings, err = connectors.NewMappings(config.MappingFS(), mkv); err != nil {
		return nil, fmt.Errorf("shipped mappings: %w", err)
	}

	// The stores of --stores: DuckDB, and Postgres when configured.
	stores, err := o.stores(roles)
	if err != nil {
		return nil, err
	}
	if stores["duckdb"] {
		if s.duck, err = subscriber.OpenDuckDB(filepath.Join(o.DataDir, "autonomos.duckdb")); err != nil {
			return nil, err
		}
		if err := s.duck.SetMemoryLimit(ectx, o.DuckDBMemoryLimit); err != nil {
			return nil, fmt.Errorf("--duckdb-memory-limit: %w", err)
		}
		s.stores = append(s.stores, s.duck)
	}
	if stores["postgres"] {
		if s.pg, err = subscriber.OpenPostgres(ectx, o.Postgres); err != nil {
			return nil, err
		}
		s.stores = append(s.stores, s.pg)
	}

	s.sinkMetrics = newSinkMetrics()
	if roles["subscriber"] {
		for _, st := range s.stores {
			// A store outage must not dead-letter good records: transient failures are
			// retried with backoff (capped at 30s) for about 50 minutes.
			cfg := subscriber.Config{MaxDeliver: 100, Tracing: s.tracing, Parse: s.sinkMetrics.parse}
			if d, ok := st.(*subscriber.DuckDB); ok {
				// Every subscriber process shares dcl-postgres; dcl-duckdb
				// belongs to the one DuckDB file it fills.
				if cfg.Owner, err = d.FileID(ectx); err != nil {
					return nil, err
				}
				host, _ := os.Hostname()
				path, _ := filepath.Abs(filepath.Join(o.DataDir, "autonomos.duckdb"))
				cfg.OwnerNote = host + ":" + path
			}
			sub, err := subscriber.New(s.js, s.pub, s.sinkMetrics.metered(st), cfg, log)
			if err != nil {
				return nil, err
			}
			if _, err := sub.Claim(ectx); err != nil {
				if errors.Is(err, subscriber.ErrOwned) {
					return nil, fmt.Errorf("%w\nA DuckDB file is filled by one process: run the other subscriber processes with --stores postgres. "+
						"If this file replaces the old one, delete the old file's consumers (nats consumer rm %s dcl-duckdb; nats consumer rm %s audit-duckdb) "+
						"and this one is filled from the start of the streams", err, streams.StreamCanonical, streams.StreamAudit)
				}
				return nil, err
			}
			s.subs = append(s.subs, sub)
			s.subscriberRun.start(ctx, log, "subscriber-"+st.Name(), sub.Run)
			aud, err := subscriber.NewAuditMaterializer(s.js, s.pub, st, subscriber.AuditConfig{}, log)
			if err != nil {
				return nil, err
			}
			s.subscriberRun.start(ctx, log, "audit-"+st.Name(), aud.Run)
		}
	}
	if roles["connectors"] && o.UseFileSource {
		s.ingester = filesource.New(filesource.Config{Tracing: s.tracing}, s.pub, s.jobs, s.mappings, log, notifyJob(s.nc, s.jobs, log))
		s.connectorRun.start(ctx, log, "filesource", s.ingester.Run)
	}
	if err := s.wireConnectors(ectx, o, roles["connectors"]); err != nil {
		return nil, err
	}
	if err := s.wireWatcher(ectx, o, roles["connectors"]); err != nil {
		return nil, err
	}
	if err := s.wireAgents(ectx, o, roles["agents"]); err != nil {
		return nil, err
	}
	if roles["gateway"] {
		if err := s.startGateway(ctx, o); err != nil {
			return nil, err
		}
	}
	go func() {
		<-ctx.Done()
		s.shutdown()
		close(s.done)
	}()
	return s, nil
}

// ensureTopology creates or updates the streams and buckets with the
// replicas of --stream-replicas, or the ones streams.AutoReplicas picks, and
// logs what it chose and every stream it moved to another replica count.
func (s *system) ensureTopology(ctx context.Context, o options) error {
	s.replicas = o.StreamReplicas
	why := "--stream-replicas"
	if s.replicas == 0 {
		var err error
		if s.replicas, why, err = streams.AutoReplicas(ctx, s.nc, s.js); err != nil {
			return fmt.Errorf("JetStream topology: %w", err)
		}
	}
	changes, err := streams.Provision(ctx, s.js, streams.TopologyConfig{Replicas: s.replicas, DuplicateWindow: o.DuplicateWindow})
	for _, c := range changes {
		s.log.Warn("stream moved to another replica count", "stream", c.Stream, "from", c.From, "to", c.To)
	}
	if err != nil {
		return fmt.Errorf("JetStream topology at replicas %d (%s; set --stream-replicas to choose): %w", s.replicas, why, err)
	}
	s.log.Info("JetStream topology", "replicas", s.replicas, "why", why, "cluster", s.nc.ConnectedClusterName(),
		"server", s.nc.ConnectedServerName())
	return nil
}

// reader is the store that answers views: Postgres when configured.
func (s *system) reader() store {
	if s.pg != nil {
		return s.pg
	}
	return s.duck
}

func (s *system) startGateway(ctx context.Context, o options) error {
	jwtSecret, err := secret(o.JWTSecret, o.DataDir, "jwt.secret")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.HTTP)
	if err != nil {
		return fmt.Errorf("HTTP cannot listen on %s (set --http): %w", o.HTTP, err)
	}
	s.httpAddr = ln.Addr().String()
	cfg := gateway.Config{
		JWTSecret: jwtSecret,
		RateRead:  o.RateRead,
		RateWrite: o.RateWrite,
		SpoolDir:  filepath.Join(o.DataDir, "uploads"),
		Debug:     o.Debug,
		UI:        ui.Dist(),
	}
	deps := gateway.Deps{
		JetStream: s.js,
		Views:     s.reader(),
		Jobs:      s.jobs,
		Health:    healthChecker{s},
		Audit:     s.reader(),
		Tracing:   s.tracing,
	}
	// Mapping-stage dead letters are redriven by re-mapping their source
	// record with the mapping in force now.
	var remap streams.Remap
	if s.mappings != nil {
		remap = connectors.NewRemapper(s.mappings, s.conns, s.jobs).Remap
	}
	deps.DeadLetters, deps.Rebuilder = streams.NewDLQ(s.js, remap), rebuildService{s}
	deps.Limiters = gateway.SharedLimits(s.limits.keeper)
	if s.ingester != nil {
		deps.Ingester = fileIngester{s.ingester}
	}
	if s.conns != nil {
		cs := connectionService{conns: s.conns, jobs: s.syncJobs}
		deps.Connections, deps.JobCancel = cs, cs
	}
	if s.agents != nil {
		deps.Repairs = repairService{s.agents.Service}
	}
	if err := s.wireLive(ctx, &deps); err != nil {
		ln.Close()
		return err
	}
	if err := s.wireParity(ctx, o, &deps); err != nil {
		ln.Close()
		return err
	}
	s.gw, err = gateway.New(cfg, deps, s.log)
	if err != nil {
		ln.Close()
		return err
	}
	s.gatewayRun.start(ctx, s.log, "gateway", func(ctx context.Context) error { return s.gw.Serve(ctx, ln) })
	s.log.Info("gateway listening", "addr", s.httpAddr)
	return nil
}

// fileIngester adapts the file source to the gateway's FileIngester.
type fileIngester struct{ in *filesource.Ingester }

func (f fileIngester) IngestFile(ctx context.Context, r gateway.FileIngest) (string, error) {
	return f.in.IngestFile(ctx, filesource.Request{Tenant: r.Tenant, Entity: r.Entity, System: r.System, Path: r.Path, Name: r.Name, TraceID: r.TraceID})
}

// healthChecker reports each component's real state.
type healthChecker struct{ s *system }

func (h healthChecker) Check(ctx context.Context) []gateway.ComponentHealth {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var out []gateway.ComponentHealth
	add := func(name string, err error) {
		c := gateway.ComponentHealth{Name: name, Status: "ok"}
		if err != nil {
			c.Status, c.Detail = "down", err.Error()
		}
		out = append(out, c)
	}
	var natsErr error
	if st := h.s.nc.Status(); st != nats.CONNECTED {
		natsErr = fmt.Errorf("connection is %s", st)
	} else if st := h.s.pubNC.Status(); st != nats.CONNECTED {
		natsErr = fmt.Errorf("publishing connection is %s", st)
	} else if _, err := h.s.js.AccountInfo(ctx); err != nil {
		natsErr = fmt.Errorf("jetstream: %w", err)
	}
	add("nats", natsErr)
	for _, st := range h.s.stores {
		add(st.Name(), st.Ping(ctx))
	}
	return out
}

// shutdown stops the parts in the order of STYLE.md, each step bounded:
// gateway → connectors → subscribers drain → publisher flush → NATS drain →
// stores close → spans flushed → embedded server.
func (s *system) shutdown() {
	step := func(name string, g *runGroup, d time.Duration) {
		if !g.stop(d) {
			s.log.Warn("shutdown step timed out", "step", name, "after", d)
		}
	}
	step("gateway", &s.gatewayRun, 10*time.Second)
	step("connectors", &s.connectorRun, 15*time.Second)
	step("agents", &s.agentRun, 10*time.Second)
	step("subscribers", &s.subscriberRun, 15*time.Second)
	for _, js := range []jetstream.JetStream{s.pubJS, s.js} {
		if js == nil {
			continue
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(5 * time.Second):
			s.log.Warn("shutdown: publishes still unacknowledged after 5s")
		}
	}
	for _, nc := range []*nats.Conn{s.pubNC, s.nc} {
		if nc == nil {
			continue
		}
		if err := nc.Drain(); err != nil {
			nc.Close()
		}
		for i := 0; i < 100 && !nc.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, st := range s.stores {
		if err := st.Close(); err != nil {
			s.log.Warn("close store", "store", st.Name(), "error", err)
		}
	}
	if s.tracing != nil {
		// After every part stopped, so the spans of the last requests and
		// batches go out too.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.tracing.Shutdown(ctx); err != nil {
			s.log.Warn("shutdown: spans not flushed", "error", err)
		}
		cancel()
	}
	if s.embedded != nil {
		s.embedded.Shutdown()
	}
}

// wait blocks until the system has shut down after its context ended.
func (s *system) wait() { <-s.done }
