package pgsource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/pgsource"
	"github.com/autonomos/autonomos/connectors/pgsource/pgsourcetest"
	"github.com/autonomos/autonomos/streams/streamstest"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cdcSource is a cdc source on the logical cluster.
func cdcSource(t *testing.T) *pgsourcetest.Source {
	t.Helper()
	return pgsourcetest.NewSource(t, pgsourcetest.SourceOptions{Cluster: logicalCluster(t), PageSize: 100})
}

// newConnector builds a connector of src with config overrides; its log
// lines go to the returned buffer.
func newConnector(t *testing.T, src *pgsourcetest.Source, over map[string]any) (*pgsource.Connector, *syncBuffer) {
	t.Helper()
	cfg := src.Config()
	maps.Copy(cfg, over)
	logs := &syncBuffer{}
	c, err := pgsource.New(connectors.Connection{ID: "c1", Tenant: tenant, System: pgsource.System, Config: cfg, Secrets: src.Secrets()},
		connectors.Deps{Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, logs
}

// drain fetches object until caught up.
func drain(t *testing.T, c *pgsource.Connector, object, cursor string) ([]connectors.Record, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []connectors.Record
	for range 10000 {
		p, err := c.Fetch(ctx, object, cursor)
		if err != nil {
			t.Fatalf("fetch %s after %s: %v", object, cursor, err)
		}
		out = append(out, p.Records...)
		cursor = p.Cursor
		if !p.More {
			return out, cursor
		}
	}
	t.Fatal("no end of pages")
	return nil, ""
}

func cursorField(t *testing.T, cur, field string) any {
	t.Helper()
	if cur == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(cur), &m); err != nil {
		t.Fatalf("cursor %q: %v", cur, err)
	}
	return m[field]
}

// streamCursor reads object's snapshot and returns its first stream cursor.
func streamCursor(t *testing.T, c *pgsource.Connector, object string) string {
	t.Helper()
	cur := ""
	for cursorField(t, cur, "phase") != "stream" {
		p, err := c.Fetch(context.Background(), object, cur)
		if err != nil {
			t.Fatal(err)
		}
		cur = p.Cursor
	}
	return cur
}

func wantPermanent(t *testing.T, err error, says ...string) {
	t.Helper()
	var pe *connectors.PermanentError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a *connectors.PermanentError", err)
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

func TestSlotDropped(t *testing.T) {
	ctx := context.Background()
	t.Run("between syncs", func(t *testing.T) {
		src := cdcSource(t)
		c, _ := newConnector(t, src, map[string]any{"tables": []any{"accounts"}})
		_, cur := drain(t, c, "accounts", "")
		if err := src.Exec("SELECT pg_drop_replication_slot($1)", src.Slot); err != nil {
			t.Fatal(err)
		}
		_, err := c.Fetch(ctx, "accounts", cur)
		wantPermanent(t, err, `replication slot "`+src.Slot+`" does not exist any more`, "are lost", "reset the connection's cursors")

		// Recreated by someone else, past the stored position.
		if err := src.Exec("INSERT INTO accounts (id, name) VALUES ('late', 'Late')"); err != nil {
			t.Fatal(err)
		}
		if err := src.Exec("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", src.Slot); err != nil {
			t.Fatal(err)
		}
		_, err = c.Fetch(ctx, "accounts", cur)
		wantPermanent(t, err, "has moved past the stored position", "changes were lost")
	})
	t.Run("while streaming", func(t *testing.T) {
		src := cdcSource(t)
		c, _ := newConnector(t, src, map[string]any{"tables": []any{"accounts"}, "poll_interval": "1m"})
		cur := streamCursor(t, c, "accounts")
		errc := make(chan error, 1)
		go func() { _, err := c.Fetch(ctx, "accounts", cur); errc <- err }()
		streamstest.Eventually(t, 10*time.Second, func() error {
			var active bool
			if err := src.Conn.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", src.Slot).Scan(&active); err != nil || !active {
				return errors.New("the slot is not in use yet")
			}
			return nil
		})
		start := time.Now()
		streamstest.Eventually(t, 10*time.Second, func() error {
			// An operator ends the session and drops the slot.
			if err := src.Exec("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active", src.Slot); err != nil {
				return err
			}
			return src.Exec("SELECT pg_drop_replication_slot($1)", src.Slot)
		})
		select {
		case err := <-errc:
			wantPermanent(t, err, "does not exist any more")
			t.Logf("reported %v after the drop", time.Since(start).Round(time.Millisecond))
		case <-time.After(30 * time.Second):
			t.Fatal("Fetch did not report the dropped slot")
		}
	})
}

func TestPublicationChanged(t *testing.T) {
	ctx := context.Background()
	src := cdcSource(t)
	c, _ := newConnector(t, src, map[string]any{"tables": []any{"accounts", "contacts"}})
	_, curA := drain(t, c, "accounts", "")
	_, curC := drain(t, c, "contacts", "")
	if err := src.Exec("ALTER PUBLICATION " + src.Publication + " DROP TABLE accounts"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Fetch(ctx, "accounts", curA)
	wantPermanent(t, err, "was removed from publication", "ALTER PUBLICATION "+`"`+src.Publication+`" ADD TABLE "public"."accounts"`)
	if err := src.Exec("DROP PUBLICATION " + src.Publication); err != nil {
		t.Fatal(err)
	}
	_, err = c.Fetch(ctx, "contacts", curC)
	wantPermanent(t, err, `publication "`+src.Publication+`" does not exist any more`)
}

// The slot's confirmed position moves only to a cursor handed back to
// Fetch (the Runner's acknowledged, stored one), never to one merely
// returned.
func TestConfirmedFlushFollowsAcks(t *testing.T) {
	ctx := context.Background()
	src := cdcSource(t)
	c, _ := newConnector(t, src, map[string]any{"tables": []any{"accounts"}})
	confirmed := func() uint64 {
		var l string
		if err := src.Conn.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", src.Slot).Scan(&l); err != nil {
			t.Fatal(err)
		}
		return lsnOf(t, l)
	}
	_, cur0 := drain(t, c, "accounts", "")
	_, cur0 = drain(t, c, "accounts", cur0) // hands cur0 back: confirmed
	if got, want := confirmed(), lsnOf(t, cursorField(t, cur0, "lsn").(string)); got != want {
		t.Fatalf("confirmed %X after the cursor %X was handed back", got, want)
	}
	for i := range 3 {
		if err := src.Modify("accounts", "ACC-00000"+string(rune('1'+i))); err != nil {
			t.Fatal(err)
		}
	}
	recs, cur1 := drain(t, c, "accounts", cur0)
	if len(recs) != 3 {
		t.Fatalf("read %d changes, want 3", len(recs))
	}
	l0, l1 := lsnOf(t, cursorField(t, cur0, "lsn").(string)), lsnOf(t, cursorField(t, cur1, "lsn").(string))
	if got := confirmed(); got != l0 {
		t.Errorf("confirmed %X before the page's cursor %X was acknowledged; want still %X", got, l1, l0)
	}
	if _, _ = drain(t, c, "accounts", cur1); confirmed() != l1 {
		t.Errorf("confirmed %X after the cursor %X was handed back", confirmed(), l1)
	}
}

func TestSchemaChangeShowsInRecords(t *testing.T) {
	src := cdcSource(t)
	c, logs := newConnector(t, src, map[string]any{"tables": []any{"accounts"}})
	_, cur := drain(t, c, "accounts", "")
	for _, q := range []string{
		"ALTER TABLE accounts ADD COLUMN region text",
		"UPDATE accounts SET region = 'EU', updated_at = clock_timestamp() WHERE id = 'ACC-000001'",
		"ALTER TABLE accounts DROP COLUMN website",
		"ALTER TABLE accounts ALTER COLUMN employee_count TYPE numeric(12,1)",
		"UPDATE accounts SET employee_count = 12.5, updated_at = clock_timestamp() WHERE id = 'ACC-000002'",
	} {
		if err := src.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	recs, _ := drain(t, c, "accounts", cur)
	if len(recs) != 2 {
		t.Fatalf("read %d changes, want 2", len(recs))
	}
	if v := recs[0].Values; v["region"] != "EU" || v["website"] == nil || v["employee_count"] != int64(10) {
		t.Errorf("after ADD COLUMN: %v", v)
	}
	v := recs[1].Values
	if _, has := v["website"]; has {
		t.Errorf("after DROP COLUMN the record still has website: %v", v)
	}
	if v["employee_count"] != json.Number("12.5") {
		t.Errorf("after the retype employee_count = %#v, want json.Number 12.5", v["employee_count"])
	}
	out := logs.String()
	for _, s := range []string{`msg="source columns changed"`, "added=[region]", "dropped=[website]", "retyped=[employee_count]"} {
		if !strings.Contains(out, s) {
			t.Errorf("the log does not say %s:\n%s", s, out)
		}
	}
}

// Status updates go out on time: a Fetch idling several
// wal_sender_timeouts keeps its session.
func TestStandbyStatusOnTime(t *testing.T) {
	ctx := context.Background()
	src := cdcSource(t)
	admin, err := logicalCluster(t).Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(ctx) })
	setTimeout := func(v string) {
		if _, err := admin.Exec(ctx, "ALTER SYSTEM SET wal_sender_timeout = '"+v+"'"); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
			t.Fatal(err)
		}
	}
	setTimeout("1s")
	t.Cleanup(func() { setTimeout(pgsourcetest.DefaultSettings["wal_sender_timeout"]) })
	c, logs := newConnector(t, src, map[string]any{"tables": []any{"accounts"}, "poll_interval": "4s"})
	cur := streamCursor(t, c, "accounts")
	start := time.Now()
	p, err := c.Fetch(ctx, "accounts", cur)
	if err != nil || p.More {
		t.Fatalf("an idle Fetch: %v, more %v", err, p.More)
	}
	if d := time.Since(start); d < 4*time.Second {
		t.Errorf("an idle Fetch with poll_interval 4s returned after %v", d)
	}
	if strings.Contains(logs.String(), "retrying") {
		t.Errorf("the session was lost while idle:\n%s", logs)
	}
}

func TestCancelWhileStreaming(t *testing.T) {
	src := cdcSource(t)
	c, _ := newConnector(t, src, map[string]any{"tables": []any{"accounts"}, "poll_interval": "1h"})
	cur := streamCursor(t, c, "accounts")
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Fetch(ctx, "accounts", cur)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled Fetch returned %v", err)
	}
	if d := time.Since(start); d > 300*time.Millisecond+5*time.Second {
		t.Errorf("returned %v after the cancel", d-300*time.Millisecond)
	}
	streamstest.Eventually(t, 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before {
			return errors.New("goroutines left behind by Fetch")
		}
		return nil
	})
}
