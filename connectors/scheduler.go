package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/streams"
)

// SchedulerConfig tunes a Scheduler.
type SchedulerConfig struct {
	// Tick is how often due connections are looked for (default 5s).
	Tick time.Duration `yaml:"tick"`
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time `yaml:"-"`
}

// Scheduler queues a sync of every ACTIVE connection with an interval whose
// last sync (or last queued sync, or creation) is older than the interval.
// It follows the connections bucket with a KV watch, so a tick costs no
// reads. Several instances may run one: the connection's sync lock, and a
// second look at the connection under it, keep a due connection from being
// synced twice. Run may be called once.
type Scheduler struct {
	cfg  SchedulerConfig
	jobs *Jobs
	log  *slog.Logger
}

// NewScheduler returns a scheduler that queues through jobs.
func NewScheduler(cfg SchedulerConfig, jobs *Jobs, log *slog.Logger) *Scheduler {
	if cfg.Tick <= 0 {
		cfg.Tick = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{cfg: cfg, jobs: jobs, log: log.With("component", "scheduler")}
}

// Run watches the connections and queues due syncs every Tick until ctx
// ends; it returns nil then.
func (s *Scheduler) Run(ctx context.Context) error {
	w, err := s.jobs.conns.kv.Watch(ctx, "*.*", jetstream.IgnoreDeletes())
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("watch connections: %w", err)
	}
	defer w.Stop()
	known := map[string]*storedConnection{} // tenant.id → latest
	ready := false
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	s.log.Info("scheduler started", "tick", s.cfg.Tick.String())
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("connections watch ended")
			}
			if e == nil {
				ready = true
				s.tick(ctx, known)
				continue
			}
			var sc storedConnection
			if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &sc) != nil {
				delete(known, e.Key())
				continue
			}
			known[e.Key()] = &sc
		case <-t.C:
			if ready {
				s.tick(ctx, known)
			}
		}
	}
}

// tick queues every due connection; already active ones are skipped.
func (s *Scheduler) tick(ctx context.Context, known map[string]*storedConnection) {
	now := s.cfg.Now()
	for key, sc := range known {
		if !due(sc, now) {
			continue
		}
		tenant, id, _ := strings.Cut(key, ".")
		mode := ""
		if reconcileDue(sc, now) {
			mode = JobModeReconcile
		}
		jobID, err := s.jobs.queueSync(ctx, tenant, id, streams.NewID(), mode, func(sc *storedConnection) bool { return due(sc, now) })
		switch {
		case err == nil:
			s.log.Info("scheduled sync queued", "tenant", tenant, "connection_id", id, "job_id", jobID, "mode", mode)
		case errors.Is(err, ErrSyncActive), errors.Is(err, errNotDue), errors.Is(err, ErrNotFound):
		case ctx.Err() != nil:
			return
		default:
			s.log.Warn("queue a scheduled sync", "tenant", tenant, "connection_id", id, "error", err)
		}
	}
}

// due reports whether an ACTIVE connection's interval has passed since its
// last sync, its last queued sync and its creation.
func due(sc *storedConnection, now time.Time) bool {
	if sc.Status != StatusActive || sc.Interval == "" {
		return false
	}
	d, err := time.ParseDuration(sc.Interval)
	if err != nil || d < MinInterval {
		return false
	}
	last := sc.CreatedAt
	for _, t := range []*time.Time{sc.LastSyncAt, sc.LastQueuedAt} {
		if t != nil && t.After(last) {
			last = *t
		}
	}
	return now.Sub(last) >= d
}

// reconcileDue reports whether a due sync of sc should be a reconciliation:
// its reconcile period has passed since its last reconciliation (or its
// creation).
func reconcileDue(sc *storedConnection, now time.Time) bool {
	if sc.Reconcile == "" {
		return false
	}
	d, err := time.ParseDuration(sc.Reconcile)
	if err != nil || d < MinInterval {
		return false
	}
	last := sc.CreatedAt
	if sc.LastReconcileAt != nil && sc.LastReconcileAt.After(last) {
		last = *sc.LastReconcileAt
	}
	return now.Sub(last) >= d
}
