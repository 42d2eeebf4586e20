package connectortest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/config"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
)

// Harness plugs one connector into the suite.
type Harness struct {
	// System is the connector's system name (its mapping file's).
	System string
	// Factory builds the connector under test.
	Factory connectors.Factory
	// NewSource starts a fresh source for one case; it is stopped by
	// t.Cleanup.
	NewSource func(t *testing.T) Source
	// BadConfigs are connections the factory must reject.
	BadConfigs []BadConfig
}

// BadConfig is a connection the factory must reject, naming Field.
type BadConfig struct {
	Name string
	// Config is merged over the source's good config; a nil value removes
	// the key.
	Config map[string]any
	// Secrets is merged over the source's good secrets; "" removes the key.
	Secrets map[string]string
	// Field is the *canonical.FieldError field the error must name, e.g.
	// "config.instance_url" or "secrets.client_secret".
	Field string
}

// Source is a source system the suite reads and changes. Its methods may be
// called while the connector is fetching.
type Source interface {
	// Config and Secrets are a connection that reaches the source, with a
	// page size small enough for several pages per object.
	Config() map[string]any
	Secrets() map[string]string
	// Count is the number of live records of a source object.
	Count(object string) int
	// Modify changes a record so that its modified stamp moves.
	Modify(object, id string) error
	// Create adds a record and returns its id.
	Create(object string) (string, error)
	// Delete deletes a record the way the source does.
	Delete(object, id string) error
	// FailNext makes the next n API requests answer status (429 or 503,
	// with Retry-After: 1).
	FailNext(n, status int)
	// ExpireTokens invalidates every access token issued so far.
	ExpireTokens()
	// Requests counts API requests so far (token requests excluded).
	Requests() int
}

const (
	tenant     = "t1"
	connID     = "c1"
	stormSize  = 2
	cancelWait = 5 * time.Second
)

// Run runs the conformance suite.
func Run(t *testing.T, h Harness) {
	t.Run("config", func(t *testing.T) { testConfig(t, h) })
	t.Run("check", func(t *testing.T) { testCheck(t, h) })
	t.Run("incremental", func(t *testing.T) { testIncremental(t, h) })
	t.Run("token_expiry", func(t *testing.T) { testTokenExpiry(t, h) })
	t.Run("rate_limit_storm", func(t *testing.T) { testStorm(t, h) })
	t.Run("cancel", func(t *testing.T) { testCancel(t, h) })
	t.Run("restart_mid_sync", func(t *testing.T) {
		for _, at := range []int{2, 4} {
			t.Run(fmt.Sprintf("cancel_at_fetch_%d", at), func(t *testing.T) { testRestart(t, h, at) })
		}
	})
}

// rig is one case's world: a source, a JetStream server, the shipped
// mappings and a runner with its cursors bucket.
type rig struct {
	t        *testing.T
	h        Harness
	src      Source
	env      *streamstest.Env
	runner   *connectors.Runner
	mappings *connectors.Mappings
	logs     *lockedBuffer
	log      *slog.Logger
}

func newRig(t *testing.T, h Harness) *rig {
	t.Helper()
	src := h.NewSource(t)
	env := streamstest.Start(t)
	ctx := context.Background()
	cursors, err := env.JS.KeyValue(ctx, streams.BucketCursors)
	if err != nil {
		t.Fatal(err)
	}
	mappings, err := connectors.NewMappings(config.MappingFS(), nil)
	if err != nil {
		t.Fatalf("shipped mappings: %v", err)
	}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := &rig{t: t, h: h, src: src, env: env, mappings: mappings, logs: logs, log: log,
		runner: connectors.NewRunner(env.Pub, cursors, mappings, log)}
	t.Cleanup(r.checkLogs)
	return r
}

func (r *rig) conn() connectors.Connection {
	return connectors.Connection{ID: connID, Tenant: tenant, Name: "conformance", System: r.h.System,
		Config: r.src.Config(), Secrets: r.src.Secrets()}
}

func (r *rig) connector() connectors.Connector {
	r.t.Helper()
	c, err := r.h.Factory(r.conn(), connectors.Deps{Log: r.log})
	if err != nil {
		r.t.Fatalf("factory: %v", err)
	}
	return c
}

// sync runs one sync to its end and fails the test on error.
func (r *rig) sync(c connectors.Connector) connectors.SyncStats {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := r.runner.Sync(ctx, r.conn(), c, "", nil)
	if err != nil {
		r.t.Fatalf("sync: %v", err)
	}
	if st.Rejected != 0 {
		r.t.Fatalf("sync rejected %d records: %+v", st.Rejected, st.Errors)
	}
	return st
}

