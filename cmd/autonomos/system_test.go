package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams/streamstest"
	"github.com/autonomos/autonomos/subscriber/subscribertest"
)

// startTestSystem runs a whole system (embedded NATS on a random port,
// DuckDB in a temp dir, Postgres in a fresh schema when pg is true) and
// returns it with its base URL.
func startTestSystem(t *testing.T, pg bool) (*system, string) {
	t.Helper()
	sys, _ := startTestSystemWith(t, testOptions(t, pg))
	return sys, "http://" + sys.httpAddr
}

// testOptions are a test system's options: every role, loopback ports, a
// temporary data dir, rate limits no test meets unless it sets its own, and
// Postgres when pg.
func testOptions(t *testing.T, pg bool) options {
	o := options{HTTP: "127.0.0.1:0", DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1", Roles: "all",
		RateRead: "1000/s burst 1000", RateWrite: "1000/s burst 1000", UseFileSource: true}
	if pg {
		o.Postgres = subscribertest.PostgresURL(t)
	}
	return o
}

// startTestSystemWith starts a system with o. stop cancels it and waits for
// it to shut down (in order, flushing what it holds); it runs at cleanup too,
// and only once.
func startTestSystemWith(t *testing.T, o options) (sys *system, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sys, err := startSystem(ctx, o, newLogger(io.Discard, "error"))
	if err != nil {
		cancel()
		t.Fatalf("start system: %v", err)
	}
	stop = sync.OnceFunc(func() { cancel(); sys.wait() })
	t.Cleanup(stop)
	return sys, stop
}

func registered(t *testing.T, base, tenant string) *apiClient {
	t.Helper()
	c := newAPIClient(base)
	if err := c.register(context.Background(), tenant, tenant+"@example.com", "password-"+tenant); err != nil {
		t.Fatalf("register %s: %v", tenant, err)
	}
	return c
}

func uploadAndWait(t *testing.T, c *apiClient, path, entity string) *jobView {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, _, err := c.upload(ctx, path, entity, "")
	if err != nil {
		t.Fatalf("upload %s: %v", path, err)
	}
	j, err := c.waitJob(ctx, id, nil)
	if err != nil {
		t.Fatalf("job %s: %v", id, err)
	}
	return j
}

// allRows pages through a store until the end.
func allRows(t *testing.T, st store, tenant string, e canonical.Entity) []map[string]any {
	t.Helper()
	var out []map[string]any
	q := canonical.ViewQuery{Tenant: tenant, Entity: e, Limit: 1000}
	for {
		p, err := st.Query(context.Background(), q)
		if err != nil {
			t.Fatalf("%s query: %v", st.Name(), err)
		}
		out = append(out, p.Rows...)
		if p.NextCursor == "" {
			return out
		}
		q.After, _ = canonical.DecodeCursor(p.NextCursor)
	}
}

func normalized(t *testing.T, rows []map[string]any) []map[string]any {
	t.Helper()
	b, _ := json.Marshal(rows)
	var out []map[string]any
	json.Unmarshal(b, &out)
	for _, r := range out {
		delete(r, "created_at") // each store stamps its own write time
		delete(r, "updated_at")
	}
	return out
}

