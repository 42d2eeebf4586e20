package connectors

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/streams"
)

// JobKindOrchestration is the kind of an orchestration job: one run of a set
// of a tenant's connection syncs.
const JobKindOrchestration = "orchestration"

// BucketOrchestrations holds each tenant's active-orchestration lock (key
// <tenant>). NewOrchestrator creates it when missing.
const BucketOrchestrations = "orchestrations"

// ErrOrchestrationActive is returned by Start while another orchestration of
// the tenant is active (the API answers 409).
var ErrOrchestrationActive = errors.New("an orchestration of this tenant is already active")

// HeaderSignature carries a webhook's signature: t=<unix seconds>,v1=<hex
// HMAC-SHA256 of "<t>.<body>" under the tenant's webhook secret>.
const HeaderSignature = "X-Autonomos-Signature"

// OrchestratorConfig tunes the orchestrator.
type OrchestratorConfig struct {
	// Poll is how often children's jobs are read (default 500ms).
	Poll time.Duration `yaml:"poll"`
	// WebhookTimeout bounds one webhook delivery (default 10s); deliveries
	// are tried 3 times at growing intervals.
	WebhookTimeout time.Duration `yaml:"webhook_timeout"`
	// WebhookKey derives each tenant's webhook secret (HMAC-SHA256 of
	// "webhook:<tenant>" under it). Required.
	WebhookKey []byte `yaml:"-"`
	// Replicas of the orchestrations bucket (3 on a 3-node cluster). Default 1.
	Replicas int `yaml:"replicas"`
}

// Orchestrator runs a tenant's connection syncs as one job: it queues each
// connection's sync through Jobs.QueueSync (one active sync per connection
// still holds; the workers retry at growing intervals), follows their jobs
// in the JobStore, keeps a bounded log on the orchestration job, and, when
// asked, POSTs the finished job to a webhook, signed. At most one
// orchestration per tenant is active, across every instance (a KV lock).
// Start may be called concurrently; Run owns the followers and returns
// after they stopped when ctx ends. Unfinished orchestrations are followed
// again by the next Run.
type Orchestrator struct {
	cfg   OrchestratorConfig
	kv    jetstream.KeyValue
	jobs  *Jobs
	conns *Connections
	store *streams.JobStore
	http  *http.Client
	log   *slog.Logger

	mu      sync.Mutex
	ctx     context.Context // Run's, nil before Run
	wg      sync.WaitGroup
	pending []*streams.Job // started before Run
}

// NewOrchestrator creates the orchestrations bucket if needed and returns the
// orchestrator.
func NewOrchestrator(ctx context.Context, cfg OrchestratorConfig, js jetstream.JetStream, jobs *Jobs, conns *Connections, store *streams.JobStore, hc *http.Client, log *slog.Logger) (*Orchestrator, error) {
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.WebhookTimeout <= 0 {
		cfg.WebhookTimeout = 10 * time.Second
	}
	if len(cfg.WebhookKey) == 0 {
		return nil, errors.New("orchestrator: webhook key is required")
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: BucketOrchestrations,
		Description: "active orchestration per tenant", History: 1, Storage: jetstream.FileStorage, Replicas: max(cfg.Replicas, 1)})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", BucketOrchestrations, err)
	}
	if hc == nil {
		hc = &http.Client{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Orchestrator{cfg: cfg, kv: kv, jobs: jobs, conns: conns, store: store, http: hc,
		log: log.With("component", "orchestrator")}, nil
}

// WebhookSecret is the tenant's webhook signing secret (hex).
func (o *Orchestrator) WebhookSecret(tenant string) string {
	mac := hmac.New(sha256.New, o.cfg.WebhookKey)
	mac.Write([]byte("webhook:" + tenant))
	return hex.EncodeToString(mac.Sum(nil))
}

// Sign returns the signature header value of body at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature checks a signature header against body: the HMAC must
// match and its timestamp be within tolerance of now.
func VerifySignature(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs []string
	for _, part := range bytes.Split([]byte(header), []byte(",")) {
		k, v, _ := bytes.Cut(bytes.TrimSpace(part), []byte("="))
		switch string(k) {
		case "t":
			ts = string(v)
		case "v1":
			sigs = append(sigs, string(v))
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errors.New("malformed signature header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("signature timestamp outside the tolerance")
	}
	want := Sign(secret, time.Unix(sec, 0), body)
	_, wantSig, _ := bytes.Cut([]byte(want), []byte(",v1="))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), wantSig) {
			return nil
		}
	}
	return errors.New("signature does not match")
}

