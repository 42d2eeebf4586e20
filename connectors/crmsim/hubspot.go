package crmsim

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	hsJSON      = "application/json;charset=utf-8"
	hsSearchCap = 10000 // the search endpoints never page past 10,000 results
)

func hsError(w http.ResponseWriter, status int, category, msg string) {
	body := ordered{{"status", "error"}, {"message", msg}, {"correlationId", randomGUID()}}
	if category != "" {
		body = append(body, kv{"category", category})
	}
	writeJSON(w, status, hsJSON, body)
}

func hsNotFound(w http.ResponseWriter, _ *http.Request) {
	hsError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "resource not found")
}

func hsUnauthorized(w http.ResponseWriter, reason string) {
	if reason == "expired" {
		hsError(w, http.StatusUnauthorized, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired 1 second(s) ago.")
		return
	}
	hsError(w, http.StatusUnauthorized, "INVALID_AUTHENTICATION", "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
}

func hsFailure(w http.ResponseWriter, status int) {
	if status == http.StatusTooManyRequests {
		w.Header().Set("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
		w.Header().Set("X-HubSpot-RateLimit-Max", "100")
		w.Header().Set("X-HubSpot-RateLimit-Remaining", "0")
		writeJSON(w, status, hsJSON, ordered{
			{"status", "error"},
			{"message", "You have reached your ten_secondly_rolling limit."},
			{"errorType", "RATE_LIMIT"},
			{"correlationId", randomGUID()},
			{"policyName", "TEN_SECONDLY_ROLLING"},
			{"groupName", "api:crm-objects"},
			{"category", "RATE_LIMITS"},
		})
		return
	}
	hsError(w, status, "", http.StatusText(status))
}

// hsToken is POST /oauth/v1/token with grant_type=refresh_token.
func (s *Sim) hsToken(w http.ResponseWriter, r *http.Request) {
	fail := func(status, msg string) {
		writeJSON(w, http.StatusBadRequest, hsJSON, ordered{{"status", status}, {"message", msg}, {"correlationId", randomGUID()}})
	}
	if err := r.ParseForm(); err != nil {
		fail("BAD_REQUEST", "malformed request body")
		return
	}
	creds := s.Credentials().HubSpot
	switch {
	case r.Form.Get("grant_type") != "refresh_token":
		fail("BAD_GRANT_TYPE", "grant_type must be refresh_token")
	case r.Form.Get("client_id") != creds.ClientID:
		fail("BAD_CLIENT_ID", "missing or unknown client id")
	case r.Form.Get("client_secret") != creds.ClientSecret:
		fail("BAD_CLIENT_SECRET", "missing or invalid client secret")
	case r.Form.Get("refresh_token") != creds.RefreshToken:
		fail("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
	default:
		tok := randomToken("C", 96)
		s.issue(HubSpot, tok)
		writeJSON(w, http.StatusOK, hsJSON, ordered{
			{"token_type", "bearer"},
			{"refresh_token", creds.RefreshToken},
			{"access_token", tok},
			{"expires_in", 1800},
		})
	}
}

// hsObjectTypeIDs are the ids HubSpot also accepts in place of object names.
var hsObjectTypeIDs = map[string]string{"0-1": "contacts", "0-2": "companies", "0-3": "deals"}

func (s *Sim) hsTable(name string) *table {
	if n, ok := hsObjectTypeIDs[name]; ok {
		name = n
	}
	for _, t := range s.sys[HubSpot].tables {
		if strings.EqualFold(t.def.name, name) || strings.EqualFold(t.def.logical, name) {
			return t
		}
	}
	return nil
}

func hsBadObject(w http.ResponseWriter, name string) {
	hsError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Unable to infer object type from: "+name)
}

func hsTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// hsValue renders a store value as HubSpot does: every property is a string.
func hsValue(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case time.Time:
		return hsTime(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	case string:
		return x
	}
	return fmt.Sprint(v)
}

func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func hsNum(id string) uint64 {
	n, _ := strconv.ParseUint(id, 10, 64)
	return n
}

func sortByID(rs []*record) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := hsNum(rs[i].id), hsNum(rs[j].id)
		if a != b {
			return a < b
		}
		return rs[i].id < rs[j].id
	})
}

// hsAssoc describes the association between two HubSpot object types.
type hsAssoc struct {
	name           string // v3 type name, e.g. deal_to_company
	primary, plain int    // v4 type ids: the primary label and the unlabeled one
	fromParent     bool   // from company to its children
}

func hsAssociation(from, to *table) (hsAssoc, bool) {
	switch {
	case from.def.kind == kindOpportunity && to.def.kind == kindAccount:
		return hsAssoc{name: "deal_to_company", primary: 5, plain: 341}, true
	case from.def.kind == kindContact && to.def.kind == kindAccount:
		return hsAssoc{name: "contact_to_company", primary: 1, plain: 279}, true
	case from.def.kind == kindAccount && to.def.kind == kindOpportunity:
		return hsAssoc{name: "company_to_deal", primary: 6, plain: 342, fromParent: true}, true
	case from.def.kind == kindAccount && to.def.kind == kindContact:
		return hsAssoc{name: "company_to_contact", primary: 2, plain: 280, fromParent: true}, true
	}
	return hsAssoc{}, false
}

// hsAssociated lists the ids r is associated with in table to.
func (s *Sim) hsAssociated(from, to *table, r *record) ([]string, hsAssoc) {
	a, ok := hsAssociation(from, to)
	if !ok {
		return nil, a
	}
	if !a.fromParent {
		if r.ref == "" {
			return nil, a
		}
		if p, ok := to.recs[r.ref]; !ok || p.deleted {
			return nil, a
		}
		return []string{r.ref}, a
	}
	var ids []string
	for _, c := range to.live() {
		if c.ref == r.id {
			ids = append(ids, c.id)
		}
	}
	return ids, a
}

// hsRender renders a record: properties asked for (or the object's defaults),
// always with hs_object_id, createdate and the last-modified stamp.
func (s *Sim) hsRender(t *table, r *record, props []string, assoc []string) ordered {
	names := props
	if len(names) == 0 {
		for _, d := range t.def.defaults {
			names = append(names, t.current(d))
		}
	}
	properties := map[string]any{}
	for _, rl := range []role{roleID, roleCreated, roleModified} {
		if f, ok := t.byRole(rl); ok {
			names = append(names, t.current(f.name))
		}
	}
	for _, name := range names {
		if f, ok := t.resolve(name, false); ok {
			properties[name] = hsValue(r.value(f))
		}
	}
	o := ordered{
		{"id", r.id},
		{"properties", properties},
		{"createdAt", hsTime(r.created)},
		{"updatedAt", hsTime(r.modified)},
		{"archived", r.deleted},
	}
	if r.deleted {
		o = append(o, kv{"archivedAt", hsTime(r.deletedAt)})
	}
	var assocs ordered
	for _, name := range assoc {
		to := s.hsTable(name)
		if to == nil {
			continue
		}
		ids, a := s.hsAssociated(t, to, r)
		if len(ids) == 0 {
			continue
		}
		results := make([]any, 0, 2*len(ids))
		for _, id := range ids {
			results = append(results,
				ordered{{"id", id}, {"type", a.name}},
				ordered{{"id", id}, {"type", a.name + "_unlabeled"}})
		}
		assocs = append(assocs, kv{to.def.name, ordered{{"results", results}}})
	}
	if len(assocs) > 0 {
		o = append(o, kv{"associations", assocs})
	}
	return o
}

func (s *Sim) hsLimit(w http.ResponseWriter, raw string, max int) (int, bool) {
	if raw == "" {
		return min(s.cfg.PageSize, max), true
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		hsError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Invalid limit: %q", raw))
		return 0, false
	}
	return min(n, max), true
}

// hsList serves GET /crm/v3/objects/{object}: id-ordered pages with an
// "after" cursor, archived=true for archived records only.
func (s *Sim) hsList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := s.hsLimit(w, q.Get("limit"), 100)
	if !ok {
		return
	}
	var after uint64
	if a := q.Get("after"); a != "" {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			hsError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Invalid after: %q", a))
			return
		}
		after = n
	}
	archived := q.Get("archived") == "true"
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.hsTable(r.PathValue("object"))
	if t == nil {
		hsBadObject(w, r.PathValue("object"))
		return
	}
	var rs []*record
	for _, rec := range t.all() {
		if rec.deleted == archived && hsNum(rec.id) >= after {
			rs = append(rs, rec)
		}
	}
	sortByID(rs)
	props, assoc := splitList(q["properties"]), splitList(q["associations"])
	page := rs[:min(limit, len(rs))]
	results := make([]any, len(page))
	for i, rec := range page {
		results[i] = s.hsRender(t, rec, props, assoc)
	}
	body := ordered{{"results", results}}
	if len(rs) > limit {
		next := rs[limit].id
		q.Set("after", next)
		link := baseURL(r) + r.URL.Path + "?" + q.Encode()
		body = append(body, kv{"paging", ordered{{"next", ordered{{"after", next}, {"link", link}}}}})
	}
	writeJSON(w, http.StatusOK, hsJSON, body)
}

