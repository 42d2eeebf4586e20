package crmsim

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

const dynJSON = "application/json; odata.metadata=minimal"

func dynError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("OData-Version", "4.0")
	writeJSON(w, status, dynJSON, ordered{{"error", ordered{{"code", code}, {"message", msg}}}})
}

func dynNotFound(w http.ResponseWriter, r *http.Request) {
	seg := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	dynError(w, http.StatusNotFound, "0x8006088a", fmt.Sprintf("Resource not found for the segment '%s'.", seg))
}

// dynUnauthorized answers as Dataverse does for a missing, invalid or expired
// bearer token: 401 with a WWW-Authenticate challenge naming the tenant's
// authority (the body adds an OData error for clients that parse one).
func (s *Sim) dynUnauthorized(w http.ResponseWriter, r *http.Request) {
	tenant := s.Credentials().Dynamics.TenantID
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization_uri=%s/dynamics/%s/oauth2/authorize, resource_id=%s/dynamics/`, baseURL(r), tenant, baseURL(r)))
	dynError(w, http.StatusUnauthorized, "0x80072560", "The bearer token is missing, invalid or expired.")
}

func dynFailure(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusTooManyRequests:
		dynError(w, status, "0x80072322", "Number of requests exceeded the limit of 6000 over time window of 300 seconds.")
	case http.StatusServiceUnavailable:
		dynError(w, status, "0x80040216", "The service is temporarily unavailable. Please retry.")
	default:
		dynError(w, status, "0x80040216", "An unexpected error occurred.")
	}
}

// aadError writes a Microsoft identity platform token error.
func aadError(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	now := time.Now().UTC()
	writeJSON(w, status, "application/json; charset=utf-8", ordered{
		{"error", code},
		{"error_description", fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", aadsts, desc, randomGUID(), randomGUID(), now.Format("2006-01-02 15:04:05Z"))},
		{"error_codes", []int{aadsts}},
		{"timestamp", now.Format("2006-01-02 15:04:05Z")},
		{"trace_id", randomGUID()},
		{"correlation_id", randomGUID()},
		{"error_uri", fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts)},
	})
}

// dynToken is the tenant's POST /{tenant}/oauth2/v2.0/token for the client
// credentials grant.
func (s *Sim) dynToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		aadError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	creds := s.Credentials().Dynamics
	tenant := r.PathValue("tenant")
	id, secret := r.Form.Get("client_id"), r.Form.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok && id == "" {
		id, secret = u, p
	}
	scope := r.Form.Get("scope")
	switch {
	case !strings.EqualFold(tenant, creds.TenantID):
		aadError(w, http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
	case r.Form.Get("grant_type") != "client_credentials":
		aadError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
	case id != creds.ClientID:
		aadError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", id, tenant))
	case secret != creds.ClientSecret:
		aadError(w, http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", id))
	case scope == "":
		aadError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'.")
	case !strings.HasSuffix(scope, "/.default"):
		aadError(w, http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope))
	default:
		header := base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"RS256"}`))
		tok := header + "." + randomToken("", 96) + "." + randomToken("", 64)
		s.issue(Dynamics, tok)
		writeJSON(w, http.StatusOK, "application/json; charset=utf-8", ordered{
			{"token_type", "Bearer"},
			{"expires_in", 3599},
			{"ext_expires_in", 3599},
			{"access_token", tok},
		})
	}
}

// dynPrefs are the Prefer header's preferences the Web API honours.
type dynPrefs struct {
	maxPage     int
	track       bool
	annotations []string
	applied     []string
}

