package subscriber

import (
	"context"
	"errors"

	"github.com/autonomos/autonomos/canonical"
)

// Sink is where a Subscriber materializes canonical events.
//
// Apply writes a batch atomically: when it returns nil every event of the
// batch is committed, and when it returns an error none is. The Subscriber
// acknowledges the batch's messages only after Apply returned nil. Apply must
// be idempotent (applying a batch twice, or replaying the whole stream, leaves
// the same state) and must never let an event overwrite a record version
// newer than its own, because batches may be redelivered and several
// Subscribers may apply batches of the same stream in any order.
//
// Apply must not keep events or the slice after it returns, and must not
// modify them. Cancelling ctx aborts the batch (nothing is committed) and
// Apply returns an error. An error wrapping *PermanentError says that retrying
// cannot help (bad data for this sink); any other error is treated as
// transient and the batch is redelivered with backoff.
//
// Apply may be called concurrently (several Subscribers may share one sink),
// so a Sink must be safe for concurrent use. The Subscriber never closes its
// sink: whoever opened the sink closes it, after Run has returned.
type Sink interface {
	// Name is a short token naming the sink ("postgres", "duckdb"); the
	// durable consumer is named dcl-<Name>.
	Name() string
	// Apply commits a batch of events atomically.
	Apply(ctx context.Context, events []*canonical.Event) error
}

var (
	_ Sink = (*Postgres)(nil)
	_ Sink = (*DuckDB)(nil)
)

// PermanentError reports a failure that retrying cannot fix: the data is bad
// for the sink (a value the database rejects, say). Event names the offending
// event when the sink knows it; when it is nil, the Subscriber isolates the
// offending event by applying halves of the batch.
type PermanentError struct {
	Event *canonical.Event
	Err   error
}

func (e *PermanentError) Error() string {
	if e.Event != nil {
		return "event " + e.Event.ID + ": " + e.Err.Error()
	}
	return e.Err.Error()
}

func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err wraps a *PermanentError.
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.As(err, &pe)
}
