package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/telemetry"
)

// WorkerConsumer is the durable pull consumer on JOBS that every connector
// worker of every instance shares, so each work item goes to one of them.
const WorkerConsumer = "connector-workers"

// WorkerConfig tunes a Worker.
type WorkerConfig struct {
	// Concurrency is how many syncs one worker runs at once (default 2).
	Concurrency int `yaml:"concurrency"`
	// Backoff are the delays before each retry of a sync that failed with a
	// transient error (default 10s, 30s, 60s); the last repeats.
	Backoff []time.Duration `yaml:"backoff"`
	// MaxAttempts bounds the attempts of one job (default len(Backoff)+1).
	MaxAttempts int `yaml:"max_attempts"`
	// ProgressEvery bounds how often a running job's progress is stored and
	// published (default 500ms).
	ProgressEvery time.Duration `yaml:"progress_every"`
	// AckWait is how long a taken work item may go without a sign of life
	// before JetStream hands it to another worker (default 30s); a running
	// sync signals every AckWait/3.
	AckWait time.Duration `yaml:"ack_wait"`
	// PullWait is how long one pull waits for work (default 5s).
	PullWait time.Duration `yaml:"pull_wait"`
	// Tracing makes each sync a "sync" span, a child of the request that
	// queued it (its traceparent travels in the work item), with the
	// Runner's fetch, map and publish spans below it. Nil: no spans.
	Tracing trace.TracerProvider `yaml:"-"`
}

func (c *WorkerConfig) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 2
	}
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{10 * time.Second, 30 * time.Second, 60 * time.Second}
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = len(c.Backoff) + 1
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 500 * time.Millisecond
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.PullWait <= 0 {
		c.PullWait = 5 * time.Second
	}
	if c.Tracing == nil {
		c.Tracing = noop.NewTracerProvider()
	}
}

func (c *WorkerConfig) validate() error {
	var errs []error
	for i, d := range c.Backoff {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("backoff[%d]: want a positive duration, got %s", i, d))
		}
	}
	if c.AckWait < 3*time.Second {
		errs = append(errs, fmt.Errorf("ack_wait: want at least 3s, got %s", c.AckWait))
	}
	return errors.Join(errs...)
}

func (c *WorkerConfig) backoff(failures int) time.Duration {
	if failures <= 0 {
		failures = 1
	}
	if failures > len(c.Backoff) {
		return c.Backoff[len(c.Backoff)-1]
	}
	return c.Backoff[failures-1]
}

// Worker takes sync work items from the JOBS stream (consumer
// connector-workers, shared with every other worker) and runs each through
// the Runner: it marks the job running, syncs with progress on the job and
// live, and stores the final status, retrying transient failures with
// growing delays and failing permanent ones at once. It releases the
// connection's sync lock in every ending. Run may be called once.
type Worker struct {
	cfg    WorkerConfig
	jobs   *Jobs
	runner *Runner
	id     string
	log    *slog.Logger
}

// NewWorker returns a worker; cfg gets its defaults, then is validated.
func NewWorker(cfg WorkerConfig, jobs *Jobs, runner *Runner, log *slog.Logger) (*Worker, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("connector worker config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	id := streams.NewID()[:12]
	return &Worker{cfg: cfg, jobs: jobs, runner: runner, id: id, log: log.With("component", "connector_worker", "worker", id)}, nil
}

// ConsumerConfig is the connector-workers consumer: explicit acks, no
// delivery limit (the worker counts attempts itself), sync items only.
func (w *Worker) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{Durable: WorkerConsumer, Description: "connector workers: connection syncs",
		FilterSubject: "jobs.*." + JobKindSync, AckPolicy: jetstream.AckExplicitPolicy, AckWait: w.cfg.AckWait,
		MaxDeliver: -1, DeliverPolicy: jetstream.DeliverAllPolicy}
}

// Run creates or binds the consumer and works items with Concurrency
// goroutines until ctx ends; it returns nil then. A sync interrupted by
// shutdown is handed back to the stream (another instance resumes it from
// its checkpoint).
func (w *Worker) Run(ctx context.Context) error {
	cons, err := w.jobs.js.CreateOrUpdateConsumer(ctx, streams.StreamJobs, w.ConsumerConfig())
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("consumer %s: %w", WorkerConsumer, err)
	}
	w.log.Info("connector worker started", "concurrency", w.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := 0; i < w.cfg.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				pctx, cancel := context.WithTimeout(ctx, w.cfg.PullWait)
				msg, err := cons.Next(jetstream.FetchContext(pctx))
				cancel()
				if err != nil {
					if ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) &&
						!errors.Is(err, context.Canceled) && !errors.Is(err, jetstream.ErrNoMessages) {
						w.log.Warn("pull a work item", "error", err)
						select {
						case <-ctx.Done():
						case <-time.After(time.Second):
						}
					}
					continue
				}
				w.handle(ctx, msg)
			}
		}()
	}
	wg.Wait()
	w.log.Info("connector worker stopped")
	return nil
}

