package hubspot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/httpx"
)

// Cursor phases, in the order a sync walks them.
const (
	phaseStart    = ""         // probe the newest stamp
	phaseBaseline = "baseline" // first sync: the archived list's newest archivedAt
	phaseList     = "list"     // first sync: every live record, by id
	phaseSearch   = "search"   // changes since the stamp
	phaseArchived = "archived" // deletions since the watermark
)

const (
	// maxBoundaryIDs bounds the ids kept for a boundary stamp.
	maxBoundaryIDs = 1000
	// searchCap is how far the search endpoint pages.
	searchCap = 10000
	// probeSize is how many newest records the first probe reads.
	probeSize = 100
)

// cursor is the connector's checkpoint of one object.
type cursor struct {
	V     int    `json:"v"`
	Phase string `json:"phase,omitempty"`
	// After pages the list and archived walks.
	After string `json:"after,omitempty"`
	// Stamp is the highest modified stamp emitted (or probed) and IDs the
	// records emitted at exactly Stamp. Strict means IDs may be incomplete:
	// the search goes on strictly after Stamp.
	Stamp  string   `json:"stamp,omitempty"`
	IDs    []string `json:"ids,omitempty"`
	Strict bool     `json:"strict,omitempty"`
	// Tie walks the records at exactly Stamp by id from TieOffset.
	Tie       bool `json:"tie,omitempty"`
	TieOffset int  `json:"tie_offset,omitempty"`
	// Archived is the delete watermark (the highest archivedAt handled) and
	// ArchivedIDs the records handled at it; Pass and PassIDs are the same
	// for the archived walk in progress.
	Archived    string   `json:"archived,omitempty"`
	ArchivedIDs []string `json:"archived_ids,omitempty"`
	Pass        string   `json:"pass,omitempty"`
	PassIDs     []string `json:"pass_ids,omitempty"`
}

func decodeCursor(s string) (cursor, error) {
	c := cursor{V: 1}
	if s == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil || c.V != 1 {
		return c, &connectors.PermanentError{Err: fmt.Errorf("unreadable cursor %q (reset the connection's cursors to resync)", s)}
	}
	for _, st := range []string{c.Stamp, c.Archived, c.Pass} {
		if _, err := parseStamp(st); st != "" && err != nil {
			return c, &connectors.PermanentError{Err: fmt.Errorf("cursor: %v", err)}
		}
	}
	return c, nil
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// mark is a (stamp, ids) high-water mark.
type mark struct {
	stamp *string
	ids   *[]string
}

// seen reports whether the record at t with id is at or below the mark.
func (m mark) seen(t time.Time, id string) bool {
	if *m.stamp == "" {
		return false
	}
	ms, _ := parseStamp(*m.stamp)
	switch {
	case t.Before(ms):
		return true
	case t.After(ms):
		return false
	}
	return slices.Contains(*m.ids, id)
}

// raise moves the mark up to (t, id); it reports false when the ids at the
// stamp overflowed (the mark then keeps the stamp without them).
func (m mark) raise(t time.Time, id string) bool {
	ms, _ := parseStamp(*m.stamp)
	switch {
	case *m.stamp == "" || t.After(ms):
		*m.stamp, *m.ids = formatStamp(t), []string{id}
	case t.Equal(ms) && !slices.Contains(*m.ids, id):
		if len(*m.ids) >= maxBoundaryIDs {
			*m.ids = nil
			return false
		}
		*m.ids = append(*m.ids, id)
	}
	return true
}

func parseStamp(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("empty timestamp")
	}
	var t time.Time
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		t = time.UnixMilli(ms).UTC()
	} else if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
		return time.Time{}, fmt.Errorf("not a HubSpot timestamp: %q", s)
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, fmt.Errorf("timestamp %q is outside years 1-9999", s)
	}
	return t.UTC(), nil
}

func formatStamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// object is a record as the API renders it.
type object struct {
	ID           string         `json:"id"`
	Properties   map[string]any `json:"properties"`
	Archived     bool           `json:"archived"`
	ArchivedAt   string         `json:"archivedAt"`
	Associations map[string]struct {
		Results []struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		} `json:"results"`
	} `json:"associations"`
}

type paging struct {
	Next *struct {
		After string `json:"after"`
	} `json:"next"`
}

type listResult struct {
	Results []object `json:"results"`
	Paging  paging   `json:"paging"`
}

// Fetch returns the next page of object after cur.
func (c *Connector) Fetch(ctx context.Context, obj, cur string) (connectors.Page, error) {
	if _, ok := objects[obj]; !ok {
		return connectors.Page{}, &connectors.PermanentError{Err: fmt.Errorf("unknown HubSpot object %q", obj)}
	}
	st, err := decodeCursor(cur)
	if err != nil {
		return connectors.Page{}, err
	}
	var recs []connectors.Record
	more := true
	switch st.Phase {
	case phaseStart:
		err = c.probe(ctx, obj, &st)
	case phaseBaseline:
		_, more, err = c.archived(ctx, obj, &st, false)
	case phaseList:
		recs, err = c.list(ctx, obj, &st)
	case phaseSearch:
		recs, err = c.search(ctx, obj, &st)
	case phaseArchived:
		recs, more, err = c.archived(ctx, obj, &st, true)
	default:
		err = &connectors.PermanentError{Err: fmt.Errorf("cursor phase %q", st.Phase)}
	}
	if err != nil {
		return connectors.Page{}, err
	}
	page := connectors.Page{Records: recs, Cursor: st.encode(), More: more}
	c.log.Debug("page", "object", obj, "records", len(recs), "cursor", page.Cursor)
	return page, nil
}

// advance records that the record at t with id was emitted.
func (st *cursor) advance(t time.Time, id string) {
	if cur, err := parseStamp(st.Stamp); st.Stamp == "" || (err == nil && t.After(cur)) {
		st.Strict = false
	}
	if !(mark{&st.Stamp, &st.IDs}).raise(t, id) {
		st.Strict = true
	}
}

// probe reads the newest modified stamp and the ids at it: everything the
// list walk will read is at or before it, everything changed later after.
func (c *Connector) probe(ctx context.Context, obj string, st *cursor) error {
	modified := objects[obj]
	res, err := c.searchPage(ctx, obj, searchRequest{
		Sorts: []searchSort{{PropertyName: modified, Direction: "DESCENDING"}}, Properties: []string{modified}, Limit: probeSize})
	if err != nil {
		return err
	}
	for _, r := range res.Results {
		t, err := parseStamp(str(r.Properties[modified]))
		if err != nil {
			return fmt.Errorf("%s %s: %s: %w", obj, r.ID, modified, err)
		}
		if st.Stamp != "" && t.Before(mustStamp(st.Stamp)) {
			break
		}
		st.advance(t, r.ID)
	}
	st.Phase = phaseBaseline
	return nil
}

func mustStamp(s string) time.Time {
	t, _ := parseStamp(s)
	return t
}

// list reads the next page of live records by id.
func (c *Connector) list(ctx context.Context, obj string, st *cursor) ([]connectors.Record, error) {
	props, err := c.properties(ctx, obj)
	if err != nil {
		return nil, err
	}
	q := url.Values{"limit": {strconv.Itoa(c.cfg.PageSize)}, "archived": {"false"}, "properties": {strings.Join(props, ",")}}
	if obj != "companies" {
		q.Set("associations", "companies")
	}
	if st.After != "" {
		q.Set("after", st.After)
	}
	var res listResult
	if err := c.api.GetJSON(ctx, c.cfg.BaseURL+"/crm/v3/objects/"+obj+"?"+q.Encode(), nil, &res); err != nil {
		return nil, fmt.Errorf("list %s: %w", obj, httpx.Classify(err))
	}
	recs := make([]connectors.Record, 0, len(res.Results))
	for _, r := range res.Results {
		recs = append(recs, record(obj, r, inlineCompany(r)))
	}
	if res.Paging.Next != nil && res.Paging.Next.After != "" {
		st.After = res.Paging.Next.After
	} else {
		st.After, st.Phase = "", phaseSearch
	}
	return recs, nil
}

// search reads the next page of records changed since the cursor's stamp.
func (c *Connector) search(ctx context.Context, obj string, st *cursor) ([]connectors.Record, error) {
	props, err := c.properties(ctx, obj)
	if err != nil {
		return nil, err
	}
	modified := objects[obj]
	req := searchRequest{Properties: props, Limit: c.cfg.PageSize}
	switch {
	case st.Tie:
		if st.TieOffset+c.cfg.PageSize > searchCap {
			return nil, &connectors.PermanentError{Err: fmt.Errorf("%s: more than %d records share the modified stamp %s; the search API cannot page past them", obj, searchCap, st.Stamp)}
		}
		req.FilterGroups = []filterGroup{{Filters: []filter{{PropertyName: modified, Operator: "EQ", Value: millis(st.Stamp)}}}}
		req.Sorts = []searchSort{{PropertyName: "hs_object_id", Direction: "ASCENDING"}}
		if st.TieOffset > 0 {
			req.After = strconv.Itoa(st.TieOffset)
		}
	default:
		var filters []filter
		if st.Stamp != "" {
			op := "GTE"
			if st.Strict {
				op = "GT"
			}
			filters = append(filters, filter{PropertyName: modified, Operator: op, Value: millis(st.Stamp)})
		}
		if c.settle > 0 {
			// Changes younger than the settle window wait for the next page
			// or sync: the search index may not hold all of them yet.
			horizon := c.now().Add(-c.settle).UnixMilli()
			filters = append(filters, filter{PropertyName: modified, Operator: "LT", Value: strconv.FormatInt(horizon, 10)})
		}
		if len(filters) > 0 {
			req.FilterGroups = []filterGroup{{Filters: filters}}
		}
		req.Sorts = []searchSort{{PropertyName: modified, Direction: "ASCENDING"}}
	}
	res, err := c.searchPage(ctx, obj, req)
	if err != nil {
		return nil, err
	}
	var fresh []object
	for _, r := range res.Results {
		t, err := parseStamp(str(r.Properties[modified]))
		if err != nil {
			return nil, fmt.Errorf("%s %s: %s: %w", obj, r.ID, modified, err)
		}
		if (mark{&st.Stamp, &st.IDs}).seen(t, r.ID) {
			continue
		}
		st.advance(t, r.ID)
		fresh = append(fresh, r)
	}
	companies, err := c.companies(ctx, obj, fresh)
	if err != nil {
		return nil, err
	}
	recs := make([]connectors.Record, 0, len(fresh))
	for _, r := range fresh {
		recs = append(recs, record(obj, r, companies[r.ID]))
	}
	last := res.Paging.Next == nil || len(res.Results) < req.Limit
	switch {
	case st.Tie:
		st.TieOffset += len(res.Results)
		if last {
			// Every record at the stamp was walked; go on strictly after it.
			st.Tie, st.TieOffset, st.Strict = false, 0, true
		}
	case last:
		st.Phase, st.After = phaseArchived, ""
	case len(fresh) == 0:
		// A full page of records already emitted at one stamp: walk that
		// stamp by id instead of asking for the same page again.
		st.Tie, st.TieOffset = true, 0
	}
	return recs, nil
}

// archived walks the archived list one page at a time. With emit, records
// archived after the watermark are returned as deletes; either way the walk
// raises the watermark when it ends. It reports whether more follows.
func (c *Connector) archived(ctx context.Context, obj string, st *cursor, emit bool) ([]connectors.Record, bool, error) {
	props, err := c.properties(ctx, obj)
	if err != nil {
		return nil, false, err
	}
	q := url.Values{"limit": {strconv.Itoa(c.cfg.PageSize)}, "archived": {"true"}, "properties": {strings.Join(props, ",")}}
	if st.After != "" {
		q.Set("after", st.After)
	}
	var res listResult
	if err := c.api.GetJSON(ctx, c.cfg.BaseURL+"/crm/v3/objects/"+obj+"?"+q.Encode(), nil, &res); err != nil {
		return nil, false, fmt.Errorf("list archived %s: %w", obj, httpx.Classify(err))
	}
	var recs []connectors.Record
	for _, r := range res.Results {
		at := r.ArchivedAt
		if at == "" {
			at = str(r.Properties[objects[obj]])
		}
		t, err := parseStamp(at)
		if err != nil {
			return nil, false, fmt.Errorf("archived %s %s: %w", obj, r.ID, err)
		}
		if emit && !(mark{&st.Archived, &st.ArchivedIDs}).seen(t, r.ID) {
			r.Archived = true
			recs = append(recs, record(obj, r, ""))
		}
		(mark{&st.Pass, &st.PassIDs}).raise(t, r.ID)
	}
	if res.Paging.Next != nil && res.Paging.Next.After != "" {
		st.After = res.Paging.Next.After
		return recs, true, nil
	}
	// The walk is over: the watermark becomes the highest archivedAt seen.
	if st.Pass != "" {
		for _, id := range st.PassIDs {
			(mark{&st.Archived, &st.ArchivedIDs}).raise(mustStamp(st.Pass), id)
		}
		if len(st.PassIDs) == 0 { // overflowed: keep the stamp at least
			(mark{&st.Archived, &st.ArchivedIDs}).raise(mustStamp(st.Pass), "")
		}
	}
	st.Pass, st.PassIDs, st.After = "", nil, ""
	if emit {
		st.Phase = phaseSearch
		return recs, false, nil
	}
	st.Phase = phaseList
	return recs, true, nil
}

// record flattens an API object: its properties, hs_object_id, archived
// and, for deals and contacts, associatedcompanyid.
func record(obj string, r object, company string) connectors.Record {
	v := make(map[string]any, len(r.Properties)+3)
	for k, p := range r.Properties {
		v[k] = p
	}
	if str(v["hs_object_id"]) == "" {
		v["hs_object_id"] = r.ID
	}
	v["archived"] = r.Archived
	if r.Archived && r.ArchivedAt != "" {
		v["archivedAt"] = r.ArchivedAt
	}
	if obj != "companies" && company != "" && str(v["associatedcompanyid"]) == "" {
		v["associatedcompanyid"] = company
	}
	return connectors.Record{Values: v, Deleted: r.Archived}
}

// inlineCompany picks the company of a listed record's inline associations:
// the primary (labelled) one, else the first; the _unlabeled twin of an
// association names the same company.
func inlineCompany(r object) string {
	first := ""
	for _, a := range r.Associations["companies"].Results {
		if first == "" {
			first = a.ID
		}
		if !strings.HasSuffix(a.Type, "_unlabeled") {
			return a.ID
		}
	}
	return first
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return fmt.Sprint(v)
}

func millis(stamp string) string {
	return strconv.FormatInt(mustStamp(stamp).UnixMilli(), 10)
}

type searchRequest struct {
	FilterGroups []filterGroup `json:"filterGroups,omitempty"`
	Sorts        []searchSort  `json:"sorts,omitempty"`
	Properties   []string      `json:"properties,omitempty"`
	Limit        int           `json:"limit"`
	After        string        `json:"after,omitempty"`
}

type filterGroup struct {
	Filters []filter `json:"filters"`
}

type filter struct {
	PropertyName string `json:"propertyName"`
	Operator     string `json:"operator"`
	Value        string `json:"value"`
}

type searchSort struct {
	PropertyName string `json:"propertyName"`
	Direction    string `json:"direction"`
}

type searchResult struct {
	Total   int      `json:"total"`
	Results []object `json:"results"`
	Paging  paging   `json:"paging"`
}

func (c *Connector) searchPage(ctx context.Context, obj string, req searchRequest) (*searchResult, error) {
	var res searchResult
	if err := c.api.PostJSON(ctx, c.cfg.BaseURL+"/crm/v3/objects/"+obj+"/search", nil, req, &res); err != nil {
		return nil, fmt.Errorf("search %s: %w", obj, httpx.Classify(err))
	}
	return &res, nil
}

