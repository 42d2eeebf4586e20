package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/autonomos/autonomos/agents/drift"
	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/filesource"
	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/subscriber"
)

// wireWatcher starts the file source's watch folder (connectors role,
// FEATURE_USE_FILESOURCE, --watch-dir set).
func (s *system) wireWatcher(ctx context.Context, o options, run bool) error {
	if !run || s.ingester == nil || o.WatchDir == "" {
		return nil
	}
	w, err := filesource.NewWatcher(ctx, filesource.WatchConfig{Dir: o.WatchDir, SpoolDir: filepath.Join(o.DataDir, "uploads", "watch"), Replicas: s.replicas},
		s.js, s.ingester, s.jobs, s.log)
	if err != nil {
		return err
	}
	s.watcher = w
	s.connectorRun.start(ctx, s.log, "filesource-watch", w.Run)
	s.log.Info("watching for CSV files", "dir", o.WatchDir)
	return nil
}

// wireParity fills the gateway's ontology, orchestration and file-source
// services, and starts the orchestrator under the gateway.
func (s *system) wireParity(ctx context.Context, o options, deps *gateway.Deps) error {
	if s.agents != nil {
		fkv, err := s.js.KeyValue(ctx, streams.BucketFingerprints)
		if err != nil {
			return err
		}
		deps.Ontology = ontologyService{js: s.js, mappings: s.mappings, agents: s.agents.Service, fps: drift.NewFingerprints(fkv), conns: s.conns}
	}
	if s.conns != nil && s.syncJobs != nil {
		key, err := secret(o.SecretsKey, o.DataDir, "secrets.key")
		if err != nil {
			return err
		}
		orch, err := connectors.NewOrchestrator(ctx, connectors.OrchestratorConfig{WebhookKey: []byte(key), Replicas: s.replicas}, s.js, s.syncJobs, s.conns, s.jobs,
			&http.Client{Timeout: 15 * time.Second}, s.log)
		if err != nil {
			return err
		}
		s.orch = orch
		s.gatewayRun.start(ctx, s.log, "orchestrator", orch.Run)
		deps.AOA = aoaService{s: s}
	}
	deps.FileSourceOff = !o.UseFileSource
	if o.UseFileSource {
		deps.FileSource = fileSourceService{w: s.watcher}
	}
	return nil
}

// aoaService adapts the orchestrator and the store rebuild to the gateway.
type aoaService struct{ s *system }

var _ gateway.AOAService = aoaService{}

func orchErr(err error) error {
	switch {
	case errors.Is(err, connectors.ErrOrchestrationActive):
		return fmt.Errorf("%w: %w", gateway.ErrConflict, err)
	case errors.Is(err, connectors.ErrBadWebhook):
		return &canonical.FieldError{Field: "webhook_url", Reason: "want an http or https URL"}
	}
	return err
}

func (a aoaService) Run(ctx context.Context, tenant string, in gateway.AOARunInput) (any, error) {
	j, err := a.s.orch.Start(ctx, tenant, connectors.StartInput{Connections: in.Connections, WebhookURL: in.WebhookURL, TraceID: in.TraceID, User: in.User})
	if err != nil {
		return nil, orchErr(err)
	}
	return map[string]any{"job_id": j.ID, "job": j}, nil
}

// OrchestrationState is GET /api/v1/aoa/state.
type OrchestrationState struct {
	Active      bool                `json:"active"`
	Job         *streams.Job        `json:"job"`
	Connections []ConnectionRunView `json:"connections"`
}

// ConnectionRunView is one connection's part of an orchestration.
type ConnectionRunView struct {
	ConnectionID string             `json:"connection_id"`
	JobID        string             `json:"job_id"`
	Status       string             `json:"status"`
	RowsRead     int64              `json:"rows_read"`
	Published    int64              `json:"published"`
	Rejected     int64              `json:"rejected"`
	Message      string             `json:"message,omitempty"`
	Errors       []streams.RowError `json:"errors"`
}

func (a aoaService) State(ctx context.Context, tenant string) (any, error) {
	j, err := a.s.orch.Latest(ctx, tenant)
	if errors.Is(err, streams.ErrNotFound) {
		return OrchestrationState{Connections: []ConnectionRunView{}}, nil
	}
	if err != nil {
		return nil, err
	}
	st := OrchestrationState{Active: !j.Finished(), Job: j, Connections: []ConnectionRunView{}}
	for _, id := range j.Children {
		c, err := a.s.jobs.Get(ctx, tenant, id)
		if err != nil {
			st.Connections = append(st.Connections, ConnectionRunView{JobID: id, Status: "unknown", Message: err.Error(), Errors: []streams.RowError{}})
			continue
		}
		errs := c.Errors
		if errs == nil {
			errs = []streams.RowError{}
		}
		st.Connections = append(st.Connections, ConnectionRunView{ConnectionID: c.ConnectionID, JobID: id, Status: c.Status,
			RowsRead: c.RowsRead, Published: c.Published, Rejected: c.Rejected, Message: c.Message, Errors: errs})
	}
	return st, nil
}

// Reset rebuilds the tenant's tables from the CANONICAL stream through
// subscriber.Rebuild (fresh tables swapped in; the streams are untouched).
func (a aoaService) Reset(ctx context.Context, tenant, traceID string) (any, error) {
	if id, err := a.s.orch.Active(ctx, tenant); err != nil {
		return nil, err
	} else if id != "" {
		return nil, fmt.Errorf("%w: orchestration %s is active; reset after it finished", gateway.ErrConflict, id)
	}
	st, err := subscriber.Rebuild(ctx, a.s.js, a.s.rebuildables(), subscriber.ReplayOptions{Tenant: tenant})
	if err != nil {
		return nil, err
	}
	a.s.log.Info("tenant tables reset from the streams", "tenant", tenant, "events", st.Events, "trace_id", traceID)
	return st, nil
}

func (a aoaService) WebhookSecret(_ context.Context, tenant string) (string, error) {
	return a.s.orch.WebhookSecret(tenant), nil
}

// fileSourceService adapts the watch folder (nil when none is configured).
type fileSourceService struct{ w *filesource.Watcher }

var _ gateway.FileSourceService = fileSourceService{}

func (f fileSourceService) Discover(ctx context.Context, tenant string) (any, error) {
	if f.w == nil {
		return []filesource.WatchedFile{}, nil
	}
	return f.w.Discover(ctx, tenant)
}

func (f fileSourceService) Replay(ctx context.Context, tenant string, in gateway.FileReplayInput) (any, error) {
	if f.w == nil {
		return nil, fmt.Errorf("%w: no watch folder is configured (--watch-dir)", gateway.ErrConflict)
	}
	files, err := f.w.Replay(ctx, tenant, in.Paths, in.TraceID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"data": files}, nil
}

func (f fileSourceService) Status(ctx context.Context, tenant string) (any, error) {
	if f.w == nil {
		return map[string]any{"enabled": false, "folder": nil, "files": map[string]int{}}, nil
	}
	return f.w.Status(ctx, tenant)
}
