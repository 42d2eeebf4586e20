package dynamics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/httpx"
)

// cursor is the connector's checkpoint of one entity set.
type cursor struct {
	V int `json:"v"`
	// Next is the @odata.nextLink of the response being read.
	Next string `json:"next,omitempty"`
	// Delta is the last @odata.deltaLink: changes since the last full read.
	Delta string `json:"delta,omitempty"`
}

func decodeCursor(s string) (cursor, error) {
	c := cursor{V: 1}
	if s == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil || c.V != 1 {
		return c, &connectors.PermanentError{Err: fmt.Errorf("unreadable cursor %q (reset the connection's cursors to resync)", s)}
	}
	return c, nil
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// page is one Web API response page.
type page struct {
	Value     []map[string]any `json:"value"`
	NextLink  string           `json:"@odata.nextLink"`
	DeltaLink string           `json:"@odata.deltaLink"`
}

// what a request reads
const (
	readInitial = iota
	readNext
	readDelta
)

var (
	reNoProperty = regexp.MustCompile(`Could not find a property named '([^']+)'`)
	// an expired or unknown delta token: a full read is needed
	reDeltaGone = regexp.MustCompile(`(?i)delta ?token|version stamp|perform a full sync`)
)

// Fetch returns the next page of set after cur.
func (c *Connector) Fetch(ctx context.Context, set, cur string) (connectors.Page, error) {
	st, err := decodeCursor(cur)
	if err != nil {
		return connectors.Page{}, err
	}
	sel, err := c.selectOf(ctx, set, false)
	if err != nil {
		return connectors.Page{}, err
	}
	var res page
	for tries := 0; ; tries++ {
		kind, u := readInitial, c.apiURL()+"/"+set+"?$select="+strings.Join(sel.names, ",")
		switch {
		case st.Next != "":
			kind, u = readNext, st.Next
		case st.Delta != "":
			kind, u = readDelta, withSelect(st.Delta, sel.names)
		}
		if err := c.sameOrigin(u); err != nil {
			return connectors.Page{}, err
		}
		err := c.api.GetJSON(ctx, u, odataHeader("odata.track-changes", "odata.maxpagesize="+strconv.Itoa(c.cfg.PageSize)), &res)
		if err == nil {
			break
		}
		msg := odataMessage(err)
		status := httpx.StatusOf(err)
		switch {
		case status != http.StatusBadRequest || tries >= 3:
			return connectors.Page{}, fmt.Errorf("read %s: %w", set, httpx.Classify(err))
		case reNoProperty.MatchString(msg) && kind != readNext:
			// A column was renamed or removed since the $select was made.
			nsel, serr := c.selectOf(ctx, set, true)
			if serr != nil {
				return connectors.Page{}, serr
			}
			if slices.Equal(nsel.names, sel.names) {
				return connectors.Page{}, fmt.Errorf("read %s: %w", set, httpx.Classify(err))
			}
			sel = nsel
		case kind == readNext:
			// The paging cookie expired: read the changes again from the
			// last delta link (or from the start); ids make it idempotent.
			c.log.Info("paging cookie rejected; reading again from the last delta link", "object", set)
			st.Next = ""
		case kind == readDelta && reDeltaGone.MatchString(msg):
			c.log.Warn("delta token expired; reading the entity set in full", "object", set)
			st.Delta = ""
		default:
			return connectors.Page{}, fmt.Errorf("read %s: %w", set, httpx.Classify(err))
		}
	}
	recs, err := c.records(ctx, set, res.Value)
	if err != nil {
		return connectors.Page{}, err
	}
	out := connectors.Page{Records: recs}
	switch {
	case res.NextLink != "":
		st.Next, out.More = res.NextLink, true
	case res.DeltaLink != "":
		st = cursor{V: 1, Delta: res.DeltaLink}
	default:
		return connectors.Page{}, &connectors.PermanentError{Err: fmt.Errorf("%s answered without a delta link: is change tracking enabled on the table?", set)}
	}
	out.Cursor = st.encode()
	c.log.Debug("page", "object", set, "records", len(recs), "cursor", out.Cursor)
	return out, nil
}

// records turns rows into records: $deletedEntity rows into deletes that
// carry the primary id, others as they are plus the currency's ISO code.
func (c *Connector) records(ctx context.Context, set string, rows []map[string]any) ([]connectors.Record, error) {
	pk := primaryKey(set)
	out := make([]connectors.Record, 0, len(rows))
	for _, row := range rows {
		ctxURL, _ := row["@odata.context"].(string)
		if strings.HasSuffix(ctxURL, "$deletedEntity") || (row[pk] == nil && row["reason"] != nil) {
			id, _ := row["id"].(string)
			if id == "" {
				return nil, fmt.Errorf("%s: a deleted entity without its id: %v", set, row)
			}
			out = append(out, connectors.Record{Values: map[string]any{pk: id, "id": id, "reason": row["reason"]}, Deleted: true})
			continue
		}
		if cur, ok := row["_transactioncurrencyid_value"].(string); ok && cur != "" {
			code, err := c.currency(ctx, cur)
			if err != nil {
				return nil, err
			}
			if code != "" {
				row["transactioncurrencyid"] = map[string]any{"isocurrencycode": code}
			}
		}
		out = append(out, connectors.Record{Values: row})
	}
	return out, nil
}

// currency returns the ISO code of a transactioncurrency ("" when the org
// does not let the connector read currencies).
func (c *Connector) currency(ctx context.Context, id string) (string, error) {
	c.mu.Lock()
	code, known := c.currencies[id]
	loaded, disabled := c.currencies != nil, c.noCurrency
	c.mu.Unlock()
	if known || disabled {
		return code, nil
	}
	if loaded { // a currency added since: read them once more
		c.mu.Lock()
		c.noCurrency = true // at most one reload per connector
		c.mu.Unlock()
	}
	var res struct {
		Value []struct {
			ID   string `json:"transactioncurrencyid"`
			Code string `json:"isocurrencycode"`
		} `json:"value"`
	}
	err := c.api.GetJSON(ctx, c.apiURL()+"/transactioncurrencies?$select=transactioncurrencyid,isocurrencycode", odataHeader(), &res)
	if s := httpx.StatusOf(err); s >= 400 && s < 500 && s != http.StatusTooManyRequests {
		c.log.Info("currency codes are not readable; opportunities go without an ISO currency code", "error", err)
		c.mu.Lock()
		c.noCurrency = true
		c.mu.Unlock()
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read transactioncurrencies: %w", httpx.Classify(err))
	}
	m := map[string]string{}
	for _, v := range res.Value {
		m[strings.ToLower(v.ID)] = v.Code
	}
	c.mu.Lock()
	c.currencies = m
	c.mu.Unlock()
	return m[strings.ToLower(id)], nil
}

// withSelect sets the $select of a link the server gave, keeping every
// other parameter as the server wrote it.
func withSelect(link string, sel []string) string {
	link, _, _ = strings.Cut(link, "#")
	base, raw, _ := strings.Cut(link, "?")
	keep := []string{"$select=" + strings.Join(sel, ",")}
	for _, p := range strings.Split(raw, "&") {
		k, _, _ := strings.Cut(p, "=")
		if uk, err := url.QueryUnescape(k); p == "" || (err == nil && uk == "$select") {
			continue
		}
		keep = append(keep, p)
	}
	return base + "?" + strings.Join(keep, "&")
}

// sameOrigin refuses a link that would take the bearer token elsewhere.
func (c *Connector) sameOrigin(link string) error {
	base, err := url.Parse(c.cfg.BaseURL)
	if err != nil {
		return err
	}
	u, err := url.Parse(link)
	if err != nil || !strings.EqualFold(u.Scheme, base.Scheme) || !strings.EqualFold(u.Host, base.Host) {
		return &connectors.PermanentError{Err: fmt.Errorf("link %q is not on the org %s", link, base.Host)}
	}
	return nil
}

// odataMessage is the message of an OData error body.
func odataMessage(err error) string {
	var se *httpx.StatusError
	if !errors.As(err, &se) {
		return ""
	}
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(se.Body), &body) == nil && body.Error.Message != "" {
		return body.Error.Message
	}
	return se.Body
}