// companies reads the company associations of searched deals or contacts
// (search results carry none) with one batch read.
func (c *Connector) companies(ctx context.Context, obj string, recs []object) (map[string]string, error) {
	out := map[string]string{}
	if obj == "companies" || len(recs) == 0 {
		return out, nil
	}
	type input struct {
		ID string `json:"id"`
	}
	req := struct {
		Inputs []input `json:"inputs"`
	}{}
	for _, r := range recs {
		req.Inputs = append(req.Inputs, input{r.ID})
	}
	var res struct {
		Results []struct {
			From struct {
				ID string `json:"id"`
			} `json:"from"`
			To []struct {
				ToObjectID       json.Number `json:"toObjectId"`
				AssociationTypes []struct {
					Label *string `json:"label"`
				} `json:"associationTypes"`
			} `json:"to"`
		} `json:"results"`
	}
	err := c.api.PostJSON(ctx, c.cfg.BaseURL+"/crm/v4/associations/"+obj+"/companies/batch/read", nil, req, &res)
	if err != nil {
		return nil, fmt.Errorf("read %s company associations: %w", obj, httpx.Classify(err))
	}
	for _, r := range res.Results {
		pick := ""
		for _, to := range r.To {
			id := to.ToObjectID.String()
			primary := slices.ContainsFunc(to.AssociationTypes, func(a struct {
				Label *string `json:"label"`
			}) bool {
				return a.Label != nil && strings.EqualFold(*a.Label, "Primary")
			})
			if primary {
				pick = id
				break
			}
			if pick == "" {
				pick = id
			}
		}
		if pick != "" {
			out[r.From.ID] = pick
		}
	}
	return out, nil
}

// mappedProperties are the properties config/mappings/hubspot.yaml reads
// (and the modified stamp): always requested first.
var mappedProperties = map[string][]string{
	"companies": {"hs_object_id", "name", "industry", "annualrevenue", "numberofemployees", "domain", "hs_lastmodifieddate"},
	"deals":     {"hs_object_id", "dealname", "dealstage", "amount", "deal_currency_code", "closedate", "hubspot_owner_id", "hs_probability", "hs_lastmodifieddate"},
	"contacts":  {"hs_object_id", "firstname", "lastname", "email", "phone", "jobtitle", "associatedcompanyid", "lastmodifieddate"},
}

// maxPropertiesLen bounds the properties parameter, so a portal with
// hundreds of custom properties does not make list URLs too long.
const maxPropertiesLen = 6000

// properties lists the properties requested for obj: the mapped ones, then
// every other one the properties API reports, within maxPropertiesLen.
func (c *Connector) properties(ctx context.Context, obj string) ([]string, error) {
	c.mu.Lock()
	props, ok := c.props[obj]
	c.mu.Unlock()
	if ok {
		return props, nil
	}
	var res struct {
		Results []struct {
			Name string `json:"name"`
		} `json:"results"`
	}
	props = slices.Clone(mappedProperties[obj])
	err := c.api.GetJSON(ctx, c.cfg.BaseURL+"/crm/v3/properties/"+obj, nil, &res)
	switch status := httpx.StatusOf(err); {
	case err == nil:
		size := len(strings.Join(props, ","))
		for _, p := range res.Results {
			if p.Name == "" || slices.Contains(props, p.Name) || size+1+len(p.Name) > maxPropertiesLen {
				continue
			}
			props = append(props, p.Name)
			size += 1 + len(p.Name)
		}
	case status == http.StatusForbidden || status == http.StatusBadRequest || status == http.StatusNotFound:
		c.log.Warn("properties refused; requesting the mapped properties only", "object", obj, "error", err)
	default:
		return nil, fmt.Errorf("properties of %s: %w", obj, httpx.Classify(err))
	}
	c.mu.Lock()
	c.props[obj] = props
	c.mu.Unlock()
	return props, nil
}
