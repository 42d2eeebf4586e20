package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
)

// Status is a connection's lifecycle status.
type Status string

// Connection statuses. A new connection is ACTIVE. Only ACTIVE connections
// are synced on their schedule; a sync asked for explicitly runs in any
// status. Sync results move ACTIVE and FAILED; drift findings and repairs
// (agents) move DRIFTED, HEALING and MANUAL_REVIEW_REQUIRED; users move
// PAUSED (Pause, Resume).
const (
	StatusActive       Status = "ACTIVE"
	StatusPaused       Status = "PAUSED"
	StatusDrifted      Status = "DRIFTED"
	StatusHealing      Status = "HEALING"
	StatusManualReview Status = "MANUAL_REVIEW_REQUIRED"
	StatusFailed       Status = "FAILED"
)

// Statuses lists every connection status.
func Statuses() []Status {
	return []Status{StatusActive, StatusPaused, StatusDrifted, StatusHealing, StatusManualReview, StatusFailed}
}

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool {
	for _, v := range Statuses() {
		if s == v {
			return true
		}
	}
	return false
}

// MinInterval is the shortest sync schedule a connection may have.
const MinInterval = time.Minute

var (
	// ErrNotFound is returned for a connection or job that does not exist
	// or belongs to another tenant (it is streams.ErrNotFound: one 404).
	ErrNotFound = streams.ErrNotFound
	// ErrStatusConflict is returned when a status change is not allowed
	// from the connection's current status (the API answers 409).
	ErrStatusConflict = errors.New("the connection's status does not allow this")
)

// ConnectionInput is what a client sends to create or update a connection.
type ConnectionInput struct {
	Name    string            `json:"name"`
	System  string            `json:"system"`
	Config  map[string]any    `json:"config"`
	Secrets map[string]string `json:"secrets"`
	// Interval is the sync schedule as a Go duration ("5m", "1h"), at least
	// MinInterval; empty means manual syncs only.
	Interval string `json:"interval"`
	// Reconcile is how often a scheduled sync is a full reconciliation pass
	// instead of an incremental one (a Go duration, at least MinInterval;
	// empty: never scheduled — POST .../sync?mode=reconcile runs one).
	Reconcile string `json:"reconcile,omitempty"`
}

// ConnectionView is a connection as the API shows it. It never carries
// secrets.
type ConnectionView struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	System       string         `json:"system"`
	Config       map[string]any `json:"config"`
	Interval     string         `json:"interval"`
	Reconcile    string         `json:"reconcile,omitempty"`
	Status       Status         `json:"status"`
	StatusReason string         `json:"status_reason"`
	LastSyncAt   *time.Time     `json:"last_sync_at"`
	// LastReconcileAt is when the last reconciliation pass succeeded.
	LastReconcileAt *time.Time `json:"last_reconcile_at,omitempty"`
	LastError       string     `json:"last_error"`
	LastJobID       string     `json:"last_job_id"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

// storedConnection is the value under <tenant>.<id> in the connections bucket.
type storedConnection struct {
	ID           string         `json:"id"`
	Tenant       string         `json:"tenant_id"`
	Name         string         `json:"name"`
	System       string         `json:"system"`
	Config       map[string]any `json:"config"`
	Sealed       []byte         `json:"secrets_sealed"` // Sealer.Seal of the secrets
	Interval     string         `json:"interval"`
	Reconcile    string         `json:"reconcile,omitempty"`
	Status       Status         `json:"status"`
	StatusReason string         `json:"status_reason"`
	LastSyncAt   *time.Time     `json:"last_sync_at"`
	LastQueuedAt *time.Time     `json:"last_queued_at,omitempty"`
	// LastReconcileAt is when the last reconciliation pass succeeded.
	LastReconcileAt *time.Time `json:"last_reconcile_at,omitempty"`
	LastError       string     `json:"last_error"`
	LastJobID       string     `json:"last_job_id"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

func (s *storedConnection) view() *ConnectionView {
	cfg := s.Config
	if cfg == nil {
		cfg = map[string]any{}
	}
	return &ConnectionView{ID: s.ID, Name: s.Name, System: s.System, Config: cfg, Interval: s.Interval,
		Reconcile: s.Reconcile, LastReconcileAt: s.LastReconcileAt, Status: s.Status, StatusReason: s.StatusReason, LastSyncAt: s.LastSyncAt, LastError: s.LastError,
		LastJobID: s.LastJobID, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

// Connections stores tenants' connections in the connections bucket under
// <tenant>.<id>, with their secrets sealed. Every lookup is by the caller's
// tenant and the id, so another tenant's connection is ErrNotFound. It also
// keeps each connection's sync lock (<tenant>.<id>.active, see Jobs);
// readers of the bucket take the two-token keys only. It is safe for
// concurrent use by every instance: changes are compare-and-set.
type Connections struct {
	kv      jetstream.KeyValue
	cursors jetstream.KeyValue
	reg     Registry
	deps    Deps
	sealer  *Sealer
	events  *EventLog
	log     *slog.Logger
	now     func() time.Time
}

// OpenConnections binds the connections and cursors buckets (they must
// exist: streams.Ensure). reg validates a connection's system, config and
// secrets (Registry.New with deps, which must not call the source) and
// builds connectors for Test. events receives status transitions.
func OpenConnections(ctx context.Context, js jetstream.JetStream, reg Registry, deps Deps, sealer *Sealer, events *EventLog) (*Connections, error) {
	if sealer == nil || events == nil || reg == nil {
		return nil, errors.New("connections: a registry, a sealer and an event log are required")
	}
	kv, err := js.KeyValue(ctx, streams.BucketConnections)
	if err != nil {
		return nil, fmt.Errorf("connections bucket: %w", err)
	}
	cursors, err := js.KeyValue(ctx, streams.BucketCursors)
	if err != nil {
		return nil, fmt.Errorf("cursors bucket: %w", err)
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Connections{kv: kv, cursors: cursors, reg: reg, deps: deps, sealer: sealer, events: events,
		log: log.With("component", "connections"), now: func() time.Time { return time.Now().UTC() }}, nil
}

func connKey(tenant, id string) (string, error) {
	if !streams.ValidToken(tenant) || !streams.ValidToken(id) {
		return "", ErrNotFound
	}
	return tenant + "." + id, nil
}

// Create validates and stores a new ACTIVE connection. It does not sync.
// Validation problems are one joined error of *canonical.FieldError values.
func (c *Connections) Create(ctx context.Context, tenant string, in ConnectionInput) (*ConnectionView, error) {
	if !streams.ValidToken(tenant) {
		return nil, fmt.Errorf("invalid tenant %q", tenant)
	}
	id := streams.NewID()
	secrets := mergeSecrets(nil, in.Secrets)
	cfg := in.Config
	if cfg == nil {
		cfg = map[string]any{}
	}
	if err := c.validate(tenant, id, in.Name, in.System, cfg, secrets, in.Interval, in.Reconcile); err != nil {
		return nil, err
	}
	sealed, err := c.sealer.Seal(tenant, id, secrets)
	if err != nil {
		return nil, err
	}
	now := c.now()
	sc := &storedConnection{ID: id, Tenant: tenant, Name: strings.TrimSpace(in.Name), System: in.System, Config: cfg,
		Sealed: sealed, Interval: strings.TrimSpace(in.Interval), Reconcile: strings.TrimSpace(in.Reconcile),
		Status: StatusActive, StatusReason: "created",
		CreatedAt: now, UpdatedAt: now}
	b, err := json.Marshal(sc)
	if err != nil {
		return nil, fmt.Errorf("encode connection: %w", err)
	}
	if _, err := c.kv.Create(ctx, tenant+"."+id, b); err != nil {
		return nil, fmt.Errorf("store connection: %w", err)
	}
	c.appendEvent(ctx, tenant, StatusEvent{ConnectionID: id, Status: StatusActive, Reason: "created", Time: now})
	c.log.Info("connection created", "tenant", tenant, "connection_id", id, "system", sc.System)
	return sc.view(), nil
}

// Get returns a tenant's connection.
func (c *Connections) Get(ctx context.Context, tenant, id string) (*ConnectionView, error) {
	sc, _, err := c.get(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	return sc.view(), nil
}

// List returns a tenant's connections, oldest first.
func (c *Connections) List(ctx context.Context, tenant string) ([]*ConnectionView, error) {
	out := []*ConnectionView{}
	if !streams.ValidToken(tenant) {
		return out, nil
	}
	lister, err := c.kv.ListKeysFiltered(ctx, tenant+".*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return out, nil
		}
		return nil, fmt.Errorf("list connections: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		_, id, _ := strings.Cut(k, ".")
		sc, _, err := c.get(ctx, tenant, id)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, sc.view())
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].CreatedAt.Equal(out[b].CreatedAt) {
			return out[a].CreatedAt.Before(out[b].CreatedAt)
		}
		return out[a].ID < out[b].ID
	})
	return out, nil
}

// Update replaces a connection's name, config and interval (empty interval:
// manual syncs only) and merges its secrets: a secret left out keeps its
// value, one given with an empty value is removed. System may be left empty
// and cannot be changed. The result is validated as Create validates.
func (c *Connections) Update(ctx context.Context, tenant, id string, in ConnectionInput) (*ConnectionView, error) {
	return c.modify(ctx, tenant, id, func(sc *storedConnection) (*StatusEvent, error) {
		if in.System != "" && in.System != sc.System {
			return nil, &canonical.FieldError{Field: "system", Reason: fmt.Sprintf("cannot change from %q; create a new connection", sc.System)}
		}
		old, err := c.sealer.Open(tenant, id, sc.Sealed)
		if err != nil {
			return nil, err
		}
		secrets := mergeSecrets(old, in.Secrets)
		cfg := in.Config
		if cfg == nil {
			cfg = map[string]any{}
		}
		if err := c.validate(tenant, id, in.Name, sc.System, cfg, secrets, in.Interval, in.Reconcile); err != nil {
			return nil, err
		}
		sealed, err := c.sealer.Seal(tenant, id, secrets)
		if err != nil {
			return nil, err
		}
		sc.Name, sc.Config, sc.Sealed, sc.Interval = strings.TrimSpace(in.Name), cfg, sealed, strings.TrimSpace(in.Interval)
		sc.Reconcile = strings.TrimSpace(in.Reconcile)
		return nil, nil
	})
}

// Delete removes a connection, its sync lock (a running sync notices and
// stops as cancelled) and its cursors. Its jobs and events stay in history.
func (c *Connections) Delete(ctx context.Context, tenant, id string) error {
	k, err := connKey(tenant, id)
	if err != nil {
		return err
	}
	if _, _, err := c.get(ctx, tenant, id); err != nil {
		return err
	}
	if err := c.kv.Delete(ctx, lockKey(tenant, id)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete sync lock: %w", err)
	}
	if err := c.kv.Delete(ctx, k); err != nil {
		return fmt.Errorf("delete connection: %w", err)
	}
	if err := c.forgetCursors(ctx, tenant, id); err != nil {
		return err
	}
	c.log.Info("connection deleted", "tenant", tenant, "connection_id", id)
	return nil
}

func (c *Connections) forgetCursors(ctx context.Context, tenant, id string) error {
	lister, err := c.cursors.ListKeysFiltered(ctx, tenant+"."+id+".*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil
		}
		return fmt.Errorf("list cursors: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if err := c.cursors.Delete(ctx, k); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("delete cursor: %w", err)
		}
	}
	return nil
}

