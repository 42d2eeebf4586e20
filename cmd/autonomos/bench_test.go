package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestBench runs the whole harness on a small N against the test Postgres
// and checks the report's shape and that every record was counted in both
// stores — not its timings, which depend on the machine.
func TestBench(t *testing.T) {
	pg := os.Getenv("AUTONOMOS_TEST_POSTGRES_URL")
	if pg == "" {
		pg = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"bench", "--records", "2000", "--json", "--postgres", pg,
		"--latency-duration", "1s", "--ws-clients", "20"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("bench exited %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one line of JSON on stdout, got %d:\n%s", len(lines), stdout.String())
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, lines[0])
	}
	positive := []string{"e2e_events_per_s", "baseline_jetstream_events_per_s", "baseline_copy_rows_per_s", "baseline_upsert_rows_per_s",
		"sink_postgres_events_per_s", "sink_duckdb_events_per_s", "ratio_e2e_to_slowest_baseline", "latency_p50_ms", "latency_p99_ms",
		"latency_p999_ms", "latency_80_p99_ms", "cpu_s_per_1k_events", "peak_rss_mb"}
	for _, k := range positive {
		v, ok := res[k].(float64)
		if !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number (notes: %v)", k, res[k], res["notes"])
		}
	}
	for _, k := range []string{"ws_deliveries_per_s", "ws_p99_ms"} {
		v, ok := res[k]
		if !ok {
			t.Errorf("key %s is missing", k)
		} else if f, isNum := v.(float64); v != nil && (!isNum || f <= 0) {
			t.Errorf("%s = %v, want null or a positive number", k, v)
		}
	}
	// Each stage's CPU, this process's and the machine's.
	stages, _ := res["cpu_per_stage"].(map[string]any)
	for _, st := range []string{"baseline_jetstream", "baseline_copy", "baseline_upsert", "sink_postgres", "sink_duckdb", "e2e"} {
		c, _ := stages[st].(map[string]any)
		for _, k := range []string{"process_s_per_1k", "machine_s_per_1k"} {
			if v, ok := c[k].(float64); !ok || v <= 0 {
				t.Errorf("cpu_per_stage.%s.%s = %v, want a positive number", st, k, c[k])
			}
		}
	}
	if res["cpus"] != float64(runtime.NumCPU()) {
		t.Errorf("cpus = %v, want %d", res["cpus"], runtime.NumCPU())
	}
	if res["records"] != float64(2000) {
		t.Errorf("records = %v, want 2000", res["records"])
	}
	// 2,000 opportunities, 40 accounts, 100 contacts: every one counted in
	// both stores (the harness fails otherwise, and says so here).
	if res["events"] != float64(2140) || res["visible"] != true {
		t.Errorf("events = %v, visible = %v, want 2140 and true (notes: %v)", res["events"], res["visible"], res["notes"])
	}
}

func TestBenchDriftDispatch(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"bench", "drift", "--corpus", "../../testdata/drift", "--json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("bench drift exited %d: %s", code, stderr.String())
	}
	var res map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout.String())
	}
	for _, k := range []string{"cases", "top1", "auto_applied", "wrong_auto_applies", "queued", "rejected"} {
		if _, ok := res[k]; !ok {
			t.Errorf("key %s is missing: %s", k, stdout.String())
		}
	}
}
