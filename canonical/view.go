package canonical

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
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

// ParseViewQuery validates the query string of a views request: limit,
// cursor, and exact-match filters on the entity's columns. Errors name the
// parameter and the reason.
func ParseViewQuery(tenant string, e Entity, q url.Values) (ViewQuery, error) {
	s, ok := SchemaOf(e)
	if !ok {
		return ViewQuery{}, fmt.Errorf("unknown entity %q", e)
	}
	vq := ViewQuery{Tenant: tenant, Entity: e, Limit: DefaultViewLimit}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vs := q[k]
		if len(vs) != 1 {
			return vq, &FieldError{Field: k, Reason: "give the parameter once"}
		}
		v := vs[0]
		switch k {
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxViewLimit {
				return vq, &FieldError{Field: "limit", Reason: fmt.Sprintf("must be an integer from 1 to %d, got %q", MaxViewLimit, v)}
			}
			vq.Limit = n
		case "cursor":
			after, err := DecodeCursor(v)
			if err != nil {
				return vq, &FieldError{Field: "cursor", Reason: err.Error()}
			}
			vq.After = after
		default:
			if _, ok := s.Field(k); !ok && !slices.Contains(filterableMeta, k) {
				return vq, &FieldError{Field: k, Reason: fmt.Sprintf("not a filterable column of %s", e.Plural())}
			}
			if len(v) > 4096 {
				return vq, &FieldError{Field: k, Reason: "filter value longer than 4096 bytes"}
			}
			vq.Filters = append(vq.Filters, Filter{Column: k, Value: v})
		}
	}
	return vq, nil
}

// EncodeCursor makes an opaque cursor from the last key of a page.
func EncodeCursor(lastKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("k1:" + lastKey))
}

// DecodeCursor reverses EncodeCursor.
func DecodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 3 || string(b[:3]) != "k1:" {
		return "", fmt.Errorf("not a cursor this server issued")
	}
	return string(b[3:]), nil
}