type orchLock struct {
	JobID   string    `json:"job_id"`
	Since   time.Time `json:"since"`
	Webhook string    `json:"webhook_url,omitempty"` // kept here, never shown on the job
}

// StartInput says what an orchestration syncs.
type StartInput struct {
	Connections []string // empty: every connection of the tenant
	WebhookURL  string   // optional, http or https
	TraceID     string
	User        string
}

// Start begins an orchestration and returns its job. ErrOrchestrationActive
// (wrapped, naming the job) when one is active; ErrNotFound for an unknown
// connection; a *canonical.FieldError-free plain error for a bad webhook URL
// is returned as ErrBadWebhook.
func (o *Orchestrator) Start(ctx context.Context, tenant string, in StartInput) (*streams.Job, error) {
	if in.WebhookURL != "" {
		u, err := url.Parse(in.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, ErrBadWebhook
		}
	}
	ids := in.Connections
	if len(ids) == 0 {
		all, err := o.conns.List(ctx, tenant)
		if err != nil {
			return nil, err
		}
		for _, c := range all {
			ids = append(ids, c.ID)
		}
	} else {
		for _, id := range ids {
			if _, err := o.conns.Get(ctx, tenant, id); err != nil {
				return nil, fmt.Errorf("connection %s: %w", id, err)
			}
		}
	}
	now := time.Now().UTC()
	job := &streams.Job{ID: streams.NewID(), Tenant: tenant, Kind: JobKindOrchestration, Status: streams.JobQueued,
		TraceID: in.TraceID, Errors: []streams.RowError{}, CreatedAt: now, Children: []string{}}
	if err := o.lock(ctx, tenant, job.ID, in.WebhookURL); err != nil {
		return nil, err
	}
	job.Log("info", "orchestration of %d connection(s) started by %s", len(ids), in.User)
	job.Status, job.StartedAt = streams.JobRunning, &now
	for _, id := range ids {
		jid, err := o.jobs.QueueSync(ctx, tenant, id, in.TraceID)
		if errors.Is(err, ErrSyncActive) {
			// A sync already runs: follow it rather than fail.
			if cv, gerr := o.conns.Get(ctx, tenant, id); gerr == nil && cv.LastJobID != "" {
				jid, err = cv.LastJobID, nil
				job.Log("info", "connection %s: a sync is already active; following job %s", id, jid)
			}
		}
		if err != nil {
			job.Log("error", "connection %s: not queued: %v", id, err)
			job.Errors = append(job.Errors, streams.RowError{Column: id, Reason: err.Error()})
			continue
		}
		job.Children = append(job.Children, jid)
		job.Log("info", "connection %s: sync queued as job %s", id, jid)
	}
	if in.WebhookURL != "" {
		job.Log("info", "a signed completion webhook will be sent")
	}
	if err := o.store.Put(ctx, job); err != nil {
		o.unlock(context.WithoutCancel(ctx), tenant, job.ID)
		return nil, err
	}
	o.follow(job)
	return job, nil
}

// ErrBadWebhook is returned for a webhook URL that is not http(s).
var ErrBadWebhook = errors.New("webhook_url: want an http or https URL")

