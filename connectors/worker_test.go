package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
)

// fastRetries keeps retry delays short in tests.
var fastRetries = WorkerConfig{Backoff: []time.Duration{20 * time.Millisecond, 40 * time.Millisecond}, ProgressEvery: time.Millisecond}

func TestQueueSyncOnePerConnection(t *testing.T) {
	l := newLifecycle(t)
	ctx := testCtx(t)
	a := l.create(t, "acme", "a", "")
	b := l.create(t, "acme", "b", "")
	first, err := l.jobs.QueueSync(ctx, "acme", a.ID, "4bf92f3577b34da6a3ce929d0e0e4736")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.jobs.QueueSync(ctx, "acme", a.ID, ""); !errors.Is(err, ErrSyncActive) || !strings.Contains(err.Error(), first) {
		t.Fatalf("second sync: %v, want ErrSyncActive naming %s", err, first)
	}
	if _, err := l.jobs.QueueSync(ctx, "acme", b.ID, ""); err != nil {
		t.Fatalf("another connection: %v", err)
	}
	if _, err := l.jobs.QueueSync(ctx, "acme", "nope", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown connection: %v", err)
	}
	job, err := l.jobs.Get(ctx, "acme", first)
	if err != nil || job.Kind != JobKindSync || job.ConnectionID != a.ID || job.Status != streams.JobQueued ||
		job.System != fakeSystem || job.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("job %+v, %v", job, err)
	}
	if got, _ := l.conns.Get(ctx, "acme", a.ID); got.LastJobID != first {
		t.Fatalf("last_job_id %q", got.LastJobID)
	}
	if n := l.streamMsgs(t, streams.StreamJobs); n != 2 {
		t.Fatalf("JOBS holds %d work items, want 2", n)
	}

	// Concurrent requests: exactly one wins.
	c := l.create(t, "acme", "c", "")
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, busy := 0, 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := l.jobs.QueueSync(ctx, "acme", c.ID, "")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, ErrSyncActive):
				busy++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || busy != 7 {
		t.Fatalf("%d queued, %d refused; want 1 and 7", won, busy)
	}
}

