package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams/streamstest"
)

// Connections to each simulated CRM, created through the API, sync into both
// stores; the next sync fetches only what changed; another tenant can neither
// see nor touch them; no response carries a secret.
func TestCRMConnectionsThroughTheAPI(t *testing.T) {
	sys, base := startTestSystem(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sim, err := startSim(ctx, "127.0.0.1:0", 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := registered(t, base, "crm-a"), registered(t, base, "crm-b")
	var secrets []string
	var bodies strings.Builder
	record := func(v any) {
		raw, _ := json.Marshal(v)
		bodies.Write(raw)
	}
	sync := func(c *apiClient, id string) *jobView { return syncAndWait(t, ctx, c, id, "") }
	ids := map[string]string{}
	for _, conn := range sim.connections("") {
		for _, v := range conn["secrets"].(map[string]string) {
			secrets = append(secrets, v)
		}
		var out map[string]any
		if _, err := a.postJSON(ctx, "/api/v1/aam/connections", conn, &out); err != nil {
			t.Fatalf("create %v: %v", conn["name"], err)
		}
		record(out)
		ids[conn["system"].(string)] = out["id"].(string)
	}
	for sysName, id := range ids {
		j := sync(a, id)
		if j.Status != "succeeded" || j.RowsRead != 100 || j.Published != 100 || j.Rejected != 0 {
			t.Fatalf("%s first sync: %+v", sysName, j)
		}
	}
	want := map[canonical.Entity]int{canonical.AccountEntity: 20, canonical.OpportunityEntity: 40, canonical.ContactEntity: 40}
	streamstest.Eventually(t, 30*time.Second, func() error {
		for _, st := range sys.stores {
			for e, n := range want {
				per := map[string]int{}
				for _, r := range allRows(t, st, "crm-a", e) {
					per[r["source_system"].(string)]++
				}
				for sysName := range ids {
					if per[sysName] != n {
						return fmt.Errorf("%s holds %d %s from %s, want %d", st.Name(), per[sysName], e.Plural(), sysName, n)
					}
				}
			}
		}
		return nil
	})
	// The next sync reads only what changed at the source. (HubSpot's
	// connector reads changes once they are older than its search-index
	// settle window, so a sync may find nothing yet: sync again.)
	sim.sim.Evolve(3)
	for sysName, id := range ids {
		var read int64
		streamstest.Eventually(t, 60*time.Second, func() error {
			j := sync(a, id)
			if j.Status != "succeeded" || j.RowsRead >= 100 {
				t.Fatalf("%s incremental sync read %d records (want only the changed ones): %+v", sysName, j.RowsRead, j)
			}
			read += j.RowsRead
			if read == 0 {
				return fmt.Errorf("%s: no change read yet", sysName)
			}
			return nil
		})
		t.Logf("%s: incremental syncs read %d changed records", sysName, read)
	}
	// Tenant B: invisible and untouchable.
	for _, id := range ids {
		for _, req := range []struct{ method, path string }{
			{http.MethodGet, "/api/v1/aam/connections/" + id},
			{http.MethodDelete, "/api/v1/aam/connections/" + id},
			{http.MethodPost, "/api/v1/aam/connections/" + id + "/sync"},
			{http.MethodPost, "/api/v1/aam/connections/" + id + "/test"},
		} {
			_, err := b.do(ctx, req.method, req.path, nil, "", nil)
			if ae, ok := err.(*apiError); !ok || ae.Status != http.StatusNotFound {
				t.Fatalf("tenant B %s %s = %v, want 404", req.method, req.path, err)
			}
		}
	}
	var list map[string]any
	if _, err := b.do(ctx, http.MethodGet, "/api/v1/aam/connections", nil, "", &list); err != nil || len(list["data"].([]any)) != 0 {
		t.Fatalf("tenant B lists %v, %v", list, err)
	}
	// No response carries a secret.
	if _, err := a.do(ctx, http.MethodGet, "/api/v1/aam/connections", nil, "", &list); err != nil {
		t.Fatal(err)
	}
	record(list)
	for _, id := range ids {
		var one, test map[string]any
		a.do(ctx, http.MethodGet, "/api/v1/aam/connections/"+id, nil, "", &one)
		a.postJSON(ctx, "/api/v1/aam/connections/"+id+"/test", nil, &test)
		if test["ok"] != true {
			t.Fatalf("test connection %s: %v", id, test)
		}
		record(one)
		record(test)
	}
	for _, s := range secrets {
		if len(s) >= 6 && strings.Contains(bodies.String(), s) {
			t.Fatalf("a response carries the secret %q", s)
		}
	}
}

// syncAndWait queues a sync of connection id (mode "" or "reconcile") and
// waits for its job to end.
func syncAndWait(t *testing.T, ctx context.Context, c *apiClient, id, mode string) *jobView {
	t.Helper()
	var out struct {
		JobID string `json:"job_id"`
	}
	path := "/api/v1/aam/connections/" + id + "/sync"
	if mode != "" {
		path += "?mode=" + mode
	}
	if _, err := c.postJSON(ctx, path, nil, &out); err != nil {
		t.Fatalf("sync %s: %v", id, err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	j, err := c.waitJob(wctx, out.JobID, nil)
	if err != nil {
		t.Fatal(err)
	}
	return j
}
