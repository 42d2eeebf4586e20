package salesforce

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/httpx"
)

// maxBoundaryIDs bounds the ids a cursor keeps for its boundary stamp;
// beyond it the cursor falls back to an (stamp, Id) tie-break.
const maxBoundaryIDs = 1000

// Cursor phases.
const (
	phaseInitial     = ""            // the first load: live records via /query
	phaseIncremental = "incremental" // later loads: /queryAll, deletes included
)

// cursor is the connector's checkpoint of one object.
type cursor struct {
	V     int    `json:"v"`
	Phase string `json:"phase,omitempty"`
	// Stamp is the highest SystemModstamp emitted (RFC 3339, UTC).
	Stamp string `json:"stamp,omitempty"`
	// IDs are the ids emitted at exactly Stamp, unless Overflow: then
	// LastID (the highest id at Stamp) is the tie-break.
	IDs      []string `json:"ids,omitempty"`
	Overflow bool     `json:"overflow,omitempty"`
	LastID   string   `json:"last_id,omitempty"`
	// Next is the nextRecordsUrl of the query being read.
	Next string `json:"next,omitempty"`
}

func decodeCursor(s string) (cursor, error) {
	c := cursor{V: 1}
	if s == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil || c.V != 1 {
		return c, &connectors.PermanentError{Err: fmt.Errorf("unreadable cursor %q (reset the connection's cursors to resync)", s)}
	}
	if c.Stamp != "" {
		if _, err := time.Parse(time.RFC3339Nano, c.Stamp); err != nil {
			return c, &connectors.PermanentError{Err: fmt.Errorf("cursor stamp %q: %v", c.Stamp, err)}
		}
	}
	return c, nil
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// seen reports whether a record at stamp with id was emitted already.
func (c *cursor) seen(stamp time.Time, id string) bool {
	if c.Stamp == "" {
		return false
	}
	cs, _ := time.Parse(time.RFC3339Nano, c.Stamp)
	switch {
	case stamp.Before(cs):
		return true // only a query from an older stamp returns it
	case stamp.After(cs):
		return false
	case c.Overflow:
		return strings.ToLower(id) <= strings.ToLower(c.LastID)
	}
	return slices.Contains(c.IDs, id)
}

// advance records that the record at stamp with id was emitted.
func (c *cursor) advance(stamp time.Time, id string) {
	s := stamp.UTC().Format(time.RFC3339Nano)
	if c.Stamp != s {
		cs, _ := time.Parse(time.RFC3339Nano, c.Stamp)
		if c.Stamp != "" && !stamp.After(cs) {
			return
		}
		c.Stamp, c.IDs, c.Overflow, c.LastID = s, []string{id}, false, id
		return
	}
	c.LastID = id
	if c.Overflow {
		return
	}
	if len(c.IDs) >= maxBoundaryIDs {
		c.IDs, c.Overflow = nil, true
		return
	}
	c.IDs = append(c.IDs, id)
}

// soql is the query that continues after c; a non-zero horizon bounds it
// to records stamped before it.
func (c cursor) soql(object string, fields []string, horizon time.Time) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(strings.Join(fields, ", "))
	b.WriteString(" FROM ")
	b.WriteString(object)
	var where []string
	if c.Stamp != "" {
		t, _ := time.Parse(time.RFC3339Nano, c.Stamp)
		// Salesforce stamps have whole seconds; the literal is floored to
		// the second so ">=" never skips the boundary.
		lit := soqlTime(t)
		if c.Overflow {
			where = append(where, fmt.Sprintf("(SystemModstamp > %s OR (SystemModstamp = %s AND Id > '%s'))", lit, lit, soqlEscape(c.LastID)))
		} else {
			where = append(where, "SystemModstamp >= "+lit)
		}
	}
	if !horizon.IsZero() {
		where = append(where, "SystemModstamp < "+soqlTime(horizon))
	}
	if len(where) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(where, " AND "))
	}
	b.WriteString(" ORDER BY SystemModstamp ASC, Id ASC")
	return b.String()
}

func soqlTime(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z")
}

func soqlEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}

// queryResult is a page of a SOQL query.
type queryResult struct {
	TotalSize      int              `json:"totalSize"`
	Done           bool             `json:"done"`
	NextRecordsURL string           `json:"nextRecordsUrl"`
	Records        []map[string]any `json:"records"`
}

