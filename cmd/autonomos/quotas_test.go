package main

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/autonomos/autonomos/streams/quota"
	"github.com/autonomos/autonomos/streams/quota/quotatest"
)

// serve's rate limits live in the shared quotas bucket: another instance
// joining the embedded NATS sees the tokens this one spent.
func TestServeSharesRateLimitsThroughNATS(t *testing.T) {
	o := testOptions(t, false)
	o.RateRead = "1/h burst 3"
	sys, _ := startTestSystemWith(t, o)
	c := registered(t, "http://"+sys.httpAddr, "acme")

	// This instance spends two of acme's three reads.
	for i := range 2 {
		if _, err := c.do(context.Background(), http.MethodGet, "/api/v1/aoa/jobs", nil, "", nil); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	// Another instance on the same NATS gets the one left, and no more.
	other, _ := quotatest.Instance(t, sys.natsURL, "other", quota.Config{})
	read := other.Bucket("gateway.read.acme", quota.Limit{Rate: 1.0 / 3600, Burst: 3})
	if d := read.Take(context.Background()); !d.OK || d.Local {
		t.Fatalf("the other instance's first read: %+v, want the token left", d)
	}
	if d := read.Take(context.Background()); d.OK {
		t.Fatalf("the other instance's second read: %+v, want none left", d)
	}
	// And serve sees what the other spent.
	_, err := c.do(context.Background(), http.MethodGet, "/api/v1/aoa/jobs", nil, "", nil)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests {
		t.Fatalf("third read through serve: %v, want 429", err)
	}
}
