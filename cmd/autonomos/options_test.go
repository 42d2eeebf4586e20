package main

import (
	"flag"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonomos/autonomos/streams"
)

func TestOptionsReplicasAndStores(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantErr    string   // a part of the error; empty: no error
		wantStores []string // when no error
		replicas   int
	}{
		{name: "defaults", wantStores: []string{"duckdb"}},
		{name: "postgres too", args: []string{"--postgres", "postgres://x"}, wantStores: []string{"duckdb", "postgres"}},
		{name: "replicas on a cluster", args: []string{"--nats-url", "nats://a:4222,nats://b:4222", "--stream-replicas", "3"},
			wantStores: []string{"duckdb"}, replicas: 3},
		{name: "replicas from the environment", args: []string{"--nats-url", "nats://a:4222"},
			env: map[string]string{"AUTONOMOS_STREAM_REPLICAS": "5"}, wantStores: []string{"duckdb"}, replicas: 5},
		{name: "replicas on the embedded server", args: []string{"--stream-replicas", "3"}, wantErr: "needs a JetStream cluster"},
		{name: "too many replicas", args: []string{"--nats-url", "nats://a:4222", "--stream-replicas", "6"}, wantErr: "want 0 (pick) or 1..5"},
		{name: "replicas not a number", env: map[string]string{"AUTONOMOS_STREAM_REPLICAS": "three"}, wantErr: "--stream-replicas"},
		{name: "replicas empty in the environment", env: map[string]string{"AUTONOMOS_STREAM_REPLICAS": ""}, wantStores: []string{"duckdb"}},
		{name: "a subscriber of Postgres only", args: []string{"--roles", "subscriber", "--stores", "postgres", "--postgres", "postgres://x"},
			wantStores: []string{"postgres"}},
		{name: "postgres store without postgres", args: []string{"--stores", "postgres"}, wantErr: "--stores postgres needs --postgres"},
		{name: "an unknown store", args: []string{"--stores", "duckdb,mysql"}, wantErr: `unknown store "mysql"`},
		{name: "a gateway alone reads Postgres", args: []string{"--roles", "gateway,connectors", "--postgres", "postgres://x"},
			wantStores: []string{"postgres"}},
		{name: "a gateway alone without Postgres", args: []string{"--roles", "gateway"}, wantErr: "reads the views from Postgres"},
		{name: "a gateway alone with DuckDB only", args: []string{"--roles", "gateway", "--stores", "duckdb", "--postgres", "postgres://x"},
			wantErr: "reads the views from Postgres"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := parseOptions(t, []string{"AUTONOMOS_STREAM_REPLICAS", "AUTONOMOS_STORES", "AUTONOMOS_NATS_URL", "AUTONOMOS_POSTGRES_URL", "AUTONOMOS_ROLES"},
				tc.env, tc.args, tc.wantErr)
			if !ok {
				return
			}
			roles, _ := o.roles()
			stores, err := o.stores(roles)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range slices.Sorted(maps.Keys(stores)) {
				if stores[s] {
					got = append(got, s)
				}
			}
			if !slices.Equal(got, tc.wantStores) || o.StreamReplicas != tc.replicas {
				t.Errorf("stores %v, replicas %d; want %v, %d", got, o.StreamReplicas, tc.wantStores, tc.replicas)
			}
		})
	}
}

func TestOptionsMemoryLimitsAndDuplicateWindow(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		wantErr     string
		goLimit     int64
		duckLimit   int64
		dupWindow   time.Duration
		wantDefault bool // goLimit, duckLimit and dupWindow are the defaults
	}{
		{name: "defaults", wantDefault: true},
		{name: "GOMEMLIMIT in the environment is left alone", env: map[string]string{"GOMEMLIMIT": "1GiB"},
			goLimit: 0, duckLimit: defaultDuckDBMemoryLimit, dupWindow: streams.DefaultDuplicateWindow},
		{name: "the flag wins over GOMEMLIMIT", args: []string{"--memory-limit", "512MiB"}, env: map[string]string{"GOMEMLIMIT": "1GiB"},
			goLimit: 512 << 20, duckLimit: defaultDuckDBMemoryLimit, dupWindow: streams.DefaultDuplicateWindow},
		{name: "set by environment", env: map[string]string{"AUTONOMOS_MEMORY_LIMIT": "1.5GiB", "AUTONOMOS_DUCKDB_MEMORY_LIMIT": "2GB",
			"AUTONOMOS_DUPLICATE_WINDOW": "5m"}, goLimit: 3 << 29, duckLimit: 2 << 30, dupWindow: 5 * time.Minute},
		{name: "off", args: []string{"--memory-limit", "off", "--duckdb-memory-limit", "off"},
			goLimit: 0, duckLimit: 0, dupWindow: streams.DefaultDuplicateWindow},
		{name: "bytes", args: []string{"--duckdb-memory-limit", "100000000"},
			goLimit: defaultMemoryLimit, duckLimit: 100000000, dupWindow: streams.DefaultDuplicateWindow},
		{name: "too little for DuckDB", args: []string{"--duckdb-memory-limit", "16MiB"}, wantErr: "want at least 32MiB"},
		{name: "a bad size", args: []string{"--duckdb-memory-limit", "lots"}, wantErr: `--duckdb-memory-limit: "lots"`},
		{name: "an unknown unit", args: []string{"--memory-limit", "3 furlongs"}, wantErr: "--memory-limit"},
		{name: "a window inside the publisher's retries", args: []string{"--duplicate-window", "30s"}, wantErr: "longer than 1m0s"},
		{name: "a window that is no duration", args: []string{"--duplicate-window", "two"}, wantErr: "--duplicate-window"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := parseOptions(t, []string{"GOMEMLIMIT", "AUTONOMOS_MEMORY_LIMIT", "AUTONOMOS_DUCKDB_MEMORY_LIMIT", "AUTONOMOS_DUPLICATE_WINDOW"},
				tc.env, tc.args, tc.wantErr)
			if !ok {
				return
			}
			if tc.wantDefault {
				tc.goLimit, tc.duckLimit, tc.dupWindow = defaultMemoryLimit, defaultDuckDBMemoryLimit, streams.DefaultDuplicateWindow
			}
			if o.MemoryLimit != tc.goLimit || o.DuckDBMemoryLimit != tc.duckLimit || o.DuplicateWindow != tc.dupWindow {
				t.Errorf("memory limit %d, DuckDB %d, window %v; want %d, %d, %v",
					o.MemoryLimit, o.DuckDBMemoryLimit, o.DuplicateWindow, tc.goLimit, tc.duckLimit, tc.dupWindow)
			}
		})
	}
}

// parseOptions parses args as serve does, with the environment variables
// keys set as env has them and unset otherwise (restored after the test).
// With wantErr (a part of the error) it checks the error and returns false;
// otherwise it fails on any error and returns the options and true.
func parseOptions(t *testing.T, keys []string, env map[string]string, args []string, wantErr string) (options, bool) {
	t.Helper()
	for _, k := range keys {
		t.Setenv(k, env[k])
		if _, ok := env[k]; !ok {
			os.Unsetenv(k)
		}
	}
	var o options
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.bind(fs)
	err := o.parse(fs, args)
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("parse %v = %v, want an error with %q", args, err, wantErr)
		}
		return o, false
	}
	if err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return o, true
}
