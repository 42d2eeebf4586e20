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
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/telemetry"
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
	// Tracing traces each job as an "ingest" span, a child of the request
	// that queued it, with fetch, map and publish spans per BatchSize
	// rows. Nil: no spans.
	Tracing trace.TracerProvider `yaml:"-"`
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
	if c.Tracing == nil {
		c.Tracing = noop.NewTracerProvider()
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
	tracer   trace.Tracer
}

// New returns an ingester. notify, if not nil, is called after each stored
// job update (for live views); it must not block.
func New(cfg Config, pub *streams.Publisher, jobs *streams.JobStore, mappings MappingSource, log *slog.Logger, notify func(*streams.Job)) *Ingester {
	cfg.defaults()
	if notify == nil {
		notify = func(*streams.Job) {}
	}
	return &Ingester{cfg: cfg, pub: pub, jobs: jobs, mappings: mappings, log: log.With("component", "filesource"),
		queue: make(chan *streams.Job, 4096), notify: notify, tracer: cfg.Tracing.Tracer(telemetry.Scope)}
}

// ErrQueueFull is returned when too many jobs wait.
var ErrQueueFull = errors.New("too many ingestion jobs are queued; retry later")

// IngestFile validates the request, stores a queued job and returns its id.
// The span in ctx (the upload request's, when any) becomes the parent of
// the job's spans.
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
		Traceparent: telemetry.Traceparent(trace.SpanContextFromContext(ctx)), Errors: []streams.RowError{}, CreatedAt: time.Now().UTC()}
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
	ctx, span := in.tracer.Start(telemetry.Parent(ctx, j.Traceparent, j.TraceID), "ingest", trace.WithAttributes(
		attribute.String("autonomos.tenant", j.Tenant), attribute.String("autonomos.job_id", j.ID),
		attribute.String("autonomos.system", j.System), attribute.String("autonomos.entity", j.Entity)))
	if j.TraceID == "" {
		j.TraceID = telemetry.TraceID(ctx) // a job no request asked for has a trace of its own
	}
	now := time.Now().UTC()
	j.Status, j.StartedAt = streams.JobRunning, &now
	j.RowsRead, j.Published, j.Rejected, j.Done, j.Errors = 0, 0, 0, 0, []streams.RowError{}
	in.put(ctx, j)
	err := in.ingest(ctx, j)
	telemetry.End(span, err, attribute.Int64("autonomos.records", j.RowsRead), attribute.Int64("autonomos.published", j.Published),
		attribute.Int64("autonomos.rejected", j.Rejected))
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
	attrs := trace.WithAttributes(attribute.String("autonomos.system", j.System), attribute.String("autonomos.entity", j.Entity))
	// The file goes in pages of BatchSize rows, each traced as fetch (read
	// the rows), map (into events, which carry the map span's context) and
	// publish (send, until every ack is in). Two pages are in flight: the
	// acks of one are collected after the next is read, mapped and sent, so
	// a publish span ends when its acks were collected, not when they came.
	canon, raw := in.pub.NewBatch(), in.pub.NewBatch()
	prevCanon, prevRaw := in.pub.NewBatch(), in.pub.NewBatch()
	var prevPublish trace.Span
	wait := func(canon, raw *streams.Batch, publish trace.Span) error {
		_, err := raw.Wait(ctx)
		if err == nil {
			var n int
			n, err = canon.Wait(ctx)
			j.Published += int64(n)
		}
		if publish != nil {
			telemetry.End(publish, err)
		}
		return err
	}
	// A page's rows, bad ones (bad set) too, so errors keep the file's order.
	type pageRow struct {
		Row
		bad *RowError
	}
	rows := make([]pageRow, 0, in.cfg.BatchSize)
	var rawMsgs, evMsgs []*nats.Msg
	lastProgress := time.Now()
	for eof := false; !eof; {
		_, fetch := in.tracer.Start(ctx, "fetch", attrs)
		rows = rows[:0]
		var err error
		for len(rows) < in.cfg.BatchSize {
			row, rerr := rd.Next()
			if rerr == io.EOF {
				eof = true
				break
			}
			var re *RowError
			if rerr != nil && !errors.As(rerr, &re) {
				err = fmt.Errorf("read %s: %w", j.File, rerr)
				break
			}
			j.RowsRead++
			rows = append(rows, pageRow{row, re})
		}
		telemetry.End(fetch, err, attribute.Int("autonomos.records", len(rows)))
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			continue
		}

		_, mapping := in.tracer.Start(ctx, "map", attrs)
		src.Traceparent = telemetry.Traceparent(mapping.SpanContext())
		rawMsgs, evMsgs = rawMsgs[:0], evMsgs[:0]
		rejected := j.Rejected
		for _, row := range rows {
			if re := row.bad; re != nil {
				j.RejectRow(streams.RowError{Line: re.Line, Column: re.Column, Reason: re.Reason})
				in.deadLetter(ctx, j, re.Line, nil, []streams.RowError{{Line: re.Line, Reason: re.Reason}})
				continue
			}
			rawMsg, evMsg, rowErrs := src.Messages(row.Line, row.Values)
			if len(rowErrs) > 0 {
				j.RejectRow(rowErrs...)
				in.deadLetter(ctx, j, row.Line, row.Values, rowErrs)
			}
			if rawMsg != nil {
				rawMsgs = append(rawMsgs, rawMsg)
			}
			if evMsg != nil {
				evMsgs = append(evMsgs, evMsg)
			}
		}
		telemetry.End(mapping, nil, attribute.Int("autonomos.records", len(rows)), attribute.Int64("autonomos.rejected", j.Rejected-rejected))

		_, publish := in.tracer.Start(ctx, "publish", attrs, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.Int("messaging.batch.message_count", len(evMsgs))))
		if err := send(raw, canon, rawMsgs, evMsgs); err != nil {
			telemetry.End(publish, err)
			return err
		}
		if err := wait(prevCanon, prevRaw, prevPublish); err != nil {
			telemetry.End(publish, err)
			return err
		}
		prevCanon, prevRaw, prevPublish, canon, raw = canon, raw, publish, prevCanon, prevRaw
		if time.Since(lastProgress) >= in.cfg.ProgressEvery {
			j.Done = atomic.LoadInt64(&done)
			in.put(ctx, j)
			lastProgress = time.Now()
		}
	}
	return wait(prevCanon, prevRaw, prevPublish)
}

// send hands a page's messages to the stream without waiting for acks.
func send(raw, canon *streams.Batch, rawMsgs, evMsgs []*nats.Msg) error {
	for _, m := range rawMsgs {
		if err := raw.Add(m); err != nil {
			return err
		}
	}
	for _, m := range evMsgs {
		if err := canon.Add(m); err != nil {
			return err
		}
	}
	return nil
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