// Load returns a connection with its decrypted secrets, for connector
// workers only: never hand it to the API.
func (c *Connections) Load(ctx context.Context, tenant, id string) (Connection, error) {
	sc, _, err := c.get(ctx, tenant, id)
	if err != nil {
		return Connection{}, err
	}
	secrets, err := c.sealer.Open(tenant, id, sc.Sealed)
	if err != nil {
		return Connection{}, err
	}
	return Connection{ID: sc.ID, Tenant: sc.Tenant, Name: sc.Name, System: sc.System, Config: sc.Config, Secrets: secrets}, nil
}

// Test builds the connection's connector and calls its Check, which really
// calls the source. A nil error means the source accepted the connection.
func (c *Connections) Test(ctx context.Context, tenant, id string) error {
	conn, err := c.Load(ctx, tenant, id)
	if err != nil {
		return err
	}
	con, err := c.reg.New(conn, c.deps)
	if err != nil {
		return redact(err, conn.Secrets)
	}
	if cl, ok := con.(io.Closer); ok {
		defer cl.Close()
	}
	if err := con.Check(ctx); err != nil {
		return redact(fmt.Errorf("check %s connection: %w", conn.System, err), conn.Secrets)
	}
	return nil
}

// SetStatus sets a connection's status with its reason; a change of status
// is appended to the event log and published live. Agents call it for
// DRIFTED, HEALING and MANUAL_REVIEW_REQUIRED.
func (c *Connections) SetStatus(ctx context.Context, tenant, id string, status Status, reason string) (*ConnectionView, error) {
	if !status.Valid() {
		return nil, &canonical.FieldError{Field: "status", Reason: fmt.Sprintf("unknown status %q", status)}
	}
	return c.modify(ctx, tenant, id, func(sc *storedConnection) (*StatusEvent, error) {
		return sc.setStatus(status, reason), nil
	})
}

