// Package quotatest opens quota keepers the way separate processes would,
// for tests of limits shared across instances.
package quotatest

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/quota"
)

// Instance connects to the NATS server at url as another process would —
// its own connection, named name and closed at cleanup — and opens a Keeper
// named name on it with cfg. It returns the keeper and the connection's
// JetStream, for whatever else the instance needs.
func Instance(t testing.TB, url, name string, cfg quota.Config) (*quota.Keeper, jetstream.JetStream) {
	t.Helper()
	nc, err := streams.Connect(url, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := streams.NewJetStream(nc, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Instance = name
	k, err := quota.Open(context.Background(), js, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k, js
}