// Reasons a sync's context ends.
var (
	errCancelRequested = errors.New("cancelled by a user")
	errLockLost        = errors.New("the sync lock was released (the connection was deleted or the job cancelled)")
)

// handle runs one work item to an ending and acknowledges it accordingly.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	// Bookkeeping outlives shutdown so an interrupted job is left truthful.
	bg := context.WithoutCancel(ctx)
	var it workItem
	if err := json.Unmarshal(msg.Data(), &it); err != nil || !streams.ValidToken(it.Tenant) || !streams.ValidToken(it.JobID) {
		w.log.Warn("dropping a malformed work item", "subject", msg.Subject())
		_ = msg.Term()
		return
	}
	log := w.log.With("tenant", it.Tenant, "job_id", it.JobID, "connection_id", it.ConnectionID, "trace_id", it.TraceID)
	job, err := w.jobs.store.Get(ctx, it.Tenant, it.JobID)
	if errors.Is(err, ErrNotFound) {
		log.Warn("dropping a work item without its job")
		_ = msg.Term()
		return
	}
	if err != nil {
		log.Warn("load job", "error", err)
		_ = msg.NakWithDelay(w.cfg.backoff(1))
		return
	}
	if job.Finished() { // cancelled while queued
		_ = msg.Ack()
		return
	}

	// Claim: queued → running under compare-and-set, unless cancelled.
	var cancelled bool
	lock, err := w.jobs.updateLock(ctx, it.Tenant, it.ConnectionID, it.JobID, func(l *syncLock) {
		cancelled = l.Cancel
		if !l.Cancel {
			l.State, l.Worker, l.Since = lockRunning, w.id, time.Now().UTC()
		}
	})
	switch {
	case err != nil:
		log.Warn("claim sync lock", "error", err)
		_ = msg.NakWithDelay(w.cfg.backoff(1))
		return
	case lock == nil:
		// The lock was released without this job (connection deleted,
		// job cancelled): nothing may run.
		if err := w.jobs.finishIfOpen(bg, it.Tenant, it.JobID, errLockLost.Error()); err != nil && !errors.Is(err, ErrJobFinished) {
			log.Warn("end job", "error", err)
		}
		_ = msg.Ack()
		return
	case cancelled:
		w.end(bg, msg, job, streams.JobCancelled, errCancelRequested.Error(), log)
		return
	}
	attempt := lock.Failures + 1

	now := time.Now().UTC()
	job.Status = streams.JobRunning
	if job.StartedAt == nil {
		job.StartedAt = &now
	}
	job.Message = ""
	if attempt > 1 {
		job.Message = fmt.Sprintf("attempt %d of %d", attempt, w.cfg.MaxAttempts)
	}
	if err := w.jobs.put(ctx, job); err != nil {
		log.Warn("store job", "error", err)
	}

	conn, err := w.jobs.conns.Load(ctx, it.Tenant, it.ConnectionID)
	if errors.Is(err, ErrNotFound) {
		w.end(bg, msg, job, streams.JobCancelled, "the connection was deleted", log)
		return
	}
	if err != nil && !errors.Is(err, ErrSealed) {
		w.retryOrFail(bg, msg, job, attempt, err, log)
		return
	}
	if err != nil {
		w.failPermanently(bg, msg, job, &PermanentError{Err: err}, log)
		return
	}
	con, err := w.jobs.conns.reg.New(conn, w.jobs.conns.deps)
	if err != nil {
		w.failPermanently(bg, msg, job, &PermanentError{Err: redact(err, conn.Secrets)}, log)
		return
	}
	// A connector that keeps sessions between fetches (CDC) releases them.
	if cl, ok := con.(io.Closer); ok {
		defer cl.Close()
	}

	tctx, span := w.cfg.Tracing.Tracer(telemetry.Scope).Start(telemetry.Parent(ctx, it.Traceparent, it.TraceID), "sync",
		trace.WithAttributes(attribute.String("autonomos.tenant", it.Tenant), attribute.String("autonomos.job_id", it.JobID),
			attribute.String("autonomos.connection_id", it.ConnectionID), attribute.String("autonomos.system", conn.System)))
	st, err := w.sync(tctx, msg, job, conn, con, it, log)
	telemetry.End(span, err, attribute.Int64("autonomos.records", st.RowsRead), attribute.Int64("autonomos.published", st.Published))
	switch {
	case err == nil:
		w.succeed(bg, msg, job, st, log)
	case errors.Is(err, errCancelRequested) || errors.Is(err, errLockLost):
		w.end(bg, msg, job, streams.JobCancelled, err.Error(), log)
	case ctx.Err() != nil:
		// Shutdown: hand the item back; the next worker resumes from the
		// checkpoint. This attempt does not count as a failure.
		job.Status, job.Message = streams.JobQueued, "interrupted by a shutdown; it resumes on another worker"
		_ = w.jobs.put(bg, job)
		_, _ = w.jobs.updateLock(bg, it.Tenant, it.ConnectionID, it.JobID, func(l *syncLock) { l.State, l.Worker = lockQueued, "" })
		_ = msg.Nak()
		log.Info("sync interrupted by shutdown")
	default:
		err = redact(err, conn.Secrets)
		var pe *PermanentError
		if errors.As(err, &pe) {
			w.failPermanently(bg, msg, job, err, log)
		} else {
			w.retryOrFail(bg, msg, job, attempt, err, log)
		}
	}
}

