package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/streams"
)

// BucketConnectionEvents is the KV bucket of the recent connection status
// events, one key per tenant. OpenEventLog creates it when missing (it is
// not yet part of streams.BucketConfigs).
const BucketConnectionEvents = "connection_events"

// MaxStatusEvents is how many status events a tenant keeps.
const MaxStatusEvents = 200

// EventTypeConnectionStatus is the type of a connection status event.
const EventTypeConnectionStatus = "connection.status"

// StatusEvent is one connection status transition, as stored in the event
// log and as published on streams.LiveSubject(tenant, "connection").
type StatusEvent struct {
	Type         string    `json:"type"` // always "connection.status"
	Seq          uint64    `json:"seq"`  // per tenant, increasing; the events API pages on it
	ConnectionID string    `json:"connection_id"`
	Status       Status    `json:"status"`
	Previous     Status    `json:"previous,omitempty"` // empty for a new connection
	Reason       string    `json:"reason"`
	Time         time.Time `json:"time"`
}

// Notifier publishes a core NATS message (not persisted): live notifications
// for the dashboard. *nats.Conn fits. Publish must not block for long; it is
// called concurrently.
type Notifier interface {
	Publish(subject string, data []byte) error
}

var _ Notifier = (*nats.Conn)(nil)

// EventLog keeps each tenant's last MaxStatusEvents status events (one KV
// value per tenant, updated with compare-and-set, so every instance may
// append) and publishes each appended event live. It is safe for concurrent
// use.
type EventLog struct {
	kv   jetstream.KeyValue
	live Notifier
	log  *slog.Logger
}

// OpenEventLog creates the connection_events bucket if needed (idempotent,
// replicas as the rest of the topology) and returns the log. live may be nil
// (no live notifications).
func OpenEventLog(ctx context.Context, js jetstream.JetStream, replicas int, live Notifier, log *slog.Logger) (*EventLog, error) {
	if replicas <= 0 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: BucketConnectionEvents,
		Description: "recent connection status events per tenant", History: 1, Storage: jetstream.FileStorage, Replicas: replicas})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketConnectionEvents, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &EventLog{kv: kv, live: live, log: log.With("component", "connection_events")}, nil
}

type eventRing struct {
	Next   uint64        `json:"next"`
	Events []StatusEvent `json:"events"` // oldest first
}

// Append stores ev for tenant (assigning its Seq, and its Time when zero,
// and setting Type) and publishes it live. It returns the stored event.
func (l *EventLog) Append(ctx context.Context, tenant string, ev StatusEvent) (StatusEvent, error) {
	if !streams.ValidToken(tenant) {
		return ev, fmt.Errorf("invalid tenant %q", tenant)
	}
	ev.Type = EventTypeConnectionStatus
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	for attempt := 0; ; attempt++ {
		var ring eventRing
		var rev uint64
		e, err := l.kv.Get(ctx, tenant)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return ev, fmt.Errorf("load events: %w", err)
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &ring); err != nil {
				return ev, fmt.Errorf("decode events: %w", err)
			}
		}
		ring.Next++
		ev.Seq = ring.Next
		ring.Events = append(ring.Events, ev)
		if n := len(ring.Events); n > MaxStatusEvents {
			ring.Events = append([]StatusEvent(nil), ring.Events[n-MaxStatusEvents:]...)
		}
		b, err := json.Marshal(ring)
		if err != nil {
			return ev, err
		}
		if rev == 0 {
			_, err = l.kv.Create(ctx, tenant, b)
		} else {
			_, err = l.kv.Update(ctx, tenant, b, rev)
		}
		if err == nil {
			break
		}
		if !isConflict(err) || attempt >= casAttempts {
			return ev, fmt.Errorf("store event: %w", err)
		}
	}
	if l.live != nil {
		if subj, err := streams.LiveSubject(tenant, "connection"); err == nil {
			b, _ := json.Marshal(ev)
			if err := l.live.Publish(subj, b); err != nil {
				l.log.Warn("publish a live status event", "tenant", tenant, "connection_id", ev.ConnectionID, "error", err)
			}
		}
	}
	return ev, nil
}

// List returns a tenant's events newest first, at most limit (default and
// maximum MaxStatusEvents), only those with Seq < before when before > 0.
func (l *EventLog) List(ctx context.Context, tenant string, limit int, before uint64) ([]StatusEvent, error) {
	out := []StatusEvent{}
	if !streams.ValidToken(tenant) {
		return out, nil
	}
	if limit <= 0 || limit > MaxStatusEvents {
		limit = MaxStatusEvents
	}
	e, err := l.kv.Get(ctx, tenant)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load events: %w", err)
	}
	var ring eventRing
	if err := json.Unmarshal(e.Value(), &ring); err != nil {
		return nil, fmt.Errorf("decode events: %w", err)
	}
	for i := len(ring.Events) - 1; i >= 0 && len(out) < limit; i-- {
		if before > 0 && ring.Events[i].Seq >= before {
			continue
		}
		out = append(out, ring.Events[i])
	}
	return out, nil
}

// casAttempts bounds compare-and-set retries under contention.
const casAttempts = 50

// isConflict reports whether err is a failed compare-and-set (the key
// changed, or exists, since it was read).
func isConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
