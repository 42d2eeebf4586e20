package crmsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// record is one stored row. Data fields are kept under their original names
// with store types (see valueType); id, parent, stamps and deletion are
// bookkeeping that each system renders under its own field names.
type record struct {
	id        string
	fields    map[string]any
	ref       string // id of the parent account, "" for none
	created   time.Time
	modified  time.Time
	deleted   bool
	deletedAt time.Time
	version   int64 // the system's change sequence at the last change
}

// value is the store-typed value of field f of r (nil when missing).
func (r *record) value(f fieldDef) any {
	switch f.role {
	case roleID:
		return r.id
	case roleRef:
		if r.ref == "" {
			return nil
		}
		return r.ref
	case roleCreated:
		return r.created
	case roleModified:
		return r.modified
	case roleDeleted:
		return r.deleted
	}
	return r.fields[f.name]
}

// coerce converts an outside value (from Put) to the store type t.
func coerce(t valueType, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch t {
	case tString, tID:
		switch x := v.(type) {
		case string:
			return x, nil
		case json.Number:
			return x.String(), nil
		case fmt.Stringer:
			return x.String(), nil
		}
		return fmt.Sprint(v), nil
	case tDecimal:
		s, err := numberText(v)
		if err != nil {
			return nil, err
		}
		if _, ok := new(big.Rat).SetString(s); !ok {
			return nil, fmt.Errorf("not a decimal: %q", s)
		}
		return s, nil
	case tInt, tOption:
		s, err := numberText(v)
		if err != nil {
			return nil, err
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(s, 64)
			if ferr != nil || f != math.Trunc(f) {
				return nil, fmt.Errorf("not an integer: %q", s)
			}
			n = int64(f)
		}
		return n, nil
	case tBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			return strconv.ParseBool(x)
		}
		return nil, fmt.Errorf("not a boolean: %v", v)
	case tDateTime:
		switch x := v.(type) {
		case time.Time:
			return x.UTC(), nil
		case string:
			return parseAnyTime(x)
		}
		if s, err := numberText(v); err == nil { // epoch milliseconds
			if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
				return time.UnixMilli(ms).UTC(), nil
			}
		}
		return nil, fmt.Errorf("not a timestamp: %v", v)
	case tDate:
		switch x := v.(type) {
		case time.Time:
			return x.UTC().Format(time.DateOnly), nil
		case string:
			if len(x) >= 10 {
				if _, err := time.Parse(time.DateOnly, x[:10]); err == nil {
					return x[:10], nil
				}
			}
		}
		return nil, fmt.Errorf("not a date: %v", v)
	}
	return v, nil
}

func numberText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x), nil
	case json.Number:
		return x.String(), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), nil
	}
	return "", fmt.Errorf("not a number: %v", v)
}

// inferType picks a store type for a field first seen in Put.
func inferType(v any) valueType {
	switch v.(type) {
	case bool:
		return tBool
	case int, int64, int32:
		return tInt
	case float64, float32, json.Number:
		return tDecimal
	case time.Time:
		return tDateTime
	}
	return tString
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.000-0700",
	"2006-01-02T15:04:05-0700",
	"2006-01-02T15:04:05Z0700",
	time.DateOnly,
}

// parseAnyTime accepts the timestamp forms the three systems use.
func parseAnyTime(s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not a timestamp: %q", s)
}

// compareValues orders two non-nil store values of type t.
func compareValues(t valueType, a, b any) int {
	switch t {
	case tDecimal:
		x, _ := new(big.Rat).SetString(a.(string))
		y, _ := new(big.Rat).SetString(b.(string))
		if x == nil || y == nil {
			return strings.Compare(a.(string), b.(string))
		}
		return x.Cmp(y)
	case tInt, tOption:
		x, y := a.(int64), b.(int64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case tBool:
		x, y := a.(bool), b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case tDateTime:
		return a.(time.Time).Compare(b.(time.Time))
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

// kv and ordered give JSON objects a fixed key order, as the real APIs do.
type kv struct {
	key string
	val any
}

type ordered []kv

func (o ordered) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshal(f.key)
		if err != nil {
			return nil, err
		}
		v, err := marshal(f.val)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	body, err := marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// baseURL is the scheme and host the client used to reach the simulator.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// nonNil makes an empty page render as [] rather than null.
func nonNil(items []any) []any {
	if items == nil {
		return []any{}
	}
	return items
}
