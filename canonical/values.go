package canonical

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Money limits: amounts fit NUMERIC(38,9) / DECIMAL(38,9).
const (
	MoneyPrecision = 38
	MoneyScale     = 9
)

// Percent limits: a percentage is 0..100 with at most PercentScale digits
// after the decimal point.
const PercentScale = 4

// Date is a calendar date without a time of day, written as YYYY-MM-DD.
// Its time is always midnight UTC, so a date never shifts a day whatever the
// process's local time zone.
type Date struct{ t time.Time }

// NewDate returns the date of y-m-d.
func NewDate(y int, m time.Month, d int) Date { return Date{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)} }

// DateOf returns the calendar date of t in t's location: 2024-05-01T00:30
// at +02:00 is 2024-05-01, not the UTC date 2024-04-30.
func DateOf(t time.Time) Date { return NewDate(t.Date()) }

// ParseDate parses a YYYY-MM-DD date.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("not a date (want YYYY-MM-DD): %q", s)
	}
	return Date{t}, nil
}

// Time returns midnight UTC of the date.
func (d Date) Time() time.Time { return d.t }

// IsZero reports whether d is the zero date.
func (d Date) IsZero() bool { return d.t.IsZero() }

func (d Date) String() string { return d.t.Format(time.DateOnly) }

// MarshalJSON writes "YYYY-MM-DD".
func (d Date) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// UnmarshalJSON reads "YYYY-MM-DD"; null leaves d unchanged, as
// encoding/json does for its own types.
func (d *Date) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a date string (YYYY-MM-DD), got %s", b)
	}
	v, err := ParseDate(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// checkDate reports whether d is a date of years 1..9999, the range that
// YYYY-MM-DD can write and databases can store.
func checkDate(d Date) error {
	if y := d.t.Year(); y < 1 || y > 9999 {
		return fmt.Errorf("year %d is outside 1..9999", y)
	}
	return nil
}

// Percent is a percentage from 0 to 100, written as a JSON number.
type Percent struct{ decimal.Decimal }

// MarshalJSON writes the percentage as a number. It refuses a value whose
// plain form would be absurdly long (a huge exponent) rather than write it.
func (p Percent) MarshalJSON() ([]byte, error) {
	if i, f := DecimalDigits(p.Decimal); i > 64 || f > 64 {
		return nil, fmt.Errorf("percent out of range: %d digits before and %d after the point", i, f)
	}
	return []byte(normDecimal(p.Decimal).String()), nil
}

// UnmarshalJSON reads a number or a string holding one; null leaves p
// unchanged.
func (p *Percent) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("not a number: %s", b)
		}
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return fmt.Errorf("not a number: %s", b)
	}
	p.Decimal = d
	return nil
}

// DecimalDigits returns how many digits d has before and after the decimal
// point once trailing zeros are dropped (0.50 has 0 and 1, 1200 has 4 and
// 0). Unlike decimal's own arithmetic it never expands the exponent, so a
// value like 1e-2000000000 costs nothing to check.
func DecimalDigits(d decimal.Decimal) (intDigits, fracDigits int) {
	if d.NumDigits() <= 18 { // the coefficient fits an int64: no big.Int
		v := d.CoefficientInt64()
		if v == 0 {
			return 0, 0
		}
		if v < 0 {
			v = -v
		}
		tz := 0
		for v%10 == 0 {
			v /= 10
			tz++
		}
		n := 1
		for v >= 10 {
			v /= 10
			n++
		}
		exp := int(d.Exponent()) + tz
		return max(0, n+exp), max(0, -exp)
	}
	c := d.Coefficient()
	if c.Sign() == 0 {
		return 0, 0
	}
	s := new(big.Int).Abs(c).String()
	tz := len(s) - len(strings.TrimRight(s, "0"))
	n := len(s) - tz
	exp := int(d.Exponent()) + tz
	return max(0, n+exp), max(0, -exp)
}

// normDecimal returns d in its canonical form: no trailing zeros after the
// point and no positive exponent (1234.50 → 1234.5, 12e2 → 1200, 0e9 → 0),
// so an amount has one representation whichever way it was read. Like
// DecimalDigits it never expands a huge exponent: a value whose plain form
// would have more than 64 integer digits keeps its exponent (it fails the
// range checks anyway).
func normDecimal(d decimal.Decimal) decimal.Decimal {
	c := d.Coefficient()
	if c.Sign() == 0 {
		return decimal.New(0, 0)
	}
	s := c.String()
	tz := len(s) - len(strings.TrimRight(s, "0"))
	exp := int64(d.Exponent()) + int64(tz)
	if tz > 0 {
		c.Quo(c, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(tz)), nil))
	}
	switch {
	case exp > 64 || exp < math.MinInt32:
		return d
	case exp > 0:
		c.Mul(c, new(big.Int).Exp(big.NewInt(10), big.NewInt(exp), nil))
		exp = 0
	}
	return decimal.NewFromBigInt(c, int32(exp))
}

// checkMoney reports whether d fits DECIMAL(38,9).
func checkMoney(d decimal.Decimal) error {
	i, f := DecimalDigits(d)
	if f > MoneyScale {
		return fmt.Errorf("more than %d digits after the decimal point (%d)", MoneyScale, f)
	}
	if i > MoneyPrecision-MoneyScale {
		return fmt.Errorf("more than %d digits before the decimal point (%d)", MoneyPrecision-MoneyScale, i)
	}
	return nil
}

func checkPercent(p Percent) error {
	i, f := DecimalDigits(p.Decimal)
	if f > PercentScale {
		return fmt.Errorf("more than %d digits after the decimal point (%d)", PercentScale, f)
	}
	if i > 3 || p.Sign() < 0 || normDecimal(p.Decimal).GreaterThan(decimal.NewFromInt(100)) {
		return fmt.Errorf("must be between 0 and 100, got %s", abbrev(p.Decimal, i))
	}
	return nil
}

// abbrev renders d, or a short description when its plain form is long.
func abbrev(d decimal.Decimal, intDigits int) string {
	if intDigits > 40 {
		return fmt.Sprintf("a %d-digit number", intDigits)
	}
	return normDecimal(d).String()
}

func checkEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || !strings.Contains(s, "@") {
		return fmt.Errorf("not an email address: %q", s)
	}
	return nil
}

// checkText reports whether s is a storable text value: valid UTF-8 (an
// event is JSON, which cannot carry anything else) of at most 4096 bytes.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("not valid UTF-8 text")
	}
	if len(s) > 4096 {
		return fmt.Errorf("longer than 4096 bytes")
	}
	return nil
}

// iso4217 lists the active ISO 4217 currency codes.
const iso4217 = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG ZWL"

var currencies = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields(iso4217) {
		m[c] = true
	}
	return m
}()

func checkCurrency(s string) error {
	if !currencies[s] {
		return fmt.Errorf("not an ISO 4217 currency code: %q", s)
	}
	return nil
}
