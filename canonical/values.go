package canonical

import (
	"bytes"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Money limits: amounts fit NUMERIC(38,9) / DECIMAL(38,9).
const (
	MoneyPrecision = 38
	MoneyScale     = 9
)

// Date is a calendar date without a time of day, written as YYYY-MM-DD.
type Date struct{ t time.Time }

// NewDate returns the date of y-m-d.
func NewDate(y int, m time.Month, d int) Date { return Date{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)} }

// DateOf returns the calendar date of t in t's location.
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

// UnmarshalJSON reads "YYYY-MM-DD".
func (d *Date) UnmarshalJSON(b []byte) error {
	var s string
	if err := unmarshalString(b, &s); err != nil {
		return err
	}
	v, err := ParseDate(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Percent is a percentage from 0 to 100, written as a JSON number.
type Percent struct{ decimal.Decimal }

// MarshalJSON writes the percentage as a number.
func (p Percent) MarshalJSON() ([]byte, error) { return []byte(p.Decimal.String()), nil }

// UnmarshalJSON reads a number (or a numeric string).
func (p *Percent) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	d, err := decimal.NewFromString(string(b))
	if err != nil {
		return fmt.Errorf("not a number: %s", b)
	}
	p.Decimal = d
	return nil
}

func unmarshalString(b []byte, s *string) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("want a string, got %s", b)
	}
	*s = string(b[1 : len(b)-1])
	return nil
}

// checkMoney reports whether d fits DECIMAL(38,9).
func checkMoney(d decimal.Decimal) error {
	if -d.Exponent() > MoneyScale && !d.Equal(d.Truncate(MoneyScale)) {
		return fmt.Errorf("more than %d digits after the decimal point: %s", MoneyScale, d)
	}
	intDigits := len(d.Abs().Truncate(0).String())
	if intDigits > MoneyPrecision-MoneyScale {
		return fmt.Errorf("more than %d digits before the decimal point: %s", MoneyPrecision-MoneyScale, d)
	}
	return nil
}

func checkPercent(p Percent) error {
	if p.LessThan(decimal.Zero) || p.GreaterThan(decimal.NewFromInt(100)) {
		return fmt.Errorf("must be between 0 and 100, got %s", p.Decimal)
	}
	if -p.Exponent() > 4 && !p.Equal(p.Truncate(4)) {
		return fmt.Errorf("more than 4 digits after the decimal point: %s", p.Decimal)
	}
	return nil
}

func checkEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || !strings.Contains(s, "@") {
		return fmt.Errorf("not an email address: %q", s)
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
