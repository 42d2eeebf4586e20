package gateway

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

const stateKey = "autonomos.request"

// reqState is what the middleware chain learns about one request. It is
// created by tracing and used by one request's goroutine only.
type reqState struct {
	traceID string
	start   time.Time
	route   *route // nil when no route matched

	// principal is the verified token's identity (nil when unauthenticated).
	principal *principal
	// subject attributes a public call (login, register) to a tenant's user
	// once the handler knows it, for the audit record.
	subject *principal

	body    *requestBody // mutating requests only
	idemKey string
	audited bool
}

// principal is an authenticated user.
type principal struct {
	UserID    string
	Tenant    string
	Role      string
	TokenID   string // jti
	SessionID string // sid
	Expires   time.Time
}

func stateOf(c echo.Context) *reqState {
	if st, ok := c.Get(stateKey).(*reqState); ok {
		return st
	}
	st := &reqState{traceID: TraceID(c.Request().Context()), start: time.Now()}
	c.Set(stateKey, st)
	return st
}

// mutating reports whether a method changes state (and so is checked for
// role, idempotency and audited).
func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}
