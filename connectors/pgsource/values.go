package pgsource

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// Type OIDs decoded into typed values; every other type keeps the text
// Postgres prints for it. The snapshot, poll queries and the replication
// stream all read values in text format and decode them here, so a row reads
// the same whichever path delivered it.
const (
	oidBool        = 16
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidOID         = 26
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestampTZ = 1184
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
)

// knownOID reports whether decode treats oid specially (other types,
// domains included, are resolved to their base type first).
func knownOID(oid uint32) bool {
	switch oid {
	case oidBool, oidInt8, oidInt2, oidInt4, oidOID, oidJSON, oidFloat4, oidFloat8, oidDate,
		oidTimestamp, oidTimestampTZ, oidNumeric, oidUUID, oidJSONB:
		return true
	}
	return false
}

// decode turns a value in Postgres text format into the value a record
// carries: bool, int64, float64 (NaN and infinities as text), json.Number
// for numeric (exact), RFC 3339 text in UTC for timestamptz, ISO text
// without a zone for timestamp, parsed JSON for json and jsonb, and the
// text itself for everything else (dates, uuids, text, arrays, ...). A
// value it cannot read stays text: nothing is dropped.
func decode(oid uint32, text []byte) any {
	s := string(text)
	switch oid {
	case oidBool:
		switch s {
		case "t":
			return true
		case "f":
			return false
		}
	case oidInt2, oidInt4, oidInt8, oidOID:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case oidFloat4, oidFloat8:
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f
		}
	case oidNumeric:
		if s != "NaN" && !strings.Contains(s, "Infinity") {
			return json.Number(s)
		}
	case oidTimestampTZ:
		if t, ok := parseTimestamp(s, true); ok {
			return t.UTC().Format(time.RFC3339Nano)
		}
	case oidTimestamp:
		if t, ok := parseTimestamp(s, false); ok {
			return t.Format("2006-01-02T15:04:05.999999999")
		}
	case oidJSON, oidJSONB:
		d := json.NewDecoder(bytes.NewReader(text))
		d.UseNumber()
		var v any
		if d.Decode(&v) == nil && !d.More() {
			return v
		}
	}
	return s
}

// parseTimestamp reads the ISO output of timestamp and timestamptz (the
// sessions run with DateStyle ISO and TimeZone UTC), e.g.
// "2024-05-01 10:00:00.123456+00". BC dates and infinities are not read.
func parseTimestamp(s string, zone bool) (time.Time, bool) {
	if strings.HasSuffix(s, " BC") || strings.Contains(s, "infinity") {
		return time.Time{}, false
	}
	layouts := []string{"2006-01-02 15:04:05.999999999"}
	if zone {
		layouts = []string{"2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999-07:00:00"}
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
