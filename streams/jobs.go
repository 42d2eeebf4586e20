package streams

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Job statuses.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
)

// MaxJobErrors bounds the row errors a job keeps.
const MaxJobErrors = 100

// RowError is one rejected input record.
type RowError struct {
	Line   int    `json:"line"`
	Column string `json:"column,omitempty"`
	Reason string `json:"reason"`
}

// Job is the state of one unit of ingestion work, kept in the jobs bucket.
type Job struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant_id"`
	Kind   string `json:"kind"` // filesource, sync
	// Mode of a sync: "" (incremental, from the stored cursors) or
	// "reconcile" (a full read that also finds records the source no
	// longer has).
	Mode         string     `json:"mode,omitempty"`
	ConnectionID string     `json:"connection_id,omitempty"`
	Status       string     `json:"status"`
	File         string     `json:"file,omitempty"`
	Entity       string     `json:"entity,omitempty"`
	System       string     `json:"system,omitempty"`
	TraceID      string     `json:"trace_id,omitempty"`
	Traceparent  string     `json:"traceparent,omitempty"` // W3C trace context of what queued the job: its spans join that trace
	RowsRead     int64      `json:"rows_read"`
	Published    int64      `json:"published"`
	Rejected     int64      `json:"rejected"`
	Deleted      int64      `json:"deleted,omitempty"` // delete events among Published
	Total        int64      `json:"total,omitempty"`   // bytes or rows when known
	Done         int64      `json:"done,omitempty"`    // progress in the unit of Total
	Errors       []RowError `json:"errors"`
	Message      string     `json:"message,omitempty"` // why a job failed
	// Children are the jobs an orchestration job follows (kind orchestration).
	Children []string `json:"children,omitempty"`
	// Logs are the job's own log lines, the last MaxJobLogs.
	Logs       []JobLog   `json:"logs,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// RejectRow counts one rejected record and keeps its errors (the first
// MaxJobErrors of the job).
func (j *Job) RejectRow(errs ...RowError) {
	j.Rejected++
	for _, e := range errs {
		if len(j.Errors) < MaxJobErrors {
			j.Errors = append(j.Errors, e)
		}
	}
}

// MaxJobLogs bounds the log lines a job keeps.
const MaxJobLogs = 200

// JobLog is one line of a job's log.
type JobLog struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"` // info, warn, error
	Message string    `json:"message"`
}

// Log appends a log line, keeping the last MaxJobLogs.
func (j *Job) Log(level, format string, args ...any) {
	j.Logs = append(j.Logs, JobLog{Time: time.Now().UTC(), Level: level, Message: fmt.Sprintf(format, args...)})
	if n := len(j.Logs); n > MaxJobLogs {
		j.Logs = append(j.Logs[:0:0], j.Logs[n-MaxJobLogs:]...)
	}
}

// Finished reports whether the job reached a final status.
func (j *Job) Finished() bool {
	return j.Status == JobSucceeded || j.Status == JobFailed || j.Status == JobCancelled
}

// NewID returns a random 128-bit id in hex.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ErrNotFound is returned for a missing job (or one of another tenant).
var ErrNotFound = errors.New("not found")

// JobStore keeps jobs in the jobs bucket, keyed <tenant>.<id>. It is safe
// for concurrent use.
type JobStore struct {
	kv jetstream.KeyValue
}

// OpenJobStore binds the jobs bucket.
func OpenJobStore(ctx context.Context, js jetstream.JetStream) (*JobStore, error) {
	kv, err := js.KeyValue(ctx, BucketJobs)
	if err != nil {
		return nil, fmt.Errorf("jobs bucket: %w", err)
	}
	return &JobStore{kv: kv}, nil
}

func jobKey(tenant, id string) (string, error) {
	if !ValidToken(tenant) || !ValidToken(id) {
		return "", ErrNotFound
	}
	return tenant + "." + id, nil
}

// Put stores the job, retrying passing failures (see Batch.Wait) for up to
// PublishRetryFor while ctx allows.
func (s *JobStore) Put(ctx context.Context, j *Job) error {
	k, err := jobKey(j.Tenant, j.ID)
	if err != nil {
		return fmt.Errorf("job key %q/%q: invalid", j.Tenant, j.ID)
	}
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	// A job's final state must land even when the bucket's leader is being
	// elected again (a cluster node died): passing failures are retried.
	deadline, backoff := time.Now().Add(PublishRetryFor), 100*time.Millisecond
	for {
		_, err := s.kv.Put(ctx, k, b)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) || !(retriable(err) || errors.Is(err, context.DeadlineExceeded)) {
			return fmt.Errorf("store job %s: %w", j.ID, err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("store job %s: %w", j.ID, ctx.Err())
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// Get returns a tenant's job; ErrNotFound when it is absent or another
// tenant's.
func (s *JobStore) Get(ctx context.Context, tenant, id string) (*Job, error) {
	k, err := jobKey(tenant, id)
	if err != nil {
		return nil, err
	}
	e, err := s.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get job %s: %w", id, err)
	}
	var j Job
	if err := json.Unmarshal(e.Value(), &j); err != nil {
		return nil, fmt.Errorf("decode job %s: %w", id, err)
	}
	return &j, nil
}

// Unfinished returns every tenant's queued or running jobs (for resuming
// after a restart).
func (s *JobStore) Unfinished(ctx context.Context) ([]*Job, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	var out []*Job
	for k := range lister.Keys() {
		tenant, id, _ := strings.Cut(k, ".")
		j, err := s.Get(ctx, tenant, id)
		if errors.Is(err, ErrNotFound) {
			continue // removed since the listing, or not a job key
		}
		if err != nil {
			return nil, err
		}
		if !j.Finished() {
			out = append(out, j)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].CreatedAt.Before(out[b].CreatedAt) })
	return out, nil
}

// List returns a tenant's jobs, newest first, at most limit.
func (s *JobStore) List(ctx context.Context, tenant string, limit int) ([]*Job, error) {
	if !ValidToken(tenant) {
		return nil, nil
	}
	lister, err := s.kv.ListKeysFiltered(ctx, tenant+".*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	var out []*Job
	for k := range lister.Keys() {
		_, id, _ := strings.Cut(k, ".")
		j, err := s.Get(ctx, tenant, id)
		if err != nil {
			continue
		}
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].CreatedAt.After(out[b].CreatedAt) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
