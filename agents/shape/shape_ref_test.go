package shape

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The regular expressions InferText once used, and InferText as it was
// with them: the reference the hand-written matchers must agree with.
var (
	refIntRE     = regexp.MustCompile(`^[+-]?(0|[1-9][0-9]*)$`)
	refZeroLedRE = regexp.MustCompile(`^0[0-9]+$`)
	refDecRE     = regexp.MustCompile(`^[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?$`)
	refDateRE    = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	refEmailRE   = regexp.MustCompile(`^[^\s@<>()",;]+@[^\s@<>()",;]+\.[A-Za-z]{2,}$`)
	refUrlRE     = regexp.MustCompile(`^(?i)(https?://[^\s/$.?#][^\s]*|www\.[^\s]+\.[a-z]{2,}[^\s]*|([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}(/[^\s]*)?)$`)
	refPhoneRE   = regexp.MustCompile(`^\+?[0-9 ().\-]{7,24}(\s*(x|ext\.?)\s*[0-9]{1,6})?$`)
	refLocalRE   = regexp.MustCompile(`^[0-9]{3}[-. ][0-9]{4}$`)
	refDigitRun  = regexp.MustCompile(`[0-9]+`)
	refIdRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_\-:.]{4,127}$`)
	refUuidRE    = regexp.MustCompile(`^(?i)\{?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?$`)
)

func inferTextRef(s string) (Mask, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	m := bit(String)
	if len(s) > maxText || !utf8.ValidString(s) {
		return m, true
	}
	switch strings.ToLower(s) {
	case "true", "false":
		return m | bit(Boolean), true
	}
	digits := countDigits(s)
	switch {
	case refIntRE.MatchString(s):
		m |= bit(Integer) | bit(Decimal)
		if digits >= 7 && digits <= 15 && s[0] != '-' {
			m |= bit(Phone)
		}
		return m, true
	case refZeroLedRE.MatchString(s):
		m |= bit(IDLike)
		if digits >= 7 && digits <= 15 {
			m |= bit(Phone)
		}
		return m, true
	case refDecRE.MatchString(s):
		return m | bit(Decimal), true
	case refDateRE.MatchString(s):
		if _, err := time.Parse(time.DateOnly, s); err == nil {
			return m | bit(Date) | bit(DateTime), true
		}
		return m, true
	}
	if s[0] >= '0' && s[0] <= '9' && len(s) >= 16 {
		for _, l := range timeLayouts {
			if _, err := time.Parse(l, s); err == nil {
				return m | bit(DateTime), true
			}
		}
	}
	if strings.Contains(s, "@") {
		if refEmailRE.MatchString(s) {
			m |= bit(Email)
		}
		return m, true
	}
	if refUuidRE.MatchString(s) {
		return m | bit(IDLike), true
	}
	if refPhoneRE.MatchString(s) && digits >= 7 && digits <= 15 && hasPhonePunctRef(s) {
		m |= bit(Phone)
		return m, true
	}
	if !strings.ContainsAny(s, " \t") && refUrlRE.MatchString(s) && hasLetterTLD(s) {
		return m | bit(URL), true
	}
	if refIdRE.MatchString(s) && digits > 0 && hasLetter(s) && !strings.Contains(s, ".") {
		m |= bit(IDLike)
	}
	return m, true
}

func hasPhonePunctRef(s string) bool {
	return strings.HasPrefix(s, "+") || strings.Contains(s, "(") || len(refDigitRun.FindAllString(s, 4)) >= 3 || refLocalRE.MatchString(s)
}

// refCorpus are values of the kinds CRM exports carry, and the edges of
// each matcher.
var refCorpus = []string{
	"", " ", "0", "00", "-0", "+0", "007", "42", "-42", "+42", "4.", ".5", ".", "-.5", "1e5", "1E+5", "1e", "1.5e-3", "e5",
	"12345.67", "1,234.56", "0.0", "2024-07-31", "2024-7-31", "2024-13-45", "20240731", "2024-07-31T09:00:00Z",
	"2024-05-03T09:00:00.000+0000", "2024-05-03 09:00:00", "true", "FALSE", "True ", "yes",
	"buyer@example.com", "a@b", "a@b.c", "a@b.co", "x <a@b.com>",
	"https://www.example.com/deals", "http://x", "www.example.com", "example.com", "1.5.3", "sub.example.co.uk/path?q=1",
	"+1 (415) 555-0100", "415-555-0100", "415.555.0100", "555-0123", "555 0123", "(415) 555-0100 x123", "415 555 0100 ext. 42",
	"415 555 0100ext42", "415 555 0100  x 1234567", "1234567", "12345678901234567", "+49 30 1234567", "1-2", "1 2 3 4 5 6 7",
	"123 456 789 012 345 678 901 234 5", "12345678901234567890123 x1",
	"{123e4567-e89b-12d3-a456-426614174000}", "123E4567-E89B-12D3-A456-426614174000", "123e4567-e89b-12d3-a456-42661417400",
	"{123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000}",
	"006BNCH0000000042", "001BNCH0000000001", "TERR-042", "FY2025-Q3", "01sBNCH000000AAAAAA", "a1", "ab:12", "_abc1", "abc1.", "-abc1",
	"Enterprise — analytics suite, 42 seats", "Negotiation/Review", "Existing Customer - Upgrade", "Évaluation 1234567",
	"\t415 555 0100\tx12", "415 555 0100\nx12", "4155550100 x", "4155550100 x1234567",
}

func TestInferTextAgreesWithTheRegexps(t *testing.T) {
	for _, s := range refCorpus {
		gm, gok := InferText(s)
		wm, wok := inferTextRef(s)
		if gm != wm || gok != wok {
			t.Errorf("InferText(%q) = %v, %v; the regular expressions say %v, %v", s, gm.Types(), gok, wm.Types(), wok)
		}
	}
	for _, s := range []string{"0", "-1", "+12", "1.5", ".5", "5.", "1e9", "1e", "abc", "1.2.3"} {
		if got, want := inferNumber(s), inferNumberRef(s); got != want {
			t.Errorf("inferNumber(%q) = %v, want %v", s, got.Types(), want.Types())
		}
	}
}

func inferNumberRef(s string) Mask {
	if refIntRE.MatchString(s) {
		return bit(Integer) | bit(Decimal)
	}
	if refDecRE.MatchString(s) {
		return bit(Decimal)
	}
	return 0
}

func FuzzInferText(f *testing.F) {
	for _, s := range refCorpus {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		gm, gok := InferText(s)
		wm, wok := inferTextRef(s)
		if gm != wm || gok != wok {
			t.Errorf("InferText(%q) = %v, %v; the regular expressions say %v, %v", s, gm.Types(), gok, wm.Types(), wok)
		}
		if got, want := inferNumber(s), inferNumberRef(s); got != want {
			t.Errorf("inferNumber(%q) = %v, want %v", s, got.Types(), want.Types())
		}
	})
}
