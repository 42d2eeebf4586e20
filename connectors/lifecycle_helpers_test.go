package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
)

// fakeSystem is the system of fakeCRM, a test-only Connector that stands in
// for the real CRM connectors (written in their own packages): it serves
// pages of account records from memory and fails or blocks on demand.
const fakeSystem = "fakecrm"

// fakeMappings maps fakeCRM's account object.
var fakeMappings = fstest.MapFS{"fakecrm.yaml": {Data: []byte(`system: fakecrm
objects:
  - object: account
    entity: account
    version_field: updated_at
    fields:
      - {target: account_id, source: id}
      - {target: name, source: name}
`)}}

// fakeSource is the behaviour shared by every fakeCRM of one test.
type fakeSource struct {
	mu        sync.Mutex
	pages     int // pages per sync
	perPage   int
	transient int  // the next Fetch calls failing with a transient error
	permanent bool // every Fetch fails permanently
	block     bool // Fetch of the second page blocks until ctx ends
	panics    bool // Fetch panics
	blocked   chan struct{}
	starts    map[string]int // syncs started (Fetch from "") per connection
	fetches   int
}

func newFakeSource() *fakeSource {
	return &fakeSource{pages: 3, perPage: 2, starts: map[string]int{}, blocked: make(chan struct{}, 16)}
}

func (s *fakeSource) set(f func(*fakeSource)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *fakeSource) startsOf(conn string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts[conn]
}

// factory validates config.instance_url and secrets.token like a real one.
func (s *fakeSource) factory(c Connection, _ Deps) (Connector, error) {
	var errs []error
	if u, _ := c.Config["instance_url"].(string); u == "" {
		errs = append(errs, &canonical.FieldError{Field: "config.instance_url", Reason: "required"})
	}
	if c.Secrets["token"] == "" {
		errs = append(errs, &canonical.FieldError{Field: "secrets.token", Reason: "required"})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &fakeCRM{src: s, conn: c}, nil
}

type fakeCRM struct {
	src  *fakeSource
	conn Connection
}

var _ Connector = (*fakeCRM)(nil)

func (f *fakeCRM) Check(ctx context.Context) error { return nil }

func (f *fakeCRM) Objects() []string { return []string{"account"} }

func (f *fakeCRM) Fetch(ctx context.Context, object, cursor string) (Page, error) {
	s := f.src
	s.mu.Lock()
	s.fetches++
	if cursor == "" {
		s.starts[f.conn.ID]++
	}
	pages, perPage, block, panics := s.pages, s.perPage, s.block, s.panics
	var err error
	switch {
	case s.permanent:
		err = &PermanentError{Err: errors.New("the token was revoked")}
	case s.transient > 0:
		s.transient--
		err = errors.New("503 service unavailable")
	}
	s.mu.Unlock()
	if panics {
		panic("fakeCRM: nil map in page decoder")
	}
	if err != nil {
		return Page{}, err
	}
	idx := 0
	if cursor != "" {
		idx, _ = strconv.Atoi(cursor)
	}
	if block && idx >= 1 {
		s.blocked <- struct{}{}
		<-ctx.Done()
		return Page{}, ctx.Err()
	}
	if idx >= pages {
		return Page{Cursor: cursor}, nil
	}
	recs := make([]Record, perPage)
	for i := range recs {
		n := idx*perPage + i
		recs[i] = Record{Values: map[string]any{"id": fmt.Sprintf("%s-%d", f.conn.ID, n), "name": fmt.Sprintf("Account %d", n),
			"updated_at": "2024-05-01T10:00:00Z"}}
	}
	return Page{Records: recs, Cursor: strconv.Itoa(idx + 1), More: idx+1 < pages}, nil
}

// lifecycle is a connection lifecycle under test on an embedded server.
type lifecycle struct {
	*streamstest.Env
	src     *fakeSource
	conns   *Connections
	jobs    *Jobs
	store   *streams.JobStore
	events  *EventLog
	runner  *Runner
	cursors jetstream.KeyValue
	kv      jetstream.KeyValue
	log     *slog.Logger
}

func newLifecycle(t *testing.T) *lifecycle {
	t.Helper()
	env := streamstest.Start(t)
	ctx := testCtx(t)
	log := slog.New(slog.DiscardHandler)
	src := newFakeSource()
	sealer, err := NewSealer("a test passphrase")
	if err != nil {
		t.Fatal(err)
	}
	events, err := OpenEventLog(ctx, env.JS, 1, env.NC, log)
	if err != nil {
		t.Fatal(err)
	}
	conns, err := OpenConnections(ctx, env.JS, Registry{fakeSystem: src.factory}, Deps{Log: log}, sealer, events)
	if err != nil {
		t.Fatal(err)
	}
	store, err := streams.OpenJobStore(ctx, env.JS)
	if err != nil {
		t.Fatal(err)
	}
	mkv, err := env.JS.KeyValue(ctx, streams.BucketMappings)
	if err != nil {
		t.Fatal(err)
	}
	mappings, err := NewMappings(fakeMappings, mkv)
	if err != nil {
		t.Fatal(err)
	}
	cursors, err := env.JS.KeyValue(ctx, streams.BucketCursors)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := env.JS.KeyValue(ctx, streams.BucketConnections)
	if err != nil {
		t.Fatal(err)
	}
	return &lifecycle{Env: env, src: src, conns: conns, jobs: NewJobs(env.JS, conns, store, env.NC, log), store: store,
		events: events, runner: NewRunner(env.Pub, cursors, mappings, log), cursors: cursors, kv: kv, log: log}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// create makes a valid connection of tenant.
func (l *lifecycle) create(t *testing.T, tenant, name, interval string) *ConnectionView {
	t.Helper()
	v, err := l.conns.Create(testCtx(t), tenant, ConnectionInput{Name: name, System: fakeSystem,
		Config: map[string]any{"instance_url": "https://crm.example.test"}, Secrets: map[string]string{"token": "tok-" + name + "-0123456789"},
		Interval: interval})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return v
}

// startWorker runs a worker until the test ends (or stop is called).
func (l *lifecycle) startWorker(t *testing.T, cfg WorkerConfig) (stop func()) {
	t.Helper()
	w, err := NewWorker(cfg, l.jobs, l.runner, l.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitJob polls until the job has the status.
func (l *lifecycle) waitJob(t *testing.T, tenant, id, status string) *streams.Job {
	t.Helper()
	var job *streams.Job
	streamstest.Eventually(t, 20*time.Second, func() error {
		j, err := l.store.Get(context.Background(), tenant, id)
		if err != nil {
			return err
		}
		job = j
		if j.Status != status {
			return fmt.Errorf("job %s is %s (%s), want %s", id, j.Status, j.Message, status)
		}
		return nil
	})
	return job
}

// streamMsgs is the number of messages in a stream.
func (l *lifecycle) streamMsgs(t *testing.T, name string) uint64 {
	t.Helper()
	s, err := l.JS.Stream(testCtx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// fieldsOf lists the Field of every *canonical.FieldError in err.
func fieldsOf(err error) []string {
	var out []string
	for _, e := range flatten(err) {
		var fe *canonical.FieldError
		if errors.As(e, &fe) {
			out = append(out, fe.Field)
		}
	}
	return out
}
