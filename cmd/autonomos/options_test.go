package main

import (
	"flag"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
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
			for _, k := range []string{"AUTONOMOS_STREAM_REPLICAS", "AUTONOMOS_STORES", "AUTONOMOS_NATS_URL", "AUTONOMOS_POSTGRES_URL", "AUTONOMOS_ROLES"} {
				t.Setenv(k, tc.env[k]) // restored after the test
				if _, ok := tc.env[k]; !ok {
					os.Unsetenv(k)
				}
			}
			var o options
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o.bind(fs)
			err := o.parse(fs, tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parse %v = %v, want an error with %q", tc.args, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse %v: %v", tc.args, err)
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
