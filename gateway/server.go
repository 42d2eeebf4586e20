package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/streams"
)

// Roles of a tenant's users.
const (
	RoleAdmin  = "admin"
	RoleViewer = "viewer"
)

// access says who may call a route.
type access int

const (
	accessPublic access = iota // no token
	accessViewer               // any authenticated user
	accessAdmin                // admins only
)

// route is one entry of the route table: the router, the auth rules and the
// OpenAPI document are all derived from it.
type route struct {
	method  string
	path    string // Echo syntax (:id)
	handler echo.HandlerFunc
	access  access
	doc     opDoc
}

func (r *route) key() string { return r.method + " " + r.path }

// Server is the HTTP gateway. Its handler is safe for concurrent use.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	e    *echo.Echo

	routes  []*route
	byKey   map[string]*route
	allowed map[string][]string // static path → its methods, for 405

	tokens   *tokenKeys
	users    *userStore
	sessions *sessionStore
	idem     jetstream.KeyValue
	hashSem  chan struct{}

	dummyOnce sync.Once
	dummy     string // argon2id hash checked for unknown e-mails

	readLimits, writeLimits classLimit
	loginAccount            *limiterSet
	loginAddress            *limiterSet

	metrics *metrics
	spec    []byte
}

// namedMiddleware is one step of the chain, named for tests and docs.
type namedMiddleware struct {
	name string
	fn   echo.MiddlewareFunc
}

// chain is the middleware order every request passes through, outermost
// first. Recover is innermost so a panic becomes an ordinary 500 that audit
// and idempotency see.
func (s *Server) chain() []namedMiddleware {
	return []namedMiddleware{
		{"tracing", s.tracing},
		{"auth", s.auth},
		{"rate_limit", s.rateLimit},
		{"idempotency", s.idempotency},
		{"audit", s.audit},
		{"recover", s.recover},
	}
}

// Middleware returns the names of the middleware chain, outermost first:
// tracing, auth, rate_limit, idempotency, audit, recover.
func (s *Server) Middleware() []string {
	var names []string
	for _, m := range s.chain() {
		names = append(names, m.name)
	}
	return names
}