// sync runs the Runner under a context that ends on cancel (watching the
// lock), keeps the work item alive and writes progress. Its error is
// errCancelRequested or errLockLost when that ended it.
func (w *Worker) sync(ctx context.Context, msg jetstream.Msg, job *streams.Job, conn Connection, con Connector, it workItem, log *slog.Logger) (SyncStats, error) {
	sctx, stop := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop(nil) // runs before wg.Wait

	watcher, err := w.jobs.conns.kv.Watch(sctx, lockKey(it.Tenant, it.ConnectionID))
	if err != nil {
		return SyncStats{}, fmt.Errorf("watch sync lock: %w", err)
	}
	wg.Add(2)
	go func() { // cancellation
		defer wg.Done()
		defer watcher.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case e, ok := <-watcher.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue // initial values delivered
				}
				if e.Operation() != jetstream.KeyValuePut {
					stop(errLockLost)
					return
				}
				var l syncLock
				if json.Unmarshal(e.Value(), &l) != nil || l.JobID != it.JobID {
					stop(errLockLost)
					return
				}
				if l.Cancel {
					stop(errCancelRequested)
					return
				}
			}
		}
	}()
	go func() { // keep the work item ours while the sync runs
		defer wg.Done()
		t := time.NewTicker(w.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					log.Debug("signal work in progress", "error", err)
				}
			}
		}
	}()

	base := *job
	base.Errors = append([]streams.RowError(nil), job.Errors...)
	var last time.Time
	progress := func(st SyncStats) {
		applyStats(job, &base, st)
		if time.Since(last) >= w.cfg.ProgressEvery {
			last = time.Now()
			if err := w.jobs.put(ctx, job); err != nil {
				log.Debug("store job progress", "error", err)
			}
		}
	}
	st, err := func() (st SyncStats, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = &PermanentError{Err: fmt.Errorf("the %s connector panicked: %v", conn.System, p)}
			}
		}()
		if it.Mode == JobModeReconcile {
			return w.runner.Reconcile(sctx, conn, con, it.TraceID, progress)
		}
		return w.runner.Sync(sctx, conn, con, it.TraceID, progress)
	}()
	applyStats(job, &base, st)
	if err != nil {
		if cause := context.Cause(sctx); errors.Is(cause, errCancelRequested) || errors.Is(cause, errLockLost) {
			return st, cause
		}
	}
	return st, err
}

// applyStats sets a job's counts to those of earlier attempts plus st.
func applyStats(job, base *streams.Job, st SyncStats) {
	job.RowsRead = base.RowsRead + st.RowsRead
	job.Published = base.Published + st.Published
	job.Rejected = base.Rejected + st.Rejected
	job.Deleted = base.Deleted + st.Deleted
	job.Done = job.RowsRead
	job.Errors = append(append(make([]streams.RowError, 0, len(base.Errors)+len(st.Errors)), base.Errors...), st.Errors...)
	if len(job.Errors) > streams.MaxJobErrors {
		job.Errors = job.Errors[:streams.MaxJobErrors]
	}
}

