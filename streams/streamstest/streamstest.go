// Package streamstest starts an embedded JetStream server for tests, on a
// random port with a temporary store, with the AutonomOS topology in place.
package streamstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/streams"
)

// Env is a running test server with a client connection.
type Env struct {
	Server *streams.Embedded
	NC     *nats.Conn
	JS     jetstream.JetStream
	Pub    *streams.Publisher
	URL    string
}

// Start starts a server, connects and ensures the topology; everything is
// closed by t.Cleanup.
func Start(t testing.TB) *Env {
	t.Helper()
	srv, err := streams.StartEmbedded(streams.EmbeddedConfig{Listen: "127.0.0.1:-1", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := streams.Connect(srv.ClientURL(), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := streams.NewJetStream(nc, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := streams.Ensure(ctx, js, streams.TopologyConfig{}); err != nil {
		t.Fatalf("ensure topology: %v", err)
	}
	return &Env{Server: srv, NC: nc, JS: js, Pub: streams.NewPublisher(js), URL: srv.ClientURL()}
}

// Eventually polls f until it returns nil or timeout passes, then fails t
// with f's last error.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := 5 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %v", timeout, err)
		}
		time.Sleep(wait)
		if wait < 200*time.Millisecond {
			wait *= 2
		}
	}
}