// Fetch returns the next batch of object after cur.
func (c *Connector) Fetch(ctx context.Context, object, cur string) (connectors.Page, error) {
	st, err := decodeCursor(cur)
	if err != nil {
		return connectors.Page{}, err
	}
	res, err := c.next(ctx, object, &st)
	if err != nil {
		return connectors.Page{}, err
	}
	page := connectors.Page{Records: make([]connectors.Record, 0, len(res.Records))}
	for _, raw := range res.Records {
		delete(raw, "attributes")
		id, _ := raw["Id"].(string)
		ms, _ := raw["SystemModstamp"].(string)
		stamp, err := parseStamp(ms)
		if id == "" || err != nil {
			return connectors.Page{}, &connectors.PermanentError{Err: fmt.Errorf("%s record %q: want Id and SystemModstamp, got %q", object, id, ms)}
		}
		if st.seen(stamp, id) {
			continue
		}
		st.advance(stamp, id)
		deleted, _ := raw["IsDeleted"].(bool)
		page.Records = append(page.Records, connectors.Record{Values: raw, Deleted: deleted})
	}
	if res.Done {
		st.Next, st.Phase = "", phaseIncremental
	} else {
		st.Next = res.NextRecordsURL
	}
	page.More = !res.Done
	page.Cursor = st.encode()
	c.log.Debug("page", "object", object, "records", len(page.Records), "cursor", page.Cursor)
	return page, nil
}

// next reads the batch after st: the rest of the current query, or a new
// query from st's stamp.
func (c *Connector) next(ctx context.Context, object string, st *cursor) (*queryResult, error) {
	if st.Next != "" {
		u, err := c.sameOrigin(st.Next)
		if err != nil {
			return nil, err
		}
		var res queryResult
		err = c.api.GetJSON(ctx, u, c.queryHeader(), &res)
		if err == nil {
			return &res, nil
		}
		code, _ := errorCode(err)
		if code != "INVALID_QUERY_LOCATOR" && httpx.StatusOf(err) != http.StatusNotFound {
			return nil, fmt.Errorf("query %s: %w", object, httpx.Classify(err))
		}
		// The query cursor expired: query again from the stamp, which
		// covers everything not emitted yet.
		c.log.Info("query locator expired; querying again from the cursor", "object", object)
		st.Next = ""
	}
	fs, err := c.fieldsOf(ctx, object)
	if err != nil {
		return nil, err
	}
	endpoint := "queryAll"
	if st.Phase == phaseInitial {
		endpoint = "query"
	}
	var horizon time.Time
	if c.settle > 0 {
		horizon = c.now().Add(-c.settle)
	}
	for tries := 0; ; tries++ {
		var res queryResult
		err := c.api.GetJSON(ctx, c.queryURL(endpoint, st.soql(object, fs.names, horizon)), c.queryHeader(), &res)
		if err == nil {
			return &res, nil
		}
		code, msg := errorCode(err)
		if code != "INVALID_FIELD" || tries >= 3 {
			return nil, fmt.Errorf("query %s: %w", object, httpx.Classify(err))
		}
		nfs, changed, derr := c.dropInvalid(ctx, object, fs, msg)
		if derr != nil {
			return nil, derr
		}
		if !changed {
			return nil, fmt.Errorf("query %s: %w", object, httpx.Classify(err))
		}
		fs = nfs
	}
}

// sameOrigin resolves a nextRecordsUrl against the instance and refuses one
// pointing elsewhere (the bearer token must not leave the org).
func (c *Connector) sameOrigin(next string) (string, error) {
	base, err := url.Parse(c.cfg.InstanceURL)
	if err != nil {
		return "", err
	}
	ref, err := url.Parse(next)
	if err != nil {
		return "", &connectors.PermanentError{Err: fmt.Errorf("bad nextRecordsUrl %q: %v", next, err)}
	}
	if ref.IsAbs() || ref.Host != "" {
		if !strings.EqualFold(ref.Scheme, base.Scheme) || !strings.EqualFold(ref.Host, base.Host) {
			return "", &connectors.PermanentError{Err: fmt.Errorf("nextRecordsUrl %q is not on the instance %s", next, base.Host)}
		}
		return ref.String(), nil
	}
	// nextRecordsUrl is "/services/data/vNN.N/query/01g...-2000", relative
	// to the instance root (which may carry a path, e.g. a proxy's).
	return strings.TrimRight(c.cfg.InstanceURL, "/") + "/" + strings.TrimLeft(next, "/"), nil
}

// parseStamp reads a Salesforce dateTime: 2024-05-01T10:00:00.000+0000.
func parseStamp(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not a Salesforce dateTime: %q", s)
}
