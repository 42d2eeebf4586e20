package connectors

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
)

// Connector reads one source system for one connection.
//
// Contract: Check, Objects and Fetch may be called from one goroutine at a
// time per connector value (the Runner never calls them concurrently). Fetch
// returns the next page of an object after an opaque cursor ("" means from
// the beginning) and the cursor to resume after that page; it never emits
// anything itself, so a connector cannot publish after it returned. When ctx
// is cancelled Fetch returns promptly (within 5 s) with ctx's error. Errors
// that retrying cannot fix (bad credentials, a field the source does not
// have) are wrapped in *PermanentError; anything else may be retried.
// The caller owns nothing to close: a connector holds no resources between
// calls beyond its HTTP client.
type Connector interface {
	// Check validates the configuration by calling the source.
	Check(ctx context.Context) error
	// Objects lists the source objects this connection syncs, in order.
	Objects() []string
	// Fetch returns the page of object that follows cursor.
	Fetch(ctx context.Context, object, cursor string) (Page, error)
}

// Page is one page of source records.
type Page struct {
	Records []Record
	// Cursor resumes after this page; it is checkpointed only once every
	// record of the page was acknowledged by JetStream.
	Cursor string
	// More is false when the object is caught up.
	More bool
}

// Record is one source record as the source spelled it.
type Record struct {
	Values  map[string]any
	Deleted bool
}

// Connection is a stored connection as a connector sees it.
type Connection struct {
	ID      string            `json:"id"`
	Tenant  string            `json:"tenant_id"`
	Name    string            `json:"name"`
	System  string            `json:"system"`
	Config  map[string]any    `json:"config"`
	Secrets map[string]string `json:"-"`
}

// Deps are what a connector may use.
type Deps struct {
	HTTP *http.Client
	Log  *slog.Logger
}

// Factory builds a connector from a connection, validating its config and
// secrets (one joined error naming every bad field).
type Factory func(c Connection, d Deps) (Connector, error)

// Registry is the explicit table of connector kinds by system name.
type Registry map[string]Factory

// New builds the connector of c's system.
func (r Registry) New(c Connection, d Deps) (Connector, error) {
	f, ok := r[c.System]
	if !ok {
		return nil, fmt.Errorf("unknown system %q (known: %v)", c.System, r.Systems())
	}
	return f(c, d)
}

// Systems lists the registered systems, sorted.
func (r Registry) Systems() []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// PermanentError is a failure that retrying will not fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }
