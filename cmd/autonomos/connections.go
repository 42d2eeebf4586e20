package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/dynamics"
	"github.com/autonomos/autonomos/connectors/httpx"
	"github.com/autonomos/autonomos/connectors/hubspot"
	"github.com/autonomos/autonomos/connectors/pgsource"
	"github.com/autonomos/autonomos/connectors/salesforce"
	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/streams"
)

// registry is the explicit table of connector kinds this binary knows.
// budgets are shared by every connection to the same org (SharedBudgets:
// of every instance on the same NATS).
func registry(budgets httpx.Budgets) connectors.Registry {
	return connectors.Registry{
		salesforce.System: salesforce.NewFactory(salesforce.Options{Budgets: budgets}),
		hubspot.System:    hubspot.NewFactory(hubspot.Options{Budgets: budgets}),
		dynamics.System:   dynamics.NewFactory(dynamics.Options{Budgets: budgets}),
		pgsource.System:   pgsource.Factory,
	}
}

// wireConnectors opens the connection registry and jobs, and with the
// connectors role starts the sync worker and the scheduler.
func (s *system) wireConnectors(ctx context.Context, o options, run bool) error {
	key, err := secret(o.SecretsKey, o.DataDir, "secrets.key")
	if err != nil {
		return err
	}
	sealer, err := connectors.NewSealer(key)
	if err != nil {
		return fmt.Errorf("--secrets-key: %w", err)
	}
	events, err := connectors.OpenEventLog(ctx, s.js, s.replicas, s.nc, s.log)
	if err != nil {
		return err
	}
	deps := connectors.Deps{HTTP: &http.Client{Timeout: 60 * time.Second}, Log: s.log}
	s.conns, err = connectors.OpenConnections(ctx, s.js, registry(s.limits.budgets), deps, sealer, events)
	if err != nil {
		return err
	}
	s.events = events
	s.syncJobs = connectors.NewJobs(s.js, s.conns, s.jobs, s.nc, s.log)
	if !run {
		return nil
	}
	cursors, err := s.js.KeyValue(ctx, streams.BucketCursors)
	if err != nil {
		return err
	}
	runner := connectors.NewRunner(s.pub, cursors, s.mappings, s.log)
	if runner.Snapshots, err = s.js.ObjectStore(ctx, streams.ObjectsReconcile); err != nil {
		return fmt.Errorf("object store %s: %w", streams.ObjectsReconcile, err)
	}
	worker, err := connectors.NewWorker(connectors.WorkerConfig{Tracing: s.tracing}, s.syncJobs, runner, s.log)
	if err != nil {
		return err
	}
	s.connectorRun.start(ctx, s.log, "sync-worker", worker.Run)
	sched := connectors.NewScheduler(connectors.SchedulerConfig{}, s.syncJobs, s.log)
	s.connectorRun.start(ctx, s.log, "scheduler", sched.Run)
	return nil
}

// connectionService adapts the connection registry and sync jobs to the
// gateway's ConnectionService, translating state conflicts to 409s.
type connectionService struct {
	conns *connectors.Connections
	jobs  *connectors.Jobs
}

var _ gateway.ConnectionService = connectionService{}
var _ gateway.JobCanceller = connectionService{}

func conflict(err error) error {
	for _, c := range []error{connectors.ErrSyncActive, connectors.ErrJobFinished, connectors.ErrNotCancellable, connectors.ErrStatusConflict} {
		if errors.Is(err, c) {
			return fmt.Errorf("%w: %w", gateway.ErrConflict, err)
		}
	}
	return err
}

func input(in gateway.ConnectionInput) connectors.ConnectionInput {
	return connectors.ConnectionInput{Name: in.Name, System: in.System, Config: in.Config, Secrets: in.Secrets, Interval: in.Interval,
		Reconcile: in.Reconcile}
}

func (c connectionService) Create(ctx context.Context, tenant string, in gateway.ConnectionInput) (any, error) {
	v, err := c.conns.Create(ctx, tenant, input(in))
	return v, conflict(err)
}

func (c connectionService) List(ctx context.Context, tenant string) (any, error) {
	v, err := c.conns.List(ctx, tenant)
	if v == nil {
		v = []*connectors.ConnectionView{}
	}
	return v, err
}

func (c connectionService) Get(ctx context.Context, tenant, id string) (any, error) {
	return c.conns.Get(ctx, tenant, id)
}

func (c connectionService) Update(ctx context.Context, tenant, id string, in gateway.ConnectionInput) (any, error) {
	v, err := c.conns.Update(ctx, tenant, id, input(in))
	return v, conflict(err)
}

func (c connectionService) Delete(ctx context.Context, tenant, id string) error {
	return conflict(c.conns.Delete(ctx, tenant, id))
}

func (c connectionService) Test(ctx context.Context, tenant, id string) (bool, string, error) {
	if _, err := c.conns.Get(ctx, tenant, id); err != nil {
		return false, "", err
	}
	if err := c.conns.Test(ctx, tenant, id); err != nil {
		return false, err.Error(), nil
	}
	return true, "the source answered", nil
}

func (c connectionService) Sync(ctx context.Context, tenant, id, traceID, mode string) (string, error) {
	queue := c.jobs.QueueSync
	if mode == connectors.JobModeReconcile {
		queue = c.jobs.QueueReconcile
	}
	jid, err := queue(ctx, tenant, id, traceID)
	return jid, conflict(err)
}

func (c connectionService) Pause(ctx context.Context, tenant, id string) (any, error) {
	v, err := c.conns.Pause(ctx, tenant, id)
	return v, conflict(err)
}

func (c connectionService) Resume(ctx context.Context, tenant, id string) (any, error) {
	v, err := c.conns.Resume(ctx, tenant, id)
	return v, conflict(err)
}

func (c connectionService) Cancel(ctx context.Context, tenant, id string) error {
	return conflict(c.jobs.Cancel(ctx, tenant, id))
}