// hsGet serves GET /crm/v3/objects/{object}/{id}.
func (s *Sim) hsGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.hsTable(r.PathValue("object"))
	if t == nil {
		hsBadObject(w, r.PathValue("object"))
		return
	}
	rec, ok := t.recs[r.PathValue("id")]
	if !ok || rec.deleted != (q.Get("archived") == "true") {
		hsNotFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, hsJSON, s.hsRender(t, rec, splitList(q["properties"]), splitList(q["associations"])))
}

type hsFilter struct {
	PropertyName string `json:"propertyName"`
	Operator     string `json:"operator"`
	Value        any    `json:"value"`
	HighValue    any    `json:"highValue"`
	Values       []any  `json:"values"`
}

type hsSort struct {
	PropertyName string `json:"propertyName"`
	Direction    string `json:"direction"`
}

type hsSearchRequest struct {
	FilterGroups []struct {
		Filters []hsFilter `json:"filters"`
	} `json:"filterGroups"`
	Sorts      []json.RawMessage `json:"sorts"`
	Properties []string          `json:"properties"`
	Limit      any               `json:"limit"`
	After      any               `json:"after"`
	Query      string            `json:"query"`
}

// hsOperand converts a filter value to a store value of f's type.
func hsOperand(f fieldDef, v any) (any, error) {
	if v == nil {
		return nil, fmt.Errorf("missing value")
	}
	s := fmt.Sprint(v)
	if n, ok := v.(float64); ok {
		s = strconv.FormatFloat(n, 'f', -1, 64)
	}
	switch f.typ {
	case tDateTime, tDate:
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
			t := time.UnixMilli(ms).UTC()
			if f.typ == tDate {
				return t.Format(time.DateOnly), nil
			}
			return t, nil
		}
		t, err := parseAnyTime(s)
		if err != nil {
			return nil, err
		}
		if f.typ == tDate {
			return t.Format(time.DateOnly), nil
		}
		return t, nil
	case tDecimal, tInt, tOption:
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return r, nil
	case tBool:
		return strconv.ParseBool(s)
	}
	return s, nil
}

