package connectors

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
)

// JobModeReconcile is the streams.Job Mode of a reconciliation.
const JobModeReconcile = "reconcile"

// ErrNoSnapshots is Reconcile's answer when the Runner keeps no snapshots.
var ErrNoSnapshots = errors.New("reconciliation needs the reconcile object store")

// Reconcile is a full pass over a connection: every object is read from the
// beginning, whatever its cursor, and every record is published again. Two
// kinds of change that incremental reads miss are caught:
//
//   - a change that did not bump the modified stamp (a Salesforce formula
//     field, a HubSpot calculated property): the record's event has the same
//     version but other content, which the stores apply (their version rule
//     replaces an equal version whose content differs); unchanged records
//     are left alone by the stores, so a pass writes only what changed;
//   - a record deleted without a trace the incremental read could see (hard
//     deleted, purged from the recycle bin, outside the change-tracking
//     window): the ids found are compared with those the previous full read
//     found (kept in the Snapshots object store), and each id no longer there
//     gets a delete event stamped with the pass's time.
//
// The first full read of an object — a connection's first sync, or its first
// reconciliation — only records the ids. A record created after one full read
// and deleted, unseen, before the next is not caught by the next (it is in
// neither list); the incremental reads of each connector report the deletes
// their source exposes. The ids of one object are held in memory during the
// pass (about 60 bytes each).
func (r *Runner) Reconcile(ctx context.Context, conn Connection, c Connector, traceID string, progress func(SyncStats)) (SyncStats, error) {
	if r.Snapshots == nil {
		return SyncStats{}, &PermanentError{ErrNoSnapshots}
	}
	return r.run(ctx, conn, c, traceID, progress, true)
}

// settle ends a read from the beginning of obj: on a reconciliation it
// deletes what the previous full read found and this one did not, then it
// keeps present as the object's snapshot.
func (r *Runner) settle(ctx context.Context, conn Connection, em Emitter, obj string, present map[string]struct{}, full bool, canon *streams.Batch, st *SyncStats, os *ObjStats) error {
	key := snapshotKey(conn.Tenant, conn.ID, obj)
	if full {
		prev, err := r.loadSnapshot(ctx, key)
		if err != nil {
			return err
		}
		at := time.Now()
		if r.Now != nil {
			at = r.Now()
		}
		var gone int64
		for _, id := range prev {
			if _, ok := present[id]; ok {
				continue
			}
			m, err := em.vanishedMsg(id, at)
			if err != nil {
				return err
			}
			if err := canon.Add(m); err != nil {
				return err
			}
			gone++
		}
		if gone > 0 {
			n, err := canon.Wait(ctx)
			st.Published += int64(n)
			os.Published += int64(n)
			if err != nil {
				return err
			}
			st.Deleted += gone
			os.Deleted += gone
			st.Objects[obj] = *os
			r.log.Info("reconciliation found deleted records", "tenant", conn.Tenant, "connection_id", conn.ID, "object", obj, "deleted", gone)
		}
	}
	return r.saveSnapshot(ctx, key, present)
}

// vanishedMsg is the delete event of a record the source no longer has,
// stamped at (its deletion time is unknown; it is no earlier than the
// previous full read and no later than now).
func (s Emitter) vanishedMsg(id string, at time.Time) (*nats.Msg, error) {
	ent := s.Mapping.Entity()
	rec, err := canonical.NewRecord(ent)
	if err != nil {
		return nil, err
	}
	if err := rec.Set(ent.KeyField(), id); err != nil {
		return nil, fmt.Errorf("vanished record %q: %w", id, err)
	}
	at = at.UTC()
	version := "vanished:" + at.Format(time.RFC3339Nano)
	return streams.EventMsg(&canonical.Event{
		ID:     canonical.EventID(s.Tenant, s.System, ent, id, version, canonical.OpDelete),
		Tenant: s.Tenant, Op: canonical.OpDelete, ConnectionID: s.ConnectionID, SourceSystem: s.System,
		SourceObject: s.Mapping.Object(), Time: at, TraceID: s.TraceID, MappingVersion: s.Mapping.Version, Record: rec,
	})
}

// snapshotKey names an object's snapshot in the object store.
func snapshotKey(tenant, connection, object string) string {
	return tenant + "/" + connection + "/" + object
}

// loadSnapshot returns the ids of the last full read (none when there was
// none).
func (r *Runner) loadSnapshot(ctx context.Context, key string) ([]string, error) {
	b, err := r.Snapshots.GetBytes(ctx, key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load the snapshot %s: %w", key, err)
	}
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if id := sc.Text(); id != "" {
			ids = append(ids, id)
		}
	}
	return ids, sc.Err()
}

// saveSnapshot stores ids, sorted, one per line.
func (r *Runner) saveSnapshot(ctx context.Context, key string, ids map[string]struct{}) error {
	list := make([]string, 0, len(ids))
	for id := range ids {
		if !strings.ContainsAny(id, "\r\n") {
			list = append(list, id)
		}
	}
	slices.Sort(list)
	var b bytes.Buffer
	for _, id := range list {
		b.WriteString(id)
		b.WriteByte('\n')
	}
	if _, err := r.Snapshots.PutBytes(ctx, key, b.Bytes()); err != nil {
		return fmt.Errorf("store the snapshot %s: %w", key, err)
	}
	return nil
}
