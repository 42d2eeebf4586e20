package httpx_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/autonomos/autonomos/connectors/httpx"
)

// A connector builds one Client per source: a cached OAuth token, the
// org's shared budget and a redactor that knows its secrets. A 429 is
// retried after its Retry-After.
func ExampleClient() {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		fmt.Fprintf(w, `{"auth": %q}`, r.Header.Get("Authorization"))
	}))
	defer srv.Close()

	redact := httpx.NewRedactor("client-secret")
	tokens := httpx.NewTokens(func(context.Context) (httpx.Token, error) {
		return httpx.Token{Value: "access-1", Expiry: time.Now().Add(time.Hour)}, nil
	}, redact)
	budgets := httpx.NewLocalBudgets() // one per process, shared by every connection
	c := httpx.New(httpx.Options{
		Auth:     tokens,
		Budget:   budgets.Budget("example:"+srv.Listener.Addr().String(), httpx.Limits{PerSecond: 10, Concurrency: 2}),
		Redactor: redact,
	})
	var out struct{ Auth string }
	if err := c.GetJSON(context.Background(), srv.URL, nil, &out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out.Auth, calls.Load())
	// Output: Bearer access-1 2
}