func (o *Orchestrator) lock(ctx context.Context, tenant, jobID, hook string) error {
	if !streams.ValidToken(tenant) {
		return ErrNotFound
	}
	b, _ := json.Marshal(orchLock{JobID: jobID, Since: time.Now().UTC(), Webhook: hook})
	for attempt := 0; attempt < casAttempts; attempt++ {
		if _, err := o.kv.Create(ctx, tenant, b); err == nil {
			return nil
		} else if !isConflict(err) {
			return fmt.Errorf("take orchestration lock: %w", err)
		}
		e, err := o.kv.Get(ctx, tenant)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read orchestration lock: %w", err)
		}
		var cur orchLock
		_ = json.Unmarshal(e.Value(), &cur)
		j, err := o.store.Get(ctx, tenant, cur.JobID)
		switch {
		case err == nil && !j.Finished():
			return fmt.Errorf("%w (job %s is %s)", ErrOrchestrationActive, cur.JobID, j.Status)
		case errors.Is(err, ErrNotFound) && time.Since(cur.Since) < staleGrace:
			return fmt.Errorf("%w (job %s is starting)", ErrOrchestrationActive, cur.JobID)
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		if _, err := o.kv.Update(ctx, tenant, b, e.Revision()); err == nil {
			return nil
		} else if !isConflict(err) {
			return fmt.Errorf("take orchestration lock: %w", err)
		}
	}
	return errors.New("take orchestration lock: too much contention")
}

// unlock releases the tenant's lock if it is jobID's and returns its
// webhook URL.
func (o *Orchestrator) unlock(ctx context.Context, tenant, jobID string) string {
	e, err := o.kv.Get(ctx, tenant)
	if err != nil {
		return ""
	}
	var cur orchLock
	if json.Unmarshal(e.Value(), &cur) == nil && cur.JobID == jobID {
		_ = o.kv.Delete(ctx, tenant, jetstream.LastRevision(e.Revision()))
		return cur.Webhook
	}
	return ""
}

// Active returns the tenant's active orchestration job id, "" when none.
func (o *Orchestrator) Active(ctx context.Context, tenant string) (string, error) {
	if !streams.ValidToken(tenant) {
		return "", nil
	}
	e, err := o.kv.Get(ctx, tenant)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var cur orchLock
	_ = json.Unmarshal(e.Value(), &cur)
	j, err := o.store.Get(ctx, tenant, cur.JobID)
	if err != nil || j.Finished() {
		return "", nil
	}
	return cur.JobID, nil
}

// Latest returns the tenant's active orchestration, else its newest one;
// ErrNotFound when it never ran one.
func (o *Orchestrator) Latest(ctx context.Context, tenant string) (*streams.Job, error) {
	if id, err := o.Active(ctx, tenant); err != nil {
		return nil, err
	} else if id != "" {
		return o.store.Get(ctx, tenant, id)
	}
	all, err := o.store.List(ctx, tenant, 0)
	if err != nil {
		return nil, err
	}
	for _, j := range all {
		if j.Kind == JobKindOrchestration {
			return j, nil
		}
	}
	return nil, ErrNotFound
}

// follow starts following a job under Run (or when Run starts).
func (o *Orchestrator) follow(job *streams.Job) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ctx == nil {
		o.pending = append(o.pending, job)
		return
	}
	o.wg.Add(1)
	go func() { defer o.wg.Done(); o.track(o.ctx, job) }()
}

// Run follows orchestrations until ctx ends (then it waits for its
// followers and returns nil). It first resumes unfinished ones.
func (o *Orchestrator) Run(ctx context.Context) error {
	left, err := o.store.Unfinished(ctx)
	if err != nil {
		return err
	}
	o.mu.Lock()
	o.ctx = ctx
	pending := o.pending
	o.pending = nil
	o.mu.Unlock()
	seen := map[string]bool{}
	for _, j := range append(pending, left...) {
		if j.Kind != JobKindOrchestration || seen[j.ID] {
			continue
		}
		seen[j.ID] = true
		o.follow(j)
	}
	<-ctx.Done()
	o.wg.Wait()
	return nil
}