func TestWorkerSyncsThroughTheRunner(t *testing.T) {
	l := newLifecycle(t)
	ctx := testCtx(t)
	live, err := l.NC.SubscribeSync("live.acme.job")
	if err != nil {
		t.Fatal(err)
	}
	v := l.create(t, "acme", "crm", "")
	l.startWorker(t, fastRetries)

	jobID, err := l.jobs.QueueSync(ctx, "acme", v.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	job := l.waitJob(t, "acme", jobID, streams.JobSucceeded)
	if job.RowsRead != 6 || job.Published != 6 || job.Rejected != 0 || job.StartedAt == nil || job.FinishedAt == nil {
		t.Fatalf("job %+v", job)
	}
	if n := l.streamMsgs(t, streams.StreamCanonical); n != 6 {
		t.Fatalf("CANONICAL holds %d, want 6", n)
	}
	if c, _ := l.runner.Cursor(ctx, "acme", v.ID, "account"); c != "3" {
		t.Fatalf("cursor %q, want 3", c)
	}
	got, _ := l.conns.Get(ctx, "acme", v.ID)
	if got.LastSyncAt == nil || got.LastJobID != jobID || got.Status != StatusActive || got.LastError != "" {
		t.Fatalf("connection %+v", got)
	}
	// Progress went out live, ending with the final state.
	var statuses []string
	for {
		m, err := live.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("live job updates %v: %v", statuses, err)
		}
		var u struct {
			Type string      `json:"type"`
			Job  streams.Job `json:"job"`
		}
		if err := json.Unmarshal(m.Data, &u); err != nil || u.Type != EventTypeJobUpdated || u.Job.ID != jobID {
			t.Fatalf("live update %s: %v", m.Data, err)
		}
		statuses = append(statuses, u.Job.Status)
		if u.Job.Status == streams.JobSucceeded {
			break
		}
	}
	if statuses[0] != streams.JobQueued || !containsStr(statuses, streams.JobRunning) {
		t.Fatalf("live statuses %v", statuses)
	}

	// The lock is released: the next sync queues, and reads only what is new.
	next, err := l.jobs.QueueSync(ctx, "acme", v.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if job := l.waitJob(t, "acme", next, streams.JobSucceeded); job.RowsRead != 0 {
		t.Fatalf("second sync read %d rows from the checkpoint, want 0", job.RowsRead)
	}
	if n := l.streamMsgs(t, streams.StreamCanonical); n != 6 {
		t.Fatalf("CANONICAL holds %d after the second sync, want 6", n)
	}
}

func TestWorkerOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		src        func(*fakeSource)
		wantJob    string
		wantConn   Status
		wantMsg    string
		wantStarts int // syncs started (attempts)
		wantEvents int // status events after creation
	}{
		{"transient error retried then succeeds", func(s *fakeSource) { s.transient = 2 }, streams.JobSucceeded, StatusActive, "", 3, 0},
		{"transient errors exhaust the attempts", func(s *fakeSource) { s.transient = 100 }, streams.JobFailed, StatusActive, "failed after 3 attempts", 3, 0},
		{"permanent error fails at once", func(s *fakeSource) { s.permanent = true }, streams.JobFailed, StatusFailed, "the token was revoked", 1, 1},
		{"a panicking connector fails at once", func(s *fakeSource) { s.panics = true }, streams.JobFailed, StatusFailed, "panicked", 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLifecycle(t)
			ctx := testCtx(t)
			l.src.set(tc.src)
			v := l.create(t, "acme", "crm", "")
			l.startWorker(t, fastRetries)
			jobID, err := l.jobs.QueueSync(ctx, "acme", v.ID, "")
			if err != nil {
				t.Fatal(err)
			}
			job := l.waitJob(t, "acme", jobID, tc.wantJob)
			if !strings.Contains(job.Message, tc.wantMsg) {
				t.Fatalf("job message %q, want %q", job.Message, tc.wantMsg)
			}
			if got := l.src.startsOf(v.ID); got != tc.wantStarts {
				t.Fatalf("%d attempts, want %d", got, tc.wantStarts)
			}
			got, _ := l.conns.Get(ctx, "acme", v.ID)
			if got.Status != tc.wantConn {
				t.Fatalf("connection %s (%s), want %s", got.Status, got.StatusReason, tc.wantConn)
			}
			if tc.wantJob == streams.JobFailed && (got.LastError == "" || got.LastSyncAt != nil) {
				t.Fatalf("failed connection %+v", got)
			}
			if tc.wantJob == streams.JobSucceeded && (got.LastSyncAt == nil || job.Published != 6) {
				t.Fatalf("after success: connection %+v, job %+v", got, job)
			}
			if tc.wantConn == StatusFailed && !strings.Contains(got.StatusReason, tc.wantMsg) {
				t.Fatalf("status reason %q", got.StatusReason)
			}
			evs, _ := l.events.List(ctx, "acme", 0, 0)
			if len(evs) != 1+tc.wantEvents {
				t.Fatalf("%d status events, want %d", len(evs), 1+tc.wantEvents)
			}
			// Every ending releases the lock.
			if _, err := l.jobs.QueueSync(ctx, "acme", v.ID, ""); err != nil {
				t.Fatalf("queue after the job ended: %v", err)
			}
		})
	}
}

