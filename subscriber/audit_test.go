package subscriber_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
	"github.com/autonomos/autonomos/subscriber"
)

// auditStore is what the audit tests use of a store.
type auditStore interface {
	subscriber.AuditSink
	AuditLog(ctx context.Context, tenant string, limit int, before string) ([]map[string]any, string, error)
}

// publishAudit publishes one audit CloudEvent as the gateway does; msgID
// lets a test republish the same event past the stream's deduplication.
func publishAudit(t *testing.T, js jetstream.JetStream, tenant, id, msgID string, at time.Time, status int, trace string) {
	t.Helper()
	ev := map[string]any{
		"specversion": "1.0", "id": id, "source": "/gateway", "type": subscriber.AuditEventType,
		"subject": "/api/v1/filesource/upload", "time": at.Format(time.RFC3339Nano),
		"datacontenttype": "application/json", "tenantid": tenant, "traceid": trace,
		"data": map[string]any{"tenant": tenant, "user": "u-" + tenant, "route": "/api/v1/filesource/upload",
			"method": "POST", "path": "/api/v1/filesource/upload", "status": status, "latency_ms": 12,
			"trace_id": trace, "body_sha256": "abc", "idempotency_key": "k-" + id, "outcome": "handled", "client_ip": "127.0.0.1"},
	}
	b, _ := json.Marshal(ev)
	publishAuditRaw(t, js, "audit."+tenant, tenant, msgID, b)
}

func publishAuditRaw(t *testing.T, js jetstream.JetStream, subj, tenant, msgID string, data []byte) {
	t.Helper()
	m := nats.NewMsg(subj)
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	m.Header.Set(streams.HeaderTenant, tenant)
	if _, err := js.PublishMsg(testCtx(t), m); err != nil {
		t.Fatalf("publish %s: %v", subj, err)
	}
}

func auditIDs(t *testing.T, st auditStore, tenant string, limit int) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for {
		rows, next, err := st.AuditLog(testCtx(t), tenant, limit, cursor)
		if err != nil {
			t.Fatalf("%s AuditLog: %v", st.Name(), err)
		}
		for _, r := range rows {
			if r["tenant_id"] != tenant {
				t.Fatalf("%s: %s's audit log holds a row of %v", st.Name(), tenant, r["tenant_id"])
			}
			ids = append(ids, r["event_id"].(string))
		}
		if next == "" {
			return ids
		}
		cursor = next
	}
}

func TestAuditMaterializerStoresEachRecordOnce(t *testing.T) {
	env := streamstest.Start(t)
	stores := []auditStore{openPostgres(t), openDuckDB(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, len(stores))
	mats := make([]*subscriber.AuditMaterializer, len(stores))
	for i, st := range stores {
		m, err := subscriber.NewAuditMaterializer(env.JS, env.Pub, st, subscriber.AuditConfig{BatchSize: 3}, nil)
		if err != nil {
			t.Fatal(err)
		}
		mats[i] = m
		go func() { done <- m.Run(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		for range stores {
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	})

	base := time.Date(2025, 5, 1, 10, 0, 0, 123456789, time.UTC)
	for i := range 5 {
		publishAudit(t, env.JS, "acme", fmt.Sprintf("a-%d", i), fmt.Sprintf("a-%d", i), base.Add(time.Duration(i)*time.Second), 202, fmt.Sprintf("trace-%d", i))
	}
	publishAudit(t, env.JS, "globex", "g-0", "g-0", base, 201, "trace-g")
	// The same event again, past the stream's deduplication window key: the
	// store must skip it.
	publishAudit(t, env.JS, "acme", "a-2", "a-2-again", base.Add(2*time.Second), 202, "trace-2")
	// Not an audit record: dead-lettered, never stored.
	publishAuditRaw(t, env.JS, "audit.acme", "acme", "junk", []byte(`{"not":"an event"`))
	// An event claiming another tenant than its subject's.
	b, _ := json.Marshal(map[string]any{"id": "x-1", "type": subscriber.AuditEventType, "time": base.Format(time.RFC3339),
		"tenantid": "globex", "data": map[string]any{"tenant": "globex", "status": 200}})
	publishAuditRaw(t, env.JS, "audit.acme", "acme", "spoof", b)

	want := map[string][]string{"acme": {"a-4", "a-3", "a-2", "a-1", "a-0"}, "globex": {"g-0"}}
	streamstest.Eventually(t, 20*time.Second, func() error {
		for _, m := range mats {
			if n := m.Inserted(); n != 7 {
				return fmt.Errorf("%d messages inserted, want 7", n)
			}
		}
		return nil
	})
	for _, st := range stores {
		for tenant, ids := range want {
			// limit 2 pages through the cursor.
			if got := auditIDs(t, st, tenant, 2); fmt.Sprint(got) != fmt.Sprint(ids) {
				t.Errorf("%s %s audit log = %v, want %v (newest first, each once)", st.Name(), tenant, got, ids)
			}
		}
		if got := auditIDs(t, st, "initech", 10); len(got) != 0 {
			t.Errorf("%s: a tenant without calls sees %v", st.Name(), got)
		}
		rows, _, err := st.AuditLog(testCtx(t), "acme", 1, "")
		if err != nil || len(rows) != 1 {
			t.Fatalf("%s AuditLog: %v, %v", st.Name(), rows, err)
		}
		r := rows[0]
		if r["trace_id"] != "trace-4" || r["status"] != 202 || r["method"] != "POST" || r["user_id"] != "u-acme" ||
			r["idempotency_key"] != "k-a-4" || r["outcome"] != "handled" || r["latency_ms"] != int64(12) ||
			r["time"] != "2025-05-01T10:00:04.123456Z" {
			t.Errorf("%s newest entry = %v", st.Name(), r)
		}
		var fe *canonical.FieldError
		if _, _, err := st.AuditLog(testCtx(t), "acme", 10, "not-a-cursor!"); !errors.As(err, &fe) {
			t.Errorf("%s: bad cursor error = %v, want a *canonical.FieldError", st.Name(), err)
		}
	}

	// Both bad messages reached the DLQ once per materializer, stage audit.
	dlq := streams.NewDLQ(env.JS, nil)
	streamstest.Eventually(t, 10*time.Second, func() error {
		entries, _, err := dlq.List(testCtx(t), "acme", 100, 0)
		if err != nil {
			return err
		}
		if len(entries) != 2*len(stores) {
			return fmt.Errorf("%d dead letters, want %d", len(entries), 2*len(stores))
		}
		for _, e := range entries {
			if e.Stage != subscriber.StageAudit {
				return fmt.Errorf("dead letter stage %q, want %q", e.Stage, subscriber.StageAudit)
			}
		}
		return nil
	})
}

func TestAuditMaterializerConfig(t *testing.T) {
	env := streamstest.Start(t)
	tests := []struct {
		name string
		cfg  subscriber.AuditConfig
		ok   bool
	}{
		{"defaults", subscriber.AuditConfig{}, true},
		{"bad durable", subscriber.AuditConfig{Durable: "a.b"}, false},
		{"max deliver 1", subscriber.AuditConfig{MaxDeliver: 1}, false},
		{"short ack wait", subscriber.AuditConfig{AckWait: time.Millisecond}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := subscriber.NewAuditMaterializer(env.JS, env.Pub, openDuckDB(t), tt.cfg, nil)
			if (err == nil) != tt.ok {
				t.Fatalf("NewAuditMaterializer = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
