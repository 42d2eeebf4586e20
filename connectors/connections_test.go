package connectors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonomos/autonomos/streams"
)

func TestConnectionsCRUD(t *testing.T) {
	l := newLifecycle(t)
	ctx := testCtx(t)

	created, err := l.conns.Create(ctx, "acme", ConnectionInput{Name: " Prod CRM ", System: fakeSystem,
		Config:  map[string]any{"instance_url": "https://crm.example.test", "objects": []any{"account"}},
		Secrets: map[string]string{"token": "tok-first-0123456789", "client_id": "cid-0123456789"}, Interval: "5m"})
	if err != nil {
		t.Fatal(err)
	}
	if !streams.ValidToken(created.ID) || created.Name != "Prod CRM" || created.System != fakeSystem || created.Interval != "5m" ||
		created.Status != StatusActive || created.LastSyncAt != nil || created.CreatedAt.IsZero() {
		t.Fatalf("created %+v", created)
	}
	other := l.create(t, "acme", "second", "")

	got, err := l.conns.Get(ctx, "acme", created.ID)
	if err != nil || got.Name != "Prod CRM" || got.Config["instance_url"] != "https://crm.example.test" {
		t.Fatalf("get: %+v, %v", got, err)
	}
	list, err := l.conns.List(ctx, "acme")
	if err != nil || len(list) != 2 || list[0].ID != created.ID || list[1].ID != other.ID {
		t.Fatalf("list: %+v, %v", list, err)
	}

	// Update: secrets merge (token replaced, client_id kept), the rest replaced.
	upd, err := l.conns.Update(ctx, "acme", created.ID, ConnectionInput{Name: "Renamed",
		Config: map[string]any{"instance_url": "https://other.example.test"}, Secrets: map[string]string{"token": "tok-second-0123456789"}})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Name != "Renamed" || upd.Interval != "" || upd.Config["instance_url"] != "https://other.example.test" || !upd.UpdatedAt.After(created.UpdatedAt) {
		t.Fatalf("updated %+v", upd)
	}
	conn, err := l.conns.Load(ctx, "acme", created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"token": "tok-second-0123456789", "client_id": "cid-0123456789"}; !mapsEqual(conn.Secrets, want) {
		t.Fatalf("secrets after update: got %d keys, want token replaced and client_id kept", len(conn.Secrets))
	}
	// An empty value removes a secret.
	if _, err := l.conns.Update(ctx, "acme", created.ID, ConnectionInput{Name: "Renamed", System: fakeSystem,
		Config: map[string]any{"instance_url": "https://other.example.test"}, Secrets: map[string]string{"client_id": ""}}); err != nil {
		t.Fatal(err)
	}
	if conn, _ = l.conns.Load(ctx, "acme", created.ID); len(conn.Secrets) != 1 || conn.Secrets["token"] == "" {
		t.Fatalf("client_id not removed: %d keys", len(conn.Secrets))
	}

	// Delete forgets the connection and its cursors.
	if _, err := l.cursors.Put(ctx, CursorKey("acme", created.ID, "account"), []byte(`{"cursor":"7"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.cursors.Put(ctx, CursorKey("acme", other.ID, "account"), []byte(`{"cursor":"9"}`)); err != nil {
		t.Fatal(err)
	}
	if err := l.conns.Delete(ctx, "acme", created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := l.conns.Get(ctx, "acme", created.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := l.conns.Delete(ctx, "acme", created.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if c, _ := l.runner.Cursor(ctx, "acme", created.ID, "account"); c != "" {
		t.Fatalf("cursor kept after delete: %q", c)
	}
	if c, _ := l.runner.Cursor(ctx, "acme", other.ID, "account"); c != "9" {
		t.Fatalf("another connection's cursor: %q", c)
	}
	if list, _ := l.conns.List(ctx, "acme"); len(list) != 1 {
		t.Fatalf("list after delete: %d", len(list))
	}
}

func TestConnectionValidation(t *testing.T) {
	l := newLifecycle(t)
	ctx := testCtx(t)
	good := func() ConnectionInput {
		return ConnectionInput{Name: "crm", System: fakeSystem, Config: map[string]any{"instance_url": "https://x.test"},
			Secrets: map[string]string{"token": "tok-0123456789"}, Interval: "1m"}
	}
	tests := []struct {
		name   string
		edit   func(*ConnectionInput)
		fields []string
	}{
		{"empty name", func(in *ConnectionInput) { in.Name = "  " }, []string{"name"}},
		{"no system", func(in *ConnectionInput) { in.System = "" }, []string{"system"}},
		{"unknown system", func(in *ConnectionInput) { in.System = "sap" }, []string{"system"}},
		{"missing config key", func(in *ConnectionInput) { in.Config = nil }, []string{"config.instance_url"}},
		{"missing secret", func(in *ConnectionInput) { in.Secrets = nil }, []string{"secrets.token"}},
		{"interval too short", func(in *ConnectionInput) { in.Interval = "30s" }, []string{"interval"}},
		{"interval not a duration", func(in *ConnectionInput) { in.Interval = "daily" }, []string{"interval"}},
		{"every problem at once", func(in *ConnectionInput) { *in = ConnectionInput{System: fakeSystem, Interval: "5"} },
			[]string{"name", "interval", "config.instance_url", "secrets.token"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := good()
			tc.edit(&in)
			_, err := l.conns.Create(ctx, "acme", in)
			if err == nil {
				t.Fatal("created an invalid connection")
			}
			got := fieldsOf(err)
			slices.Sort(got)
			want := slices.Clone(tc.fields)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("fields %v, want %v (error: %v)", got, want, err)
			}
		})
	}
	if list, _ := l.conns.List(ctx, "acme"); len(list) != 0 {
		t.Fatalf("invalid connections were stored: %d", len(list))
	}

	v := l.create(t, "acme", "valid", "")
	updates := []struct {
		name   string
		in     ConnectionInput
		fields []string
	}{
		{"system changed", ConnectionInput{Name: "x", System: "other", Config: map[string]any{"instance_url": "u"}}, []string{"system"}},
		{"config emptied", ConnectionInput{Name: "x", Interval: "10s"}, []string{"config.instance_url", "interval"}},
		{"secret removed", ConnectionInput{Name: "x", Config: map[string]any{"instance_url": "u"}, Secrets: map[string]string{"token": ""}}, []string{"secrets.token"}},
	}
	for _, tc := range updates {
		t.Run("update "+tc.name, func(t *testing.T) {
			_, err := l.conns.Update(ctx, "acme", v.ID, tc.in)
			got := fieldsOf(err)
			slices.Sort(got)
			if !slices.Equal(got, tc.fields) {
				t.Fatalf("fields %v, want %v (error: %v)", got, tc.fields, err)
			}
			if now, _ := l.conns.Get(ctx, "acme", v.ID); now.Name != "valid" {
				t.Fatalf("an invalid update was stored: %+v", now)
			}
		})
	}
}

func TestSecretsSealedAndNeverShown(t *testing.T) {
	l := newLifecycle(t)
	ctx := testCtx(t)
	const secret, secret2 = "super-secret-token-4242", "another-secret-9090"
	v, err := l.conns.Create(ctx, "acme", ConnectionInput{Name: "crm", System: fakeSystem,
		Config: map[string]any{"instance_url": "https://x.test"}, Secrets: map[string]string{"token": secret}, Interval: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	var shown []any
	shown = append(shown, v)
	for _, f := range []func() (any, error){
		func() (any, error) { return l.conns.Get(ctx, "acme", v.ID) },
		func() (any, error) { return l.conns.List(ctx, "acme") },
		func() (any, error) {
			return l.conns.Update(ctx, "acme", v.ID, ConnectionInput{Name: "crm2", Config: map[string]any{"instance_url": "https://x.test"},
				Secrets: map[string]string{"token2": secret2}})
		},
		func() (any, error) {
			return l.conns.SetStatus(ctx, "acme", v.ID, StatusDrifted, "field Foo__c vanished")
		},
		func() (any, error) { return l.conns.Pause(ctx, "acme", v.ID) },
		func() (any, error) { return l.conns.Resume(ctx, "acme", v.ID) },
		func() (any, error) { return l.events.List(ctx, "acme", 0, 0) },
	} {
		x, err := f()
		if err != nil && !errors.Is(err, ErrStatusConflict) {
			t.Fatal(err)
		}
		shown = append(shown, x)
	}
	for i, x := range shown {
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{secret, secret2, "secrets"} {
			if bytes.Contains(b, []byte(s)) {
				t.Fatalf("answer %d shows %q: %s", i, s, b)
			}
		}
	}

	// At rest the value holds only the sealed blob.
	e, err := l.kv.Get(ctx, "acme."+v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(e.Value(), []byte(secret)) || bytes.Contains(e.Value(), []byte(secret2)) || !bytes.Contains(e.Value(), []byte("secrets_sealed")) {
		t.Fatalf("stored value: %s", e.Value())
	}
	conn, err := l.conns.Load(ctx, "acme", v.ID)
	if err != nil || conn.Secrets["token"] != secret || conn.Secrets["token2"] != secret2 {
		t.Fatalf("load: %v (keys %d)", err, len(conn.Secrets))
	}
	if b, _ := json.Marshal(conn); bytes.Contains(b, []byte(secret)) {
		t.Fatalf("a loaded connection marshals its secrets: %s", b)
	}

	// A sealed blob moved onto another connection does not open there.
	w := l.create(t, "acme", "victim", "")
	var src, dst map[string]any
	json.Unmarshal(e.Value(), &src)
	we, _ := l.kv.Get(ctx, "acme."+w.ID)
	json.Unmarshal(we.Value(), &dst)
	dst["secrets_sealed"] = src["secrets_sealed"]
	b, _ := json.Marshal(dst)
	if _, err := l.kv.Put(ctx, "acme."+w.ID, b); err != nil {
		t.Fatal(err)
	}
	if _, err := l.conns.Load(ctx, "acme", w.ID); !errors.Is(err, ErrSealed) {
		t.Fatalf("moved blob: %v", err)
	}
}

func TestCrossTenantIsNotFound(t *testing.T) {
	l := newLifecycle(t)
	ctx := testCtx(t)
	v := l.create(t, "tenant-a", "crm", "")
	jobID, err := l.jobs.QueueSync(ctx, "tenant-a", v.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	in := ConnectionInput{Name: "stolen", System: fakeSystem, Config: map[string]any{"instance_url": "u"}, Secrets: map[string]string{"token": "x-0123456789"}}
	tests := []struct {
		name string
		call func() error
	}{
		{"get", func() error { _, err := l.conns.Get(ctx, "tenant-b", v.ID); return err }},
		{"update", func() error { _, err := l.conns.Update(ctx, "tenant-b", v.ID, in); return err }},
		{"delete", func() error { return l.conns.Delete(ctx, "tenant-b", v.ID) }},
		{"load", func() error { _, err := l.conns.Load(ctx, "tenant-b", v.ID); return err }},
		{"test", func() error { return l.conns.Test(ctx, "tenant-b", v.ID) }},
		{"set status", func() error { _, err := l.conns.SetStatus(ctx, "tenant-b", v.ID, StatusFailed, "x"); return err }},
		{"pause", func() error { _, err := l.conns.Pause(ctx, "tenant-b", v.ID); return err }},
		{"queue sync", func() error { _, err := l.jobs.QueueSync(ctx, "tenant-b", v.ID, ""); return err }},
		{"get job", func() error { _, err := l.jobs.Get(ctx, "tenant-b", jobID); return err }},
		{"cancel job", func() error { return l.jobs.Cancel(ctx, "tenant-b", jobID) }},
		{"id with a dot", func() error { _, err := l.conns.Get(ctx, "tenant-a", v.ID+".active"); return err }},
		{"tenant with a wildcard", func() error { _, err := l.conns.Get(ctx, "*", v.ID); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, ErrNotFound) {
				t.Fatalf("got %v, want ErrNotFound", err)
			}
		})
	}
	if list, err := l.conns.List(ctx, "tenant-b"); err != nil || len(list) != 0 {
		t.Fatalf("tenant-b lists %d, %v", len(list), err)
	}
	if got, err := l.conns.Get(ctx, "tenant-a", v.ID); err != nil || got.Name != "crm" {
		t.Fatalf("tenant-a's connection changed: %+v, %v", got, err)
	}
	if j, _ := l.store.Get(ctx, "tenant-a", jobID); j.Status != "queued" {
		t.Fatalf("tenant-a's job: %s", j.Status)
	}
}

func TestStatusTransitionsAndEvents(t *testing.T) {
	l := newLifecycle(t)
	ctx := testCtx(t)
	sub, err := l.NC.SubscribeSync("live.acme.connection")
	if err != nil {
		t.Fatal(err)
	}
	v := l.create(t, "acme", "crm", "5m")

	steps := []struct {
		name       string
		do         func() (*ConnectionView, error)
		wantStatus Status
		wantErr    error
		event      bool
	}{
		{"pause", func() (*ConnectionView, error) { return l.conns.Pause(ctx, "acme", v.ID) }, StatusPaused, nil, true},
		{"pause again changes nothing", func() (*ConnectionView, error) { return l.conns.Pause(ctx, "acme", v.ID) }, StatusPaused, nil, false},
		{"resume", func() (*ConnectionView, error) { return l.conns.Resume(ctx, "acme", v.ID) }, StatusActive, nil, true},
		{"drift found", func() (*ConnectionView, error) {
			return l.conns.SetStatus(ctx, "acme", v.ID, StatusDrifted, "Account.Industry renamed")
		}, StatusDrifted, nil, true},
		{"resume refused while drifted", func() (*ConnectionView, error) { return l.conns.Resume(ctx, "acme", v.ID) }, StatusDrifted, ErrStatusConflict, false},
		{"healing", func() (*ConnectionView, error) {
			return l.conns.SetStatus(ctx, "acme", v.ID, StatusHealing, "repair proposed")
		}, StatusHealing, nil, true},
		{"unknown status", func() (*ConnectionView, error) { return l.conns.SetStatus(ctx, "acme", v.ID, "BROKEN", "x") }, StatusHealing, nil, false},
		{"failed", func() (*ConnectionView, error) {
			return l.conns.SetStatus(ctx, "acme", v.ID, StatusFailed, "401 from source")
		}, StatusFailed, nil, true},
		{"resume from failed", func() (*ConnectionView, error) { return l.conns.Resume(ctx, "acme", v.ID) }, StatusActive, nil, true},
	}
	wantEvents := []Status{StatusActive} // creation
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			_, err := st.do()
			switch {
			case st.wantErr != nil && !errors.Is(err, st.wantErr):
				t.Fatalf("got %v, want %v", err, st.wantErr)
			case st.name == "unknown status" && len(fieldsOf(err)) != 1:
				t.Fatalf("unknown status: %v", err)
			case st.wantErr == nil && st.name != "unknown status" && err != nil:
				t.Fatal(err)
			}
			got, _ := l.conns.Get(ctx, "acme", v.ID)
			if got.Status != st.wantStatus {
				t.Fatalf("status %s, want %s", got.Status, st.wantStatus)
			}
			if st.event {
				wantEvents = append(wantEvents, st.wantStatus)
			}
		})
	}

	evs, err := l.events.List(ctx, "acme", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(wantEvents) {
		t.Fatalf("%d events, want %d: %+v", len(evs), len(wantEvents), evs)
	}
	for i, ev := range evs { // newest first
		want := wantEvents[len(wantEvents)-1-i]
		if ev.Status != want || ev.ConnectionID != v.ID || ev.Type != EventTypeConnectionStatus || ev.Time.IsZero() {
			t.Fatalf("event %d: %+v, want status %s", i, ev, want)
		}
	}
	if evs[0].Previous != StatusFailed || evs[0].Reason != "resumed by a user" {
		t.Fatalf("newest event %+v", evs[0])
	}
	// Paging with before.
	page, _ := l.events.List(ctx, "acme", 2, evs[1].Seq)
	if len(page) != 2 || page[0].Seq != evs[2].Seq || page[1].Seq != evs[3].Seq {
		t.Fatalf("page before %d: %+v", evs[1].Seq, page)
	}
	// The same events went out live, in order.
	for i := range wantEvents {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("live event %d: %v", i, err)
		}
		var ev map[string]any
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"type", "connection_id", "status", "reason", "time"} {
			if _, ok := ev[k]; !ok {
				t.Fatalf("live event without %q: %s", k, m.Data)
			}
		}
		if ev["status"] != string(wantEvents[i]) || ev["type"] != "connection.status" {
			t.Fatalf("live event %d: %s", i, m.Data)
		}
	}
	// Another tenant sees none of it.
	if other, _ := l.events.List(ctx, "globex", 0, 0); len(other) != 0 {
		t.Fatalf("tenant globex sees %d events", len(other))
	}
}

func TestEventLogKeepsTheLast200(t *testing.T) {
	l := newLifecycle(t)
	ctx := testCtx(t)
	for i := 1; i <= MaxStatusEvents+5; i++ {
		if _, err := l.events.Append(ctx, "acme", StatusEvent{ConnectionID: "c1", Status: StatusActive, Reason: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := l.events.List(ctx, "acme", 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != MaxStatusEvents || evs[0].Seq != MaxStatusEvents+5 || evs[len(evs)-1].Seq != 6 {
		t.Fatalf("%d events, newest %d, oldest %d", len(evs), evs[0].Seq, evs[len(evs)-1].Seq)
	}
	if three, _ := l.events.List(ctx, "acme", 3, 0); len(three) != 3 || three[2].Reason != fmt.Sprint(MaxStatusEvents+3) {
		t.Fatalf("limit 3: %+v", three)
	}
}

// TestConcurrentStatusChanges checks compare-and-set: every writer's change
// lands, none is lost to another instance's write.
func TestConcurrentStatusChanges(t *testing.T) {
	l := newLifecycle(t)
	ctx := testCtx(t)
	v := l.create(t, "acme", "crm", "")
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		go func() {
			_, err := l.jobs.conns.modify(ctx, "acme", v.ID, func(sc *storedConnection) (*StatusEvent, error) {
				sc.Config["n"] = fmt.Sprint(toInt(sc.Config["n"]) + 1)
				return nil, nil
			})
			errs <- err
		}()
	}
	for i := 0; i < 20; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got, _ := l.conns.Get(ctx, "acme", v.ID)
	if got.Config["n"] != "20" {
		t.Fatalf("n = %v, want 20", got.Config["n"])
	}
}

func TestConnectionTestCallsCheck(t *testing.T) {
	l := newLifecycle(t)
	v := l.create(t, "acme", "crm", "")
	if err := l.conns.Test(testCtx(t), "acme", v.ID); err != nil {
		t.Fatal(err)
	}
}

func TestRedactHidesSecretsInErrors(t *testing.T) {
	secrets := map[string]string{"token": "hunter2-secret"}
	err := redact(errors.Join(fmt.Errorf("login with hunter2-secret: %w", &PermanentError{Err: errors.New("401")}),
		errors.New("unrelated")), secrets)
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("not redacted: %v", err)
	}
	var pe *PermanentError
	if !errors.As(err, &pe) {
		t.Fatalf("redaction lost the permanent error: %v", err)
	}
}

func toInt(v any) int {
	var n int
	fmt.Sscan(fmt.Sprint(v), &n)
	return n
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
