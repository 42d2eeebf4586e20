package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors"
)

// Settings reads a connection's config and secrets for a connector's
// Factory, collecting one *canonical.FieldError per bad field, named
// "config.<key>" or "secrets.<key>". Config keys nobody read are reported
// as unknown. It never quotes a secret's value.
type Settings struct {
	config  map[string]any
	secrets map[string]string
	read    map[string]bool
	errs    []error
}

// NewSettings starts reading c.
func NewSettings(c connectors.Connection) *Settings {
	return &Settings{config: c.Config, secrets: c.Secrets, read: map[string]bool{}}
}

// Fail records a problem with field (e.g. "config.objects").
func (s *Settings) Fail(field, format string, a ...any) {
	s.errs = append(s.errs, &canonical.FieldError{Field: field, Reason: fmt.Sprintf(format, a...)})
}

// Failures counts the problems recorded so far.
func (s *Settings) Failures() int { return len(s.errs) }

// Raw returns a setting's value, marking the key as read; absent, null and
// blank text are reported as missing.
func (s *Settings) Raw(key string) (any, bool) {
	s.read[key] = true
	v, ok := s.config[key]
	if !ok || v == nil {
		return nil, false
	}
	if str, isStr := v.(string); isStr && strings.TrimSpace(str) == "" {
		return nil, false
	}
	return v, true
}

// String reads a text setting (def when absent or blank).
func (s *Settings) String(key, def string) string {
	v, ok := s.Raw(key)
	if !ok {
		return def
	}
	str, isStr := v.(string)
	if !isStr {
		s.Fail("config."+key, "want text, got %T", v)
		return def
	}
	return strings.TrimSpace(str)
}

// URL reads an absolute http(s) URL without a query, trailing slashes
// removed; def when absent; required makes absence an error.
func (s *Settings) URL(key, def string, required bool) string {
	raw := s.String(key, "")
	if raw == "" {
		if required {
			s.Fail("config."+key, "required (an absolute https URL)")
		}
		return def
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		s.Fail("config."+key, "not a URL: %v", err)
	case u.Scheme != "https" && u.Scheme != "http":
		s.Fail("config."+key, "want an absolute http(s) URL, got %q", raw)
	case u.Host == "":
		s.Fail("config."+key, "want an absolute URL with a host, got %q", raw)
	case u.User != nil:
		s.Fail("config."+key, "must not carry credentials (put them in secrets)")
	case u.RawQuery != "" || u.Fragment != "":
		s.Fail("config."+key, "must not have a query or fragment")
	default:
		return strings.TrimRight(raw, "/")
	}
	return def
}

// Duration reads a Go duration such as "30s" in [0, hi] (def when absent).
func (s *Settings) Duration(key string, def, hi time.Duration) time.Duration {
	v, ok := s.Raw(key)
	if !ok {
		return def
	}
	str, isStr := v.(string)
	if !isStr {
		s.Fail("config."+key, "want a duration such as \"30s\", got %T", v)
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(str))
	if err != nil || d < 0 || d > hi {
		s.Fail("config."+key, "want a duration from 0s to %v, got %q", hi, str)
		return def
	}
	return d
}

// Int reads a whole number in [lo, hi] (def when absent). JSON numbers,
// Go integers and numeric text are accepted.
func (s *Settings) Int(key string, def, lo, hi int) int {
	v, ok := s.Raw(key)
	if !ok {
		return def
	}
	var f float64
	switch x := v.(type) {
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case float64:
		f = x
	case json.Number:
		n, err := x.Float64()
		if err != nil {
			s.Fail("config."+key, "not a number: %q", x)
			return def
		}
		f = n
	case string:
		n, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			s.Fail("config."+key, "not a number: %q", x)
			return def
		}
		f = n
	default:
		s.Fail("config."+key, "want a number, got %T", v)
		return def
	}
	if f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		s.Fail("config."+key, "want a whole number from %d to %d, got %v", lo, hi, v)
		return def
	}
	return int(f)
}

// List reads a list of names: a JSON array of strings or one
// comma-separated string; duplicates are dropped, order kept. canon maps a
// lower-cased alias to its name (e.g. "account" → "Account"); allowed, when
// not nil, is the set of accepted names.
func (s *Settings) List(key string, def []string, canon map[string]string, allowed func(string) bool) []string {
	v, ok := s.Raw(key)
	if !ok {
		return def
	}
	var items []string
	switch x := v.(type) {
	case string:
		items = strings.Split(x, ",")
	case []string:
		items = x
	case []any:
		for _, it := range x {
			str, isStr := it.(string)
			if !isStr {
				s.Fail("config."+key, "want a list of names, got an item of type %T", it)
				return def
			}
			items = append(items, str)
		}
	default:
		s.Fail("config."+key, "want a list of names, got %T", v)
		return def
	}
	var out []string
	seen := map[string]bool{}
	for _, it := range items {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		if c, ok := canon[strings.ToLower(it)]; ok {
			it = c
		}
		if allowed != nil && !allowed(it) {
			s.Fail("config."+key, "unknown object %q", it)
			continue
		}
		if !seen[it] {
			seen[it] = true
			out = append(out, it)
		}
	}
	if len(out) == 0 {
		s.Fail("config."+key, "names no object")
		return def
	}
	return out
}

// Secret reads a secret; required makes absence an error.
func (s *Settings) Secret(key string, required bool) string {
	v := strings.TrimSpace(s.secrets[key])
	if v == "" && required {
		s.Fail("secrets."+key, "required")
	}
	return v
}

// Err returns every problem found, unknown config keys included, as one
// joined error (nil when none).
func (s *Settings) Err() error {
	var unknown []string
	for k := range s.config {
		if !s.read[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	known := make([]string, 0, len(s.read))
	for k := range s.read {
		known = append(known, k)
	}
	sort.Strings(known)
	for _, k := range unknown {
		s.Fail("config."+k, "unknown setting (known: %s)", strings.Join(known, ", "))
	}
	return errors.Join(s.errs...)
}
