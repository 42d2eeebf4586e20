package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/autonomos/autonomos/canonical"
)

// opDoc documents one route in the OpenAPI description.
type opDoc struct {
	tag         string
	summary     string
	description string
	params      []paramDoc
	body        *bodyDoc
	status      int    // success status
	result      string // schema name of the success body ("" for none)
	resultType  string // media type of the success body (default application/json)
	errors      []int  // statuses beyond those implied by access and method
}

type paramDoc struct {
	name, in, description string
	required              bool
	schema                map[string]any
}

type bodyDoc struct {
	contentType string
	schema      string
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

var (
	str = map[string]any{"type": "string"}
	obj = func(props map[string]any, required ...string) map[string]any {
		m := map[string]any{"type": "object", "properties": props}
		if len(required) > 0 {
			m["required"] = required
		}
		return m
	}
)

var (
	docHealth = opDoc{tag: "system", summary: "Health of every component",
		description: "200 with status ok when every component is ok, 200 degraded when some are degraded, 503 degraded when any is down.",
		status:      200, result: "Health", errors: []int{503}}
	docOpenAPI = opDoc{tag: "system", summary: "This OpenAPI 3.1 description", status: 200, result: "OpenAPIDocument"}
	docDocs    = opDoc{tag: "system", summary: "Human-readable API documentation (HTML)", status: 200, resultType: "text/html"}
	docMetrics = opDoc{tag: "system", summary: "Prometheus metrics",
		description: "Requires a token unless the gateway is configured with metrics_public; operators may instead serve metrics on a private listener.",
		status:      200, resultType: "text/plain"}
	docRegister = opDoc{tag: "auth", summary: "Create a tenant and its first user (an admin)",
		description: "409 when the tenant or the e-mail exists. tenant: 1-64 of [a-z0-9_-]; password at least 8 characters.",
		body:        &bodyDoc{"application/json", "RegisterRequest"}, status: 201, result: "RegisterResponse",
		errors: []int{409, 415, 422}}
	docLogin = opDoc{tag: "auth", summary: "Exchange e-mail and password for tokens",
		description: "401 for an unknown e-mail or a wrong password alike; failed attempts are throttled per account and per client address (429 with Retry-After).",
		body:        &bodyDoc{"application/json", "LoginRequest"}, status: 200, result: "TokenResponse",
		errors: []int{401, 415, 422, 429}}
	docRefresh = opDoc{tag: "auth", summary: "Spend a refresh token for a new access and refresh token",
		description: "Refresh tokens rotate: each works once. Presenting a spent one revokes its session.",
		body:        &bodyDoc{"application/json", "RefreshRequest"}, status: 200, result: "TokenResponse",
		errors: []int{401, 415, 422}}
	docMe     = opDoc{tag: "auth", summary: "The token's user", status: 200, result: "User"}
	docLogout = opDoc{tag: "auth", summary: "End the session",
		description: "Revokes this access token until it expires, and every refresh token of its session.",
		status:      204}
	docInvite = opDoc{tag: "auth", summary: "Add a user to the caller's tenant (admins)",
		description: "role is admin or viewer (default viewer). 409 when the e-mail exists.",
		body:        &bodyDoc{"application/json", "InviteRequest"}, status: 201, result: "InviteResponse",
		errors: []int{409, 415}}
	docUpload = opDoc{tag: "filesource", summary: "Upload a CSV file for ingestion (streamed)",
		description: "multipart/form-data with a file part `file`, a field `entity` (account, opportunity or contact; plural accepted) and an optional `system` (default filesource). The file is streamed to disk, never held in memory; files of several GB are fine. Follow the job at /api/v1/aoa/jobs/{id}.",
		body:        &bodyDoc{"multipart/form-data", "UploadForm"}, status: 202, result: "UploadAccepted",
		errors: []int{400, 413, 415}}
	docDebugConfig = opDoc{tag: "debug", summary: "The gateway's effective settings, secrets left out (DEV_DEBUG only)",
		status: 200, result: "DebugConfig"}
	docJobs = opDoc{tag: "aoa", summary: "The tenant's jobs, newest first",
		params: []paramDoc{{name: "limit", in: "query", description: "1 to 500, default 50",
			schema: map[string]any{"type": "integer", "minimum": 1, "maximum": maxJobLimit, "default": defaultJobLimit}}},
		status: 200, result: "JobList"}
	docJob = opDoc{tag: "aoa", summary: "One job: status, counts and the first row errors",
		params: []paramDoc{{name: "id", in: "path", required: true, schema: str}},
		status: 200, result: "Job", errors: []int{404}}
)

func docView(e canonical.Entity) opDoc {
	s, _ := canonical.SchemaOf(e)
	params := []paramDoc{
		{name: "limit", in: "query", description: fmt.Sprintf("rows per page, 1 to %d, default %d", canonical.MaxViewLimit, canonical.DefaultViewLimit),
			schema: map[string]any{"type": "integer", "minimum": 1, "maximum": canonical.MaxViewLimit, "default": canonical.DefaultViewLimit}},
		{name: "cursor", in: "query", description: "next_cursor of the previous page", schema: str},
	}
	for _, f := range s.Fields {
		params = append(params, paramDoc{name: f.Name, in: "query", description: "exact match on " + f.Name, schema: str})
	}
	for _, m := range []string{"source_system", "event_id"} {
		params = append(params, paramDoc{name: m, in: "query", description: "exact match on " + m, schema: str})
	}
	return opDoc{tag: "dcl", summary: "Materialized " + e.Plural() + " of the token's tenant",
		description: "Exact-match filters by column, keyset pagination. Unknown parameters (tenant_id included: the tenant comes from the token) are 422.",
		params:      params, status: 200, result: viewSchemaName(e)}
}

func viewSchemaName(e canonical.Entity) string {
	return strings.ToUpper(e.Plural()[:1]) + e.Plural()[1:] + "Page"
}

var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// openAPIPath converts Echo's :param to OpenAPI's {param}.
func openAPIPath(p string) string { return echoParam.ReplaceAllString(p, "{$1}") }

// openAPI builds the OpenAPI 3.1 document from the route table.
func (s *Server) openAPI() ([]byte, error) {
	paths := map[string]map[string]any{}
	for _, r := range s.routes {
		p := openAPIPath(r.path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		paths[p][strings.ToLower(r.method)] = s.operation(r)
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "AutonomOS API",
			"version": "1.0.0",
			"description": "Every error is {\"error\": {\"code\", \"message\", \"trace_id\"}}. Every response carries X-Trace-Id " +
				"(the trace id of a W3C traceparent the request sent, else a new one). Authenticated requests are rate limited " +
				"per tenant (RateLimit-* headers; 429 with Retry-After). Mutating requests accept Idempotency-Key: the same key " +
				"and content replays the stored response (Idempotent-Replay: true), a different content is 422, a request still " +
				"in flight is 409. Tokens: POST /api/v1/auth/login, then Authorization: Bearer <access_token>.",
		},
		"servers": []any{map[string]any{"url": "/"}},
		"tags": []any{
			map[string]any{"name": "auth", "description": "Tenants, users and tokens"},
			map[string]any{"name": "filesource", "description": "File ingestion"},
			map[string]any{"name": "aoa", "description": "Ingestion jobs"},
			map[string]any{"name": "dcl", "description": "Materialized views of the canonical entities"},
			map[string]any{"name": "system", "description": "Health, metrics and documentation"},
			map[string]any{"name": "debug", "description": "Present only when the server runs with DEV_DEBUG=true"},
		},
		"paths": paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
			},
			"schemas": schemas(),
			"headers": map[string]any{
				"X-Trace-Id":          map[string]any{"description": "The request's trace id (32 hex)", "schema": str},
				"RateLimit-Limit":     map[string]any{"description": "Bucket size of the tenant's route class", "schema": map[string]any{"type": "integer"}},
				"RateLimit-Remaining": map[string]any{"description": "Requests left in the bucket", "schema": map[string]any{"type": "integer"}},
				"RateLimit-Reset":     map[string]any{"description": "Seconds until the bucket is full again", "schema": map[string]any{"type": "integer"}},
				"Retry-After":         map[string]any{"description": "Seconds to wait before retrying", "schema": map[string]any{"type": "integer"}},
				"Idempotent-Replay":   map[string]any{"description": "true when the response is a stored one, replayed", "schema": str},
			},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

func (s *Server) operation(r *route) map[string]any {
	d := r.doc
	op := map[string]any{
		"operationId": operationID(r),
		"summary":     d.summary,
		"tags":        []any{d.tag},
	}
	if d.description != "" {
		op["description"] = d.description
	}
	var params []any
	for _, p := range d.params {
		pm := map[string]any{"name": p.name, "in": p.in, "required": p.required || p.in == "path", "schema": p.schema}
		if p.description != "" {
			pm["description"] = p.description
		}
		params = append(params, pm)
	}
	if mutating(r.method) && r.access != accessPublic {
		params = append(params, map[string]any{"name": HeaderIdempotencyKey, "in": "header", "required": false,
			"description": "1-255 printable ASCII characters; see the API description",
			"schema":      map[string]any{"type": "string", "maxLength": maxKeyLen}})
	}
	params = append(params, map[string]any{"name": HeaderTraceparent, "in": "header", "required": false,
		"description": "W3C trace context; its trace id becomes X-Trace-Id", "schema": str})
	op["parameters"] = params
	if d.body != nil {
		op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
			d.body.contentType: map[string]any{"schema": ref(d.body.schema)}}}
	}
	if r.access == accessPublic {
		op["security"] = []any{}
	} else {
		op["security"] = []any{map[string]any{"bearer": []any{}}}
	}

	traceHdr := map[string]any{"X-Trace-Id": map[string]any{"$ref": "#/components/headers/X-Trace-Id"}}
	responses := map[string]any{}
	ok := map[string]any{"description": http.StatusText(d.status), "headers": traceHdr}
	switch {
	case d.result != "":
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": ref(d.result)}}
	case d.resultType != "":
		ok["content"] = map[string]any{d.resultType: map[string]any{"schema": str}}
	}
	responses[fmt.Sprint(d.status)] = ok

	errs := append([]int{}, d.errors...)
	if r.access != accessPublic {
		errs = append(errs, 401, 429)
	}
	if r.access == accessAdmin {
		errs = append(errs, 403)
	}
	if mutating(r.method) {
		errs = append(errs, 413, 422)
		if r.access != accessPublic {
			errs = append(errs, 409)
		}
	}
	if len(d.params) > 0 {
		errs = append(errs, 422)
	}
	errs = append(errs, 500)
	for _, code := range errs {
		k := fmt.Sprint(code)
		if _, dup := responses[k]; dup {
			continue
		}
		hdrs := map[string]any{"X-Trace-Id": map[string]any{"$ref": "#/components/headers/X-Trace-Id"}}
		if code == 429 {
			hdrs["Retry-After"] = map[string]any{"$ref": "#/components/headers/Retry-After"}
		}
		if code == 503 && r.path == "/health" {
			responses[k] = map[string]any{"description": "A component is down", "headers": hdrs,
				"content": map[string]any{"application/json": map[string]any{"schema": ref("Health")}}}
			continue
		}
		responses[k] = map[string]any{"description": http.StatusText(code), "headers": hdrs,
			"content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}}
	}
	op["responses"] = responses
	return op
}

func operationID(r *route) string {
	p := strings.NewReplacer("/api/v1/", "", "/", "_", ":", "", ".", "_", "-", "_").Replace(r.path)
	return strings.ToLower(r.method) + "_" + strings.Trim(p, "_")
}

func fieldSchema(f canonical.Field) map[string]any {
	m := map[string]any{"description": f.Description}
	switch f.Type {
	case canonical.TypeDecimal:
		m["type"] = []any{"string", "null"}
		m["description"] = f.Description + " (a decimal string)"
	case canonical.TypeInteger:
		m["type"] = []any{"integer", "null"}
	case canonical.TypePercent:
		m["type"] = []any{"number", "null"}
		m["minimum"], m["maximum"] = 0, 100
	case canonical.TypeDate:
		m["type"] = []any{"string", "null"}
		m["format"] = "date"
	case canonical.TypeEmail:
		m["type"] = []any{"string", "null"}
		m["format"] = "email"
	default:
		m["type"] = []any{"string", "null"}
	}
	if f.Required {
		m["type"] = m["type"].([]any)[0]
	}
	return m
}

func schemas() map[string]any {
	ts := map[string]any{"type": "string", "format": "date-time"}
	tsNull := map[string]any{"type": []any{"string", "null"}, "format": "date-time"}
	out := map[string]any{
		"Error": obj(map[string]any{"error": obj(map[string]any{
			"code": str, "message": str, "trace_id": str}, "code", "message", "trace_id")}, "error"),
		"User": obj(map[string]any{"id": str, "email": str, "tenant_id": str,
			"role": map[string]any{"type": "string", "enum": []any{RoleAdmin, RoleViewer}}}, "id", "email", "tenant_id", "role"),
		"RegisterRequest": obj(map[string]any{
			"tenant":   map[string]any{"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"},
			"email":    map[string]any{"type": "string", "format": "email", "maxLength": maxEmail},
			"password": map[string]any{"type": "string", "minLength": minPassword, "maxLength": maxPassword},
		}, "tenant", "email", "password"),
		"LoginRequest":   obj(map[string]any{"email": str, "password": str}, "email", "password"),
		"RefreshRequest": obj(map[string]any{"refresh_token": str}, "refresh_token"),
		"InviteRequest": obj(map[string]any{
			"email":    map[string]any{"type": "string", "format": "email"},
			"password": map[string]any{"type": "string", "minLength": minPassword},
			"role":     map[string]any{"type": "string", "enum": []any{RoleAdmin, RoleViewer}, "default": RoleViewer},
		}, "email", "password"),
		"InviteResponse": obj(map[string]any{"user": ref("User")}, "user"),
		"TokenResponse": obj(map[string]any{
			"access_token": str, "refresh_token": str,
			"token_type": map[string]any{"type": "string", "const": "bearer"},
			"expires_in": map[string]any{"type": "integer", "description": "seconds until the access token expires"},
		}, "access_token", "refresh_token", "token_type", "expires_in"),
		"RegisterResponse": obj(map[string]any{
			"user": ref("User"), "access_token": str, "refresh_token": str,
			"token_type": map[string]any{"type": "string", "const": "bearer"},
			"expires_in": map[string]any{"type": "integer"},
		}, "user", "access_token", "refresh_token", "token_type", "expires_in"),
		"UploadForm": obj(map[string]any{
			"file":   map[string]any{"type": "string", "contentMediaType": "text/csv", "description": "the CSV file"},
			"entity": map[string]any{"type": "string", "enum": []any{"account", "opportunity", "contact", "accounts", "opportunities", "contacts"}},
			"system": map[string]any{"type": "string", "pattern": "^[a-z0-9_-]{1,64}$", "default": "filesource"},
		}, "file", "entity"),
		"UploadAccepted": obj(map[string]any{"job_id": str}, "job_id"),
		"ConnectionInput": obj(map[string]any{
			"name":      str,
			"system":    map[string]any{"type": "string", "enum": []any{"salesforce", "hubspot", "dynamics", "postgres", "filesource"}},
			"config":    map[string]any{"type": "object"},
			"secrets":   map[string]any{"type": "object", "additionalProperties": str, "writeOnly": true},
			"interval":  map[string]any{"type": "string", "description": "Go duration, at least 1m; empty: manual only"},
			"reconcile": map[string]any{"type": "string", "description": "Go duration, at least 1m: how often a scheduled sync is a full reconciliation pass; empty: never scheduled"},
		}, "name", "system"),
		"Connection": obj(map[string]any{
			"id": str, "name": str, "system": str, "config": map[string]any{"type": "object"}, "interval": str, "reconcile": str,
			"last_reconcile_at": map[string]any{"type": []any{"string", "null"}},
			"status":            map[string]any{"type": "string", "enum": []any{"ACTIVE", "PAUSED", "DRIFTED", "HEALING", "MANUAL_REVIEW_REQUIRED", "FAILED"}},
			"status_reason":     str, "last_sync_at": map[string]any{"type": []any{"string", "null"}}, "last_error": str,
			"last_job_id": str, "created_at": str, "updated_at": str,
		}, "id", "name", "system", "status"),
		"ConnectionList": obj(map[string]any{"data": map[string]any{"type": "array", "items": ref("Connection")}}, "data"),
		"DataList":       obj(map[string]any{"data": map[string]any{"type": "array", "items": map[string]any{"type": "object"}}}, "data"),
		"AnyObject":      map[string]any{"type": "object"},
		"ConnectionTest": obj(map[string]any{"ok": map[string]any{"type": "boolean"}, "message": str}, "ok"),
		"RowError": obj(map[string]any{
			"line":   map[string]any{"type": "integer", "description": "file line where the bad record starts; the header is line 1"},
			"column": str, "reason": str}, "line", "reason"),
		"Job": obj(map[string]any{
			"id": str, "tenant_id": str, "kind": str,
			"mode":          map[string]any{"type": "string", "description": "a sync's mode: absent (incremental) or reconcile"},
			"deleted":       map[string]any{"type": "integer", "description": "delete events among published"},
			"status":        map[string]any{"type": "string", "enum": []any{"queued", "running", "succeeded", "failed", "cancelled"}},
			"connection_id": str, "file": str, "entity": str, "system": str, "trace_id": str,
			"rows_read": map[string]any{"type": "integer"}, "published": map[string]any{"type": "integer"},
			"rejected": map[string]any{"type": "integer"}, "total": map[string]any{"type": "integer"},
			"done":    map[string]any{"type": "integer"},
			"errors":  map[string]any{"type": "array", "items": ref("RowError")},
			"message": str, "created_at": ts, "started_at": tsNull, "finished_at": tsNull,
		}, "id", "status", "rows_read", "published", "rejected", "errors"),
		"JobList": obj(map[string]any{"data": map[string]any{"type": "array", "items": ref("Job")}}, "data"),
		"ComponentHealth": obj(map[string]any{"name": str,
			"status": map[string]any{"type": "string", "enum": []any{StatusOK, StatusDegraded, StatusDown}},
			"detail": str}, "name", "status"),
		"Health": obj(map[string]any{
			"status":     map[string]any{"type": "string", "enum": []any{StatusOK, StatusDegraded}},
			"components": map[string]any{"type": "array", "items": ref("ComponentHealth")}}, "status", "components"),
		"OpenAPIDocument": map[string]any{"type": "object", "description": "An OpenAPI 3.1 document"},
		"DebugConfig": obj(map[string]any{
			"settings":   map[string]any{"type": "object", "description": "effective settings; secrets are never shown"},
			"middleware": map[string]any{"type": "array", "items": str},
			"routes":     map[string]any{"type": "array", "items": str},
		}, "settings", "middleware", "routes"),
	}
	for _, e := range canonical.Entities {
		s, _ := canonical.SchemaOf(e)
		props := map[string]any{}
		var required []string
		for _, f := range s.Fields {
			props[f.Name] = fieldSchema(f)
			if f.Required {
				required = append(required, f.Name)
			}
		}
		props["extras"] = map[string]any{"type": "object", "description": "every unmapped source field"}
		props["tenant_id"] = str
		props["source_system"] = str
		props["source_updated_at"] = ts
		props["event_id"] = str
		props["created_at"] = ts
		props["updated_at"] = ts
		required = append(required, "extras", "tenant_id", "source_system", "source_updated_at", "event_id")
		row := strings.ToUpper(string(e)[:1]) + string(e)[1:] + "Row"
		out[row] = obj(props, required...)
		out[viewSchemaName(e)] = obj(map[string]any{
			"data":        map[string]any{"type": "array", "items": ref(row)},
			"next_cursor": map[string]any{"type": []any{"string", "null"}},
		}, "data", "next_cursor")
	}
	for k, v := range liveSchemas() {
		out[k] = v
	}
	return out
}

// handleOpenAPI serves the OpenAPI document.
func (s *Server) handleOpenAPI(c echo.Context) error {
	return c.JSONBlob(http.StatusOK, s.spec)
}
