package agents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/agents/drift"
	"github.com/autonomos/autonomos/agents/llm"
	"github.com/autonomos/autonomos/agents/match"
	"github.com/autonomos/autonomos/agents/search"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/streams"
)

// Config configures the agents.
type Config struct {
	// Autofix applies proposals at or above the auto threshold without a
	// person (FEATURE_DRIFT_AUTOFIX). Off: they are queued.
	Autofix bool `yaml:"autofix"`
	// Drift tunes the schema observer.
	Drift drift.Config `yaml:"drift"`
	// Match holds the decision thresholds (0.85 auto, 0.60 queue).
	Match match.Config `yaml:"match"`
	// Replicas of the findings bucket (3 on a 3-node cluster). Default 1.
	Replicas int `yaml:"replicas"`
	// LLMTimeout bounds one LLM call. Default 30s.
	LLMTimeout time.Duration `yaml:"llm_timeout"`
}

func (c *Config) defaults() {
	c.Drift.Defaults()
	c.Match.Defaults()
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.LLMTimeout <= 0 {
		c.LLMTimeout = 30 * time.Second
	}
}

func (c Config) validate() error {
	return errors.Join(c.Drift.Validate(), c.Match.Validate())
}

// Deps are what the agents use. The caller owns them and closes none
// before Run returned.
type Deps struct {
	// JetStream holds the RAW, CANONICAL and DRIFT streams and the
	// mappings and fingerprints buckets (streams.Ensure); the agents create
	// their own drift_findings bucket.
	JetStream jetstream.JetStream
	// Mappings are the shipped mappings (connectors.NewMappings).
	Mappings *connectors.Mappings
	// Proposers are the configured LLM proposers (llm.Providers); none is
	// fine.
	Proposers []llm.Proposer
	// Embedder, optional, blends a provider's embeddings into search.
	Embedder search.Embedder
	// Connections, optional, receives connection status changes.
	Connections StatusSetter
	Log         *slog.Logger
}

// Agents is the running set: the schema observer, the repairer, the
// semantic index (kept in step with the mappings bucket) and the service
// the gateway calls.
type Agents struct {
	Observer *drift.Observer
	Repairer *Repairer
	Index    *search.Index
	Service  *Service
	Findings *drift.Store

	mappings jetstream.KeyValue
	log      *slog.Logger
}

// New builds the agents: cfg gets its defaults, then is validated (one
// joined error naming every bad field); the drift_findings bucket is
// created when missing.
func New(ctx context.Context, cfg Config, d Deps) (*Agents, error) {
	cfg.defaults()
	var errs []error
	if err := cfg.validate(); err != nil {
		errs = append(errs, err)
	}
	if d.JetStream == nil {
		errs = append(errs, errors.New("agents deps: JetStream is required"))
	}
	if d.Mappings == nil {
		errs = append(errs, errors.New("agents deps: Mappings is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mkv, err := d.JetStream.KeyValue(ctx, streams.BucketMappings)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", streams.BucketMappings, err)
	}
	fkv, err := d.JetStream.KeyValue(ctx, streams.BucketFingerprints)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", streams.BucketFingerprints, err)
	}
	findings, err := drift.OpenStore(ctx, d.JetStream, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	obs, err := drift.NewObserver(d.JetStream, drift.NewFingerprints(fkv), findings, cfg.Drift, log)
	if err != nil {
		return nil, err
	}
	m, err := match.New(cfg.Match)
	if err != nil {
		return nil, err
	}
	index := search.New(d.Mappings.Shipped(), d.Embedder, log)
	versions := NewVersions(mkv, d.Mappings)
	rep := &Repairer{js: d.JetStream, findings: findings, versions: versions, index: index, matcher: m, proposers: d.Proposers,
		status: d.Connections, cfg: cfg, log: log.With("component", "drift_repair"), now: time.Now}
	svc := &Service{findings: findings, versions: versions, repairer: rep, index: index, matcher: m, js: d.JetStream,
		log: log.With("component", "agents_service"), now: time.Now}
	return &Agents{Observer: obs, Repairer: rep, Index: index, Service: svc, Findings: findings, mappings: mkv, log: log}, nil
}

// Run runs the observer, the repairer and the index watch until ctx is
// cancelled (then it returns nil once all three stopped) or one fails (the
// others are stopped and its error returned).
func (a *Agents) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	for _, run := range []func(context.Context) error{
		a.Observer.Run,
		a.Repairer.Run,
		func(ctx context.Context) error { return a.Index.Watch(ctx, a.mappings) },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}
