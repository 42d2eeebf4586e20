package streams_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
)

func TestSubjectsValidateTokens(t *testing.T) {
	tests := []struct {
		name, tenant, entity string
		want                 string
		wantErr              bool
	}{
		{"ok", "acme", "opportunity", "canonical.acme.opportunity", false},
		{"dot in tenant", "ac.me", "account", "", true},
		{"wildcard", "*", "account", "", true},
		{"upper", "Acme", "account", "", true},
		{"empty", "", "account", "", true},
		{"too long", strings.Repeat("a", 65), "account", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := streams.CanonicalSubject(tc.tenant, tc.entity)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("CanonicalSubject(%q,%q) = %q, %v", tc.tenant, tc.entity, got, err)
			}
		})
	}
	if _, err := streams.RawSubject("acme", "salesforce", "Opportunity"); err != nil {
		t.Fatalf("raw subject: %v", err)
	}
	if _, err := streams.RawSubject("acme", "salesforce", "Opp.>"); err == nil {
		t.Fatal("raw subject accepted a dotted object")
	}
}

func TestEnsureIsIdempotentAndPublishDeduplicates(t *testing.T) {
	env := streamstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := streams.Ensure(ctx, env.JS, streams.TopologyConfig{}); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	rec := &canonical.Account{AccountID: "A1", Name: "Acme"}
	ev := &canonical.Event{Tenant: "t1", Op: canonical.OpUpsert, ConnectionID: "c1", SourceSystem: "filesource",
		Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), Record: rec}
	ev.ID = canonical.EventID(ev.Tenant, ev.SourceSystem, canonical.AccountEntity, "A1", "v1", ev.Op)
	for i := 0; i < 3; i++ {
		m, err := streams.EventMsg(ev)
		if err != nil {
			t.Fatal(err)
		}
		b := env.Pub.NewBatch()
		if err := b.Add(m); err != nil {
			t.Fatal(err)
		}
		if n, err := b.Wait(ctx); err != nil || n != 1 {
			t.Fatalf("wait: %d %v", n, err)
		}
	}
	s, err := env.JS.Stream(ctx, streams.StreamCanonical)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages after 3 publishes of one event, want 1", info.State.Msgs)
	}
}

// TestEnsureMovesDuplicateWindows: a data dir made when both CANONICAL and
// RAW kept ids for 10 minutes still opens, and Ensure shortens the windows
// in place, keeping the messages.
func TestEnsureMovesDuplicateWindows(t *testing.T) {
	env := streamstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	window := func(name string) time.Duration {
		t.Helper()
		s, err := env.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.Duplicates
	}
	for _, sc := range streams.StreamConfigs(streams.TopologyConfig{}) { // the old topology
		if sc.Name == streams.StreamCanonical || sc.Name == streams.StreamRaw {
			sc.Duplicates = 10 * time.Minute
			if _, err := env.JS.UpdateStream(ctx, sc); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := env.JS.Publish(ctx, "raw.t1.filesource.opportunity", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		cfg         streams.TopologyConfig
		canon, rawW time.Duration
	}{
		{"default", streams.TopologyConfig{}, streams.DefaultDuplicateWindow, streams.RawDuplicateWindow},
		{"configured", streams.TopologyConfig{DuplicateWindow: 5 * time.Minute}, 5 * time.Minute, streams.RawDuplicateWindow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := streams.Ensure(ctx, env.JS, tc.cfg); err != nil {
				t.Fatal(err)
			}
			if got := window(streams.StreamCanonical); got != tc.canon {
				t.Errorf("CANONICAL window %v, want %v", got, tc.canon)
			}
			if got := window(streams.StreamRaw); got != tc.rawW {
				t.Errorf("RAW window %v, want %v", got, tc.rawW)
			}
		})
	}
	s, err := env.JS.Stream(ctx, streams.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("RAW holds %d messages after the update, want 1", n)
	}
	if streams.DefaultDuplicateWindow <= streams.PublishRetryFor {
		t.Fatalf("DefaultDuplicateWindow %v is not longer than PublishRetryFor %v", streams.DefaultDuplicateWindow, streams.PublishRetryFor)
	}
}

func TestEmbeddedPortTakenIsClearError(t *testing.T) {
	env := streamstest.Start(t)
	addr := strings.TrimPrefix(env.URL, "nats://")
	_, err := streams.StartEmbedded(streams.EmbeddedConfig{Listen: addr, StoreDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "--nats-listen") {
		t.Fatalf("want a clear error naming --nats-listen, got %v", err)
	}
}
