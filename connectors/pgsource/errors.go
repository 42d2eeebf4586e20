package pgsource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/autonomos/autonomos/connectors"
)

// retryDelays are the waits before each retry of a Fetch that failed on a
// connection problem (a dropped or refused connection, a server restarting,
// a slot still held by a dying session); after the last one the error is
// returned for the worker to retry the job.
var retryDelays = []time.Duration{time.Second, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second, 10 * time.Second}

// permanent wraps err as a *connectors.PermanentError with a message for the
// operator.
func permanent(format string, a ...any) error {
	return &connectors.PermanentError{Err: fmt.Errorf(format, a...)}
}

// isPermanent reports whether retrying cannot fix err.
func isPermanent(err error) bool {
	var pe *connectors.PermanentError
	if errors.As(err, &pe) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		var pc *pgconn.ParseConfigError
		return errors.As(err, &pc)
	}
	switch {
	case pg.Code == "53400": // configuration_limit_exceeded (max_replication_slots, ...)
		return true
	case strings.HasPrefix(pg.Code, "08"), strings.HasPrefix(pg.Code, "53"), strings.HasPrefix(pg.Code, "57P"),
		pg.Code == "40001", pg.Code == "40P01", pg.Code == "55006", pg.Code == "55P03", strings.HasPrefix(pg.Code, "58"), pg.Code == "XX000":
		return false // connection, resources, shutdown, serialization, object in use, lock, system
	}
	return true // authentication, missing objects, privileges, prerequisites, data, syntax
}

// classify returns err as a *connectors.PermanentError when retrying cannot
// fix it, with a hint for the operator where one helps.
func classify(err error) error {
	if err == nil || !isPermanent(err) {
		return err
	}
	var pe *connectors.PermanentError
	if errors.As(err, &pe) {
		return err
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case strings.HasPrefix(pg.Code, "28"):
			return permanent("postgres refused the login (check secrets.dsn: user, password, pg_hba.conf): %w", err)
		case pg.Code == "3D000":
			return permanent("the database of secrets.dsn does not exist: %w", err)
		case pg.Code == "42501":
			return permanent("insufficient privilege (see Check for what to grant): %w", err)
		case pg.Code == "53400":
			return permanent("a server limit was reached (max_replication_slots or max_wal_senders?): %w", err)
		}
	}
	return &connectors.PermanentError{Err: err}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