// New builds a gateway: it applies Config's defaults, validates cfg and
// deps (one joined error naming every bad field), binds the KV buckets and
// registers the routes. It starts nothing; see Run and Handler.
func New(cfg Config, deps Deps, log *slog.Logger) (*Server, error) {
	cfg.defaults()
	if err := errors.Join(cfg.validate(), deps.validate()); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = slog.New(LogHandler(log.Handler())).With("component", "gateway")

	s := &Server{
		cfg:          cfg,
		deps:         deps,
		log:          log,
		byKey:        map[string]*route{},
		allowed:      map[string][]string{},
		hashSem:      make(chan struct{}, cfg.MaxConcurrentHashes),
		readLimits:   newClassLimit(classRead, mustRate(cfg.RateRead), deps.Limiters),
		writeLimits:  newClassLimit(classWrite, mustRate(cfg.RateWrite), deps.Limiters),
		loginAccount: newLimiterSet(mustRate(cfg.LoginRateAccount)),
		loginAddress: newLimiterSet(mustRate(cfg.LoginRateAddress)),
	}
	s.tokens = newTokenKeys(cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	kvs := map[string]*jetstream.KeyValue{}
	var users, tenants, sessions jetstream.KeyValue
	kvs[streams.BucketUsers] = &users
	kvs[streams.BucketTenants] = &tenants
	kvs[streams.BucketSessions] = &sessions
	kvs[streams.BucketIdempotency] = &s.idem
	var errs []error
	for name, p := range kvs {
		kv, err := deps.JetStream.KeyValue(ctx, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("gateway: bucket %s: %w", name, err))
			continue
		}
		*p = kv
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.users = &userStore{users: users, tenants: tenants}
	s.sessions = &sessionStore{kv: sessions}

	m, err := newMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if err := s.initLive(); err != nil {
		return nil, err
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = ipExtractor(cfg.TrustedProxies)
	e.Pre(s.liveToken) // ?token= on GET /dcl/ws becomes the Authorization header
	for _, m := range s.chain() {
		e.Use(m.fn)
	}
	for _, r := range s.routeTable() {
		s.routes = append(s.routes, r)
		s.byKey[r.key()] = r
		if !strings.Contains(r.path, ":") {
			s.allowed[r.path] = append(s.allowed[r.path], r.method)
		}
		e.Add(r.method, r.path, r.handler)
	}
	e.RouteNotFound("/*", s.notFound)
	s.e = e

	spec, err := s.openAPI()
	if err != nil {
		return nil, fmt.Errorf("gateway: openapi: %w", err)
	}
	s.spec = spec
	return s, nil
}

// routeTable lists every route of the gateway.
func (s *Server) routeTable() []*route {
	metricsAccess := accessViewer
	if s.cfg.MetricsPublic {
		metricsAccess = accessPublic
	}
	rs := []*route{
		{http.MethodGet, "/health", s.handleHealth, accessPublic, docHealth},
		{http.MethodGet, "/openapi.json", s.handleOpenAPI, accessPublic, docOpenAPI},
		{http.MethodGet, "/docs", s.handleDocs, accessPublic, docDocs},
		{http.MethodGet, "/metrics", s.handleMetrics, metricsAccess, docMetrics},
		{http.MethodPost, "/api/v1/auth/register", s.handleRegister, accessPublic, docRegister},
		{http.MethodPost, "/api/v1/auth/login", s.handleLogin, accessPublic, docLogin},
		{http.MethodPost, "/api/v1/auth/refresh", s.handleRefresh, accessPublic, docRefresh},
		{http.MethodGet, "/api/v1/auth/me", s.handleMe, accessViewer, docMe},
		// A viewer may end its own session.
		{http.MethodPost, "/api/v1/auth/logout", s.handleLogout, accessViewer, docLogout},
		{http.MethodPost, "/api/v1/auth/users", s.handleInvite, accessAdmin, docInvite},
		{http.MethodPost, "/api/v1/filesource/upload", s.handleUpload, accessAdmin, docUpload},
		{http.MethodGet, "/api/v1/aoa/jobs", s.handleJobs, accessViewer, docJobs},
		{http.MethodGet, "/api/v1/aoa/jobs/:id", s.handleJob, accessViewer, docJob},
	}
	rs = append(rs, viewRoutes(s)...)
	rs = append(rs, connectionRoutes(s)...)
	rs = append(rs, driftRoutes(s)...)
	rs = append(rs, dlqRoutes(s)...)
	rs = append(rs, liveRoutes(s)...)
	rs = append(rs, ontologyRoutes(s)...)
	rs = append(rs, aoaRoutes(s)...)
	rs = append(rs, fileSourceRoutes(s)...)
	rs = append(rs, auditRoutes(s)...)
	rs = withoutFileSource(s, rs)
	if s.cfg.Debug {
		rs = append(rs, &route{http.MethodGet, "/api/v1/debug/config", s.handleDebugConfig, accessAdmin, docDebugConfig})
	}
	return rs
}

// routeOf is the table entry of the matched route; nil for the not-found
// and method-not-allowed cases.
func (s *Server) routeOf(c echo.Context) *route {
	if c.Get(echo.ContextKeyHeaderAllow) != nil {
		return nil
	}
	return s.byKey[c.Request().Method+" "+c.Path()]
}

// Handler is the gateway as an http.Handler (for httptest, or a server of
// the caller's own).
func (s *Server) Handler() http.Handler { return s.e }

// Routes lists the registered routes as "METHOD /path" (Echo syntax),
// excluding the UI's catch-all.
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.e.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// Run listens on cfg.Addr and serves until ctx is cancelled, then shuts
// down gracefully within cfg.ShutdownTimeout. It returns nil after a clean
// shutdown.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway: listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener of the caller's (it closes ln).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.e,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.log.Info("gateway listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("gateway: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc // Serve returns ErrServerClosed once Shutdown begins
	if err != nil {
		hs.Close()
		return fmt.Errorf("gateway: shutdown: %w", err)
	}
	s.log.Info("gateway stopped")
	return nil
}

// recover turns a handler panic into a 500 (logged with its value).
func (s *Server) recover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				err = internal(fmt.Errorf("panic: %v", v))
			}
		}()
		return next(c)
	}
}

func ipExtractor(trusted []string) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, t := range trusted {
		if _, n, err := net.ParseCIDR(t); err == nil {
			opts = append(opts, echo.TrustIPRange(n))
		}
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}
