package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams/streamstest"
	"github.com/autonomos/autonomos/subscriber/subscribertest"
)

// A column renamed at the source is detected, repaired automatically
// (autofix on), and the records that arrived under the new name are
// re-derived from RAW into both stores without a new upload.
func TestRenamedColumnIsRepairedAndRederivedInBothStores(t *testing.T) {
	o := options{HTTP: "127.0.0.1:0", DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1", Roles: "all",
		RateRead: "1000/s burst 1000", RateWrite: "1000/s burst 1000", UseFileSource: true, DriftAutofix: true,
		Postgres: subscribertest.PostgresURL(t)}
	ctx, cancel := context.WithCancel(context.Background())
	sys, err := startSystem(ctx, o, newLogger(io.Discard, "error"))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); sys.wait() })
	c := registered(t, "http://"+sys.httpAddr, "drifty")

	dir := t.TempDir()
	write := func(name, header string, from, to int) string {
		var b strings.Builder
		b.WriteString(header + "\n")
		for i := from; i <= to; i++ {
			fmt.Fprintf(&b, "A%03d,Company %d,Consulting,%d.25,2024-03-01T10:%02d:00Z\n", i, i, i*1000, i%60)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	j1 := uploadAndWait(t, c, write("v1.csv", "account_id,name,industry,annual_revenue,updated_at", 1, 30), "account")
	if j1.Published != 30 {
		t.Fatalf("first file: %+v", j1)
	}
	// The source renames "name" to "company_name": the current mapping
	// rejects every row (name is required), but RAW keeps them.
	j2 := uploadAndWait(t, c, write("v2.csv", "account_id,company_name,industry,annual_revenue,updated_at", 31, 60), "account")
	if j2.Published != 0 || j2.Rejected != 30 {
		t.Fatalf("renamed file before repair: %+v", j2)
	}

	var findings struct {
		Data []map[string]any `json:"data"`
	}
	streamstest.Eventually(t, 60*time.Second, func() error {
		if _, err := c.do(context.Background(), http.MethodGet, "/api/v1/aam/drift", nil, "", &findings); err != nil {
			return err
		}
		if len(findings.Data) != 1 {
			return fmt.Errorf("%d findings, want 1", len(findings.Data))
		}
		if st := findings.Data[0]["status"]; st != "applied" {
			return fmt.Errorf("finding status %v", st)
		}
		return nil
	})
	t.Logf("finding: severity=%v status=%v", findings.Data[0]["severity"], findings.Data[0]["status"])

	// Re-derived rows, checked row by row in both stores.
	streamstest.Eventually(t, 60*time.Second, func() error {
		for _, st := range sys.stores {
			rows := allRows(t, st, "drifty", canonical.AccountEntity)
			if len(rows) != 60 {
				return fmt.Errorf("%s holds %d accounts, want 60", st.Name(), len(rows))
			}
			for _, r := range rows {
				var n int
				fmt.Sscanf(r["account_id"].(string), "A%03d", &n)
				if want := fmt.Sprintf("Company %d", n); r["name"] != want {
					return fmt.Errorf("%s %v name = %v, want %q", st.Name(), r["account_id"], r["name"], want)
				}
				if want := fmt.Sprintf("%d.25", n*1000); r["annual_revenue"] != want {
					return fmt.Errorf("%s %v annual_revenue = %v, want %s", st.Name(), r["account_id"], r["annual_revenue"], want)
				}
			}
		}
		return nil
	})
	rows, err := c.view(context.Background(), "accounts", url.Values{"account_id": {"A045"}})
	if err != nil || len(rows) != 1 || rows[0]["name"] != "Company 45" {
		t.Fatalf("view of A045 = %v, %v", rows, err)
	}
	if _, ok := rows[0]["extras"].(map[string]any)["company_name"]; ok {
		t.Fatalf("the repaired field still lands in extras: %v", rows[0]["extras"])
	}
}
