package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/autonomos/autonomos/streams/streamstest"
)

type auditPage struct {
	Data       []map[string]any `json:"data"`
	NextCursor *string          `json:"next_cursor"`
}

func TestAuditLogShowsTheTenantsCallsToItsAdmins(t *testing.T) {
	sys, base := startTestSystem(t, true)
	ctx := context.Background()
	acme, globex := registered(t, base, "acme"), registered(t, base, "globex")
	p := filepath.Join(t.TempDir(), "a.csv")
	os.WriteFile(p, []byte("account_id,name,updated_at\nA-1,Alpha,2024-01-01T00:00:00Z\n"), 0o600)
	_, trace, err := acme.upload(ctx, p, "account", "")
	if err != nil || trace == "" {
		t.Fatalf("upload: trace %q, %v", trace, err)
	}

	// The upload call appears in acme's audit log, in both stores.
	var upload map[string]any
	streamstest.Eventually(t, 20*time.Second, func() error {
		var page auditPage
		if _, err := acme.do(ctx, http.MethodGet, "/api/v1/audit?limit=100", nil, "", &page); err != nil {
			return err
		}
		for _, r := range page.Data {
			if r["tenant_id"] != "acme" {
				t.Fatalf("acme's audit log holds %v", r)
			}
			if r["route"] == "/api/v1/filesource/upload" {
				upload = r
			}
		}
		if upload == nil {
			return fmt.Errorf("no upload in acme's audit log: %v", page.Data)
		}
		for _, st := range sys.stores {
			rows, _, err := st.AuditLog(ctx, "acme", 100, "")
			if err != nil {
				return err
			}
			if !hasTrace(rows, trace) {
				return fmt.Errorf("%s: no audit entry with trace %s", st.Name(), trace)
			}
		}
		return nil
	})
	if upload["trace_id"] != trace || upload["status"] != float64(202) || upload["method"] != "POST" || upload["outcome"] != "handled" {
		t.Fatalf("upload entry = %v, want trace %s, status 202", upload, trace)
	}

	// Another tenant's admin sees none of it.
	var page auditPage
	if _, err := globex.do(ctx, http.MethodGet, "/api/v1/audit", nil, "", &page); err != nil {
		t.Fatalf("globex audit: %v", err)
	}
	for _, r := range page.Data {
		if r["tenant_id"] != "globex" || r["trace_id"] == trace {
			t.Fatalf("globex sees %v", r)
		}
	}

	// A viewer of acme is refused.
	if _, err := acme.postJSON(ctx, "/api/v1/auth/users", map[string]string{
		"email": "viewer@acme.example", "password": "password-viewer-1", "role": "viewer"}, nil); err != nil {
		t.Fatalf("invite viewer: %v", err)
	}
	viewer := newAPIClient(base)
	if err := viewer.login(ctx, "viewer@acme.example", "password-viewer-1"); err != nil {
		t.Fatalf("viewer login: %v", err)
	}
	_, err = viewer.do(ctx, http.MethodGet, "/api/v1/audit", nil, "", nil)
	if ae := (*apiError)(nil); !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("viewer GET /api/v1/audit: %v, want 403", err)
	}
}

func hasTrace(rows []map[string]any, trace string) bool {
	for _, r := range rows {
		if r["trace_id"] == trace && r["route"] == "/api/v1/filesource/upload" {
			return true
		}
	}
	return false
}
