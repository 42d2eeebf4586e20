package filesource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/streams"
)

// MappingSource resolves the mapping of a tenant's system and entity.
// Implementations are safe for concurrent use.
type MappingSource interface {
	ForEntity(ctx context.Context, tenant, system string, e canonical.Entity) (*canonical.Mapping, error)
}

// Config tunes the ingester.
type Config struct {
	// Workers is how many files are ingested at once (default 2).
	Workers int `yaml:"workers"`
	// BatchSize is how many records are published before waiting for
	// their acks (default 1000).
	BatchSize int `yaml:"batch_size"`
	// ProgressEvery bounds how often job progress is stored (default 500ms).
	ProgressEvery time.Duration `yaml:"progress_every"`
	// ConnectionID is the source connection of uploaded files (default "filesource").
	ConnectionID string `yaml:"connection_id"`
}

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 500 * time.Millisecond
	}
	if c.ConnectionID == "" {
		c.ConnectionID = "filesource"
	}
}

// Request asks for one file to be ingested.
type Request struct {
	Tenant  string
	Entity  canonical.Entity
	System  string // default "filesource"
	Path    string // the file; the ingester owns it and removes it when done
	Name    string // the client's file name, for messages
	TraceID string
}

// Ingester runs file ingestion jobs. IngestFile queues a job; Run works the
// queue until its context ends. Unfinished jobs of an earlier process are
// re-run from the start when Run begins (safe: event ids are deterministic).
type Ingester struct {
	cfg      Config
	pub      *streams.Publisher
	jobs     *streams.JobStore
	mappings MappingSource
	log      *slog.Logger
	queue    chan *streams.Job
	notify   func(*streams.Job)
	running  atomic.Bool
}

// New returns an ingester. notify, if not nil, is called after each stored
// job update (for live views); it must not block.
func New(cfg Config, pub *streams.Publisher, jobs *streams.JobStore, mappings MappingSource, log *slog.Logger, notify func(*streams.Job)) *Ingester {
	cfg.defaults()
	if notify == nil {
		notify = func(*streams.Job) {}
	}
	return &Ingester{cfg: cfg, pub: pub, jobs: jobs, mappings: mappings, log: log.With("component", "filesource"),
		queue: make(chan *streams.Job, 4096), notify: notify}
}

// ErrQueueFull is returned when too many jobs wait.
var ErrQueueFull = errors.New("too many ingestion jobs are queued; retry later")

// IngestFile validates the request, stores a queued job and returns its id.
func (in *Ingester) IngestFile(ctx context.Context, req Request) (string, error) {
	if req.System == "" {
		req.System = "filesource"
	}
	if !streams.ValidToken(req.Tenant) {
		return "", fmt.Errorf("invalid tenant %q", req.Tenant)
	}
	if !streams.ValidToken(req.System) {
		return "", &canonical.FieldError{Field: "system", Reason: fmt.Sprintf("invalid system %q: want 1-64 of [a-z0-9_-]", req.System)}
	}
	if _, err := in.mappings.ForEntity(ctx, req.Tenant, req.System, req.Entity); err != nil {
		return "", &canonical.FieldError{Field: "system", Reason: err.Error()}
	}
	j := &streams.Job{ID: streams.NewID(), Tenant: req.Tenant, Kind: "filesource", ConnectionID: in.cfg.ConnectionID,
		Status: streams.JobQueued, File: req.Path, Entity: string(req.Entity), System: req.System, TraceID: req.TraceID,
		Errors: []streams.RowError{}, CreatedAt: time.Now().UTC()}
	if fi, err := os.Stat(req.Path); err == nil {
		j.Total = fi.Size()
	} else {
		return "", fmt.Errorf("file %s: %w", req.Name, err)
	}
	if err := in.jobs.Put(ctx, j); err != nil {
		return "", err
	}
	// Notify before the job is handed to a worker, which owns it after.
	cp := *j
	select {
	case in.queue <- j:
	default:
		j.Status, j.Message = streams.JobFailed, ErrQueueFull.Error()
		_ = in.jobs.Put(ctx, j)
		return "", ErrQueueFull
	}
	in.notify(&cp)
	return j.ID, nil
}

// Run works the queue with Config.Workers goroutines until ctx ends, and
// returns nil then. It first re-queues unfinished jobs of an earlier run.
func (in *Ingester) Run(ctx context.Context) error {
	if !in.running.CompareAndSwap(false, true) {
		return errors.New("filesource: Run called twice")
	}
	left, err := in.jobs.Unfinished(ctx)
	if err != nil {
		return err
	}
	for _, j := range left {
		if j.Kind != "filesource" {
			continue
		}
		if _, err := os.Stat(j.File); err != nil {
			now := time.Now().UTC()
			j.Status, j.Message, j.FinishedAt = streams.JobFailed, "the uploaded file is gone after a restart; upload it again", &now
			_ = in.jobs.Put(ctx, j)
			continue
		}
		in.log.Info("resuming job after restart", "job_id", j.ID, "tenant", j.Tenant)
		select {
		case in.queue <- j:
		default:
		}
	}
	done := make(chan struct{})
	for i := 0; i < in.cfg.Workers; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-in.queue:
					in.run(ctx, j)
				}
			}
		}()
	}
	for i := 0; i < in.cfg.Workers; i++ {
		<-done
	}
	return nil
}