func TestUploadLandsInBothStoresIdentically(t *testing.T) {
	sys, base := startTestSystem(t, true)
	c := registered(t, base, "acme")
	published := map[string]int64{}
	for _, f := range []struct{ file, entity string }{{"accounts.csv", "account"}, {"opportunities.csv", "opportunity"}, {"contacts.csv", "contact"}} {
		j := uploadAndWait(t, c, filepath.Join("..", "..", "examples", f.file), f.entity)
		published[f.entity] = j.Published
		if j.Status != "succeeded" || j.Rejected != 0 || j.Published == 0 {
			t.Fatalf("%s: job %+v", f.file, j)
		}
		ent, _ := canonical.ParseEntity(f.entity)
		streamstest.Eventually(t, 30*time.Second, func() error {
			for _, st := range sys.stores {
				n := len(allRows(t, st, "acme", ent))
				if int64(n) != j.Published {
					return fmt.Errorf("%s holds %d %s, want %d", st.Name(), n, ent.Plural(), j.Published)
				}
			}
			return nil
		})
		pg, duck := normalized(t, allRows(t, sys.pg, "acme", ent)), normalized(t, allRows(t, sys.duck, "acme", ent))
		if !reflect.DeepEqual(pg, duck) {
			for i := range pg {
				if !reflect.DeepEqual(pg[i], duck[i]) {
					t.Fatalf("%s row %d differs:\npostgres %v\nduckdb   %v", ent, i, pg[i], duck[i])
				}
			}
			t.Fatalf("%s: stores differ", ent)
		}
		t.Logf("%s: %d rows, identical in Postgres and DuckDB", ent.Plural(), len(pg))
	}
	// Upsert batches are measured per store.
	req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`autonomos_upsert_batch_size_count{sink="postgres"}`, `autonomos_upsert_batch_size_count{sink="duckdb"}`,
		`autonomos_upsert_batch_seconds_bucket{outcome="ok",sink="duckdb"`} {
		if !strings.Contains(string(metrics), want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
	// Events consumed are counted per tenant, entity and sink, exactly.
	for entity, n := range published {
		for _, sink := range []string{"postgres", "duckdb"} {
			want := fmt.Sprintf("autonomos_events_consumed_total{entity=%q,sink=%q,tenant=\"acme\"} %d\n", entity, sink, n)
			if !strings.Contains(string(metrics), want) {
				t.Fatalf("/metrics lacks %q", want)
			}
		}
	}
	// And the API answers from the stores: the view of one record.
	rows, err := c.view(context.Background(), "opportunities", url.Values{"opportunity_id": {"OPP-00002"}})
	if err != nil || len(rows) != 1 || rows[0]["amount"] != "367100" || rows[0]["close_date"] != "2027-01-06" || rows[0]["currency"] != "SEK" {
		t.Fatalf("view of OPP-00002 = %v, %v", rows, err)
	}
}

func TestTenantNeverSeesAnotherTenantsRows(t *testing.T) {
	_, base := startTestSystem(t, false)
	a, b := registered(t, base, "tenant-a"), registered(t, base, "tenant-b")
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	hdr := "account_id,name,updated_at\n"
	uploadAndWait(t, a, write("a.csv", hdr+"SAME-1,Alpha A,2024-01-01T00:00:00Z\nA-2,Only A,2024-01-01T00:00:00Z\n"), "account")
	uploadAndWait(t, b, write("b.csv", hdr+"SAME-1,Beta B,2024-01-01T00:00:00Z\n"), "account")
	check := func(c *apiClient, tenant string, want map[string]string) error {
		rows, err := c.view(context.Background(), "accounts", url.Values{})
		if err != nil {
			return err
		}
		got := map[string]string{}
		for _, r := range rows {
			if r["tenant_id"] != tenant {
				t.Fatalf("%s saw a row of %v", tenant, r["tenant_id"])
			}
			got[r["account_id"].(string)] = r["name"].(string)
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("%s sees %v, want %v", tenant, got, want)
		}
		return nil
	}
	streamstest.Eventually(t, 20*time.Second, func() error {
		if err := check(a, "tenant-a", map[string]string{"SAME-1": "Alpha A", "A-2": "Only A"}); err != nil {
			return err
		}
		return check(b, "tenant-b", map[string]string{"SAME-1": "Beta B"})
	})
	// A filter naming the tenant is refused, not obeyed.
	if _, err := b.view(context.Background(), "accounts", url.Values{"tenant_id": {"tenant-a"}}); err == nil || !strings.Contains(err.Error(), "422") {
		t.Fatalf("tenant_id filter: %v, want a 422", err)
	}
}

func TestProbePasses(t *testing.T) {
	for _, pg := range []bool{false, true} {
		t.Run(fmt.Sprintf("postgres=%v", pg), func(t *testing.T) {
			args := []string{"--json"}
			if pg {
				args = append(args, "--postgres", subscribertest.PostgresURL(t))
			}
			var out, errb bytes.Buffer
			code := cmdProbe(context.Background(), args, &out, &errb)
			var res probeResult
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("probe printed %q: %v (stderr %s)", out.String(), err, errb.String())
			}
			if code != 0 || res.Result != "PASS" || res.Amount != "1234.56" || len(res.TraceID) != 32 {
				t.Fatalf("probe exit %d: %+v (stderr %s)", code, res, errb.String())
			}
			if strings.Count(out.String(), "\n") != 1 {
				t.Fatalf("--json printed more than one line: %q", out.String())
			}
			t.Logf("probe: %s visible after %.0f ms", res.OpportunityID, res.VisibleAfterMS)
		})
	}
}
