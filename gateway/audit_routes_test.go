package gateway_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/gateway/gatewaytest"
)

// standInAudit records what the gateway asked for.
type standInAudit struct {
	mu      sync.Mutex
	tenants []string
	limit   int
	cursor  string
}

func (a *standInAudit) AuditLog(_ context.Context, tenant string, limit int, before string) ([]map[string]any, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tenants, a.limit, a.cursor = append(a.tenants, tenant), limit, before
	return []map[string]any{{"event_id": "e1", "tenant_id": tenant}}, "next-page", nil
}

func TestAuditLogRouteIsForTheTenantsAdmins(t *testing.T) {
	audit := &standInAudit{}
	env := gatewaytest.StartDeps(t, func(d *gateway.Deps) { d.Audit = audit })
	admin := env.Register(t, "acme", "admin@acme.example", "password-admin-1")
	viewer := env.Invite(t, admin.AccessToken, "viewer@acme.example", "password-viewer-1", "viewer")

	res := env.Do(t, http.MethodGet, "/api/v1/audit?limit=5&cursor=abc", admin.AccessToken, nil)
	gatewaytest.MustStatus(t, res, http.StatusOK)
	var page struct {
		Data       []map[string]any `json:"data"`
		NextCursor *string          `json:"next_cursor"`
	}
	gatewaytest.Decode(t, res, &page)
	if len(page.Data) != 1 || page.NextCursor == nil || *page.NextCursor != "next-page" {
		t.Fatalf("page = %+v", page)
	}
	if audit.tenants[0] != "acme" || audit.limit != 5 || audit.cursor != "abc" {
		t.Fatalf("reader asked for tenant %v, limit %d, cursor %q", audit.tenants, audit.limit, audit.cursor)
	}

	res = env.Do(t, http.MethodGet, "/api/v1/audit", viewer.AccessToken, nil)
	gatewaytest.MustStatus(t, res, http.StatusForbidden)
	res.Body.Close()
	res = env.Do(t, http.MethodGet, "/api/v1/audit?limit=0", admin.AccessToken, nil)
	gatewaytest.MustStatus(t, res, http.StatusUnprocessableEntity)
	res.Body.Close()
	res = env.Do(t, http.MethodGet, "/api/v1/audit", "", nil)
	gatewaytest.MustStatus(t, res, http.StatusUnauthorized)
	res.Body.Close()
	if len(audit.tenants) != 1 {
		t.Fatalf("reader called %d times, want once", len(audit.tenants))
	}

	res = env.Do(t, http.MethodGet, "/openapi.json", "", nil)
	gatewaytest.MustStatus(t, res, http.StatusOK)
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	gatewaytest.Decode(t, res, &doc)
	if doc.Paths["/api/v1/audit"]["get"] == nil {
		t.Fatal("GET /api/v1/audit is not in the OpenAPI document")
	}
}
