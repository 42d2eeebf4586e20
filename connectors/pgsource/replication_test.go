package pgsource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/config"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/pgsource"
	"github.com/autonomos/autonomos/connectors/pgsource/pgsourcetest"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
	"github.com/autonomos/autonomos/subscriber"
)

const tenant = "t1"

// TestReplicationMaterializesSource snapshots a table while a writer
// inserts, updates (the primary key too) and deletes concurrently, kills
// the connector process with SIGKILL mid-snapshot and again mid-stream,
// resumes, and checks that the store the subscriber materialized from the
// canonical events equals the table row for row, deletes included.
// 100,000 rows normally; 10,000 with -short.
func TestReplicationMaterializesSource(t *testing.T) {
	rows := 100_000
	if testing.Short() {
		rows = 10_000
	}
	cl := logicalCluster(t)
	db := cl.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	admin, err := cl.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, pgsourcetest.Schema); err != nil {
		t.Fatal(err)
	}
	if err := pgsourcetest.Seed(ctx, admin, rows, 0, 0); err != nil {
		t.Fatal(err)
	}

	env := streamstest.Start(t)
	duck, err := subscriber.OpenDuckDB(filepath.Join(t.TempDir(), "store.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	sub, err := subscriber.New(env.JS, env.Pub, duck, subscriber.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	subCtx, stopSub := context.WithCancel(ctx)
	subDone := make(chan error, 1)
	go func() { subDone <- sub.Run(subCtx) }()
	t.Cleanup(func() {
		stopSub()
		<-subDone
		duck.Close()
	})

	conn := connectors.Connection{ID: "c1", Tenant: tenant, System: pgsource.System,
		Config:  map[string]any{"tables": []any{"accounts"}, "slot": "s_" + db, "publication": "p_" + db},
		Secrets: map[string]string{"dsn": cl.DSN(db)}}
	w := startWriter(t, cl, db, rows)

	// Kill -9 mid-snapshot, then mid-stream.
	start := time.Now()
	cursors, err := env.JS.KeyValue(ctx, streams.BucketCursors)
	if err != nil {
		t.Fatal(err)
	}
	cursorOf := func() map[string]any {
		e, err := cursors.Get(ctx, connectors.CursorKey(tenant, conn.ID, "accounts"))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		var stored struct{ Cursor string }
		var c map[string]any
		if json.Unmarshal(e.Value(), &stored) != nil || json.Unmarshal([]byte(stored.Cursor), &c) != nil {
			t.Fatalf("stored cursor %s", e.Value())
		}
		return c
	}
	child := runChild(t, env.URL, conn)
	streamstest.Eventually(t, 5*time.Minute, func() error {
		if c := cursorOf(); c == nil || c["phase"] != "snapshot" || c["after"] == nil || c["after"].([]any)[0].(string) < fmt.Sprintf("ACC-%06d", rows*4/10) {
			return fmt.Errorf("snapshot not 40%% read yet: %v", c)
		}
		return nil
	})
	child.kill()
	t.Logf("killed the connector mid-snapshot at %v; cursor %v", time.Since(start).Round(time.Millisecond), cursorOf())
	var snapDone time.Time
	child = runChild(t, env.URL, conn)
	var streamFrom string
	streamstest.Eventually(t, 5*time.Minute, func() error {
		c := cursorOf()
		if c["phase"] != "stream" {
			return fmt.Errorf("not streaming yet: %v", c["phase"])
		}
		if snapDone.IsZero() {
			snapDone, streamFrom = time.Now(), c["lsn"].(string)
		}
		if c["lsn"] == streamFrom {
			return fmt.Errorf("no stream progress yet")
		}
		return nil
	})
	child.kill()
	t.Logf("snapshot of %d rows with %d writes meanwhile in %v (%.0f rows/s); killed mid-stream at %v",
		rows, w.ops.Load(), snapDone.Sub(start).Round(time.Millisecond), float64(rows)/snapDone.Sub(start).Seconds(), time.Since(start).Round(time.Millisecond))
	if !strings.Contains(child.out.String(), "table snapshot resumed") {
		t.Errorf("the second process did not resume the snapshot:\n%s", child.out)
	}

	// Resume in process while the writer goes on, then stop the writer
	// and sync until a sync finds nothing.
	time.Sleep(500 * time.Millisecond) // a backlog while no connector runs
	con, err := pgsource.New(conn, connectors.Deps{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	maps, err := connectors.NewMappings(config.MappingFS(), nil)
	if err != nil {
		t.Fatal(err)
	}
	runner := connectors.NewRunner(env.Pub, cursors, maps, log)
	syncStart := time.Now()
	st, err := runner.Sync(ctx, conn, con, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the resumed sync caught up on %d changes in %v", st.RowsRead, time.Since(syncStart).Round(time.Millisecond))
	w.stop()
	for i := 0; ; i++ {
		st, err := runner.Sync(ctx, conn, con, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Rejected > 0 {
			t.Fatalf("rejected records: %+v", st.Errors)
		}
		if st.RowsRead == 0 {
			break
		}
		if i > 100 {
			t.Fatal("syncs never caught up")
		}
	}
	t.Logf("writer: %d operations (%d inserts, %d updates, %d key changes, %d deletes)", w.ops.Load(), w.inserts.Load(), w.updates.Load(), w.moves.Load(), w.deletes.Load())

	// The slot released the WAL of what was acknowledged: its confirmed
	// position is the stored cursor's.
	var confirmed string
	if err := admin.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", "s_"+db).Scan(&confirmed); err != nil {
		t.Fatal(err)
	}
	if st, err := runner.Sync(ctx, conn, con, "", nil); err != nil || st.RowsRead != 0 {
		t.Fatalf("a last sync: %+v, %v", st, err)
	}
	if c := cursorOf(); c["lsn"] == nil || lsnOf(t, confirmed) > lsnOf(t, c["lsn"].(string)) {
		t.Errorf("the slot confirmed %s, beyond the stored cursor %v", confirmed, c)
	}

	want := sourceRows(t, admin)
	streamstest.Eventually(t, time.Minute, func() error {
		got := storeRows(t, duck)
		if err := diffRows(want, got, 10); err != nil {
			return fmt.Errorf("the store has %d rows, the table %d: %w", len(got), len(want), err)
		}
		return nil
	})
	t.Logf("store equals the table: %d rows; end to end %v", len(want), time.Since(start).Round(time.Millisecond))
}

func lsnOf(t *testing.T, s string) uint64 {
	t.Helper()
	var hi, lo uint64
	if _, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err != nil {
		t.Fatalf("LSN %q: %v", s, err)
	}
	return hi<<32 | lo
}

// child is a connector process.
type child struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func runChild(t *testing.T, natsURL string, conn connectors.Connection) *child {
	t.Helper()
	b, err := json.Marshal(childConnection{Connection: conn, Secrets: conn.Secrets})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childNATS+"="+natsURL, childConnEnv+"="+string(b))
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, out: out}
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("connector process output:\n%s", out)
		}
	})
	return c
}

