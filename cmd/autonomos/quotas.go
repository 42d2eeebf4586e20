package main

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/connectors/httpx"
	"github.com/autonomos/autonomos/streams/quota"
)

// sharedLimits are the limits this process shares with every instance on
// the same NATS through the quotas bucket: the gateway's per-tenant rate
// limits (--rate-read, --rate-write) and the request budgets of the source
// orgs the connectors call. They are shared with embedded NATS too, since
// other instances may join an embedded server through its --nats-listen
// port; a lone instance pays one KV read and write per few requests.
type sharedLimits struct {
	keeper  *quota.Keeper
	budgets *httpx.SharedBudgets
}

func openSharedLimits(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (*sharedLimits, error) {
	k, err := quota.Open(ctx, js, quota.Config{}, log)
	if err != nil {
		return nil, err
	}
	return &sharedLimits{keeper: k, budgets: httpx.NewSharedBudgets(k)}, nil
}
