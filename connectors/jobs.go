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
	"go.opentelemetry.io/otel/trace"

	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/telemetry"
)

// JobKindSync is the kind of a connection sync job (streams.Job.Kind and
// the last token of its work subject jobs.<tenant>.sync).
const JobKindSync = "sync"

// EventTypeJobUpdated is the type of a live job notification.
const EventTypeJobUpdated = "job.updated"

var (
	// ErrSyncActive is returned by QueueSync while a sync of the connection
	// is queued or running (the API answers 409).
	ErrSyncActive = errors.New("a sync of this connection is already queued or running")
	// ErrJobFinished is returned by Cancel for a job that already ended
	// (the API answers 409).
	ErrJobFinished = errors.New("the job has already finished")
	// ErrNotCancellable is returned by Cancel for a job of a kind this
	// package does not run (the API answers 409).
	ErrNotCancellable = errors.New("only sync jobs can be cancelled")
)

// Lock states.
const (
	lockQueued  = "queued"
	lockRunning = "running"
)

// staleGrace is how long a fresh lock whose job is not stored yet counts as
// held (QueueSync stores the job just after taking the lock).
const staleGrace = time.Minute

// syncLock is the value of <tenant>.<connection>.active in the connections
// bucket: the one active sync of a connection. QueueSync creates it; a
// worker moves it to running (compare-and-set, so Cancel and the worker
// never both win); Cancel sets Cancel on a running one, which the worker
// watches; the worker deletes it when the job ends.
type syncLock struct {
	JobID    string    `json:"job_id"`
	State    string    `json:"state"` // queued, running
	Cancel   bool      `json:"cancel,omitempty"`
	Failures int       `json:"failures"` // failed attempts so far
	Worker   string    `json:"worker,omitempty"`
	Since    time.Time `json:"since"`
}

func lockKey(tenant, connection string) string { return tenant + "." + connection + ".active" }

// workItem is the body of a message on jobs.<tenant>.sync.
type workItem struct {
	Tenant       string `json:"tenant_id"`
	JobID        string `json:"job_id"`
	ConnectionID string `json:"connection_id"`
	TraceID      string `json:"trace_id,omitempty"`
	Traceparent  string `json:"traceparent,omitempty"`
	Mode         string `json:"mode,omitempty"` // "" or JobModeReconcile
}

// Jobs queues and cancels connection syncs. Each sync is a streams.Job in the
// JobStore (its history) and a work item on the JOBS stream, which Workers
// take. At most one sync per connection is queued or running at a time,
// across every instance. It is safe for concurrent use.
type Jobs struct {
	js    jetstream.JetStream
	conns *Connections
	store *streams.JobStore
	live  Notifier
	log   *slog.Logger
}

// NewJobs returns the job queue. live (may be nil) receives job updates on
// streams.LiveSubject(tenant, "job").
func NewJobs(js jetstream.JetStream, conns *Connections, store *streams.JobStore, live Notifier, log *slog.Logger) *Jobs {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Jobs{js: js, conns: conns, store: store, live: live, log: log.With("component", "jobs")}
}

// Get returns a tenant's job (any kind); ErrNotFound for another tenant's.
func (j *Jobs) Get(ctx context.Context, tenant, id string) (*streams.Job, error) {
	return j.store.Get(ctx, tenant, id)
}

// List returns a tenant's jobs (any kind), newest first, at most limit.
func (j *Jobs) List(ctx context.Context, tenant string, limit int) ([]*streams.Job, error) {
	return j.store.List(ctx, tenant, limit)
}

// QueueSync queues a sync of a tenant's connection and returns its job id.
// It returns ErrSyncActive (wrapped, naming the active job) while another
// sync of the connection is queued or running, and ErrNotFound for an
// unknown connection. A sync may be queued whatever the connection's
// status. traceID (32 hex, may be empty) follows the sync's events, and
// the span in ctx (the request's, when any) is the parent of the sync's.
func (j *Jobs) QueueSync(ctx context.Context, tenant, connectionID, traceID string) (string, error) {
	return j.queueSync(ctx, tenant, connectionID, traceID, "", nil)
}

// QueueReconcile is QueueSync of a reconciliation pass (see
// Runner.Reconcile); it counts as the connection's one active sync.
func (j *Jobs) QueueReconcile(ctx context.Context, tenant, connectionID, traceID string) (string, error) {
	return j.queueSync(ctx, tenant, connectionID, traceID, JobModeReconcile, nil)
}

// errNotDue is queueSync's answer when ifDue says no after the lock was taken.
var errNotDue = errors.New("not due")

func (j *Jobs) queueSync(ctx context.Context, tenant, connectionID, traceID, mode string, ifDue func(*storedConnection) bool) (string, error) {
	sc, _, err := j.conns.get(ctx, tenant, connectionID)
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	jobID := streams.NewID()
	if err := j.acquire(ctx, tenant, connectionID, syncLock{JobID: jobID, State: lockQueued, Since: now}); err != nil {
		return "", err
	}
	// From here the lock is ours: release it on every failure.
	fail := func(err error) (string, error) {
		j.release(context.WithoutCancel(ctx), tenant, connectionID, jobID)
		return "", err
	}
	if ifDue != nil {
		// Another scheduler may have queued (and even finished) a sync since
		// this one read the connection: decide again under the lock.
		if sc, _, err = j.conns.get(ctx, tenant, connectionID); err != nil {
			return fail(err)
		}
		if !ifDue(sc) {
			return fail(errNotDue)
		}
	}
	job := &streams.Job{ID: jobID, Tenant: tenant, Kind: JobKindSync, Mode: mode, ConnectionID: connectionID, Status: streams.JobQueued,
		System: sc.System, TraceID: traceID, Errors: []streams.RowError{}, CreatedAt: now}
	if err := j.store.Put(ctx, job); err != nil {
		return fail(err)
	}
	if _, err := j.conns.modify(ctx, tenant, connectionID, func(sc *storedConnection) (*StatusEvent, error) {
		sc.LastJobID, sc.LastQueuedAt = jobID, &now
		return nil, nil
	}); err != nil {
		j.finish(context.WithoutCancel(ctx), job, streams.JobFailed, "could not be queued: "+err.Error())
		return fail(err)
	}
	subj, err := streams.JobSubject(tenant, JobKindSync)
	if err != nil {
		return fail(err)
	}
	j.notify(job) // before the work item exists, so "queued" goes out before "running"
	body, _ := json.Marshal(workItem{Tenant: tenant, JobID: jobID, ConnectionID: connectionID, TraceID: traceID, Mode: mode,
		Traceparent: telemetry.Traceparent(trace.SpanContextFromContext(ctx))})
	if _, err := j.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: body}, jetstream.WithMsgID(jobID)); err != nil {
		j.finish(context.WithoutCancel(ctx), job, streams.JobFailed, "could not be queued: "+err.Error())
		return fail(fmt.Errorf("publish %s: %w", subj, err))
	}
	j.log.Info("sync queued", "tenant", tenant, "connection_id", connectionID, "job_id", jobID, "mode", mode, "trace_id", traceID)
	return jobID, nil
}

// Cancel stops a tenant's sync job: a queued one is cancelled at once, a
// running one is asked to stop and ends as cancelled within seconds (its
// worker watches the lock). ErrNotFound, ErrNotCancellable and
// ErrJobFinished say why not.
func (j *Jobs) Cancel(ctx context.Context, tenant, jobID string) error {
	job, err := j.store.Get(ctx, tenant, jobID)
	if err != nil {
		return err
	}
	if job.Kind != JobKindSync {
		return ErrNotCancellable
	}
	if job.Finished() {
		return ErrJobFinished
	}
	for attempt := 0; attempt < casAttempts; attempt++ {
		lock, rev, err := j.conns.getLock(ctx, tenant, job.ConnectionID)
		if err != nil {
			return err
		}
		switch {
		case lock == nil || lock.JobID != jobID:
			// No worker holds this job (its connection was deleted, or it
			// was taken over): end it here.
			return j.finishIfOpen(ctx, tenant, jobID, "cancelled by a user")
		case lock.State == lockQueued:
			err := j.conns.kv.Delete(ctx, lockKey(tenant, job.ConnectionID), jetstream.LastRevision(rev))
			if isConflict(err) {
				continue // a worker just took it
			}
			if err != nil {
				return fmt.Errorf("cancel job %s: %w", jobID, err)
			}
			return j.finishIfOpen(ctx, tenant, jobID, "cancelled by a user before it started")
		case lock.Cancel:
			return nil
		default:
			lock.Cancel = true
			b, _ := json.Marshal(lock)
			_, err := j.conns.kv.Update(ctx, lockKey(tenant, job.ConnectionID), b, rev)
			if isConflict(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("cancel job %s: %w", jobID, err)
			}
			j.log.Info("sync cancel requested", "tenant", tenant, "job_id", jobID)
			return nil
		}
	}
	return fmt.Errorf("cancel job %s: too much contention", jobID)
}

// finishIfOpen marks a job cancelled unless it already ended.
func (j *Jobs) finishIfOpen(ctx context.Context, tenant, jobID, msg string) error {
	job, err := j.store.Get(ctx, tenant, jobID)
	if err != nil {
		return err
	}
	if job.Finished() {
		return ErrJobFinished
	}
	return j.finish(ctx, job, streams.JobCancelled, msg)
}

// finish stores a job's final status and notifies.
func (j *Jobs) finish(ctx context.Context, job *streams.Job, status, msg string) error {
	now := time.Now().UTC()
	job.Status, job.Message, job.FinishedAt = status, msg, &now
	if err := j.store.Put(ctx, job); err != nil {
		return err
	}
	j.notify(job)
	return nil
}

// put stores a job and notifies.
func (j *Jobs) put(ctx context.Context, job *streams.Job) error {
	if err := j.store.Put(ctx, job); err != nil {
		return err
	}
	j.notify(job)
	return nil
}

// notify publishes {"type":"job.updated","job":{...}} live.
func (j *Jobs) notify(job *streams.Job) {
	if j.live == nil {
		return
	}
	subj, err := streams.LiveSubject(job.Tenant, "job")
	if err != nil {
		return
	}
	b, err := json.Marshal(struct {
		Type string       `json:"type"`
		Job  *streams.Job `json:"job"`
	}{EventTypeJobUpdated, job})
	if err != nil {
		return
	}
	if err := j.live.Publish(subj, b); err != nil {
		j.log.Debug("publish a live job update", "job_id", job.ID, "error", err)
	}
}

// acquire takes a connection's sync lock, or takes over a stale one (whose
// job ended or vanished); otherwise ErrSyncActive.
func (j *Jobs) acquire(ctx context.Context, tenant, connectionID string, lock syncLock) error {
	b, _ := json.Marshal(lock)
	key := lockKey(tenant, connectionID)
	for attempt := 0; attempt < casAttempts; attempt++ {
		_, err := j.conns.kv.Create(ctx, key, b)
		if err == nil {
			return nil
		}
		if !isConflict(err) {
			return fmt.Errorf("take sync lock: %w", err)
		}
		cur, rev, err := j.conns.getLock(ctx, tenant, connectionID)
		if err != nil {
			return err
		}
		if cur == nil {
			continue // released meanwhile
		}
		job, err := j.store.Get(ctx, tenant, cur.JobID)
		switch {
		case err == nil && !job.Finished():
			return fmt.Errorf("%w (job %s is %s)", ErrSyncActive, cur.JobID, job.Status)
		case errors.Is(err, ErrNotFound) && time.Since(cur.Since) < staleGrace:
			return fmt.Errorf("%w (job %s is being queued)", ErrSyncActive, cur.JobID)
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		j.log.Warn("taking over a stale sync lock", "tenant", tenant, "connection_id", connectionID, "stale_job_id", cur.JobID)
		if _, err := j.conns.kv.Update(ctx, key, b, rev); err == nil {
			return nil
		} else if !isConflict(err) {
			return fmt.Errorf("take sync lock: %w", err)
		}
	}
	return fmt.Errorf("take sync lock: too much contention")
}

// release deletes the connection's lock if it still belongs to jobID.
func (j *Jobs) release(ctx context.Context, tenant, connectionID, jobID string) {
	for attempt := 0; attempt < casAttempts; attempt++ {
		lock, rev, err := j.conns.getLock(ctx, tenant, connectionID)
		if err != nil {
			j.log.Warn("release sync lock", "tenant", tenant, "connection_id", connectionID, "job_id", jobID, "error", err)
			return
		}
		if lock == nil || lock.JobID != jobID {
			return
		}
		err = j.conns.kv.Delete(ctx, lockKey(tenant, connectionID), jetstream.LastRevision(rev))
		if err == nil {
			return
		}
		if !isConflict(err) {
			j.log.Warn("release sync lock", "tenant", tenant, "connection_id", connectionID, "job_id", jobID, "error", err)
			return
		}
	}
}

// updateLock applies f to the lock of jobID with compare-and-set. It
// returns the stored lock, or nil when the lock is no longer jobID's.
func (j *Jobs) updateLock(ctx context.Context, tenant, connectionID, jobID string, f func(*syncLock)) (*syncLock, error) {
	for attempt := 0; attempt < casAttempts; attempt++ {
		lock, rev, err := j.conns.getLock(ctx, tenant, connectionID)
		if err != nil {
			return nil, err
		}
		if lock == nil || lock.JobID != jobID {
			return nil, nil
		}
		f(lock)
		b, _ := json.Marshal(lock)
		_, err = j.conns.kv.Update(ctx, lockKey(tenant, connectionID), b, rev)
		if err == nil {
			return lock, nil
		}
		if !isConflict(err) {
			return nil, fmt.Errorf("update sync lock: %w", err)
		}
	}
	return nil, fmt.Errorf("update sync lock: too much contention")
}

// getLock reads a connection's sync lock: nil when there is none.
func (c *Connections) getLock(ctx context.Context, tenant, connectionID string) (*syncLock, uint64, error) {
	if _, err := connKey(tenant, connectionID); err != nil {
		return nil, 0, err
	}
	e, err := c.kv.Get(ctx, lockKey(tenant, connectionID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read sync lock: %w", err)
	}
	var l syncLock
	if err := json.Unmarshal(e.Value(), &l); err != nil {
		return nil, 0, fmt.Errorf("decode sync lock: %w", err)
	}
	return &l, e.Revision(), nil
}
