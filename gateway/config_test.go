package gateway_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/gateway/gatewaytest"
)

func TestNewNamesEveryBadField(t *testing.T) {
	_, err := gateway.New(gateway.Config{
		Addr:             "nonsense",
		JWTSecret:        "short",
		RateRead:         "fast",
		RateWrite:        "10/fortnight",
		LoginRateAccount: "0/s",
		TrustedProxies:   []string{"10.0.0.0"},
		IdempotencyTTL:   48 * time.Hour,
	}, gateway.Deps{}, nil)
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	for _, field := range []string{"addr", "jwt_secret", "rate_read", "rate_write", "login_rate_account",
		"trusted_proxies", "idempotency_ttl", "spool_dir", "Views", "Jobs", "Health", "JetStream"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s:\n%v", field, err)
		}
	}
	// Fields left empty take their defaults and are not reported.
	for _, field := range []string{"login_rate_address", "max_body_bytes", "access_ttl"} {
		if strings.Contains(err.Error(), field) {
			t.Errorf("defaulted field %s reported bad:\n%v", field, err)
		}
	}
}

func TestNewAppliesDefaults(t *testing.T) {
	env := gatewaytest.Start(t, func(c *gateway.Config) {
		c.RateRead, c.RateWrite, c.LoginRateAccount, c.LoginRateAddress = "", "", "", ""
		c.JWTPreviousSecret = ""
	})
	if env.Server == nil {
		t.Fatal("no server")
	}
}

func TestParseRate(t *testing.T) {
	cases := []struct {
		in    string
		limit rate.Limit
		burst int
		bad   bool
	}{
		{"50/s burst 200", 50, 200, false},
		{"10/s burst 50", 10, 50, false},
		{"5/m burst 10", rate.Limit(5.0 / 60), 10, false},
		{"3600/h", 1, 3600, false},
		{" 0.5/sec  burst 1 ", 0.5, 1, false},
		{"10/S BURST 5", 10, 5, false},
		{"", 0, 0, true},
		{"fast", 0, 0, true},
		{"0/s burst 1", 0, 0, true},
		{"10/s burst 0", 0, 0, true},
		{"10/day", 0, 0, true},
		{"-1/s", 0, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			r, err := gateway.ParseRate(tc.in)
			if (err != nil) != tc.bad {
				t.Fatalf("err = %v, bad = %v", err, tc.bad)
			}
			if !tc.bad && (r.Burst != tc.burst || fmt.Sprintf("%.6f", float64(r.Limit)) != fmt.Sprintf("%.6f", float64(tc.limit))) {
				t.Fatalf("ParseRate = %+v, want %v burst %d", r, tc.limit, tc.burst)
			}
		})
	}
}

func TestParseTraceparent(t *testing.T) {
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"version 00", "00-" + id + "-00f067aa0ba902b7-01", true},
		{"future version with more fields", "cc-" + id + "-00f067aa0ba902b7-01-what-ever", true},
		{"version ff", "ff-" + id + "-00f067aa0ba902b7-01", false},
		{"00 with extra", "00-" + id + "-00f067aa0ba902b7-01-x", false},
		{"upper case", "00-" + strings.ToUpper(id) + "-00f067aa0ba902b7-01", false},
		{"zero trace id", "00-" + strings.Repeat("0", 32) + "-00f067aa0ba902b7-01", false},
		{"zero parent id", "00-" + id + "-0000000000000000-01", false},
		{"short", "00-" + id[:31] + "-00f067aa0ba902b7-01", false},
		{"empty", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := gateway.ParseTraceparent(tc.in)
			if ok != tc.ok || ok && got != id {
				t.Fatalf("ParseTraceparent = %q, %v", got, ok)
			}
		})
	}
}

func ExampleParseRate() {
	r, _ := gateway.ParseRate("10/s burst 50")
	fmt.Println(r.Limit, r.Burst)
	// Output: 10 50
}

func ExampleParseTraceparent() {
	id, ok := gateway.ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	fmt.Println(id, ok)
	// Output: 4bf92f3577b34da6a3ce929d0e0e4736 true
}