// splitPrefer splits a Prefer header on commas outside quotes.
func splitPrefer(h string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(h); i++ {
		switch h[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, strings.TrimSpace(h[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(h[start:]))
}

func parsePrefer(r *http.Request) dynPrefs {
	var p dynPrefs
	for _, h := range r.Header.Values("Prefer") {
		for _, pref := range splitPrefer(h) {
			k, v, _ := strings.Cut(pref, "=")
			switch strings.TrimSpace(k) {
			case "odata.maxpagesize":
				if n, err := strconv.Atoi(strings.Trim(v, `" `)); err == nil && n > 0 {
					p.maxPage = min(n, 5000)
					p.applied = append(p.applied, fmt.Sprintf("odata.maxpagesize=%d", p.maxPage))
				}
			case "odata.track-changes":
				p.track = true
				p.applied = append(p.applied, "odata.track-changes")
			case "odata.include-annotations":
				v = strings.Trim(strings.TrimSpace(v), `"`)
				p.annotations = strings.Split(v, ",")
				p.applied = append(p.applied, fmt.Sprintf(`odata.include-annotations="%s"`, v))
			}
		}
	}
	return p
}

// wants reports whether the annotation name was asked for.
func (p dynPrefs) wants(name string) bool {
	for _, a := range p.annotations {
		a = strings.TrimSpace(a)
		switch {
		case strings.HasPrefix(a, "-"):
			continue
		case a == "*" || a == name:
			return true
		case strings.HasSuffix(a, ".*") && strings.HasPrefix(name, strings.TrimSuffix(a, "*")):
			return true
		}
	}
	return false
}

func (s *Sim) dynTable(set string) *table {
	for _, t := range s.sys[Dynamics].tables {
		if t.def.name == set {
			return t
		}
	}
	return nil
}

func (s *Sim) dynTableByLogical(logical string) *table {
	for _, t := range s.sys[Dynamics].tables {
		if t.def.logical == logical {
			return t
		}
	}
	return nil
}

var (
	reEntityKey  = regexp.MustCompile(`^([A-Za-z_]+)\((.*)\)$`)
	rePagingCook = regexp.MustCompile(`pagingcookie="([0-9]+):([0-9]+)"`)
)

func dynHeaders(w http.ResponseWriter, p dynPrefs) {
	w.Header().Set("OData-Version", "4.0")
	if len(p.applied) > 0 {
		w.Header().Set("Preference-Applied", strings.Join(p.applied, ","))
	}
}

// dynGet serves GET /api/data/v9.x/{entityset}, /{entityset}({id}) and
// /EntityDefinitions(LogicalName='x').
func (s *Sim) dynGet(w http.ResponseWriter, r *http.Request) {
	ver := r.PathValue("version")
	set := r.PathValue("set")
	if !reAPIVersion.MatchString(ver) {
		dynNotFound(w, r)
		return
	}
	prefs := parsePrefer(r)
	base := baseURL(r) + "/dynamics/api/data/" + ver + "/"
	if m := reEntityKey.FindStringSubmatch(set); m != nil {
		if m[1] == "EntityDefinitions" {
			s.dynEntityDefinition(w, r, base, m[2])
			return
		}
		s.dynEntity(w, r, prefs, base, m[1], m[2])
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.dynTable(set)
	if t == nil {
		dynNotFound(w, r)
		return
	}
	pageSize := s.cfg.PageSize
	if prefs.maxPage > 0 {
		pageSize = prefs.maxPage
	}
	if tok := q.Get("$skiptoken"); tok != "" {
		m := rePagingCook.FindStringSubmatch(tok)
		var sn *snapshot
		var offset int
		if m != nil {
			sn = s.cursors[m[1]]
			offset, _ = strconv.Atoi(m[2])
		}
		if sn == nil || sn.link == "" || offset > len(sn.items) {
			dynError(w, http.StatusBadRequest, odataQueryError, "The paging cookie is invalid or has expired.")
			return
		}
		dynHeaders(w, prefs)
		writeJSON(w, http.StatusOK, dynJSON, dynPage(sn, m[1], offset, pageSize))
		return
	}
	sel, names, oerr := dynSelect(t, q.Get("$select"))
	if oerr != nil {
		dynError(w, http.StatusBadRequest, oerr.code, oerr.msg)
		return
	}
	ctx := base + "$metadata#" + set
	if len(names) > 0 {
		ctx += "(" + strings.Join(names, ",") + ")"
	}
	sys := s.sys[Dynamics]
	sn := &snapshot{link: base + set + "?" + dropParam(r.URL.RawQuery, "$skiptoken")}
	deltaTok := q.Get("$deltatoken")
	switch {
	case deltaTok != "" || prefs.track:
		for _, p := range []string{"$filter", "$orderby", "$top", "$expand"} {
			if q.Has(p) {
				dynError(w, http.StatusBadRequest, odataQueryError, fmt.Sprintf("The query parameter %s is not supported with change tracking.", p))
				return
			}
		}
		since := int64(-1)
		if deltaTok != "" {
			v, err := strconv.ParseInt(strings.SplitN(deltaTok, "!", 2)[0], 10, 64)
			if err != nil || v < 0 || v > sys.seq {
				dynError(w, http.StatusBadRequest, odataQueryError, "The delta token is invalid or has expired.")
				return
			}
			since = v
		}
		rs := t.all()
		if since >= 0 {
			sort.SliceStable(rs, func(i, j int) bool { return rs[i].version < rs[j].version })
		}
		for _, rec := range rs {
			switch {
			case since < 0 && rec.deleted, since >= 0 && rec.version <= since:
			case rec.deleted:
				sn.items = append(sn.items, ordered{
					{"@odata.context", base + "$metadata#" + set + "/$deletedEntity"},
					{"id", rec.id},
					{"reason", "deleted"},
				})
			default:
				sn.items = append(sn.items, s.dynRender(sys, t, rec, sel, prefs))
			}
		}
		ctx += "/$delta"
		dq := ""
		if q.Has("$select") {
			dq = "$select=" + url.QueryEscape(q.Get("$select")) + "&"
		}
		token := fmt.Sprintf("%d!%s", sys.seq, s.now().UTC().Format("01/02/2006 15:04:05"))
		sn.delta = base + set + "?" + dq + "$deltatoken=" + url.QueryEscape(token)
	default:
		match := func(*record) bool { return true }
		if f := q.Get("$filter"); f != "" {
			m, oerr := compileFilter(t, f)
			if oerr != nil {
				dynError(w, http.StatusBadRequest, oerr.code, oerr.msg)
				return
			}
			match = m
		}
		less, oerr := dynOrder(t, q.Get("$orderby"))
		if oerr != nil {
			dynError(w, http.StatusBadRequest, oerr.code, oerr.msg)
			return
		}
		var rs []*record
		for _, rec := range t.live() {
			if match(rec) {
				rs = append(rs, rec)
			}
		}
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].id < rs[j].id })
		sort.SliceStable(rs, func(i, j int) bool { return less(rs[i], rs[j]) })
		if top := q.Get("$top"); top != "" {
			n, err := strconv.Atoi(top)
			if err != nil || n < 0 {
				dynError(w, http.StatusBadRequest, odataQueryError, fmt.Sprintf("Invalid value '%s' for $top query option found.", top))
				return
			}
			rs = rs[:min(n, len(rs))]
		}
		for _, rec := range rs {
			sn.items = append(sn.items, s.dynRender(sys, t, rec, sel, prefs))
		}
	}
	sn.ctx = ctx
	key := ""
	if len(sn.items) > pageSize {
		key = s.putSnapshot(sn)
	}
	page := dynPage(sn, key, 0, pageSize)
	if q.Get("$count") == "true" {
		page = append(ordered{page[0], {"@odata.count", min(len(sn.items), 5000)}}, page[1:]...)
	}
	dynHeaders(w, prefs)
	writeJSON(w, http.StatusOK, dynJSON, page)
}

// dropParam removes a parameter from a raw query string, keeping the rest as
// the client wrote it.
func dropParam(raw, name string) string {
	var keep []string
	for _, p := range strings.Split(raw, "&") {
		k, _, _ := strings.Cut(p, "=")
		if uk, err := url.QueryUnescape(k); p == "" || (err == nil && uk == name) {
			continue
		}
		keep = append(keep, p)
	}
	return strings.Join(keep, "&")
}

func dynPage(sn *snapshot, key string, offset, size int) ordered {
	end := min(offset+size, len(sn.items))
	page := ordered{{"@odata.context", sn.ctx}, {"value", nonNil(sn.items[offset:end])}}
	switch {
	case end < len(sn.items):
		tracking := "False"
		if sn.delta != "" {
			tracking = "True"
		}
		cookie := fmt.Sprintf(`<cookie pagenumber="%d" pagingcookie="%s:%d" istracking="%s" />`, end/max(size, 1)+1, key, end, tracking)
		sep := "&"
		if strings.HasSuffix(sn.link, "?") {
			sep = ""
		}
		page = append(page, kv{"@odata.nextLink", sn.link + sep + "$skiptoken=" + url.QueryEscape(cookie)})
	case sn.delta != "":
		page = append(page, kv{"@odata.deltaLink", sn.delta})
	}
	return page
}

func dynSelect(t *table, sel string) ([]fieldDef, []string, *odataError) {
	if strings.TrimSpace(sel) == "" {
		return nil, nil, nil
	}
	var fs []fieldDef
	var names []string
	for _, n := range strings.Split(sel, ",") {
		n = strings.TrimSpace(n)
		f, ok := t.resolve(n, false)
		if !ok {
			return nil, nil, noSuchProperty(t, n)
		}
		fs = append(fs, f)
		names = append(names, n)
	}
	return fs, names, nil
}

func dynOrder(t *table, spec string) (func(a, b *record) bool, *odataError) {
	type key struct {
		f    fieldDef
		desc bool
	}
	var keys []key
	if strings.TrimSpace(spec) != "" {
		for _, part := range strings.Split(spec, ",") {
			fields := strings.Fields(part)
			if len(fields) == 0 || len(fields) > 2 {
				return nil, syntaxError(spec, 0)
			}
			f, ok := t.resolve(fields[0], false)
			if !ok {
				return nil, noSuchProperty(t, fields[0])
			}
			k := key{f: f}
			if len(fields) == 2 {
				switch fields[1] {
				case "asc":
				case "desc":
					k.desc = true
				default:
					return nil, syntaxError(spec, strings.Index(spec, fields[1]))
				}
			}
			keys = append(keys, k)
		}
	}
	return func(a, b *record) bool {
		for _, k := range keys {
			va, vb := a.value(k.f), b.value(k.f)
			var c int
			switch {
			case va == nil && vb == nil:
			case va == nil:
				c = -1
			case vb == nil:
				c = 1
			default:
				c = compareSOQL(k.f.typ, va, vb)
			}
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		return false
	}, nil
}

func dynValue(f fieldDef, v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05Z")
	case string:
		if f.typ == tDecimal {
			return json.Number(x)
		}
	}
	return v
}

// thousands formats an integer with comma separators.
func thousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// formatted is the OData.Community.Display.V1.FormattedValue of a value.
func (s *Sim) formatted(sys *system, t *table, r *record, f fieldDef, v any) (string, bool) {
	switch f.typ {
	case tOption:
		l, ok := f.options[v.(int64)]
		return l, ok
	case tInt:
		return thousands(strconv.FormatInt(v.(int64), 10)), true
	case tDecimal:
		sym := "$"
		if cur, ok := r.fields["_transactioncurrencyid_value"].(string); ok {
			for _, c := range currencies {
				if c.guid == cur {
					sym = c.symbol
				}
			}
		}
		whole, frac, _ := strings.Cut(v.(string), ".")
		frac = (frac + "00")[:2]
		return sym + thousands(whole) + "." + frac, true
	case tDateTime:
		return v.(time.Time).UTC().Format("1/2/2006 3:04 PM"), true
	case tDate:
		d, err := time.Parse(time.DateOnly, v.(string))
		return d.Format("1/2/2006"), err == nil
	case tBool:
		if v.(bool) {
			return "Yes", true
		}
		return "No", true
	}
	switch f.lookup {
	case "account":
		if a := s.dynTableByLogical("account"); a != nil {
			if p, ok := a.recs[v.(string)]; ok {
				return accountName(sys, p), true
			}
		}
	case "systemuser":
		for _, o := range sys.owners {
			if o.id == v {
				return o.name, true
			}
		}
	case "transactioncurrency":
		for _, c := range currencies {
			if c.guid == v {
				return c.name, true
			}
		}
	}
	return "", false
}

// dynRender renders an entity: its etag, the selected properties (all when
// none are selected; the primary key always) and the annotations asked for.
func (s *Sim) dynRender(sys *system, t *table, r *record, sel []fieldDef, prefs dynPrefs) ordered {
	o := ordered{{"@odata.etag", fmt.Sprintf(`W/"%d"`, 1_000_000+r.version)}}
	fields := sel
	if len(fields) == 0 {
		fields = t.fields
	} else if pk, _ := t.byRole(roleID); !containsField(fields, pk) {
		fields = append(append([]fieldDef(nil), fields...), pk)
	}
	const fv = "OData.Community.Display.V1.FormattedValue"
	for _, f := range fields {
		name := t.current(f.name)
		v := r.value(f)
		if v != nil {
			if prefs.wants(fv) {
				if txt, ok := s.formatted(sys, t, r, f, v); ok {
					o = append(o, kv{name + "@" + fv, txt})
				}
			}
			if f.lookup != "" {
				if a := "Microsoft.Dynamics.CRM.associatednavigationproperty"; prefs.wants(a) {
					o = append(o, kv{name + "@" + a, f.nav})
				}
				if a := "Microsoft.Dynamics.CRM.lookuplogicalname"; prefs.wants(a) {
					o = append(o, kv{name + "@" + a, f.lookup})
				}
			}
		}
		o = append(o, kv{name, dynValue(f, v)})
	}
	return o
}

func containsField(fs []fieldDef, f fieldDef) bool {
	for _, x := range fs {
		if x.name == f.name {
			return true
		}
	}
	return false
}

// dynEntity serves GET /{entityset}({guid}).
func (s *Sim) dynEntity(w http.ResponseWriter, r *http.Request, prefs dynPrefs, base, set, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.dynTable(set)
	if t == nil {
		dynNotFound(w, r)
		return
	}
	id := strings.ToLower(strings.Trim(key, "{}'"))
	rec, ok := t.recs[id]
	if !ok || rec.deleted {
		dynError(w, http.StatusNotFound, "0x80040217", fmt.Sprintf("Entity '%s' With Id = %s Does Not Exist", t.def.logical, id))
		return
	}
	sel, names, oerr := dynSelect(t, r.URL.Query().Get("$select"))
	if oerr != nil {
		dynError(w, http.StatusBadRequest, oerr.code, oerr.msg)
		return
	}
	ctx := base + "$metadata#" + set
	if len(names) > 0 {
		ctx += "(" + strings.Join(names, ",") + ")"
	}
	body := append(ordered{{"@odata.context", ctx + "/$entity"}}, s.dynRender(s.sys[Dynamics], t, rec, sel, prefs)...)
	dynHeaders(w, prefs)
	writeJSON(w, http.StatusOK, dynJSON, body)
}

func metadataID(parts ...string) string {
	sum := sha1.Sum([]byte(strings.Join(parts, "/")))
	var b [16]byte
	copy(b[:], sum[:16])
	return formatGUID(b)
}

var reLogicalName = regexp.MustCompile(`^LogicalName='([a-z_]+)'$`)

// metaLogicalName is an attribute's logical name in metadata: lookups are
// served as _x_value but named x.
func metaLogicalName(wire string) string {
	if strings.HasPrefix(wire, "_") && strings.HasSuffix(wire, "_value") {
		return strings.TrimSuffix(strings.TrimPrefix(wire, "_"), "_value")
	}
	return wire
}

// dynEntityDefinition serves GET EntityDefinitions(LogicalName='x').
func (s *Sim) dynEntityDefinition(w http.ResponseWriter, r *http.Request, base, key string) {
	m := reLogicalName.FindStringSubmatch(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	var t *table
	if m != nil {
		t = s.dynTableByLogical(m[1])
	}
	if t == nil {
		dynError(w, http.StatusNotFound, "0x80040217", fmt.Sprintf("Could not find entity with key %s", key))
		return
	}
	pk, _ := t.byRole(roleID)
	primaryName := "name"
	if t.def.kind == kindContact {
		primaryName = "fullname"
	}
	w.Header().Set("OData-Version", "4.0")
	writeJSON(w, http.StatusOK, dynJSON, ordered{
		{"@odata.context", base + "$metadata#EntityDefinitions/$entity"},
		{"MetadataId", metadataID(t.def.logical)},
		{"LogicalName", t.def.logical},
		{"EntitySetName", t.def.name},
		{"PrimaryIdAttribute", t.current(pk.name)},
		{"PrimaryNameAttribute", primaryName},
		{"ChangeTrackingEnabled", true},
	})
}

// dynAttributes serves GET EntityDefinitions(LogicalName='x')/Attributes.
func (s *Sim) dynAttributes(w http.ResponseWriter, r *http.Request) {
	ver := r.PathValue("version")
	m := reEntityKey.FindStringSubmatch(r.PathValue("set"))
	if !reAPIVersion.MatchString(ver) || m == nil || m[1] != "EntityDefinitions" {
		dynNotFound(w, r)
		return
	}
	lm := reLogicalName.FindStringSubmatch(m[2])
	s.mu.Lock()
	defer s.mu.Unlock()
	var t *table
	if lm != nil {
		t = s.dynTableByLogical(lm[1])
	}
	if t == nil {
		dynError(w, http.StatusNotFound, "0x80040217", fmt.Sprintf("Could not find entity with key %s", m[2]))
		return
	}
	value := make([]any, 0, len(t.fields))
	for _, f := range t.fields {
		name := metaLogicalName(t.current(f.name))
		value = append(value, ordered{
			{"LogicalName", name},
			{"AttributeType", f.native},
			{"IsCustomAttribute", isCustom(t, f)},
			{"MetadataId", metadataID(t.def.logical, f.name)},
		})
	}
	base := baseURL(r) + "/dynamics/api/data/" + ver + "/"
	w.Header().Set("OData-Version", "4.0")
	writeJSON(w, http.StatusOK, dynJSON, ordered{
		{"@odata.context", base + fmt.Sprintf("$metadata#EntityDefinitions('%s')/Attributes", t.def.logical)},
		{"value", value},
	})
}
