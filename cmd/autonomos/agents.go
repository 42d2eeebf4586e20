package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/autonomos/autonomos/agents"
	"github.com/autonomos/autonomos/agents/llm"
	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/gateway"
)

// wireAgents builds the drift agents (schema observer, repairer, search
// index) and, with the agents role, runs them.
func (s *system) wireAgents(ctx context.Context, o options, run bool) error {
	proposers, embedder, err := llm.Providers(ctx, llm.ConfigFromEnv(os.Getenv), &http.Client{Timeout: 60 * time.Second})
	if err != nil {
		return fmt.Errorf("LLM providers: %w", err)
	}
	deps := agents.Deps{JetStream: s.js, Mappings: s.mappings, Proposers: proposers, Embedder: embedder, Log: s.log}
	if s.conns != nil {
		deps.Connections = s.conns
	}
	s.agents, err = agents.New(ctx, agents.Config{Autofix: o.DriftAutofix, Replicas: s.replicas}, deps)
	if err != nil {
		return fmt.Errorf("agents: %w", err)
	}
	if run {
		s.agentRun.start(ctx, s.log, "agents", s.agents.Run)
	}
	return nil
}

// repairService adapts the agents' service to the gateway's DriftService.
type repairService struct{ svc *agents.Service }

var _ gateway.DriftService = repairService{}

func agentErr(err error) error {
	if errors.Is(err, agents.ErrConflict) {
		return fmt.Errorf("%w: %w", gateway.ErrConflict, err)
	}
	return err
}

func (r repairService) Findings(ctx context.Context, tenant, status string, limit int) (any, error) {
	v, err := r.svc.Findings(ctx, tenant, status, limit)
	return nonNil(v), agentErr(err)
}

func (r repairService) Finding(ctx context.Context, tenant, id string) (any, error) {
	v, err := r.svc.Finding(ctx, tenant, id)
	return v, agentErr(err)
}

func (r repairService) Approve(ctx context.Context, tenant, id, user string, choices map[string]string) (any, error) {
	v, err := r.svc.Approve(ctx, tenant, id, user, choices)
	return v, agentErr(err)
}

func (r repairService) Reject(ctx context.Context, tenant, id, user, reason string) (any, error) {
	v, err := r.svc.Reject(ctx, tenant, id, user, reason)
	return v, agentErr(err)
}

func (r repairService) MappingObjects(ctx context.Context, tenant string) (any, error) {
	v, err := r.svc.MappingObjects(ctx, tenant)
	return nonNil(v), agentErr(err)
}

func (r repairService) MappingVersions(ctx context.Context, tenant, system, object string) (any, error) {
	v, err := r.svc.MappingVersions(ctx, tenant, system, object)
	return nonNil(v), agentErr(err)
}

func (r repairService) MappingVersion(ctx context.Context, tenant, system, object string, version int) (any, error) {
	v, err := r.svc.MappingVersion(ctx, tenant, system, object, version)
	return v, agentErr(err)
}

func (r repairService) DiffMappings(ctx context.Context, tenant, system, object string, from, to int) (any, error) {
	v, err := r.svc.DiffMappings(ctx, tenant, system, object, from, to)
	return v, agentErr(err)
}

func (r repairService) Rollback(ctx context.Context, tenant, system, object string, to int, user string) (any, error) {
	v, err := r.svc.Rollback(ctx, tenant, system, object, to, user)
	return v, agentErr(err)
}

func (r repairService) Preview(ctx context.Context, tenant string, body json.RawMessage) (any, error) {
	var req agents.PreviewRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &canonical.FieldError{Field: "body", Reason: err.Error()}
	}
	v, err := r.svc.Preview(ctx, tenant, req)
	return v, agentErr(err)
}

func (r repairService) Search(ctx context.Context, tenant, q string, k int) (any, error) {
	v, err := r.svc.Search(ctx, tenant, q, k)
	return nonNil(v), agentErr(err)
}

func (r repairService) DriftEvents24h(ctx context.Context, tenant string) (any, error) {
	v, err := r.svc.DriftEvents(ctx, tenant, time.Now().Add(-24*time.Hour))
	return nonNil(v), agentErr(err)
}

func (r repairService) ReviewQueue(ctx context.Context, tenant string) (any, error) {
	v, err := r.svc.ReviewQueue(ctx, tenant)
	return nonNil(v), agentErr(err)
}

func (r repairService) Intelligence(ctx context.Context, tenant string) (any, error) {
	v, err := r.svc.Intelligence(ctx, tenant)
	return v, agentErr(err)
}

// nonNil turns a nil slice into an empty JSON list.
func nonNil[T any](v []T) any {
	if v == nil {
		return []T{}
	}
	return v
}
