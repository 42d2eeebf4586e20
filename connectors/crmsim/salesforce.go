package crmsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

const sfJSON = "application/json;charset=UTF-8"

var reAPIVersion = regexp.MustCompile(`^v\d+\.\d+$`)

// sfError writes the REST API's error body: [{"message", "errorCode"}].
func sfError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, sfJSON, []ordered{{{"message", msg}, {"errorCode", code}}})
}

func sfNotFound(w http.ResponseWriter, _ *http.Request) {
	sfError(w, http.StatusNotFound, "NOT_FOUND", "The requested resource does not exist")
}

func sfUnauthorized(w http.ResponseWriter) {
	sfError(w, http.StatusUnauthorized, "INVALID_SESSION_ID", "Session expired or invalid")
}

func sfFailure(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusTooManyRequests, http.StatusForbidden:
		sfError(w, status, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
	case http.StatusServiceUnavailable:
		sfError(w, status, "SERVER_UNAVAILABLE", "Server temporarily unavailable; please retry.")
	default:
		sfError(w, status, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you contact support: 1337133713-42 (-1)")
	}
}

func sfOAuthError(w http.ResponseWriter, code, desc string) {
	writeJSON(w, http.StatusBadRequest, sfJSON, ordered{{"error", code}, {"error_description", desc}})
}

// sfToken is POST /services/oauth2/token for the client_credentials and
// refresh_token grants.
func (s *Sim) sfToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		sfOAuthError(w, "invalid_request", "malformed request body")
		return
	}
	id, secret := r.Form.Get("client_id"), r.Form.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok && id == "" {
		id, secret = u, p
	}
	creds := s.Credentials().Salesforce
	switch r.Form.Get("grant_type") {
	case "client_credentials":
		if id != creds.ClientID || secret != creds.ClientSecret {
			sfOAuthError(w, "invalid_client", "invalid client credentials")
			return
		}
	case "refresh_token":
		switch {
		case id != creds.ClientID:
			sfOAuthError(w, "invalid_client_id", "client identifier invalid")
			return
		case secret != "" && secret != creds.ClientSecret:
			sfOAuthError(w, "invalid_client", "invalid client credentials")
			return
		case r.Form.Get("refresh_token") != creds.RefreshToken:
			sfOAuthError(w, "invalid_grant", "expired access/refresh token")
			return
		}
	default:
		sfOAuthError(w, "unsupported_grant_type", "grant type not supported")
		return
	}
	s.mu.Lock()
	org, user := s.sfOrg, s.sfUser
	s.mu.Unlock()
	token := org[:15] + "!" + randomToken("AQ", 72)
	s.issue(Salesforce, token)
	issuedAt := strconv.FormatInt(s.now().UnixMilli(), 10)
	idURL := baseURL(r) + "/salesforce/id/" + org + "/" + user
	mac := hmac.New(sha256.New, []byte(creds.ClientSecret))
	mac.Write([]byte(idURL + issuedAt))
	writeJSON(w, http.StatusOK, sfJSON, ordered{
		{"access_token", token},
		{"signature", base64.StdEncoding.EncodeToString(mac.Sum(nil))},
		{"scope", "api"},
		{"instance_url", baseURL(r) + "/salesforce"},
		{"id", idURL},
		{"token_type", "Bearer"},
		{"issued_at", issuedAt},
	})
}

// sfBatchSize reads Sforce-Query-Options: batchSize=N (any positive N is
// honoured, up to 2000).
func (s *Sim) sfBatchSize(r *http.Request) int {
	n := s.cfg.PageSize
	for _, opt := range strings.Split(r.Header.Get("Sforce-Query-Options"), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(opt), "=")
		if strings.EqualFold(k, "batchSize") {
			if b, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && b > 0 {
				n = b
			}
		}
	}
	return min(n, 2000)
}

func (s *Sim) sfTable(name string) *table {
	for _, t := range s.sys[Salesforce].tables {
		if strings.EqualFold(t.def.name, name) {
			return t
		}
	}
	return nil
}

// sfQuery serves GET /services/data/vXX.X/query?q= and queryAll?q=.
func (s *Sim) sfQuery(path string) http.HandlerFunc {
	all := path == "queryAll"
	return func(w http.ResponseWriter, r *http.Request) {
		ver := r.PathValue("version")
		if !reAPIVersion.MatchString(ver) {
			sfNotFound(w, r)
			return
		}
		q := r.URL.Query().Get("q")
		if strings.TrimSpace(q) == "" {
			sfError(w, http.StatusBadRequest, "MALFORMED_QUERY", "A query string has to be specified")
			return
		}
		parsed, perr := parseSOQL(q)
		if perr != nil {
			sfError(w, http.StatusBadRequest, perr.code, perr.message(q))
			return
		}
		batch := s.sfBatchSize(r)
		s.mu.Lock()
		defer s.mu.Unlock()
		t := s.sfTable(parsed.object.text)
		if t == nil {
			e := &soqlError{"INVALID_TYPE", fmt.Sprintf("sObject type '%s' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.", parsed.object.text), parsed.object.pos}
			sfError(w, http.StatusBadRequest, e.code, e.message(q))
			return
		}
		plan, perr := parsed.plan(t)
		if perr != nil {
			sfError(w, http.StatusBadRequest, perr.code, perr.message(q))
			return
		}
		rows := t.live()
		if all {
			rows = t.all()
		}
		matched := rows[:0:0]
		for _, rec := range rows {
			if plan.match(rec) {
				matched = append(matched, rec)
			}
		}
		plan.sort(matched)
		if parsed.offset > 0 {
			matched = matched[min(parsed.offset, len(matched)):]
		}
		if parsed.limit >= 0 && parsed.limit < len(matched) {
			matched = matched[:parsed.limit]
		}
		items := make([]any, len(matched))
		for i, rec := range matched {
			items[i] = sfRender(t, rec, plan.sel, ver)
		}
		sn := &snapshot{items: items, path: path}
		locator := ""
		if len(items) > batch {
			locator = sfLocator(s.putSnapshot(sn))
		}
		writeJSON(w, http.StatusOK, sfJSON, sfPage(sn, locator, 0, batch, ver))
	}
}

