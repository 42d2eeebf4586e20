package pgsource_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/config"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/pgsource"
	"github.com/autonomos/autonomos/connectors/pgsource/pgsourcetest"
	"github.com/autonomos/autonomos/streams/streamstest"
	"github.com/autonomos/autonomos/subscriber"
)

// latencySink notes when each written change became visible: committed by
// the store.
type latencySink struct {
	subscriber.Sink
	sent *sync.Map // name token → write time
	mu   sync.Mutex
	lat  []time.Duration
}

func (s *latencySink) Apply(ctx context.Context, events []*canonical.Event) error {
	if err := s.Sink.Apply(ctx, events); err != nil {
		return err
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range events {
		if a, ok := ev.Record.(*canonical.Account); ok {
			if t0, ok := s.sent.LoadAndDelete(a.Name); ok {
				s.lat = append(s.lat, now.Sub(t0.(time.Time)))
			}
		}
	}
	return nil
}

// BenchmarkChangeToVisible measures change-to-visible latency: a writer
// updates rows at about 1,000 changes/s for 10 s (BENCH window), the
// connector streams them through a Runner (one long sync: poll_interval
// keeps it streaming), the subscriber materializes them in DuckDB; latency
// runs from the UPDATE to the store's commit. It runs one round whatever
// b.N is: use -benchtime=1x.
//
//	go test -run '^$' -bench ChangeToVisible -benchtime=1x ./connectors/pgsource
func BenchmarkChangeToVisible(b *testing.B) {
	const rate, window = 1000, 10 * time.Second
	cl := logicalCluster(b)
	db := cl.NewDatabase(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin, err := cl.Connect(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, pgsourcetest.Schema); err != nil {
		b.Fatal(err)
	}
	const rows = 10_000
	if err := pgsourcetest.Seed(ctx, admin, rows, 0, 0); err != nil {
		b.Fatal(err)
	}
	env := streamstest.Start(b)
	duck, err := subscriber.OpenDuckDB(filepath.Join(b.TempDir(), "store.duckdb"))
	if err != nil {
		b.Fatal(err)
	}
	defer duck.Close()
	log := slog.New(slog.DiscardHandler)
	sink := &latencySink{Sink: duck, sent: &sync.Map{}}
	sub, err := subscriber.New(env.JS, env.Pub, sink, subscriber.Config{}, log)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = sub.Run(ctx) })

	conn := connectors.Connection{ID: "c1", Tenant: tenant, System: pgsource.System,
		Config:  map[string]any{"tables": []any{"accounts"}, "slot": "s_" + db, "publication": "p_" + db, "poll_interval": "1h"},
		Secrets: map[string]string{"dsn": cl.DSN(db)}}
	con, err := pgsource.New(conn, connectors.Deps{Log: log})
	if err != nil {
		b.Fatal(err)
	}
	maps, err := connectors.NewMappings(config.MappingFS(), nil)
	if err != nil {
		b.Fatal(err)
	}
	cursors, err := env.JS.KeyValue(ctx, "cursors")
	if err != nil {
		b.Fatal(err)
	}
	runner := connectors.NewRunner(env.Pub, cursors, maps, log)
	var synced atomic.Int64
	wg.Go(func() {
		defer con.Close() // after the last Fetch returned
		for ctx.Err() == nil {
			_, _ = runner.Sync(ctx, conn, con, "", func(st connectors.SyncStats) { synced.Store(st.RowsRead) })
		}
	})
	streamstest.Eventually(b, 2*time.Minute, func() error { // the snapshot is read
		if n, err := duck.Count(ctx, tenant, canonical.AccountEntity); err != nil || n < rows {
			return fmt.Errorf("%d of %d rows materialized (%v)", n, rows, err)
		}
		return nil
	})

	b.ResetTimer()
	rng := rand.New(rand.NewPCG(3, 4))
	start, n := time.Now(), 0
	for time.Since(start) < window {
		for due := int(time.Since(start).Seconds() * rate); n < due; {
			n++
			token := fmt.Sprintf("L%07d", n)
			sink.sent.Store(token, time.Now())
			if _, err := admin.Exec(ctx, "UPDATE accounts SET name = $1, updated_at = clock_timestamp() WHERE id = $2", token, fmt.Sprintf("ACC-%06d", 1+rng.IntN(rows))); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(time.Millisecond)
	}
	achieved := float64(n) / time.Since(start).Seconds()
	streamstest.Eventually(b, time.Minute, func() error {
		left := 0
		sink.sent.Range(func(any, any) bool { left++; return true })
		if left > 0 {
			return fmt.Errorf("%d changes not visible yet", left)
		}
		return nil
	})
	b.StopTimer()
	sink.mu.Lock()
	lat := slices.Clone(sink.lat)
	sink.mu.Unlock()
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(achieved, "changes/s")
	b.ReportMetric(float64(q(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.Logf("%d changes at %.0f/s: change-to-visible p50 %v, p99 %v, max %v", len(lat), achieved, q(0.50), q(0.99), lat[len(lat)-1])
}

// BenchmarkFetch measures the connector alone (no publishing): reading a
// 100,000-row snapshot, and streaming a backlog of 100,000 changes.
//
//	go test -run '^$' -bench 'Fetch' -benchtime=1x ./connectors/pgsource
func BenchmarkFetch(b *testing.B) {
	const rows = 100_000
	cl := logicalCluster(b)
	db := cl.NewDatabase(b)
	ctx := context.Background()
	admin, err := cl.Connect(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, pgsourcetest.Schema); err != nil {
		b.Fatal(err)
	}
	if err := pgsourcetest.Seed(ctx, admin, rows, 0, 0); err != nil {
		b.Fatal(err)
	}
	con, err := pgsource.New(connectors.Connection{ID: "c1", Tenant: tenant, System: pgsource.System,
		Config:  map[string]any{"tables": []any{"accounts"}, "slot": "s_" + db, "publication": "p_" + db},
		Secrets: map[string]string{"dsn": cl.DSN(db)}}, connectors.Deps{})
	if err != nil {
		b.Fatal(err)
	}
	defer con.Close()
	read := func(cur string) (int, string) {
		n := 0
		for {
			p, err := con.Fetch(ctx, "accounts", cur)
			if err != nil {
				b.Fatal(err)
			}
			n += len(p.Records)
			cur = p.Cursor
			if !p.More {
				return n, cur
			}
		}
	}
	start := time.Now()
	n, cur := read("")
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "snapshot-rows/s")
	if _, err := admin.Exec(ctx, "UPDATE accounts SET employee_count = employee_count + 1, updated_at = clock_timestamp()"); err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	n, _ = read(cur)
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "stream-changes/s")
	if n != rows {
		b.Errorf("streamed %d changes, want %d", n, rows)
	}
}