// kill sends SIGKILL and reaps the process.
func (c *child) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

// writer changes the accounts table until stopped: inserts, updates,
// primary key changes and deletes, alone and in transactions of several.
type writer struct {
	cancel                                        context.CancelFunc
	done                                          chan struct{}
	ops, inserts, updates, moves, deletes, failed atomic.Int64
}

func startWriter(t *testing.T, cl *pgsourcetest.Cluster, db string, rows int) *writer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{cancel: cancel, done: make(chan struct{})}
	conn, err := cl.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	go func() {
		defer close(w.done)
		defer conn.Close(context.Background())
		n := 0
		for ctx.Err() == nil {
			n++
			tx, err := conn.Begin(ctx)
			if err != nil {
				continue
			}
			for range 1 + rng.IntN(3) {
				id := fmt.Sprintf("ACC-%06d", 1+rng.IntN(rows))
				var err error
				switch op := rng.IntN(10); {
				case op < 3:
					_, err = tx.Exec(ctx, "INSERT INTO accounts (id, name, industry, annual_revenue, employee_count) VALUES ($1, $2, 'New', $3, $4)",
						fmt.Sprintf("W-%07d", n), fmt.Sprintf("Written %d", n), fmt.Sprintf("%d.%02d", rng.IntN(1_000_000), rng.IntN(100)), rng.IntN(5000))
					w.inserts.Add(1)
				case op < 7:
					_, err = tx.Exec(ctx, "UPDATE accounts SET name = $1, annual_revenue = $2, employee_count = employee_count + 1, updated_at = clock_timestamp() WHERE id = $3",
						fmt.Sprintf("Updated %d", n), fmt.Sprintf("%d.%02d", rng.IntN(1_000_000), rng.IntN(100)), id)
					w.updates.Add(1)
				case op < 8:
					_, err = tx.Exec(ctx, "UPDATE accounts SET id = id || 'm', updated_at = clock_timestamp() WHERE id = $1", id)
					w.moves.Add(1)
				default:
					_, err = tx.Exec(ctx, "DELETE FROM accounts WHERE id = $1", id)
					w.deletes.Add(1)
				}
				if err != nil {
					break
				}
				w.ops.Add(1)
			}
			if err := tx.Commit(ctx); err != nil {
				w.failed.Add(1)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *writer) stop() {
	w.cancel()
	<-w.done
}

// row is an account as compared: the mapped fields and the version.
type row struct {
	Name, Industry, Website, Revenue, Employees, Version string
}

func sourceRows(t *testing.T, conn *pgx.Conn) map[string]row {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT id, name, coalesce(industry, ''), coalesce(website, ''), coalesce(annual_revenue::text, ''),
		coalesce(employee_count::text, ''), to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') FROM accounts`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]row{}
	for rows.Next() {
		var id string
		var r row
		if err := rows.Scan(&id, &r.Name, &r.Industry, &r.Website, &r.Revenue, &r.Employees, &r.Version); err != nil {
			t.Fatal(err)
		}
		r.Revenue = normDecimal(r.Revenue)
		out[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func storeRows(t *testing.T, d *subscriber.DuckDB) map[string]row {
	t.Helper()
	out := map[string]row{}
	q := canonical.ViewQuery{Tenant: tenant, Entity: canonical.AccountEntity, Limit: canonical.MaxViewLimit}
	for {
		page, err := d.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Rows {
			s := func(k string) string {
				if m[k] == nil {
					return ""
				}
				return fmt.Sprint(m[k])
			}
			version := s("source_updated_at")
			if ts, err := time.Parse(time.RFC3339Nano, version); err == nil {
				version = ts.UTC().Format("2006-01-02T15:04:05.000000")
			}
			out[s("account_id")] = row{Name: s("name"), Industry: s("industry"), Website: s("website"), Revenue: normDecimal(s("annual_revenue")),
				Employees: s("employee_count"), Version: version}
			q.After = s("account_id")
		}
		if len(page.Rows) < q.Limit {
			return out
		}
	}
}

func normDecimal(s string) string {
	if d, err := decimal.NewFromString(s); err == nil {
		return d.String()
	}
	return s
}

// diffRows reports up to n differences.
func diffRows(want, got map[string]row, n int) error {
	var diffs []string
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s missing from the store (table: %+v)", id, w))
		case g != w:
			diffs = append(diffs, fmt.Sprintf("%s differs: table %+v, store %+v", id, w, g))
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s is in the store but not the table (%+v)", id, g))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	sort.Strings(diffs)
	return fmt.Errorf("%d differences, e.g.:\n%s", len(diffs), strings.Join(diffs[:min(n, len(diffs))], "\n"))
}
