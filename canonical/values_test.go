package canonical

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestDateJSON(t *testing.T) {
	type row struct {
		D  Date  `json:"d"`
		P  *Date `json:"p"`
		P2 *Date `json:"p2"`
	}
	in := row{D: NewDate(2024, 2, 29), P: ptr(NewDate(1999, 12, 31))}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"d":"2024-02-29","p":"1999-12-31","p2":null}`; string(b) != want {
		t.Fatalf("marshal %s, want %s", b, want)
	}
	var out row
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.D != in.D || *out.P != *in.P || out.P2 != nil {
		t.Fatalf("round trip %+v", out)
	}
	// null into a Date value leaves it alone, as for encoding/json's own types.
	d := NewDate(2024, 1, 1)
	if err := json.Unmarshal([]byte("null"), &d); err != nil || d != NewDate(2024, 1, 1) {
		t.Fatalf("null: %v %v", d, err)
	}
	// A nil *Date inside an interface is null, not a panic.
	if b, err := json.Marshal(map[string]any{"d": (*Date)(nil)}); err != nil || string(b) != `{"d":null}` {
		t.Fatalf("nil *Date: %s %v", b, err)
	}
	// Escaped JSON strings are read as JSON.
	if err := json.Unmarshal([]byte(`"2024\u002d05\u002d01"`), &d); err != nil || d != NewDate(2024, 5, 1) {
		t.Fatalf("escaped: %v %v", d, err)
	}
	for _, bad := range []string{`"2024-02-30"`, `"2024-5-1"`, `20240501`, `"2024-05-01T00:00:00Z"`, `""`, `true`} {
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("Unmarshal(%s) accepted", bad)
		}
	}
}

func TestDateIgnoresLocalZone(t *testing.T) {
	// Whatever the process's zone, a date is the calendar date written.
	// (Not parallel: it changes time.Local.)
	saved := time.Local
	t.Cleanup(func() { time.Local = saved })
	m := engine(t, "opportunity", "      - {target: opportunity_id, source: id}\n      - {target: name, source: n}\n"+
		"      - {target: close_date, source: d, transforms: [{date: [\"2006-01-02\", \"01/02/2006\", \"2006-01-02T15:04:05Z07:00\"]}]}\n")
	for _, zone := range []*time.Location{time.FixedZone("far east", 14*3600), time.FixedZone("far west", -12*3600), time.UTC} {
		time.Local = zone
		for _, in := range []string{"2024-05-01", "05/01/2024", "2024-05-01T00:00:00Z", "2024-05-01T00:30:00+02:00", "2024-05-01T23:59:59-11:00"} {
			res, err := m.Apply(map[string]any{"id": "1", "n": "x", "d": in})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(res.Record.Value("close_date"))
			if string(b) != `"2024-05-01"` {
				t.Errorf("TZ %s: %q became %s", zone, in, b)
			}
		}
		d, _ := ParseDate("2024-05-01")
		if d.String() != "2024-05-01" || d.Time() != time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC) {
			t.Errorf("TZ %s: ParseDate gives %s at %v", zone, d, d.Time())
		}
		if got := DateOf(time.Date(2024, 5, 1, 0, 30, 0, 0, zone)); got != NewDate(2024, 5, 1) {
			t.Errorf("DateOf in %s = %s", zone, got)
		}
	}
}

func TestPercentJSON(t *testing.T) {
	cases := []struct{ in, out string }{
		{`20`, `20`}, {`"20"`, `20`}, {`20.50`, `20.5`}, {`0.0001`, `0.0001`}, {`1e2`, `100`}, {`"33.3333"`, `33.3333`}, {`0`, `0`},
	}
	for _, tc := range cases {
		var p Percent
		if err := json.Unmarshal([]byte(tc.in), &p); err != nil {
			t.Fatalf("Unmarshal(%s): %v", tc.in, err)
		}
		b, err := json.Marshal(p)
		if err != nil || string(b) != tc.out {
			t.Errorf("%s → %s (%v), want %s", tc.in, b, err, tc.out)
		}
	}
	for _, bad := range []string{`"high"`, `true`, `"20`, `[20]`} {
		var p Percent
		if err := json.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("Unmarshal(%s) accepted", bad)
		}
	}
	var p Percent
	p.Decimal = decimal.NewFromInt(5)
	if err := json.Unmarshal([]byte(`null`), &p); err != nil || !p.Equal(decimal.NewFromInt(5)) {
		t.Errorf("null: %v %v", p, err)
	}
	if b, err := json.Marshal(Percent{}); err != nil || string(b) != "0" {
		t.Errorf("zero Percent: %s %v", b, err)
	}
	if _, err := json.Marshal(Percent{decimal.New(1, 5000)}); err == nil {
		t.Error("marshalled a 5001-digit percent")
	}
}

func TestDecimalChecks(t *testing.T) {
	cases := []struct {
		in         string
		int, frac  int
		money      string // "" when valid money
		normalised string
	}{
		{"0", 0, 0, "", "0"},
		{"0e9999", 0, 0, "", "0"},
		{"0.000", 0, 0, "", "0"},
		{"1234.50", 4, 1, "", "1234.5"},
		{"12e2", 4, 0, "", "1200"},
		{"-0.5", 0, 1, "", "-0.5"},
		{"99999999999999999999999999999.999999999", 29, 9, "", "99999999999999999999999999999.999999999"},
		{"1.0123456789", 1, 10, "after the decimal point", ""},
		{"1.1000000000000", 1, 1, "", "1.1"},
		{"1" + strings.Repeat("0", 29), 30, 0, "before the decimal point", ""},
		{"1e9999", 10000, 0, "before the decimal point", ""},
		{"1e-9999", 0, 9999, "after the decimal point", ""},
	}
	for _, tc := range cases {
		d := decimal.RequireFromString(tc.in)
		i, f := DecimalDigits(d)
		if i != tc.int || f != tc.frac {
			t.Errorf("DecimalDigits(%s) = %d, %d; want %d, %d", tc.in, i, f, tc.int, tc.frac)
		}
		err := checkMoney(d)
		if (err == nil) != (tc.money == "") || (err != nil && !strings.Contains(err.Error(), tc.money)) {
			t.Errorf("checkMoney(%s) = %v, want %q", tc.in, err, tc.money)
		}
		if tc.normalised != "" {
			n := normDecimal(d)
			if n.String() != tc.normalised || n.Exponent() > 0 || !n.Equal(d) {
				t.Errorf("normDecimal(%s) = %s (exp %d)", tc.in, n, n.Exponent())
			}
		}
	}
	for in, want := range map[string]string{"100": "", "0": "", "100.0001": "between 0 and 100", "-0.0001": "between 0 and 100",
		"50.12345": "after the decimal point", "1e9999": "between 0 and 100", "0e9999": ""} {
		err := checkPercent(Percent{decimal.RequireFromString(in)})
		if (err == nil) != (want == "") || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("checkPercent(%s) = %v, want %q", in, err, want)
		}
	}
}

func TestRecordJSONWritesNulls(t *testing.T) {
	b, err := json.Marshal(&Contact{ContactID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"contact_id":"c1","account_id":null,"first_name":null,"last_name":null,"email":null,"phone":null,"title":null,"extras":null}`
	if string(b) != want {
		t.Fatalf("%s\nwant %s", b, want)
	}
	b, _ = json.Marshal(Account{})
	if !strings.HasPrefix(string(b), `{"account_id":null,"name":null,`) {
		t.Fatalf("empty required strings are not null: %s", b)
	}
}