// sfLocator turns a snapshot key into a query locator id (01g...).
func sfLocator(key string) string {
	n, _ := strconv.ParseUint(key, 10, 64)
	return sfID("01g", n)
}

func sfPage(sn *snapshot, locator string, offset, batch int, ver string) ordered {
	end := min(offset+batch, len(sn.items))
	done := end >= len(sn.items)
	page := ordered{{"totalSize", len(sn.items)}, {"done", done}}
	if !done {
		page = append(page, kv{"nextRecordsUrl", fmt.Sprintf("/services/data/%s/%s/%s-%d", ver, sn.path, locator, end)})
	}
	return append(page, kv{"records", nonNil(sn.items[offset:end])})
}

// sfMore serves the next batch of a query locator.
func (s *Sim) sfMore(w http.ResponseWriter, r *http.Request) {
	ver := r.PathValue("version")
	loc := r.PathValue("locator")
	i := strings.LastIndexByte(loc, '-')
	if !reAPIVersion.MatchString(ver) || i < 0 {
		sfNotFound(w, r)
		return
	}
	offset, err := strconv.Atoi(loc[i+1:])
	batch := s.sfBatchSize(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	var sn *snapshot
	for key, c := range s.cursors {
		if sfLocator(key) == loc[:i] {
			sn = c
			break
		}
	}
	if sn == nil || sn.path == "" || err != nil || offset < 0 || offset > len(sn.items) {
		sfError(w, http.StatusBadRequest, "INVALID_QUERY_LOCATOR", "invalid query locator")
		return
	}
	writeJSON(w, http.StatusOK, sfJSON, sfPage(sn, loc[:i], offset, batch, ver))
}

func sfRender(t *table, r *record, sel []fieldDef, ver string) ordered {
	o := ordered{{"attributes", ordered{
		{"type", t.def.name},
		{"url", "/services/data/" + ver + "/sobjects/" + t.def.name + "/" + r.id},
	}}}
	for _, f := range sel {
		o = append(o, kv{t.current(f.name), sfValue(f, r.value(f))})
	}
	return o
}

func sfValue(f fieldDef, v any) any {
	switch x := v.(type) {
	case time.Time:
		return sfTime(x)
	case string:
		if f.typ == tDecimal {
			return json.Number(x)
		}
	}
	return v
}

// sfRetrieve serves GET /sobjects/{Object}/{id}[?fields=a,b].
func (s *Sim) sfRetrieve(w http.ResponseWriter, r *http.Request) {
	ver := r.PathValue("version")
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.sfTable(r.PathValue("object"))
	if t == nil || !reAPIVersion.MatchString(ver) {
		sfNotFound(w, r)
		return
	}
	rec, ok := t.recs[r.PathValue("id")]
	if !ok || rec.deleted {
		sfNotFound(w, r)
		return
	}
	sel := t.fields
	if fs := r.URL.Query().Get("fields"); fs != "" {
		sel = nil
		for _, name := range strings.Split(fs, ",") {
			f, ok := t.resolve(strings.TrimSpace(name), true)
			if !ok {
				sfError(w, http.StatusBadRequest, "INVALID_FIELD", fmt.Sprintf("No such column '%s' on sobject of type %s", strings.TrimSpace(name), t.def.name))
				return
			}
			sel = append(sel, f)
		}
	}
	writeJSON(w, http.StatusOK, sfJSON, sfRender(t, rec, sel, ver))
}

// sfDescribe serves a minimal GET /sobjects/{Object}/describe.
func (s *Sim) sfDescribe(w http.ResponseWriter, r *http.Request) {
	ver := r.PathValue("version")
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.sfTable(r.PathValue("object"))
	if t == nil || !reAPIVersion.MatchString(ver) {
		sfNotFound(w, r)
		return
	}
	fields := make([]any, 0, len(t.fields))
	for _, f := range t.fields {
		name := t.current(f.name)
		fields = append(fields, ordered{
			{"name", name},
			{"label", label(name)},
			{"type", f.native},
			{"nillable", f.role == roleData || f.role == roleRef},
			{"custom", isCustom(t, f)},
		})
	}
	base := "/services/data/" + ver + "/sobjects/" + t.def.name
	writeJSON(w, http.StatusOK, sfJSON, ordered{
		{"name", t.def.name},
		{"label", t.def.logical},
		{"labelPlural", t.def.logical + "s"},
		{"keyPrefix", t.def.prefix},
		{"custom", false},
		{"queryable", true},
		{"retrieveable", true},
		{"fields", fields},
		{"urls", ordered{{"sobject", base}, {"describe", base + "/describe"}}},
	})
}

// label makes a display label from an API name: "AnnualRevenue" → "Annual Revenue".
func label(name string) string {
	var b strings.Builder
	rs := []rune(strings.TrimSuffix(strings.TrimPrefix(name, "_"), "_value"))
	for i, r := range rs {
		if r == '_' {
			b.WriteRune(' ')
			continue
		}
		if i > 0 && unicode.IsUpper(r) && unicode.IsLower(rs[i-1]) {
			b.WriteRune(' ')
		}
		if i == 0 {
			r = unicode.ToUpper(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