func hsCompare(f fieldDef, v, operand any) int {
	if r, ok := operand.(*big.Rat); ok {
		x, ok := new(big.Rat).SetString(fmt.Sprint(v))
		if !ok {
			return -1
		}
		return x.Cmp(r)
	}
	return compareSOQL(f.typ, v, operand)
}

func (s *Sim) hsCompileFilter(t *table, flt hsFilter) (func(*record) bool, error) {
	f, ok := t.resolve(flt.PropertyName, false)
	if !ok {
		return nil, fmt.Errorf("There was a problem with the request. Property %q does not exist", flt.PropertyName)
	}
	op := strings.ToUpper(flt.Operator)
	switch op {
	case "HAS_PROPERTY", "NOT_HAS_PROPERTY":
		want := op == "HAS_PROPERTY"
		return func(r *record) bool { return (r.value(f) != nil) == want }, nil
	case "IN", "NOT_IN":
		var vals []any
		for _, v := range flt.Values {
			x, err := hsOperand(f, v)
			if err != nil {
				return nil, fmt.Errorf("filter on %s: %w", flt.PropertyName, err)
			}
			vals = append(vals, x)
		}
		neg := op == "NOT_IN"
		return func(r *record) bool {
			v := r.value(f)
			for _, x := range vals {
				if v != nil && hsCompare(f, v, x) == 0 {
					return !neg
				}
			}
			return neg
		}, nil
	case "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN":
		tok := strings.ToLower(strings.Trim(fmt.Sprint(flt.Value), "*"))
		neg := op == "NOT_CONTAINS_TOKEN"
		return func(r *record) bool {
			v := r.value(f)
			return (v != nil && strings.Contains(strings.ToLower(fmt.Sprint(hsValue(v))), tok)) != neg
		}, nil
	case "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN":
	default:
		return nil, fmt.Errorf("There was a problem with the request. Unknown operator %q", flt.Operator)
	}
	lo, err := hsOperand(f, flt.Value)
	if err != nil {
		return nil, fmt.Errorf("filter on %s: %w", flt.PropertyName, err)
	}
	var hi any
	if op == "BETWEEN" {
		if hi, err = hsOperand(f, flt.HighValue); err != nil {
			return nil, fmt.Errorf("filter on %s highValue: %w", flt.PropertyName, err)
		}
	}
	return func(r *record) bool {
		v := r.value(f)
		if v == nil {
			return op == "NEQ"
		}
		c := hsCompare(f, v, lo)
		switch op {
		case "EQ":
			return c == 0
		case "NEQ":
			return c != 0
		case "LT":
			return c < 0
		case "LTE":
			return c <= 0
		case "GT":
			return c > 0
		case "GTE":
			return c >= 0
		}
		return c >= 0 && hsCompare(f, v, hi) <= 0
	}, nil
}

