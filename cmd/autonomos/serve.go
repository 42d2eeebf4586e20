package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"
)

// Demo login printed by `autonomos demo`.
const (
	demoTenant   = "demo"
	demoEmail    = "demo@autonomos.local"
	demoPassword = "autonomos-demo"
)

// cmdServe runs the system until SIGINT/SIGTERM; with demo it also makes a
// demo tenant and loads the sample CSVs of --examples.
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer, demo bool) int {
	name := "serve"
	if demo {
		name = "demo"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	o.bind(fs)
	examples := fs.String("examples", "examples", "demo: folder of sample CSVs (accounts.csv, opportunities.csv, contacts.csv)")
	simListen := fs.String("crmsim-listen", "127.0.0.1:0", "demo: where the CRM simulator listens")
	if err := o.parse(fs, args); err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return 2
	}
	log := newLogger(stderr, o.LogLevel)
	if o.MemoryLimit > 0 {
		debug.SetMemoryLimit(o.MemoryLimit)
	}
	log.Info("memory limits", "go", formatBytes(debug.SetMemoryLimit(-1)), "duckdb", formatBytes(o.DuckDBMemoryLimit),
		"duplicate_window", o.DuplicateWindow)
	sys, err := startSystem(ctx, o, log)
	if err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return 1
	}
	url := ""
	if sys.httpAddr != "" {
		url = "http://" + sys.httpAddr
	}
	if demo && url != "" {
		sim, err := startSim(ctx, *simListen, 1, 5*time.Second)
		if err != nil {
			fmt.Fprintln(stderr, name+":", err)
			return 1
		}
		if err := loadDemo(ctx, url, *examples, sim, stderr); err != nil {
			log.Error("demo data", "error", err)
		}
	}
	if o.JSON {
		json.NewEncoder(stdout).Encode(map[string]any{"url": url, "nats_url": sys.natsURL, "data_dir": o.DataDir})
	} else {
		fmt.Fprintf(stdout, "AutonomOS is running: %s (NATS %s, data %s)\n", url, sys.natsURL, o.DataDir)
		if demo {
			fmt.Fprintf(stdout, "demo login: %s / %s\n", demoEmail, demoPassword)
		}
	}
	sys.wait()
	return 0
}

// loadDemo registers (or logs into) the demo tenant and uploads the sample
// files through the public API, as a user would.
func loadDemo(ctx context.Context, base, dir string, sim *simServer, stderr io.Writer) error {
	c := newAPIClient(base)
	if err := c.register(ctx, demoTenant, demoEmail, demoPassword); err != nil {
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != 409 {
			return fmt.Errorf("register demo tenant: %w", err)
		}
		if err := c.login(ctx, demoEmail, demoPassword); err != nil {
			return fmt.Errorf("log in as the demo user: %w", err)
		}
	}
	for _, f := range []struct{ file, entity string }{
		{"accounts.csv", "account"}, {"opportunities.csv", "opportunity"}, {"contacts.csv", "contact"},
	} {
		p := filepath.Join(dir, f.file)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("sample file: %w", err)
		}
		id, _, err := c.upload(ctx, p, f.entity, "")
		if err != nil {
			return fmt.Errorf("upload %s: %w", p, err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		j, err := c.waitJob(wctx, id, nil)
		cancel()
		if err != nil {
			return fmt.Errorf("ingest %s: %w", p, err)
		}
		fmt.Fprintf(stderr, "demo: %s: %s, %d published, %d rejected\n", f.file, j.Status, j.Published, j.Rejected)
	}
	return demoConnections(ctx, c, sim, stderr)
}
