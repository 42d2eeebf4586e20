package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors/crmsim"
	"github.com/autonomos/autonomos/streams/streamstest"
)

// TestReconcileCatchesWhatIncrementalReadsMiss: for each simulated CRM, an
// account changes without its modified stamp moving (a formula field) and
// another is purged without a tombstone. An incremental sync sees neither;
// a reconciliation pass (POST .../sync?mode=reconcile) applies the change
// and deletes the purged record, in both stores, touching nothing else.
func TestReconcileCatchesWhatIncrementalReadsMiss(t *testing.T) {
	sys, base := startTestSystem(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sim, err := startSim(ctx, "127.0.0.1:0", 11, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := registered(t, base, "rec")
	sync := func(id, mode string) *jobView {
		t.Helper()
		j := syncAndWait(t, ctx, c, id, mode)
		if j.Status != "succeeded" {
			t.Fatalf("%s sync of %s: %+v", mode, id, j)
		}
		return j
	}
	// accountsOf: each store's accounts from system, by id.
	accountsOf := func(system string) map[string]map[string]map[string]any {
		t.Helper()
		out := map[string]map[string]map[string]any{}
		for _, st := range sys.stores {
			rows := map[string]map[string]any{}
			for _, r := range allRows(t, st, "rec", canonical.AccountEntity) {
				if r["source_system"] == system {
					rows[r["account_id"].(string)] = r
				}
			}
			out[st.Name()] = rows
		}
		return out
	}
	// The wire names of each system's account object and name field.
	wire := map[string][2]string{
		crmsim.Salesforce: {"Account", "Name"},
		crmsim.HubSpot:    {"companies", "name"},
		crmsim.Dynamics:   {"accounts", "name"},
	}
	for _, conn := range sim.connections("") {
		system := conn["system"].(string)
		var out map[string]any
		if _, err := c.postJSON(ctx, "/api/v1/aam/connections", conn, &out); err != nil {
			t.Fatalf("create %s: %v", system, err)
		}
		id := out["id"].(string)
		if _, err := c.postJSON(ctx, "/api/v1/aam/connections/"+id+"/sync?mode=bogus", nil, nil); err == nil {
			t.Fatalf("%s: mode=bogus was accepted", system)
		} else if ae, ok := err.(*apiError); !ok || ae.Status != http.StatusUnprocessableEntity {
			t.Fatalf("%s: mode=bogus: %v, want 422", system, err)
		}
		first := sync(id, "")
		var before map[string]map[string]map[string]any
		streamstest.Eventually(t, 30*time.Second, func() error {
			before = accountsOf(system)
			for st, rows := range before {
				if len(rows) != 20 {
					return fmt.Errorf("%s: %d %s accounts, want 20", st, len(rows), system)
				}
			}
			return nil
		})
		var changed, purged string
		for k := range before["duckdb"] {
			switch {
			case changed == "":
				changed = k
			case purged == "":
				purged = k
			}
		}
		w := wire[system]
		if err := sim.sim.SetQuietly(system, w[0], changed, w[1], "Quietly Renamed"); err != nil {
			t.Fatal(err)
		}
		if err := sim.sim.Purge(system, w[0], purged); err != nil {
			t.Fatal(err)
		}
		// Incremental: neither is seen.
		sync(id, "")
		time.Sleep(500 * time.Millisecond)
		for st, mid := range accountsOf(system) {
			if mid[changed]["name"] == "Quietly Renamed" || mid[purged] == nil {
				t.Fatalf("%s %s: an incremental sync saw a change it cannot see: %v / %v", st, system, mid[changed]["name"], mid[purged])
			}
		}
		// Reconciliation: both are.
		j := sync(id, "reconcile")
		if j.Deleted != 1 || j.RowsRead < first.RowsRead-1 {
			t.Fatalf("%s reconcile job %+v: want 1 deleted and a full read (first sync read %d)", system, j, first.RowsRead)
		}
		streamstest.Eventually(t, 30*time.Second, func() error {
			for st, rows := range accountsOf(system) {
				if len(rows) != 19 || rows[purged] != nil {
					return fmt.Errorf("%s: %d %s accounts (purged one present: %v), want 19", st, len(rows), system, rows[purged] != nil)
				}
				if rows[changed]["name"] != "Quietly Renamed" {
					return fmt.Errorf("%s: %s account %s named %v", st, system, changed, rows[changed]["name"])
				}
				for k, r := range rows {
					if k != changed && fmt.Sprint(r["updated_at"]) != fmt.Sprint(before[st][k]["updated_at"]) {
						return fmt.Errorf("%s: untouched %s account %s was rewritten", st, system, k)
					}
				}
			}
			return nil
		})
		var view map[string]any
		if _, err := c.do(ctx, http.MethodGet, "/api/v1/aam/connections/"+id, nil, "", &view); err != nil || view["last_reconcile_at"] == nil {
			t.Fatalf("%s connection after reconcile: %v %v", system, view, err)
		}
		t.Logf("%s: reconciliation read %d records, published %d, deleted %d", system, j.RowsRead, j.Published, j.Deleted)
	}
}