// Pause stops a connection's schedule (a sync already running goes on;
// cancel its job to stop it). Pausing a paused connection changes nothing.
func (c *Connections) Pause(ctx context.Context, tenant, id string) (*ConnectionView, error) {
	return c.modify(ctx, tenant, id, func(sc *storedConnection) (*StatusEvent, error) {
		if sc.Status == StatusPaused {
			return nil, nil
		}
		return sc.setStatus(StatusPaused, "paused by a user"), nil
	})
}

// Resume makes a PAUSED or FAILED connection ACTIVE again; from an ACTIVE
// one it changes nothing; from a drift status (DRIFTED, HEALING,
// MANUAL_REVIEW_REQUIRED, owned by drift repair) it is ErrStatusConflict.
func (c *Connections) Resume(ctx context.Context, tenant, id string) (*ConnectionView, error) {
	return c.modify(ctx, tenant, id, func(sc *storedConnection) (*StatusEvent, error) {
		switch sc.Status {
		case StatusActive:
			return nil, nil
		case StatusPaused, StatusFailed:
			return sc.setStatus(StatusActive, "resumed by a user"), nil
		default:
			return nil, fmt.Errorf("%w: the connection is %s", ErrStatusConflict, sc.Status)
		}
	})
}

// setStatus changes the status and returns the transition event, or nil
// when the status stays (the reason is updated either way).
func (sc *storedConnection) setStatus(status Status, reason string) *StatusEvent {
	prev := sc.Status
	sc.StatusReason = reason
	if prev == status {
		return nil
	}
	sc.Status = status
	return &StatusEvent{ConnectionID: sc.ID, Status: status, Previous: prev, Reason: reason}
}

// get loads a stored connection and its revision.
func (c *Connections) get(ctx context.Context, tenant, id string) (*storedConnection, uint64, error) {
	k, err := connKey(tenant, id)
	if err != nil {
		return nil, 0, err
	}
	e, err := c.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get connection %s: %w", id, err)
	}
	var sc storedConnection
	if err := json.Unmarshal(e.Value(), &sc); err != nil {
		return nil, 0, fmt.Errorf("decode connection %s: %w", id, err)
	}
	if sc.Tenant != tenant || sc.ID != id {
		return nil, 0, ErrNotFound
	}
	return &sc, e.Revision(), nil
}