// run ingests one job's file and stores its final state. A job cut short by
// shutdown stays "running" and is resumed by the next Run.
func (in *Ingester) run(ctx context.Context, j *streams.Job) {
	now := time.Now().UTC()
	j.Status, j.StartedAt = streams.JobRunning, &now
	j.RowsRead, j.Published, j.Rejected, j.Done, j.Errors = 0, 0, 0, 0, []streams.RowError{}
	in.put(ctx, j)
	err := in.ingest(ctx, j)
	if ctx.Err() != nil {
		return
	}
	fin := time.Now().UTC()
	j.FinishedAt = &fin
	if err != nil {
		j.Status, j.Message = streams.JobFailed, err.Error()
		in.log.Warn("file ingest failed", "job_id", j.ID, "tenant", j.Tenant, "error", err)
	} else {
		j.Status = streams.JobSucceeded
		j.Done = j.Total
		in.log.Info("file ingested", "job_id", j.ID, "tenant", j.Tenant, "rows_read", j.RowsRead,
			"published", j.Published, "rejected", j.Rejected, "seconds", fin.Sub(*j.StartedAt).Seconds())
	}
	in.put(context.WithoutCancel(ctx), j)
	os.Remove(j.File)
}

func (in *Ingester) put(ctx context.Context, j *streams.Job) {
	if err := in.jobs.Put(ctx, j); err != nil {
		in.log.Warn("store job", "job_id", j.ID, "error", err)
		return
	}
	in.notify(j)
}

type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	atomic.AddInt64(c.n, int64(n))
	return n, err
}

func (in *Ingester) ingest(ctx context.Context, j *streams.Job) error {
	m, err := in.mappings.ForEntity(ctx, j.Tenant, j.System, canonical.Entity(j.Entity))
	if err != nil {
		return err
	}
	f, err := os.Open(j.File)
	if err != nil {
		return fmt.Errorf("open upload: %w", err)
	}
	defer f.Close()
	var done int64
	rd, err := NewReader(countingReader{f, &done})
	if err != nil {
		j.RejectRow(streams.RowError{Line: 1, Reason: err.Error()})
		return err
	}
	src := connectors.Emitter{Tenant: j.Tenant, System: j.System, ConnectionID: j.ConnectionID, TraceID: j.TraceID, Mapping: m}
	// Two batches in flight: the acks of one are awaited while the next is
	// published, so the file is read and mapped while the stream stores.
	canon, raw := in.pub.NewBatch(), in.pub.NewBatch()
	prevCanon, prevRaw := in.pub.NewBatch(), in.pub.NewBatch()
	wait := func(canon, raw *streams.Batch) error {
		if _, err := raw.Wait(ctx); err != nil {
			return err
		}
		n, err := canon.Wait(ctx)
		j.Published += int64(n)
		return err
	}
	flush := func() error {
		if err := wait(prevCanon, prevRaw); err != nil {
			return err
		}
		prevCanon, prevRaw, canon, raw = canon, raw, prevCanon, prevRaw
		return nil
	}
	lastProgress := time.Now()
	for {
		row, err := rd.Next()
		if err == io.EOF {
			break
		}
		var re *RowError
		if errors.As(err, &re) {
			j.RowsRead++
			j.RejectRow(streams.RowError{Line: re.Line, Column: re.Column, Reason: re.Reason})
			in.deadLetter(ctx, j, re.Line, nil, []streams.RowError{{Line: re.Line, Reason: re.Reason}})
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", j.File, err)
		}
		j.RowsRead++
		rawMsg, evMsg, rowErrs := src.Messages(row.Line, row.Values)
		if len(rowErrs) > 0 {
			j.RejectRow(rowErrs...)
			in.deadLetter(ctx, j, row.Line, row.Values, rowErrs)
		}
		if rawMsg != nil {
			if err := raw.Add(rawMsg); err != nil {
				return err
			}
		}
		if evMsg != nil {
			if err := canon.Add(evMsg); err != nil {
				return err
			}
		}
		if canon.Len() >= in.cfg.BatchSize {
			if err := flush(); err != nil {
				return err
			}
			if time.Since(lastProgress) >= in.cfg.ProgressEvery {
				j.Done = atomic.LoadInt64(&done)
				in.put(ctx, j)
				lastProgress = time.Now()
			}
		}
	}
	if err := wait(prevCanon, prevRaw); err != nil {
		return err
	}
	return wait(canon, raw)
}

func (in *Ingester) deadLetter(ctx context.Context, j *streams.Job, line int, values map[string]any, errs []streams.RowError) {
	body, _ := json.Marshal(map[string]any{"file": j.File, "line": line, "record": values, "errors": errs})
	reason := ""
	for i, e := range errs {
		if i > 0 {
			reason += "; "
		}
		reason += e.Reason
	}
	err := in.pub.PublishDLQ(ctx, streams.DeadLetter{Tenant: j.Tenant, Stage: "mapping", Reason: fmt.Sprintf("line %d: %s", line, reason),
		TraceID: j.TraceID, Data: body, Attempts: 1, Header: nats.Header{"Autonomos-Job": []string{j.ID}, "Autonomos-Line": []string{strconv.Itoa(line)}}})
	if err != nil {
		in.log.Warn("dead-letter a bad row", "job_id", j.ID, "line", line, "error", err)
	}
}
