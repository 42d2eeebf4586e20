// Command autonomos is the one binary of AutonomOS. This file is the map of
// the system: flags → config → logger → tracing and wiring (system.go) → run
// → ordered shutdown (which flushes the spans last).
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `autonomos — CRM data integration on NATS JetStream

usage: autonomos <command> [flags]

commands:
  serve    run the system (gateway, subscriber, connectors, agents per --roles)
  demo     run the system with demo data: a demo tenant, the sample CSVs and
           connections to simulated Salesforce, HubSpot and Dynamics 365
  probe    functional probe: ingest one opportunity and wait until the view shows it
  ingest   send a CSV file through a running system's upload API
  crmsim   serve simulated Salesforce, HubSpot and Dynamics 365 APIs on loopback
  dlq      inspect and redrive dead letters: dlq ls|show SEQ|redrive [--all|SEQ...] [--tenant T]
  replay   re-apply the CANONICAL stream to the stores: replay --tenant T [--entity E] [--since D|--from-seq N] [--rebuild]
  bench    measure the pipeline and its baselines in one run: bench [--records N] [--json]; bench drift [--corpus DIR] [--json]
  user     manage users: user add --tenant T --email E --password P [--role admin|viewer]

Every command that starts the system takes the same flags; see "autonomos serve -h".
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, stdout, stderr, false)
	case "demo":
		return cmdServe(ctx, rest, stdout, stderr, true)
	case "probe":
		return cmdProbe(ctx, rest, stdout, stderr)
	case "ingest":
		return cmdIngest(ctx, rest, stdout, stderr)
	case "dlq":
		return cmdDLQ(ctx, rest, stdout, stderr)
	case "replay":
		return cmdReplay(ctx, rest, stdout, stderr)
	case "user":
		return cmdUser(ctx, rest, stdout, stderr)
	case "crmsim":
		return cmdCRMSim(ctx, rest, stdout, stderr)
	case "bench":
		return cmdBench(ctx, rest, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "autonomos: unknown command %q\n\n%s", cmd, usage)
	return 2
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
