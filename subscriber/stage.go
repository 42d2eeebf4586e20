package subscriber

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/autonomos/autonomos/canonical"
)

// staged is one table's reduced batch in columns, as both stores write it:
// text for strings, decimals, dates and extras (cast by SQL), int64 for
// BIGINTs, time, int32 and bool for the version and tombstone columns, and
// the content hash.
type staged struct {
	t    *table
	n    int
	cols []stagedCol // parallel to t.cols
	// narrow: every decimal of the batch fits DECIMAL(18,9) exactly, so
	// DuckDB may cast through it (see duckSQL).
	narrow bool
	events []*canonical.Event // the rows' events, for DuckDB's typed append (directValues)
}

type stagedCol struct {
	str   []string
	valid []bool // text and integer columns: false is NULL
	i64   []int64
	tim   []time.Time
	i32   []int32
	bln   []bool
}

// stage turns a group's events into columns and computes each row's content
// hash: a 64-bit FNV-1a of every written value but the key, the version and
// the event id (NULLs and lengths included, so no two different rows encode
// alike). A reconciliation re-publishes records under new event ids; only
// those whose content changed are written again.
func stage(g group) (*staged, error) {
	n := len(g.events)
	s := &staged{t: g.t, n: n, cols: make([]stagedCol, len(g.t.cols)), narrow: true, events: g.events}
	for ci, c := range g.t.cols {
		col := &s.cols[ci]
		switch c.kind {
		case kindInteger, kindHash:
			col.i64, col.valid = make([]int64, n), make([]bool, n)
		case kindTime:
			col.tim = make([]time.Time, n)
		case kindInt32:
			col.i32 = make([]int32, n)
		case kindBool:
			col.bln = make([]bool, n)
		default:
			col.str, col.valid = make([]string, n), make([]bool, n)
		}
	}
	h := fnv.New64a()
	var buf []byte
	for i, ev := range g.events {
		h.Reset()
		for ci, c := range g.t.cols {
			col := &s.cols[ci]
			switch c.kind {
			case kindInteger:
				if v, ok := fieldValue(ev, c.name, g.t.key).(int64); ok {
					col.i64[i], col.valid[i] = v, true
					buf = binary.BigEndian.AppendUint64(append(buf[:0], 1), uint64(v))
				} else {
					buf = append(buf[:0], 0)
				}
			case kindTime:
				col.tim[i] = storedTime(ev.Time)
				continue // the version is not content
			case kindInt32:
				col.i32[i] = int32(ev.MappingVersion)
				continue
			case kindBool:
				col.bln[i] = ev.Op == canonical.OpDelete
				buf = append(buf[:0], 2, boolByte(col.bln[i]))
			case kindHash:
				continue // filled below
			default:
				v, ok, err := textValue(ev, c, g.t.key)
				if err != nil {
					return nil, err
				}
				col.str[i], col.valid[i] = v, ok
				if c.kind == kindDecimal && ok && s.narrow {
					s.narrow = fitsDecimal18(v)
				}
				if ci <= 1 || c.name == "event_id" {
					continue // tenant and key identify the row, the event id the message: not content
				}
				buf = binary.BigEndian.AppendUint64(append(buf[:0], 3, boolByte(ok)), uint64(len(v)))
				buf = append(buf, v...)
			}
			h.Write(buf)
		}
		hc := &s.cols[len(g.t.cols)-1]
		hc.i64[i], hc.valid[i] = int64(h.Sum64()), true
	}
	return s, nil
}

// fitsDecimal18 reports whether s is a plain decimal literal (an optional
// sign, digits, an optional fraction) with at most 9 digits on each side of
// the point, so DECIMAL(18,9) holds it exactly, without rounding.
func fitsDecimal18(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	intPart, frac, dot := strings.Cut(s, ".")
	if intPart == "" || (dot && frac == "") {
		return false // ".5" and "5." take the general path
	}
	return len(intPart) <= 9 && len(frac) <= 9 && allDigits(intPart) && allDigits(frac)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// textValue is the staged text of a text-kind column (strings, decimals,
// dates, extras, the text provenance columns); false means NULL.
func textValue(ev *canonical.Event, c column, key string) (string, bool, error) {
	switch c.name {
	case "tenant_id":
		return ev.Tenant, true, nil
	case "extras":
		s, err := extrasJSON(ev)
		return s, err == nil, err
	case "source_system":
		return ev.SourceSystem, true, nil
	case "source_object":
		return ev.SourceObject, true, nil
	case "connection_id":
		return ev.ConnectionID, true, nil
	case "event_id":
		return ev.ID, true, nil
	}
	s, ok := fieldText(fieldValue(ev, c.name, key))
	return s, ok, nil
}

// fieldText renders a canonical field's value for staging: strings as they
// are, decimals and percentages in decimal notation, dates YYYY-MM-DD.
func fieldText(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "", false
	case string:
		return v, true
	case decimal.Decimal:
		return v.String(), true
	case canonical.Percent:
		return v.Decimal.String(), true
	case canonical.Date:
		return v.String(), true
	}
	return fmt.Sprint(v), true
}

// extrasJSON encodes a record's extras; a delete's (and an empty map) is {}.
func extrasJSON(ev *canonical.Event) (string, error) {
	x := ev.Record.ExtraFields()
	if ev.Op == canonical.OpDelete || len(x) == 0 {
		return "{}", nil
	}
	b, err := appendJSON(make([]byte, 0, 1024), x)
	if err != nil {
		return "", &PermanentError{Event: ev, Err: fmt.Errorf("extras: %w", err)}
	}
	return string(b), nil
}

// fieldValue is the value of field f of ev as written: nil for a delete's
// fields other than the key.
func fieldValue(ev *canonical.Event, f string, key string) any {
	if ev.Op == canonical.OpDelete && f != key {
		return nil
	}
	return ev.Record.Value(f)
}
