package subscriber_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
	"github.com/autonomos/autonomos/subscriber"
)

// running is a Subscriber running in the background until stopped.
type running struct {
	*subscriber.Subscriber
	stop func()
}

func start(t *testing.T, env *streamstest.Env, sink subscriber.Sink, cfg subscriber.Config) *running {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	sub, err := subscriber.New(env.JS, env.Pub, sink, cfg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return within 30s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return &running{sub, stop}
}

func publish(t testing.TB, env *streamstest.Env, evs []*canonical.Event) {
	t.Helper()
	b := env.Pub.NewBatch()
	for _, ev := range evs {
		m, err := streams.EventMsg(ev)
		if err != nil {
			t.Fatalf("EventMsg: %v", err)
		}
		if err := b.Add(m); err != nil {
			t.Fatal(err)
		}
		if b.Len() >= 1000 {
			if _, err := b.Wait(testCtx(t)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := b.Wait(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func publishRaw(t testing.TB, env *streamstest.Env, subject string, data []byte) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(streams.HeaderTenant, "acme")
	m.Header.Set(streams.HeaderTraceparent, streams.Traceparent("0123456789abcdef0123456789abcdef"))
	if _, err := env.Pub.Publish(testCtx(t), m); err != nil {
		t.Fatal(err)
	}
}

// deadLetters returns the messages of the DLQ stream.
func deadLetters(t testing.TB, env *streamstest.Env) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := testCtx(t)
	st, err := env.JS.Stream(ctx, streams.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func wantCount(s store, tenant string, e canonical.Entity, want int64) func() error {
	return func() error {
		n, err := s.Count(context.Background(), tenant, e)
		if err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("%s: %s/%s has %d rows, want %d", s.Name(), tenant, e, n, want)
		}
		return nil
	}
}

func opps(t testing.TB, tenant string, n int, prefix string) []*canonical.Event {
	var evs []*canonical.Event
	for i := range n {
		evs = append(evs, upsert(t, tenant, opp(fmt.Sprintf("%s-%04d", prefix, i), "deal"), t0, 1))
	}
	return evs
}

func TestPoisonMessagesGoToTheDLQAndDoNotBlock(t *testing.T) {
	env := streamstest.Start(t)
	duck := openDuckDB(t)

	good := upsert(t, "acme", opp("O-1", "good"), t0, 1)
	raw, err := good.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var ce map[string]any
	if err := json.Unmarshal(raw, &ce); err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(map[string]any)) []byte {
		c := map[string]any{}
		for k, v := range ce {
			c[k] = v
		}
		f(c)
		b, _ := json.Marshal(c)
		return b
	}
	poison := []struct {
		name   string
		data   []byte
		reason string // a fragment of the reason header
	}{
		{"impossible entity", mutate(func(c map[string]any) { c["type"] = "com.autonomos.canonical.widget.upserted" }), "widget"},
		{"type and data disagree", mutate(func(c map[string]any) {
			c["data"] = map[string]any{"account_id": "O-1", "name": "Acme", "industry": "Retail"}
		}), "industry"},
		{"invalid record", mutate(func(c map[string]any) {
			c["data"] = map[string]any{"opportunity_id": "O-1", "name": "x", "currency": "EURO"}
		}), "EURO"},
		{"not JSON", []byte("{not json"), ""},
	}
	for _, p := range poison {
		publishRaw(t, env, "canonical.acme.opportunity", p.data)
	}
	publish(t, env, opps(t, "acme", 50, "O"))

	sub := start(t, env, duck, subscriber.Config{BatchSize: 10})
	streamstest.Eventually(t, 20*time.Second, wantCount(duck, "acme", canonical.OpportunityEntity, 50))
	streamstest.Eventually(t, 10*time.Second, func() error {
		if n := len(deadLetters(t, env)); n != len(poison) {
			return fmt.Errorf("%d dead letters, want %d", n, len(poison))
		}
		return nil
	})
	dls := deadLetters(t, env)
	for i, p := range poison {
		t.Run(p.name, func(t *testing.T) {
			d := dls[i]
			h := d.Header
			if d.Subject != "dlq.acme.validation" {
				t.Errorf("DLQ subject %q", d.Subject)
			}
			if r := h.Get(streams.HeaderDLQReason); r == "" || !strings.Contains(r, p.reason) {
				t.Errorf("reason %q lacks %q", r, p.reason)
			}
			for k, want := range map[string]string{
				streams.HeaderDLQStage:       "validation",
				streams.HeaderDLQSubject:     "canonical.acme.opportunity",
				streams.HeaderDLQSequence:    strconv.Itoa(i + 1),
				streams.HeaderDLQAttempts:    "1",
				streams.HeaderDLQTrace:       "0123456789abcdef0123456789abcdef",
				subscriber.HeaderDLQConsumer: "dcl-duckdb",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if string(d.Data) != string(p.data) {
				t.Errorf("DLQ data differs from the original")
			}
		})
	}
	streamstest.Eventually(t, 5*time.Second, func() error {
		if st := sub.Stats(); st.DeadLettered != uint64(len(poison)) || st.Applied != 50 {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
}

// kill-and-restart events: 4,000 records of two tenants and three entities,
// 600 newer versions, 400 deletes, in a shuffled order.
func churn(t testing.TB) (evs []*canonical.Event, want map[string]int64) {
	type key struct {
		tenant string
		entity canonical.Entity
		id     string
	}
	keyOf := func(i int) key {
		return key{[]string{"acme", "globex"}[i%2], canonical.Entities[i%3], fmt.Sprintf("K-%05d", i)}
	}
	record := func(k key, name string) canonical.Record {
		switch k.entity {
		case canonical.AccountEntity:
			return &canonical.Account{AccountID: k.id, Name: name, AnnualRevenue: dec("1000.25")}
		case canonical.OpportunityEntity:
			return &canonical.Opportunity{OpportunityID: k.id, Name: name, Amount: dec("99.99"), CloseDate: date("2024-06-30")}
		}
		return &canonical.Contact{ContactID: k.id, LastName: ptr(name)}
	}
	alive := map[key]bool{}
	for i := range 4000 {
		k := keyOf(i)
		evs = append(evs, upsert(t, k.tenant, record(k, "v1"), t0, 1))
		alive[k] = true
	}
	for j := range 600 {
		k := keyOf(6 * j)
		evs = append(evs, upsert(t, k.tenant, record(k, "v2"), t0.Add(time.Hour), 1))
	}
	for j := range 400 {
		k := keyOf(7*j + 3)
		evs = append(evs, deletion(t, k.tenant, k.entity, k.id, t0.Add(2*time.Hour), 1))
		delete(alive, k)
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	want = map[string]int64{}
	for k := range alive {
		want[k.tenant+"/"+string(k.entity)]++
	}
	return evs, want
}

func TestKillAndRestartEndsWithExactCounts(t *testing.T) {
	env := streamstest.Start(t)
	stores := bothStores(t)
	evs, want := churn(t)
	cfg := subscriber.Config{BatchSize: 100}

	published := make(chan struct{})
	go func() {
		defer close(published)
		publish(t, env, evs)
	}()
	// Stop each mid-stream, once its sink has committed 1,500 events.
	var first []*running
	var trips []chan struct{}
	for _, s := range stores {
		trip := make(chan struct{})
		trips = append(trips, trip)
		first = append(first, start(t, env, &tripSink{store: s, after: 1500, trip: trip}, cfg))
	}
	for i, r := range first {
		select {
		case <-trips[i]:
		case <-time.After(60 * time.Second):
			t.Fatalf("%s never reached 1,500 events", r.Stats().Consumer)
		}
		r.stop()
		t.Logf("%s stopped after %d events", r.Stats().Consumer, r.Stats().Applied)
		if r.Stats().Applied >= uint64(len(evs)) {
			t.Errorf("%s was not stopped mid-stream", r.Stats().Consumer)
		}
	}
	for _, s := range stores {
		start(t, env, s, cfg)
	}
	<-published
	for _, s := range stores {
		for _, tenant := range []string{"acme", "globex"} {
			for _, e := range canonical.Entities {
				streamstest.Eventually(t, 60*time.Second, wantCount(s, tenant, e, want[tenant+"/"+string(e)]))
			}
		}
		// Newer versions won wherever they landed in the stream.
		row := get(t, s, "acme", canonical.AccountEntity, "K-00000")
		if row == nil || row["name"] != "v2" {
			t.Errorf("%s: K-00000 = %v, want the v2 version", s.Name(), row)
		}
	}
	for _, s := range stores {
		streamstest.Eventually(t, 10*time.Second, func() error {
			c, err := env.JS.Consumer(context.Background(), streams.StreamCanonical, "dcl-"+s.Name())
			if err != nil {
				return err
			}
			info, err := c.Info(context.Background())
			if err != nil {
				return err
			}
			if info.NumPending != 0 || info.NumAckPending != 0 {
				return fmt.Errorf("%s: %d pending, %d awaiting ack", s.Name(), info.NumPending, info.NumAckPending)
			}
			return nil
		})
	}
	if dls := deadLetters(t, env); len(dls) != 0 {
		t.Fatalf("%d dead letters", len(dls))
	}
}

// tripSink closes trip once it has committed after events.
type tripSink struct {
	store
	after int
	trip  chan struct{}
	n     atomic.Int64
	once  sync.Once
}

func (s *tripSink) Apply(ctx context.Context, evs []*canonical.Event) error {
	if err := s.store.Apply(ctx, evs); err != nil {
		return err
	}
	if s.n.Add(int64(len(evs))) >= int64(s.after) {
		s.once.Do(func() { close(s.trip) })
	}
	return nil
}

// flakySink fails its first failures Apply calls, then delegates.
type flakySink struct {
	store
	failures atomic.Int32
	mu       sync.Mutex
	attempts map[string][]time.Time // event id → when it was offered
}

func (f *flakySink) Apply(ctx context.Context, evs []*canonical.Event) error {
	f.mu.Lock()
	for _, ev := range evs {
		f.attempts[ev.ID] = append(f.attempts[ev.ID], time.Now())
	}
	f.mu.Unlock()
	if f.failures.Add(-1) >= 0 {
		return errors.New("connection refused (simulated)")
	}
	return f.store.Apply(ctx, evs)
}

func TestTransientSinkFailureRedeliversWithBackoff(t *testing.T) {
	env := streamstest.Start(t)
	sink := &flakySink{store: openDuckDB(t), attempts: map[string][]time.Time{}}
	sink.failures.Store(3)
	evs := opps(t, "acme", 200, "O")
	publish(t, env, evs)
	backoff := 100 * time.Millisecond
	sub := start(t, env, sink, subscriber.Config{BatchSize: 50, MaxDeliver: 10, Backoff: []time.Duration{backoff}})
	streamstest.Eventually(t, 30*time.Second, wantCount(sink, "acme", canonical.OpportunityEntity, 200))
	streamstest.Eventually(t, 5*time.Second, func() error {
		if st := sub.Stats(); st.Applied != 200 {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
	st := sub.Stats()
	if st.FailedBatches != 3 || st.DeadLettered != 0 || st.Failing || !strings.Contains(st.LastError, "simulated") {
		t.Fatalf("stats %+v", st)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	redelivered := 0
	for _, ev := range evs {
		at := sink.attempts[ev.ID]
		if len(at) > 1 {
			redelivered++
			if gap := at[1].Sub(at[0]); gap < backoff {
				t.Errorf("event %s redelivered after %v, before the %v backoff", ev.ID, gap, backoff)
			}
		}
	}
	if redelivered == 0 {
		t.Fatal("no event was offered twice")
	}
}

// selectiveSink fails batches holding a cursed record and names or hides
// poisoned ones.
type selectiveSink struct {
	store
	name string
}

func (s *selectiveSink) Name() string { return s.name }

func (s *selectiveSink) Apply(ctx context.Context, evs []*canonical.Event) error {
	for _, ev := range evs {
		switch ev.Record.(*canonical.Opportunity).Name {
		case "named poison":
			return &subscriber.PermanentError{Event: ev, Err: errors.New("value rejected")}
		case "hidden poison":
			return &subscriber.PermanentError{Err: errors.New("some row of the batch rejected")}
		case "cursed":
			return errors.New("timeout (simulated)")
		}
	}
	return s.store.Apply(ctx, evs)
}

func TestSinkErrorsDeadLetterOnlyTheBadMessages(t *testing.T) {
	env := streamstest.Start(t)
	sink := &selectiveSink{store: openDuckDB(t), name: "picky"}
	evs := opps(t, "acme", 90, "O")
	bad := map[string]string{
		"P-1": "named poison", "P-2": "hidden poison", "P-3": "cursed",
	}
	for id, name := range bad {
		evs = append(evs[:30], append([]*canonical.Event{upsert(t, "acme", opp(id, name), t0, 1)}, evs[30:]...)...)
	}
	publish(t, env, evs)
	sub := start(t, env, sink, subscriber.Config{BatchSize: 40, MaxDeliver: 3, Backoff: []time.Duration{20 * time.Millisecond}})
	streamstest.Eventually(t, 30*time.Second, wantCount(sink, "acme", canonical.OpportunityEntity, 90))
	streamstest.Eventually(t, 10*time.Second, func() error {
		if n := len(deadLetters(t, env)); n != 3 {
			return fmt.Errorf("%d dead letters, want 3", n)
		}
		return nil
	})
	got := map[string]bool{}
	for _, d := range deadLetters(t, env) {
		if d.Subject != "dlq.acme.sink-picky" || d.Header.Get(streams.HeaderDLQStage) != "sink-picky" {
			t.Errorf("dead letter on %s, stage %q", d.Subject, d.Header.Get(streams.HeaderDLQStage))
		}
		ev, err := canonical.ParseEvent(d.Data)
		if err != nil {
			t.Fatal(err)
		}
		got[ev.Record.Key()] = true
		if ev.Record.Key() == "P-3" {
			if a := d.Header.Get(streams.HeaderDLQAttempts); a != "2" {
				t.Errorf("cursed message given up after %s attempts, want 2 (MaxDeliver-1)", a)
			}
			if r := d.Header.Get(streams.HeaderDLQReason); !strings.Contains(r, "simulated") {
				t.Errorf("reason %q", r)
			}
		}
	}
	for id := range bad {
		if !got[id] {
			t.Errorf("%s not dead-lettered", id)
		}
	}
	streamstest.Eventually(t, 5*time.Second, func() error {
		if st := sub.Stats(); st.DeadLettered != 3 || st.Applied != 90 {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
}

// gatedSink records which instance applied what; each instance's first
// batch waits until the other instance has one too, so both must get work.
type gatedSink struct {
	store
	seen    *sync.Map // event id → instance
	me      int
	started []chan struct{}
	once    sync.Once
}

func (g *gatedSink) Name() string { return "shared" }

func (g *gatedSink) Apply(ctx context.Context, evs []*canonical.Event) error {
	g.once.Do(func() { close(g.started[g.me]) })
	select {
	case <-g.started[1-g.me]:
	case <-time.After(20 * time.Second):
		return errors.New("the other instance never got a batch")
	}
	if err := g.store.Apply(ctx, evs); err != nil {
		return err
	}
	for _, ev := range evs {
		g.seen.Store(ev.ID, g.me)
	}
	return nil
}

func TestInstancesShareTheDurable(t *testing.T) {
	env := streamstest.Start(t)
	duck := openDuckDB(t)
	evs := opps(t, "acme", 300, "O")
	publish(t, env, evs)
	var seen sync.Map
	started := []chan struct{}{make(chan struct{}), make(chan struct{})}
	cfg := subscriber.Config{BatchSize: 10, MaxAckPending: 100}
	a := start(t, env, &gatedSink{store: duck, seen: &seen, me: 0, started: started}, cfg)
	b := start(t, env, &gatedSink{store: duck, seen: &seen, me: 1, started: started}, cfg)
	streamstest.Eventually(t, 30*time.Second, wantCount(duck, "acme", canonical.OpportunityEntity, 300))
	streamstest.Eventually(t, 5*time.Second, func() error {
		if n := a.Stats().Applied + b.Stats().Applied; n != 300 {
			return fmt.Errorf("%d applied in all", n)
		}
		return nil
	})
	sa, sb := a.Stats(), b.Stats()
	if sa.Consumer != "dcl-shared" || sb.Consumer != "dcl-shared" {
		t.Fatalf("consumers %s, %s", sa.Consumer, sb.Consumer)
	}
	if sa.Applied == 0 || sb.Applied == 0 {
		t.Fatalf("applied %d + %d, want both > 0", sa.Applied, sb.Applied)
	}
	n := 0
	seen.Range(func(_, _ any) bool { n++; return true })
	if n != 300 {
		t.Fatalf("%d distinct events applied, want 300", n)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	env := streamstest.Start(t)
	duck := openDuckDB(t)
	tests := []struct {
		name    string
		sink    subscriber.Sink
		cfg     subscriber.Config
		wantErr []string // every fragment must be in the one error
	}{
		{"defaults", duck, subscriber.Config{}, nil},
		{"every bad field at once", duck, subscriber.Config{BatchSize: -1, MaxDeliver: 1, AckWait: time.Millisecond, Backoff: []time.Duration{0}},
			[]string{"batch_size", "max_deliver", "ack_wait", "backoff[0]"}},
		{"bad durable", duck, subscriber.Config{Durable: "dcl.*"}, []string{"durable"}},
		{"bad sink name", &selectiveSink{store: duck, name: "Not A Token"}, subscriber.Config{}, []string{"sink name"}},
		{"pending below a batch", duck, subscriber.Config{BatchSize: 100, MaxAckPending: 10}, []string{"max_ack_pending"}},
		{"no sink", nil, subscriber.Config{}, []string{"sink is required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := subscriber.New(env.JS, env.Pub, tc.sink, tc.cfg, nil)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("New accepted a bad config")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}
