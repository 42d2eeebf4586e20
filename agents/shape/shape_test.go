package shape_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/autonomos/autonomos/agents/shape"
)

func TestInfer(t *testing.T) {
	tests := []struct {
		name  string
		value any
		want  shape.Type
		empty bool
	}{
		{"nil", nil, shape.Unknown, true},
		{"blank", "   ", shape.Unknown, true},
		{"bool", true, shape.Boolean, false},
		{"bool text", "FALSE", shape.Boolean, false},
		{"json integer", json.Number("240"), shape.Integer, false},
		{"json decimal", json.Number("185000.50"), shape.Decimal, false},
		{"float whole", 185000.0, shape.Integer, false},
		{"float fraction", 42500.5, shape.Decimal, false},
		{"integer text", "5400", shape.Integer, false},
		{"decimal text", "0.9", shape.Decimal, false},
		{"exponent", "1e6", shape.Decimal, false},
		{"iso date", "2024-07-31", shape.Date, false},
		{"bad date", "2024-13-45", shape.String, false},
		{"us date", "07/31/2024", shape.String, false},
		{"salesforce datetime", "2024-05-02T16:20:01.000+0000", shape.DateTime, false},
		{"rfc3339", "2024-05-03T08:15:22.511Z", shape.DateTime, false},
		{"space datetime", "2024-05-03 08:15:22", shape.DateTime, false},
		{"email", "maria.lopez@acmerobotics.example.com", shape.Email, false},
		{"display email", "Maria <maria@acme.example>", shape.String, false},
		{"url", "https://www.acmerobotics.example.com", shape.URL, false},
		{"bare domain", "northwind.example", shape.URL, false},
		{"version number", "1.5.3", shape.String, false},
		{"phone", "+1 (415) 555-0132", shape.Phone, false},
		{"phone plain digits", "5550181234", shape.Integer, false},
		{"short phone", "555-0181", shape.Phone, false},
		{"salesforce id", "0015g00000QxYzAAAF", shape.IDLike, false},
		{"guid", "60c4e274-0d87-e711-80e5-00155db19e6d", shape.IDLike, false},
		{"leading zero code", "00123", shape.IDLike, false},
		{"words", "Closed Won", shape.String, false},
		{"money text", "USD 185,000.00", shape.String, false},
		{"range", "201-500", shape.String, false},
		{"array", []any{"a"}, shape.Array, false},
		{"object", map[string]any{}, shape.Object, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := shape.Infer(tt.value)
			if ok == tt.empty {
				t.Fatalf("Infer(%#v) non-empty = %v, want %v", tt.value, ok, !tt.empty)
			}
			if got := m.Best(); got != tt.want {
				t.Fatalf("Infer(%#v).Best() = %s (mask %v), want %s", tt.value, got, m.Types(), tt.want)
			}
			if ok && !m.Has(shape.String) {
				t.Fatalf("Infer(%#v) lacks string: %v", tt.value, m.Types())
			}
		})
	}
}

func TestMeetIsTheMostSpecificCommonType(t *testing.T) {
	tests := []struct {
		name   string
		values []any
		want   shape.Type
	}{
		{"integers then a decimal", []any{"100", "250", "99.5"}, shape.Decimal},
		{"dates then a datetime", []any{"2024-01-02", "2024-01-03T10:00:00Z"}, shape.DateTime},
		{"digits and a formatted phone", []any{"5551234567", "+1 555 123 4567"}, shape.Phone},
		{"numbers and words", []any{"12", "twelve"}, shape.String},
		{"nulls do not count", []any{nil, "2024-01-02", ""}, shape.Date},
		{"booleans and an integer", []any{true, "1"}, shape.String},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m shape.Mask
			for _, v := range tt.values {
				if vm, ok := shape.Infer(v); ok {
					m = m.Meet(vm)
				}
			}
			if got := m.Best(); got != tt.want {
				t.Fatalf("type of %v = %s, want %s", tt.values, got, tt.want)
			}
		})
	}
}

func TestMaskJSONRoundTrip(t *testing.T) {
	m := shape.MaskOf(shape.Integer, shape.Decimal, shape.String)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `["integer","decimal","string"]` {
		t.Fatalf("marshal = %s", b)
	}
	var back shape.Mask
	if err := json.Unmarshal(b, &back); err != nil || back != m {
		t.Fatalf("round trip = %v, %v", back.Types(), err)
	}
	if err := json.Unmarshal([]byte(`["nope"]`), &back); err == nil {
		t.Fatal("an unknown type name decoded")
	}
}

func TestFlatten(t *testing.T) {
	rec := map[string]any{
		"Id":                    "1",
		"attributes":            map[string]any{"type": "Account", "url": "/x"},
		"transactioncurrencyid": map[string]any{"isocurrencycode": "USD"},
		"empty":                 map[string]any{},
		"tags":                  []any{"a", "b"},
	}
	got := shape.Flatten(rec)
	for _, k := range []string{"Id", "attributes.type", "attributes.url", "transactioncurrencyid.isocurrencycode", "empty", "tags"} {
		if _, ok := got[k]; !ok {
			t.Errorf("missing %s in %v", k, got)
		}
	}
	if len(got) != 6 {
		t.Errorf("got %d fields, want 6: %v", len(got), got)
	}
	// A flat record comes back as it is; one with a name Flatten drops
	// does not.
	flat := map[string]any{"Id": "1", "empty": map[string]any{}, "n": 2.5}
	if got := shape.Flatten(flat); len(got) != 3 || got["Id"] != "1" || got["n"] != 2.5 {
		t.Errorf("Flatten(%v) = %v", flat, got)
	}
	long := strings.Repeat("x", shape.MaxNameLen+1)
	for _, k := range []string{"", long} {
		rec := map[string]any{"Id": "1", k: "dropped"}
		if got := shape.Flatten(rec); len(got) != 1 || got["Id"] != "1" {
			t.Errorf("Flatten with a name of %d bytes = %v, want only Id", len(k), got)
		}
	}
}

func TestSampleCutsOnARuneBoundary(t *testing.T) {
	s := shape.Sample(string(make([]byte, 79)) + "é and more")
	if len(s) > shape.MaxSampleLen {
		t.Fatalf("sample of %d bytes", len(s))
	}
}