// entity is the canonical entity of a source object.
func (r *rig) entity(object string) canonical.Entity {
	r.t.Helper()
	m, err := r.mappings.Get(context.Background(), tenant, r.h.System, object)
	if err != nil {
		r.t.Fatalf("mapping of %s: %v", object, err)
	}
	return m.Entity()
}

// event is a canonical event as the suite reads it back.
type event struct {
	ID, Type, Subject string
}

// events reads every message of CANONICAL.
func (r *rig) events() []event {
	r.t.Helper()
	ctx := context.Background()
	s, err := r.env.JS.Stream(ctx, streams.StreamCanonical)
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			r.t.Fatal(err)
		}
		var ev event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			r.t.Fatalf("event %d: %v", seq, err)
		}
		out = append(out, ev)
	}
	return out
}

// counts is the number of messages per subject of a stream.
func (r *rig) counts(stream, filter string) map[string]uint64 {
	r.t.Helper()
	ctx := context.Background()
	s, err := r.env.JS.Stream(ctx, stream)
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]uint64{}
	maps.Copy(out, info.State.Subjects)
	return out
}

func total(m map[string]uint64) (n uint64) {
	for _, v := range m {
		n += v
	}
	return n
}

// checkFull checks that CANONICAL holds exactly one upsert per live record
// (plus the deletes given) and nothing else.
func (r *rig) checkFull(c connectors.Connector, deletes int) {
	r.t.Helper()
	want := map[string]uint64{}
	for _, obj := range c.Objects() {
		subj, _ := streams.CanonicalSubject(tenant, string(r.entity(obj)))
		want[subj] += uint64(r.src.Count(obj))
	}
	evs := r.events()
	upserts := map[string]map[string]int{} // entity subject → record id → events
	nDeleted := 0
	for _, ev := range evs {
		if strings.HasSuffix(ev.Type, ".deleted") {
			nDeleted++
			continue
		}
		ent := strings.TrimSuffix(strings.TrimPrefix(ev.Type, canonical.TypePrefix), ".upserted")
		subj, _ := streams.CanonicalSubject(tenant, ent)
		if upserts[subj] == nil {
			upserts[subj] = map[string]int{}
		}
		upserts[subj][ev.Subject]++
	}
	for subj, n := range want {
		ids := upserts[subj]
		if uint64(len(ids)) != n {
			r.t.Errorf("%s: %d distinct records, want %d", subj, len(ids), n)
		}
		for id, k := range ids {
			if k != 1 {
				r.t.Errorf("%s: record %s has %d upsert events, want 1", subj, id, k)
			}
		}
	}
	if nDeleted != deletes {
		r.t.Errorf("%d delete events, want %d", nDeleted, deletes)
	}
}

// ids returns record ids per source object, from the upsert events.
func (r *rig) ids(c connectors.Connector) map[string][]string {
	r.t.Helper()
	byEntity := map[string][]string{}
	for _, ev := range r.events() {
		if strings.HasSuffix(ev.Type, ".upserted") && !slices.Contains(byEntity[ev.Type], ev.Subject) {
			byEntity[ev.Type] = append(byEntity[ev.Type], ev.Subject)
		}
	}
	out := map[string][]string{}
	for _, obj := range c.Objects() {
		out[obj] = byEntity[canonical.TypePrefix+string(r.entity(obj))+".upserted"]
		slices.Sort(out[obj])
	}
	return out
}

// checkLogs fails when a log line carries a secret.
func (r *rig) checkLogs() {
	out := r.logs.String()
	for k, v := range r.src.Secrets() {
		if len(v) >= 4 && strings.Contains(out, v) {
			r.t.Errorf("a log line carries secrets.%s", k)
		}
	}
	if strings.Contains(strings.ToLower(out), "bearer ey") || strings.Contains(out, "Authorization") {
		r.t.Errorf("a log line carries an Authorization header")
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// hooked wraps a connector to act around its Fetch calls (1-based).
type hooked struct {
	connectors.Connector
	mu     sync.Mutex
	n      int
	before func(n int)
	after  func(n int, p connectors.Page, err error)
}

func (h *hooked) Fetch(ctx context.Context, object, cursor string) (connectors.Page, error) {
	h.mu.Lock()
	h.n++
	n := h.n
	h.mu.Unlock()
	if h.before != nil {
		h.before(n)
	}
	p, err := h.Connector.Fetch(ctx, object, cursor)
	if h.after != nil {
		h.after(n, p, err)
	}
	return p, err
}

func (h *hooked) fetches() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}
