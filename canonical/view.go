package canonical

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// View limits.
const (
	DefaultViewLimit = 100
	MaxViewLimit     = 1000
)

// MetaColumns are the columns every materialized row carries besides the
// entity's fields and extras.
var MetaColumns = []string{"tenant_id", "source_system", "source_updated_at", "event_id", "created_at", "updated_at"}

// filterableMeta are the meta columns a view may be filtered by (tenant_id is
// never a filter: the tenant comes from the token).
var filterableMeta = []string{"source_system", "event_id"}

// ViewQuery asks a store for one page of an entity's materialized rows.
type ViewQuery struct {
	Tenant  string
	Entity  Entity
	Filters []Filter // exact matches, ANDed, sorted by column
	Limit   int
	// After is the key of the last row of the previous page ("" for the
	// first page); rows are ordered by key.
	After string
}

// Filter is an exact-match condition on one column.
type Filter struct {
	Column string
	Value  string
}

// ViewPage is one page of rows. Each row is a JSON object with the
// canonical fields by their canonical names, extras, and the meta columns;
// amounts are decimal strings, dates YYYY-MM-DD, timestamps RFC 3339 UTC.
type ViewPage struct {
	Rows       []map[string]any
	NextCursor string // "" when there is no next page
}

// ParseViewQuery validates the query string of a views request: limit
// (1..MaxViewLimit, default DefaultViewLimit), cursor (as EncodeCursor made
// it), and exact-match filters on the entity's columns, each value checked
// against its column's type and written in canonical form (amount=1e3 is
// 1000, employee_count=007 is 7). Each parameter may be given once. Errors
// are *FieldError values naming the parameter and the reason.
func ParseViewQuery(tenant string, e Entity, q url.Values) (ViewQuery, error) {
	s, ok := SchemaOf(e)
	if !ok {
		return ViewQuery{}, fmt.Errorf("unknown entity %q", e)
	}
	if !ValidToken(tenant) {
		return ViewQuery{}, &FieldError{Field: "tenant", Reason: fmt.Sprintf("invalid tenant %q", tenant)}
	}
	vq := ViewQuery{Tenant: tenant, Entity: e, Limit: DefaultViewLimit}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vs := q[k]
		if k == "" {
			return vq, &FieldError{Field: "query", Reason: "a parameter has no name"}
		}
		if len(vs) != 1 {
			return vq, &FieldError{Field: k, Reason: fmt.Sprintf("give the parameter once (got it %d times)", len(vs))}
		}
		v := vs[0]
		switch k {
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxViewLimit {
				return vq, &FieldError{Field: "limit", Reason: fmt.Sprintf("must be an integer from 1 to %d, got %q", MaxViewLimit, abbrevString(v))}
			}
			vq.Limit = n
		case "cursor":
			after, err := DecodeCursor(v)
			if err != nil {
				return vq, &FieldError{Field: "cursor", Reason: err.Error()}
			}
			vq.After = after
		default:
			f, ok := s.Field(k)
			if !ok && !slices.Contains(filterableMeta, k) {
				return vq, &FieldError{Field: k, Reason: fmt.Sprintf("not a filterable column of %s", e.Plural())}
			}
			if !ok {
				f = Field{Name: k, Type: TypeString}
			}
			nv, err := filterValue(f, v)
			if err != nil {
				return vq, &FieldError{Field: k, Reason: err.Error()}
			}
			vq.Filters = append(vq.Filters, Filter{Column: k, Value: nv})
		}
	}
	return vq, nil
}

// filterValue checks a filter value against its column's type and returns
// it in the form the stores hold.
func filterValue(f Field, v string) (string, error) {
	switch f.Type {
	case TypeDecimal:
		d, err := parseNumber(v, "", "")
		if err == nil {
			err = checkMoney(d)
		}
		if err != nil {
			return "", err
		}
		return d.String(), nil
	case TypePercent:
		d, err := parseNumber(v, "", "")
		if err == nil {
			err = checkPercent(Percent{d})
		}
		if err != nil {
			return "", err
		}
		return d.String(), nil
	case TypeInteger:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return "", fmt.Errorf("want a whole number of at least 0, got %q", abbrevString(v))
		}
		return strconv.FormatInt(n, 10), nil
	case TypeDate:
		d, err := ParseDate(v)
		if err != nil {
			return "", err
		}
		return d.String(), nil
	case TypeCurrency:
		return v, checkCurrency(v)
	}
	return v, checkText(v)
}

// Values encodes the query back into URL parameters (tenant and entity are
// not parameters): ParseViewQuery of the result gives q again.
func (q ViewQuery) Values() url.Values {
	v := url.Values{}
	v.Set("limit", strconv.Itoa(q.Limit))
	if q.After != "" {
		v.Set("cursor", EncodeCursor(q.After))
	}
	for _, f := range q.Filters {
		v.Set(f.Column, f.Value)
	}
	return v
}

var cursorEncoding = base64.RawURLEncoding.Strict()

// EncodeCursor makes an opaque cursor from the last key of a page.
func EncodeCursor(lastKey string) string {
	return cursorEncoding.EncodeToString([]byte("k1:" + lastKey))
}

// DecodeCursor reverses EncodeCursor.
func DecodeCursor(c string) (string, error) {
	b, err := cursorEncoding.DecodeString(c)
	if err != nil || len(b) < 3 || string(b[:3]) != "k1:" || strings.ContainsAny(c, "\r\n") {
		return "", fmt.Errorf("not a cursor this server issued")
	}
	return string(b[3:]), nil
}