// modify applies f to the stored connection with compare-and-set, retrying
// when another writer got there first; UpdatedAt is stamped and a returned
// status event is appended once the change is stored.
func (c *Connections) modify(ctx context.Context, tenant, id string, f func(*storedConnection) (*StatusEvent, error)) (*ConnectionView, error) {
	for attempt := 0; ; attempt++ {
		sc, rev, err := c.get(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		ev, err := f(sc)
		if err != nil {
			return nil, err
		}
		now := c.now()
		sc.UpdatedAt = now
		b, err := json.Marshal(sc)
		if err != nil {
			return nil, fmt.Errorf("encode connection: %w", err)
		}
		if _, err := c.kv.Update(ctx, tenant+"."+id, b, rev); err != nil {
			if isConflict(err) && attempt < casAttempts {
				continue
			}
			if isConflict(err) {
				return nil, fmt.Errorf("update connection %s: too much contention: %w", id, err)
			}
			return nil, fmt.Errorf("update connection %s: %w", id, err)
		}
		if ev != nil {
			ev.Time = now
			c.appendEvent(ctx, tenant, *ev)
			c.log.Info("connection status", "tenant", tenant, "connection_id", id, "status", ev.Status, "previous", ev.Previous, "reason", ev.Reason)
		}
		return sc.view(), nil
	}
}

// appendEvent records a transition; the change itself is already stored,
// so a failure to record it is logged, not returned.
func (c *Connections) appendEvent(ctx context.Context, tenant string, ev StatusEvent) {
	if _, err := c.events.Append(context.WithoutCancel(ctx), tenant, ev); err != nil {
		c.log.Warn("record a status event", "tenant", tenant, "connection_id", ev.ConnectionID, "error", err)
	}
}

// validate checks a connection as it would be stored: one joined error of
// *canonical.FieldError values naming each bad field.
func (c *Connections) validate(tenant, id, name, system string, cfg map[string]any, secrets map[string]string, interval, reconcile string) error {
	var errs []error
	bad := func(field, reason string) { errs = append(errs, &canonical.FieldError{Field: field, Reason: reason}) }
	switch n := strings.TrimSpace(name); {
	case n == "":
		bad("name", "required")
	case len(n) > 200:
		bad("name", "longer than 200 characters")
	}
	for _, f := range []struct{ field, value, empty string }{
		{"interval", interval, "manual syncs only"},
		{"reconcile", reconcile, "no scheduled reconciliation"},
	} {
		iv := strings.TrimSpace(f.value)
		if iv == "" {
			continue
		}
		d, err := time.ParseDuration(iv)
		switch {
		case err != nil:
			bad(f.field, fmt.Sprintf("not a duration like 5m or 1h: %q", iv))
		case d < MinInterval:
			bad(f.field, fmt.Sprintf("%s is shorter than the minimum %s (leave it empty for %s)", d, MinInterval, f.empty))
		}
	}
	switch _, known := c.reg[system]; {
	case system == "":
		bad("system", fmt.Sprintf("required (one of %s)", strings.Join(c.reg.Systems(), ", ")))
	case !known:
		bad("system", fmt.Sprintf("unknown system %q (one of %s)", system, strings.Join(c.reg.Systems(), ", ")))
	default:
		conn := Connection{ID: id, Tenant: tenant, Name: name, System: system, Config: cfg, Secrets: secrets}
		if _, err := c.reg.New(conn, c.deps); err != nil {
			for _, e := range flatten(redact(err, secrets)) {
				var fe *canonical.FieldError
				if errors.As(e, &fe) {
					errs = append(errs, fe)
				} else {
					bad("config", e.Error())
				}
			}
		}
	}
	return errors.Join(errs...)
}

// mergeSecrets returns old updated by in: a non-empty value sets a secret,
// an empty one removes it, an absent one keeps it.
func mergeSecrets(old, in map[string]string) map[string]string {
	out := make(map[string]string, len(old)+len(in))
	for k, v := range old {
		out[k] = v
	}
	for k, v := range in {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// redact replaces any secret value in err's message (and in the reasons of
// its field errors) by "[redacted]", so a connector that quotes its input
// cannot leak a secret into an API answer or a log line.
func redact(err error, secrets map[string]string) error {
	if err == nil {
		return nil
	}
	scrub := func(s string) string {
		for _, v := range secrets {
			if len(v) >= 4 {
				s = strings.ReplaceAll(s, v, "[redacted]")
			}
		}
		return s
	}
	parts := flatten(err)
	leak := false
	for _, p := range parts {
		if scrub(p.Error()) != p.Error() {
			leak = true
		}
	}
	if !leak {
		return err
	}
	out := make([]error, 0, len(parts))
	for _, p := range parts {
		var fe *canonical.FieldError
		if errors.As(p, &fe) {
			out = append(out, &canonical.FieldError{Field: fe.Field, Source: fe.Source, Reason: scrub(fe.Reason)})
			continue
		}
		var pe *PermanentError
		if errors.As(p, &pe) {
			out = append(out, &PermanentError{Err: errors.New(scrub(p.Error()))})
			continue
		}
		out = append(out, errors.New(scrub(p.Error())))
	}
	return errors.Join(out...)
}