func intOf(v any) (int, bool) {
	switch x := v.(type) {
	case nil:
		return 0, true
	case float64:
		return int(x), x == float64(int(x))
	case string:
		if x == "" {
			return 0, true
		}
		n, err := strconv.Atoi(x)
		return n, err == nil
	}
	return 0, false
}

// hsSearch serves POST /crm/v3/objects/{object}/search: filter groups (OR of
// ANDs), sorts, properties, limit (≤ 200) and an offset-like "after" that may
// not reach 10,000.
func (s *Sim) hsSearch(w http.ResponseWriter, r *http.Request) {
	var req hsSearchRequest
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&req); err != nil {
		hsError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON: "+err.Error())
		return
	}
	limit, ok := intOf(req.Limit)
	if !ok || limit < 0 || limit > 200 {
		hsError(w, http.StatusBadRequest, "VALIDATION_ERROR", "There was a problem with the request. limit must be between 1 and 200")
		return
	}
	if limit == 0 {
		limit = min(s.cfg.PageSize, 200)
	}
	after, ok := intOf(req.After)
	if !ok || after < 0 {
		hsError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("There was a problem with the request. Invalid after: %v", req.After))
		return
	}
	if after >= hsSearchCap {
		hsError(w, http.StatusBadRequest, "VALIDATION_ERROR", "There was a problem with the request. Search results are limited to 10,000 records; paging past 10,000 results is not supported.")
		return
	}
	if len(req.FilterGroups) > 5 {
		hsError(w, http.StatusBadRequest, "VALIDATION_ERROR", "There was a problem with the request. A search request may have at most 5 filterGroups.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.hsTable(r.PathValue("object"))
	if t == nil {
		hsBadObject(w, r.PathValue("object"))
		return
	}
	var groups [][]func(*record) bool
	for _, g := range req.FilterGroups {
		if len(g.Filters) > 6 {
			hsError(w, http.StatusBadRequest, "VALIDATION_ERROR", "There was a problem with the request. A filterGroup may have at most 6 filters.")
			return
		}
		var fs []func(*record) bool
		for _, flt := range g.Filters {
			m, err := s.hsCompileFilter(t, flt)
			if err != nil {
				hsError(w, http.StatusBadRequest, "VALIDATION_ERROR", err.Error())
				return
			}
			fs = append(fs, m)
		}
		groups = append(groups, fs)
	}
	var sorts []hsSort
	for _, raw := range req.Sorts {
		var so hsSort
		var name string
		if err := json.Unmarshal(raw, &name); err == nil {
			so.PropertyName, so.Direction = strings.TrimPrefix(name, "-"), "ASCENDING"
			if strings.HasPrefix(name, "-") {
				so.Direction = "DESCENDING"
			}
		} else if err := json.Unmarshal(raw, &so); err != nil {
			hsError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid sort: "+string(raw))
			return
		}
		if _, ok := t.resolve(so.PropertyName, false); !ok {
			hsError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("There was a problem with the request. Property %q does not exist", so.PropertyName))
			return
		}
		sorts = append(sorts, so)
	}
	query := strings.ToLower(strings.TrimSpace(req.Query))
	var rs []*record
	for _, rec := range t.live() {
		if query != "" && !hsMatchesText(t, rec, query) {
			continue
		}
		match := len(groups) == 0
		for _, g := range groups {
			all := true
			for _, m := range g {
				if !m(rec) {
					all = false
					break
				}
			}
			if all {
				match = true
				break
			}
		}
		if match {
			rs = append(rs, rec)
		}
	}
	sortByID(rs)
	sort.SliceStable(rs, func(i, j int) bool {
		for _, so := range sorts {
			f, _ := t.resolve(so.PropertyName, false)
			a, b := rs[i].value(f), rs[j].value(f)
			var c int
			switch {
			case a == nil && b == nil:
				c = 0
			case a == nil:
				c = -1
			case b == nil:
				c = 1
			default:
				c = compareSOQL(f.typ, a, b)
			}
			if strings.EqualFold(so.Direction, "DESCENDING") {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		return false
	})
	total := len(rs)
	page := rs[min(after, total):min(after+limit, total)]
	results := make([]any, len(page))
	for i, rec := range page {
		results[i] = s.hsRender(t, rec, req.Properties, nil)
	}
	body := ordered{{"total", total}, {"results", results}}
	if after+limit < total {
		body = append(body, kv{"paging", ordered{{"next", ordered{{"after", strconv.Itoa(after + limit)}}}}})
	}
	writeJSON(w, http.StatusOK, hsJSON, body)
}

func hsMatchesText(t *table, r *record, q string) bool {
	for _, f := range t.fields {
		if f.typ != tString {
			continue
		}
		if v, ok := r.value(f).(string); ok && strings.Contains(strings.ToLower(v), q) {
			return true
		}
	}
	return false
}

// hsProperties serves a minimal GET /crm/v3/properties/{object}.
func (s *Sim) hsProperties(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.hsTable(r.PathValue("object"))
	if t == nil {
		hsBadObject(w, r.PathValue("object"))
		return
	}
	fieldTypes := map[string]string{"string": "text", "number": "number", "datetime": "date", "date": "date", "enumeration": "select", "bool": "booleancheckbox"}
	results := make([]any, 0, len(t.fields))
	for _, f := range t.fields {
		name := t.current(f.name)
		results = append(results, ordered{
			{"name", name},
			{"label", label(name)},
			{"type", f.native},
			{"fieldType", fieldTypes[f.native]},
			{"groupName", t.def.logical + "information"},
			{"description", ""},
			{"hidden", false},
			{"calculated", f.role != roleData},
			{"hubspotDefined", !isCustom(t, f)},
		})
	}
	writeJSON(w, http.StatusOK, hsJSON, ordered{{"results", results}})
}

func hsAssocTypes(a hsAssoc) []any {
	return []any{
		ordered{{"category", "HUBSPOT_DEFINED"}, {"typeId", a.primary}, {"label", "Primary"}},
		ordered{{"category", "HUBSPOT_DEFINED"}, {"typeId", a.plain}, {"label", nil}},
	}
}

// hsAssociations serves GET /crm/v4/objects/{object}/{id}/associations/{to}.
func (s *Sim) hsAssociations(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from, to := s.hsTable(r.PathValue("object")), s.hsTable(r.PathValue("to"))
	if from == nil || to == nil {
		hsBadObject(w, r.PathValue("object")+"/"+r.PathValue("to"))
		return
	}
	results := []any{}
	if rec, ok := from.recs[r.PathValue("id")]; ok && !rec.deleted {
		ids, a := s.hsAssociated(from, to, rec)
		for _, id := range ids {
			results = append(results, ordered{{"toObjectId", hsNum(id)}, {"associationTypes", hsAssocTypes(a)}})
		}
	}
	writeJSON(w, http.StatusOK, hsJSON, ordered{{"results", results}})
}

// hsAssociationsBatch serves POST /crm/v4/associations/{object}/{to}/batch/read.
func (s *Sim) hsAssociationsBatch(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Inputs []struct {
			ID any `json:"id"`
		} `json:"inputs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		hsError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON: "+err.Error())
		return
	}
	started := hsTime(s.now())
	s.mu.Lock()
	defer s.mu.Unlock()
	from, to := s.hsTable(r.PathValue("object")), s.hsTable(r.PathValue("to"))
	if from == nil || to == nil {
		hsBadObject(w, r.PathValue("object")+"/"+r.PathValue("to"))
		return
	}
	results := []any{}
	for _, in := range req.Inputs {
		id := fmt.Sprint(in.ID)
		if f, ok := in.ID.(float64); ok {
			id = strconv.FormatFloat(f, 'f', -1, 64)
		}
		rec, ok := from.recs[id]
		if !ok || rec.deleted {
			continue
		}
		ids, a := s.hsAssociated(from, to, rec)
		if len(ids) == 0 {
			continue
		}
		tos := make([]any, 0, len(ids))
		for _, tid := range ids {
			tos = append(tos, ordered{{"toObjectId", hsNum(tid)}, {"associationTypes", hsAssocTypes(a)}})
		}
		results = append(results, ordered{{"from", ordered{{"id", id}}}, {"to", tos}})
	}
	writeJSON(w, http.StatusOK, hsJSON, ordered{
		{"status", "COMPLETE"},
		{"results", results},
		{"startedAt", started},
		{"completedAt", hsTime(s.now())},
	})
}
