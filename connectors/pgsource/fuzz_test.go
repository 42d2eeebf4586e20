package pgsource

import (
	"testing"
)

// FuzzCursor: a stored cursor (outside input: it round-trips through the
// cursors bucket) never panics the parser, and a parsed one re-encodes to a
// cursor that parses to the same.
func FuzzCursor(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"v":1,"phase":"snapshot","slot":"s","segs":[{"lsn":"0/1A2B3C0"}],"after":["42"]}`,
		`{"v":1,"phase":"stream","slot":"s","lsn":"0/1A2C000","n":3,"segs":[{"lsn":"0/10"},{"from":["5"],"lsn":"0/20"}]}`,
		`{"v":1,"phase":"poll","at":"2024-05-01 10:00:00+00","key":["42"]}`, `{"v":1,"phase":"stream","lsn":"zz"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCursor(s)
		if err != nil || s == "" {
			return
		}
		again, err := parseCursor(c.String())
		if err != nil {
			t.Fatalf("re-encoded cursor %q does not parse: %v", c.String(), err)
		}
		if again.String() != c.String() {
			t.Fatalf("round trip changed %q to %q", c.String(), again.String())
		}
		_ = c.floor()
	})
}

// FuzzDecode: any value text of any type decodes without a panic, and a
// value it cannot read stays text.
func FuzzDecode(f *testing.F) {
	for _, oid := range []uint32{oidBool, oidInt8, oidFloat8, oidNumeric, oidTimestampTZ, oidTimestamp, oidJSONB, 25} {
		f.Add(oid, []byte("1"))
	}
	f.Add(uint32(oidTimestampTZ), []byte("2024-05-01 10:00:00.5+02"))
	f.Add(uint32(oidJSON), []byte(`{"a": [1, 2.5e3]} `))
	f.Fuzz(func(t *testing.T, oid uint32, text []byte) {
		if decode(oid, text) == nil {
			t.Fatal("decode returned nil for a non-null value")
		}
	})
}

// FuzzSplitName: configured table names never panic the parser, and what
// it accepts re-parses the same when quoted.
func FuzzSplitName(f *testing.F) {
	for _, s := range []string{"accounts", "crm.accounts", `"CRM"."Big ""Deals"""`, "a.b.c", `"unterminated`, `""`, "x."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		schema, table, err := splitName(s)
		if err != nil {
			return
		}
		q := quoteIdent(table)
		if schema != "" {
			q = quoteIdent(schema) + "." + q
		}
		s2, t2, err := splitName(q)
		if err != nil || s2 != schema || t2 != table {
			t.Fatalf("%q → %q.%q → %q → %q.%q, %v", s, schema, table, q, s2, t2, err)
		}
	})
}

func TestDecode(t *testing.T) {
	cases := []struct {
		name string
		oid  uint32
		in   string
		want any
	}{
		{"bool", oidBool, "t", true},
		{"int8", oidInt8, "-9223372036854775808", int64(-9223372036854775808)},
		{"float infinity stays text", oidFloat8, "Infinity", "Infinity"},
		{"numeric exact", oidNumeric, "0.100000000000000000001", "0.100000000000000000001"},
		{"numeric NaN", oidNumeric, "NaN", "NaN"},
		{"timestamptz to UTC", oidTimestampTZ, "2024-05-01 23:30:00-05:30", "2024-05-02T05:00:00Z"},
		{"timestamptz infinity", oidTimestampTZ, "infinity", "infinity"},
		{"timestamp BC stays text", oidTimestamp, "0044-03-15 00:00:00 BC", "0044-03-15 00:00:00 BC"},
		{"bad json stays text", oidJSONB, "{", "{"},
		{"text", 25, "x", "x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := decode(tc.oid, []byte(tc.in))
			if s, ok := got.(interface{ String() string }); ok && tc.oid == oidNumeric {
				got = s.String()
			}
			if got != tc.want {
				t.Errorf("decode(%d, %q) = %#v, want %#v", tc.oid, tc.in, got, tc.want)
			}
		})
	}
}
