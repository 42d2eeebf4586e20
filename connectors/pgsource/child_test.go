package pgsource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/autonomos/autonomos/config"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/pgsource"
	"github.com/autonomos/autonomos/streams"
)

// The kill -9 tests run the connector in a child process: the test binary
// itself, started with childEnv set, syncing a connection in a loop until
// it is killed.
const (
	childEnv     = "PGSOURCE_TEST_CHILD"
	childNATS    = "PGSOURCE_TEST_CHILD_NATS"
	childConnEnv = "PGSOURCE_TEST_CHILD_CONNECTION" // JSON: connectors.Connection with its secrets
)

// childConnection is a connection as handed to a child.
type childConnection struct {
	connectors.Connection
	Secrets map[string]string `json:"secrets"`
}

func childMain() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var cc childConnection
	if err := json.Unmarshal([]byte(os.Getenv(childConnEnv)), &cc); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	conn := cc.Connection
	conn.Secrets = cc.Secrets
	nc, err := streams.Connect(os.Getenv(childNATS), "pgsource-child")
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	js, err := streams.NewJetStream(nc, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	ctx := context.Background()
	cursors, err := js.KeyValue(ctx, streams.BucketCursors)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	maps, err := connectors.NewMappings(config.MappingFS(), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	runner := connectors.NewRunner(streams.NewPublisher(js), cursors, maps, log)
	con, err := pgsource.New(conn, connectors.Deps{Log: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	for { // until killed
		if _, err := runner.Sync(ctx, conn, con, "", nil); err != nil {
			log.Error("sync", "error", err)
			time.Sleep(100 * time.Millisecond)
		}
	}
}