// track polls the children's jobs until every one finished, then finishes
// the orchestration, releases the lock and delivers the webhook.
func (o *Orchestrator) track(ctx context.Context, job *streams.Job) {
	seen := map[string]string{}
	t := time.NewTicker(o.cfg.Poll)
	defer t.Stop()
	for {
		done, changed := o.refresh(ctx, job, seen)
		if done {
			break
		}
		if changed {
			_ = o.store.Put(ctx, job)
		}
		select {
		case <-ctx.Done():
			return // resumed by the next Run
		case <-t.C:
		}
	}
	now := time.Now().UTC()
	job.FinishedAt = &now
	failed := 0
	for _, st := range seen {
		if st != streams.JobSucceeded {
			failed++
		}
	}
	if failed > 0 || len(job.Errors) > 0 {
		job.Status = streams.JobFailed
		job.Message = fmt.Sprintf("%d of %d connection sync(s) did not succeed", failed+len(job.Errors), len(job.Children)+len(job.Errors))
	} else {
		job.Status = streams.JobSucceeded
	}
	job.Log("info", "orchestration %s: %d published, %d rejected", job.Status, job.Published, job.Rejected)
	bg := context.WithoutCancel(ctx)
	if err := o.store.Put(bg, job); err != nil {
		o.log.Warn("store orchestration", "job_id", job.ID, "error", err)
	}
	hook := o.unlock(bg, job.Tenant, job.ID)
	if hook != "" {
		o.deliver(ctx, job, hook)
	}
}

// refresh reads the children and updates the job's counts and logs; done
// when every child finished.
func (o *Orchestrator) refresh(ctx context.Context, job *streams.Job, seen map[string]string) (done, changed bool) {
	done = true
	var read, pub, rej int64
	for _, id := range job.Children {
		c, err := o.store.Get(ctx, job.Tenant, id)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				if seen[id] != streams.JobFailed {
					seen[id] = streams.JobFailed
					job.Log("error", "job %s vanished", id)
					changed = true
				}
				continue
			}
			return false, changed
		}
		read, pub, rej = read+c.RowsRead, pub+c.Published, rej+c.Rejected
		if seen[id] != c.Status {
			seen[id] = c.Status
			level := "info"
			if c.Status == streams.JobFailed {
				level = "error"
			}
			msg := fmt.Sprintf("connection %s: job %s is %s", c.ConnectionID, id, c.Status)
			if c.Message != "" {
				msg += ": " + c.Message
			}
			job.Log(level, "%s", msg)
			changed = true
		}
		if !c.Finished() {
			done = false
		}
	}
	if read != job.RowsRead || pub != job.Published || rej != job.Rejected {
		job.RowsRead, job.Published, job.Rejected = read, pub, rej
		changed = true
	}
	return done, changed
}

// deliver POSTs the finished job to the webhook, signed, trying 3 times.
func (o *Orchestrator) deliver(ctx context.Context, job *streams.Job, hook string) {
	body, _ := json.Marshal(map[string]any{"type": "aoa.orchestration.finished", "job": job})
	secret := o.WebhookSecret(job.Tenant)
	for attempt, wait := 1, time.Second; attempt <= 3; attempt, wait = attempt+1, wait*3 {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.cfg.WebhookTimeout)
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, hook, bytes.NewReader(body))
		if err != nil {
			cancel()
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(HeaderSignature, Sign(secret, time.Now(), body))
		res, err := o.http.Do(req)
		if err == nil {
			res.Body.Close()
		}
		cancel()
		if err == nil && res.StatusCode < 300 {
			o.log.Info("webhook delivered", "tenant", job.Tenant, "job_id", job.ID)
			return
		}
		o.log.Warn("webhook delivery failed", "tenant", job.Tenant, "job_id", job.ID, "attempt", attempt, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