// succeed records a successful sync on the job and the connection.
func (w *Worker) succeed(ctx context.Context, msg jetstream.Msg, job *streams.Job, st SyncStats, log *slog.Logger) {
	now := time.Now().UTC()
	job.Message = ""
	if _, err := w.jobs.conns.modify(ctx, job.Tenant, job.ConnectionID, func(sc *storedConnection) (*StatusEvent, error) {
		sc.LastSyncAt, sc.LastError, sc.LastJobID = &now, "", job.ID
		if job.Mode == JobModeReconcile {
			sc.LastReconcileAt = &now
		}
		if sc.Status == StatusFailed {
			return sc.setStatus(StatusActive, "sync succeeded"), nil
		}
		return nil, nil
	}); err != nil && !errors.Is(err, ErrNotFound) {
		log.Warn("record sync on the connection", "error", err)
	}
	w.end(ctx, msg, job, streams.JobSucceeded, "", log)
	log.Info("sync succeeded", "rows_read", job.RowsRead, "published", job.Published, "rejected", job.Rejected, "pages", st.Pages)
}

// failPermanently fails the job at once and marks the connection FAILED.
func (w *Worker) failPermanently(ctx context.Context, msg jetstream.Msg, job *streams.Job, err error, log *slog.Logger) {
	reason := err.Error()
	if _, err := w.jobs.conns.modify(ctx, job.Tenant, job.ConnectionID, func(sc *storedConnection) (*StatusEvent, error) {
		sc.LastError, sc.LastJobID = reason, job.ID
		return sc.setStatus(StatusFailed, reason), nil
	}); err != nil && !errors.Is(err, ErrNotFound) {
		log.Warn("record failure on the connection", "error", err)
	}
	w.end(ctx, msg, job, streams.JobFailed, reason, log)
	log.Warn("sync failed permanently", "error", reason)
}

// retryOrFail hands a transiently failed job back with a growing delay, or
// fails it after MaxAttempts (the connection keeps its status — its
// schedule tries again — and records the error).
func (w *Worker) retryOrFail(ctx context.Context, msg jetstream.Msg, job *streams.Job, attempt int, err error, log *slog.Logger) {
	if attempt < w.cfg.MaxAttempts {
		delay := w.cfg.backoff(attempt)
		var cancelled bool
		lock, lerr := w.jobs.updateLock(ctx, job.Tenant, job.ConnectionID, job.ID, func(l *syncLock) {
			cancelled = l.Cancel
			l.State, l.Worker, l.Failures = lockQueued, "", attempt
		})
		switch {
		case lerr != nil:
			log.Warn("record a failed attempt", "error", lerr)
		case lock == nil:
			w.end(ctx, msg, job, streams.JobCancelled, errLockLost.Error(), log)
			return
		case cancelled:
			w.end(ctx, msg, job, streams.JobCancelled, errCancelRequested.Error(), log)
			return
		}
		job.Status = streams.JobQueued
		job.Message = fmt.Sprintf("attempt %d of %d failed: %v; retrying in %s", attempt, w.cfg.MaxAttempts, err, delay)
		_ = w.jobs.put(ctx, job)
		_ = msg.NakWithDelay(delay)
		log.Info("sync attempt failed; retrying", "attempt", attempt, "delay", delay.String(), "error", err)
		return
	}
	reason := fmt.Sprintf("failed after %d attempts: %v", attempt, err)
	if _, err := w.jobs.conns.modify(ctx, job.Tenant, job.ConnectionID, func(sc *storedConnection) (*StatusEvent, error) {
		sc.LastError, sc.LastJobID = reason, job.ID
		return nil, nil
	}); err != nil && !errors.Is(err, ErrNotFound) {
		log.Warn("record failure on the connection", "error", err)
	}
	w.end(ctx, msg, job, streams.JobFailed, reason, log)
	log.Warn("sync failed", "attempts", attempt, "error", err)
}

// end stores the job's final status, releases the lock and removes the
// work item — in that order, so a new sync never starts before the job
// reads as ended.
func (w *Worker) end(ctx context.Context, msg jetstream.Msg, job *streams.Job, status, message string, log *slog.Logger) {
	if err := w.jobs.finish(ctx, job, status, message); err != nil {
		log.Warn("store final job status", "status", status, "error", err)
	}
	w.jobs.release(ctx, job.Tenant, job.ConnectionID, job.ID)
	if status == streams.JobFailed {
		_ = msg.Term()
	} else {
		_ = msg.Ack()
	}
}