func TestSuccessfulSyncRecoversAFailedConnection(t *testing.T) {
	l := newLifecycle(t)
	ctx := testCtx(t)
	v := l.create(t, "acme", "crm", "")
	if _, err := l.conns.SetStatus(ctx, "acme", v.ID, StatusFailed, "bad token"); err != nil {
		t.Fatal(err)
	}
	l.startWorker(t, fastRetries)
	jobID, err := l.jobs.QueueSync(ctx, "acme", v.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	l.waitJob(t, "acme", jobID, streams.JobSucceeded)
	if got, _ := l.conns.Get(ctx, "acme", v.ID); got.Status != StatusActive || got.StatusReason != "sync succeeded" {
		t.Fatalf("connection %s (%s)", got.Status, got.StatusReason)
	}
}

func TestTwoWorkersShareTheConsumer(t *testing.T) {
	l := newLifecycle(t)
	ctx := testCtx(t)
	l.startWorker(t, fastRetries)
	l.startWorker(t, fastRetries)
	const n = 8
	jobs := map[string]string{} // job → connection
	for i := 0; i < n; i++ {
		v := l.create(t, "acme", fmt.Sprintf("crm%d", i), "")
		id, err := l.jobs.QueueSync(ctx, "acme", v.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		jobs[id] = v.ID
	}
	for id, conn := range jobs {
		if job := l.waitJob(t, "acme", id, streams.JobSucceeded); job.Published != 6 {
			t.Fatalf("job %s published %d", id, job.Published)
		}
		if s := l.src.startsOf(conn); s != 1 {
			t.Fatalf("connection %s synced %d times, want once", conn, s)
		}
	}
	if got := l.streamMsgs(t, streams.StreamCanonical); got != 6*n {
		t.Fatalf("CANONICAL holds %d, want %d", got, 6*n)
	}
	streamstest.Eventually(t, 10*time.Second, func() error {
		if got := l.streamMsgs(t, streams.StreamJobs); got != 0 {
			return fmt.Errorf("JOBS still holds %d work items", got)
		}
		return nil
	})
}

func TestCancel(t *testing.T) {
	t.Run("a running sync stops", func(t *testing.T) {
		l := newLifecycle(t)
		ctx := testCtx(t)
		l.src.set(func(s *fakeSource) { s.block = true })
		v := l.create(t, "acme", "crm", "")
		l.startWorker(t, fastRetries)
		jobID, err := l.jobs.QueueSync(ctx, "acme", v.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-l.src.blocked:
		case <-ctx.Done():
			t.Fatal("the sync never reached its second page")
		}
		// The first page's progress is on the job before the blocking fetch.
		streamstest.Eventually(t, 5*time.Second, func() error {
			j, err := l.store.Get(ctx, "acme", jobID)
			if err != nil {
				return err
			}
			if j.Status != streams.JobRunning || j.RowsRead != 2 {
				return fmt.Errorf("job %s with rows_read %d", j.Status, j.RowsRead)
			}
			return nil
		})
		asked := time.Now()
		if err := l.jobs.Cancel(ctx, "acme", jobID); err != nil {
			t.Fatal(err)
		}
		job := l.waitJob(t, "acme", jobID, streams.JobCancelled)
		if took := time.Since(asked); took > 5*time.Second {
			t.Fatalf("cancel took %s", took)
		}
		if job.Published != 2 || job.FinishedAt == nil {
			t.Fatalf("cancelled job %+v", job)
		}
		if err := l.jobs.Cancel(ctx, "acme", jobID); !errors.Is(err, ErrJobFinished) {
			t.Fatalf("cancel twice: %v", err)
		}
		l.src.set(func(s *fakeSource) { s.block = false })
		next, err := l.jobs.QueueSync(ctx, "acme", v.ID, "")
		if err != nil {
			t.Fatalf("queue after cancel: %v", err)
		}
		if job := l.waitJob(t, "acme", next, streams.JobSucceeded); job.RowsRead != 4 {
			t.Fatalf("resumed sync read %d rows, want the 4 after the checkpoint", job.RowsRead)
		}
	})
	t.Run("a queued sync never starts", func(t *testing.T) {
		l := newLifecycle(t)
		ctx := testCtx(t)
		v := l.create(t, "acme", "crm", "")
		jobID, err := l.jobs.QueueSync(ctx, "acme", v.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.jobs.Cancel(ctx, "acme", jobID); err != nil {
			t.Fatal(err)
		}
		if j, _ := l.store.Get(ctx, "acme", jobID); j.Status != streams.JobCancelled {
			t.Fatalf("job %s", j.Status)
		}
		next, err := l.jobs.QueueSync(ctx, "acme", v.ID, "")
		if err != nil {
			t.Fatalf("queue after cancel: %v", err)
		}
		l.startWorker(t, fastRetries)
		l.waitJob(t, "acme", next, streams.JobSucceeded)
		if s := l.src.startsOf(v.ID); s != 1 {
			t.Fatalf("%d syncs ran, want only the second", s)
		}
		if j, _ := l.store.Get(ctx, "acme", jobID); j.Status != streams.JobCancelled || j.StartedAt != nil {
			t.Fatalf("cancelled job %+v", j)
		}
	})
	t.Run("deleting the connection cancels its sync", func(t *testing.T) {
		l := newLifecycle(t)
		ctx := testCtx(t)
		v := l.create(t, "acme", "crm", "")
		jobID, err := l.jobs.QueueSync(ctx, "acme", v.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.conns.Delete(ctx, "acme", v.ID); err != nil {
			t.Fatal(err)
		}
		l.startWorker(t, fastRetries)
		l.waitJob(t, "acme", jobID, streams.JobCancelled)
		if s := l.src.startsOf(v.ID); s != 0 {
			t.Fatalf("a deleted connection was synced %d times", s)
		}
	})
}

func TestShutdownHandsTheSyncBack(t *testing.T) {
	l := newLifecycle(t)
	ctx := testCtx(t)
	l.src.set(func(s *fakeSource) { s.block = true })
	v := l.create(t, "acme", "crm", "")
	stop := l.startWorker(t, fastRetries)
	jobID, err := l.jobs.QueueSync(ctx, "acme", v.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	<-l.src.blocked
	stop()
	if job := l.waitJob(t, "acme", jobID, streams.JobQueued); !strings.Contains(job.Message, "shutdown") {
		t.Fatalf("interrupted job: %+v", job)
	}
	l.src.set(func(s *fakeSource) { s.block = false })
	l.startWorker(t, fastRetries)
	job := l.waitJob(t, "acme", jobID, streams.JobSucceeded)
	if job.Published != 6 {
		t.Fatalf("published %d over both runs, want 6", job.Published)
	}
	if n := l.streamMsgs(t, streams.StreamCanonical); n != 6 {
		t.Fatalf("CANONICAL holds %d, want 6", n)
	}
}

func TestScheduler(t *testing.T) {
	l := newLifecycle(t)
	ctx := testCtx(t)
	due := l.create(t, "acme", "due", "1m")
	paused := l.create(t, "acme", "paused", "1m")
	manual := l.create(t, "acme", "manual", "")
	notYet := l.create(t, "acme", "not-yet", "1h")
	failed := l.create(t, "globex", "failed", "1m")
	if _, err := l.conns.Pause(ctx, "acme", paused.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := l.conns.SetStatus(ctx, "globex", failed.ID, StatusFailed, "401"); err != nil {
		t.Fatal(err)
	}
	clock := time.Now().Add(2 * time.Minute) // every 1m connection is due
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// Two schedulers, as two instances would run them.
	for i := 0; i < 2; i++ {
		s := NewScheduler(SchedulerConfig{Tick: 20 * time.Millisecond, Now: func() time.Time { return clock }}, l.jobs, l.log)
		go func() { done <- s.Run(sctx) }()
	}
	streamstest.Eventually(t, 10*time.Second, func() error {
		if got, _ := l.conns.Get(ctx, "acme", due.ID); got.LastJobID == "" {
			return errors.New("the due connection was not queued")
		}
		return nil
	})
	cancel()
	for i := 0; i < 2; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	jobs, _ := l.store.List(ctx, "acme", 0)
	if len(jobs) != 1 || jobs[0].ConnectionID != due.ID {
		t.Fatalf("jobs %+v, want one of the due connection", jobs)
	}
	for _, c := range []struct{ tenant, id string }{{"acme", paused.ID}, {"acme", manual.ID}, {"acme", notYet.ID}, {"globex", failed.ID}} {
		if got, _ := l.conns.Get(ctx, c.tenant, c.id); got.LastJobID != "" {
			t.Fatalf("%s was queued", got.Name)
		}
	}
}

func TestDue(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	tests := []struct {
		name string
		sc   storedConnection
		want bool
	}{
		{"created long ago", storedConnection{Status: StatusActive, Interval: "5m", CreatedAt: *ago(time.Hour)}, true},
		{"just created", storedConnection{Status: StatusActive, Interval: "5m", CreatedAt: *ago(time.Minute)}, false},
		{"synced recently", storedConnection{Status: StatusActive, Interval: "5m", CreatedAt: *ago(time.Hour), LastSyncAt: ago(time.Minute)}, false},
		{"queued recently", storedConnection{Status: StatusActive, Interval: "5m", CreatedAt: *ago(time.Hour), LastQueuedAt: ago(time.Minute)}, false},
		{"synced an interval ago", storedConnection{Status: StatusActive, Interval: "5m", CreatedAt: *ago(time.Hour), LastSyncAt: ago(5 * time.Minute)}, true},
		{"manual only", storedConnection{Status: StatusActive, CreatedAt: *ago(time.Hour)}, false},
		{"paused", storedConnection{Status: StatusPaused, Interval: "5m", CreatedAt: *ago(time.Hour)}, false},
		{"drifted", storedConnection{Status: StatusDrifted, Interval: "5m", CreatedAt: *ago(time.Hour)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := due(&tc.sc, now); got != tc.want {
				t.Fatalf("due = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWorkerConfig(t *testing.T) {
	if _, err := NewWorker(WorkerConfig{Backoff: []time.Duration{time.Second, -1}, AckWait: time.Second}, nil, nil, nil); err == nil ||
		!strings.Contains(err.Error(), "backoff[1]") || !strings.Contains(err.Error(), "ack_wait") {
		t.Fatalf("bad config: %v", err)
	}
	w, err := NewWorker(WorkerConfig{}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.cfg.MaxAttempts != 4 || w.cfg.backoff(1) != 10*time.Second || w.cfg.backoff(3) != time.Minute || w.cfg.backoff(9) != time.Minute {
		t.Fatalf("defaults %+v", w.cfg)
	}
	if cc := w.ConsumerConfig(); cc.Durable != "connector-workers" || cc.FilterSubject != "jobs.*.sync" {
		t.Fatalf("consumer %+v", cc)
	}
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
