package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/gateway/gatewaytest"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
)

// TestLiveFanOutIsTenantScopedAndOrdered: two clients of tenant A and one
// of B; A's clients receive every record event of A in stream order, B
// none of them.
func TestLiveFanOutIsTenantScopedAndOrdered(t *testing.T) {
	env := startLive(t, gateway.HubConfig{}, nil)
	a := env.Register(t, "acme", "admin@acme.example", pw)
	a2 := env.Invite(t, a.AccessToken, "viewer@acme.example", pw, "viewer")
	b := env.Register(t, "globex", "admin@globex.example", pw)
	a1c, a2c, bc := env.dial(t, a.AccessToken, ""), env.dial(t, a2.AccessToken, ""), env.dial(t, b.AccessToken, "")
	streamstest.Eventually(t, 5*time.Second, func() error {
		if n := env.Hub.Clients(); n != 3 {
			return fmt.Errorf("%d clients", n)
		}
		return nil
	})

	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	var evs []*canonical.Event
	for i := range 40 {
		e, op := canonical.AccountEntity, canonical.OpUpsert
		if i%3 == 1 {
			e = canonical.ContactEntity
		}
		if i%7 == 6 {
			op = canonical.OpDelete
		}
		evs = append(evs, event("acme", "salesforce", e, fmt.Sprintf("r%d", i), t0.Add(time.Duration(i)*time.Minute), op, nil))
	}
	// B's own events, interleaved, and a marker for B published last.
	seqs := publish(t, env.NATS, evs[:20]...)
	publish(t, env.NATS, accounts("globex", "hubspot", "g", 3)...)
	seqs = append(seqs, publish(t, env.NATS, evs[20:]...)...)
	marker := publish(t, env.NATS, event("globex", "hubspot", canonical.AccountEntity, "marker", t0, canonical.OpUpsert, nil))[0]

	for name, conn := range map[string]*websocket.Conn{"A admin": a1c, "A viewer": a2c} {
		got := readRecords(t, conn, len(evs), 10*time.Second)
		for i, f := range got {
			ev := evs[i]
			want := "record." + string(ev.Op)
			if f.Seq != seqs[i] || f.ID != ev.Record.Key() || f.Entity != string(ev.Entity()) || f.Type != want ||
				f.EventID != ev.ID || f.System != "salesforce" || f.TraceID != ev.TraceID {
				t.Fatalf("%s: frame %d = %+v, want seq %d %s %s/%s", name, i, f, seqs[i], want, ev.Entity(), ev.Record.Key())
			}
		}
	}
	// B: its own four events, then the marker, and nothing of A's (any A
	// event would have been queued before the marker, which came last).
	got := readRecords(t, bc, 4, 10*time.Second)
	for _, f := range got {
		if !strings.HasPrefix(f.ID, "g-") && f.ID != "marker" {
			t.Fatalf("tenant B received %+v", f)
		}
	}
	if got[3].Seq != marker {
		t.Fatalf("B's last frame seq %d, want the marker %d", got[3].Seq, marker)
	}
}

// TestLiveSlowClientIsDropped: a client that stops reading is dropped with
// 1013 while the others keep receiving every event within 100 ms.
func TestLiveSlowClientIsDropped(t *testing.T) {
	env := startLive(t, gateway.HubConfig{QueueSize: 64, SocketBuffer: 4096, WriteTimeout: 5 * time.Second}, nil)
	a := env.Register(t, "acme", "admin@acme.example", pw)
	b := env.Register(t, "globex", "admin@globex.example", pw)
	slow := env.dialWith(t, slowDialer(), a.AccessToken, "")
	fast := record(env.dial(t, a.AccessToken, ""))
	other := record(env.dial(t, b.AccessToken, ""))
	streamstest.Eventually(t, 5*time.Second, func() error {
		if n := env.Hub.Clients(); n != 3 {
			return fmt.Errorf("%d clients", n)
		}
		return nil
	})

	// Publish one event at a time until the slow client is dropped, then
	// a few more; the fast client must see each within 100 ms of its ack.
	type sent struct {
		seq uint64
		at  time.Time
	}
	var all []sent
	big := map[string]any{"notes": strings.Repeat("x", 2000)} // fills buffers sooner
	dropped := -1
	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 2000 && (dropped < 0 || i < dropped+20); i++ {
		ev := event("acme", "salesforce", canonical.AccountEntity, fmt.Sprintf("s%d", i), t0.Add(time.Duration(i)*time.Second), canonical.OpUpsert, big)
		seq := publish(t, env.NATS, ev)[0]
		all = append(all, sent{seq, time.Now()})
		if dropped < 0 && i%10 == 9 && strings.Contains(metricsText(t, env.Env, a.AccessToken), `autonomos_ws_dropped_total{reason="slow"} 1`) {
			dropped = i
		}
	}
	if dropped < 0 {
		t.Fatal("the client that stopped reading was never dropped")
	}
	streamstest.Eventually(t, 5*time.Second, func() error {
		if n := len(fast.snapshot()); n != len(all) {
			fast.mu.Lock()
			defer fast.mu.Unlock()
			return fmt.Errorf("fast client has %d of %d events (read error: %v)", n, len(all), fast.err)
		}
		return nil
	})
	var worst time.Duration
	for i, f := range fast.snapshot() {
		if f.Seq != all[i].seq {
			t.Fatalf("fast client frame %d has seq %d, want %d", i, f.Seq, all[i].seq)
		}
		worst = max(worst, f.At.Sub(all[i].at))
	}
	if worst > 100*time.Millisecond {
		t.Fatalf("the fast client waited up to %v for an event (want < 100ms) while another client stalled", worst)
	}
	t.Logf("slow client dropped after %d events; fast client's worst latency %v", dropped+1, worst)

	// The slow client, reading again, finds what was queued and then 1013.
	var code int
	for n := 0; ; n++ {
		_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := slow.ReadMessage(); err != nil {
			code = closeCode(err)
			if code == 0 {
				t.Fatalf("slow client: %v after %d frames, want close 1013", err, n)
			}
			break
		}
	}
	if code != websocket.CloseTryAgainLater {
		t.Fatalf("close code %d, want 1013", code)
	}
	if n := len(other.snapshot()); n != 0 {
		t.Fatalf("tenant B received %d of A's events", n)
	}
	streamstest.Eventually(t, 5*time.Second, func() error {
		if n := env.Hub.Clients(); n != 2 {
			return fmt.Errorf("%d clients", n)
		}
		return nil
	})
}

// TestLiveResume: ?since= replays exactly the tenant's events after since,
// then continues live, with no gap and no duplicate even while events keep
// arriving during the replay.
func TestLiveResume(t *testing.T) {
	env := startLive(t, gateway.HubConfig{}, nil)
	a := env.Register(t, "acme", "admin@acme.example", pw)
	conn := env.dial(t, a.AccessToken, "")
	streamstest.Eventually(t, 5*time.Second, func() error {
		if env.Hub.Clients() != 1 {
			return fmt.Errorf("not connected")
		}
		return nil
	})
	first := publish(t, env.NATS, accounts("acme", "salesforce", "a", 10)...)
	got := readRecords(t, conn, 5, 5*time.Second)
	since := got[4].Seq
	conn.Close()
	streamstest.Eventually(t, 5*time.Second, func() error {
		if env.Hub.Clients() != 0 {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	// Missed while away: the rest of the first batch, other tenants'
	// events, and more of A's.
	publish(t, env.NATS, accounts("globex", "salesforce", "g", 5)...)
	missed := append(first[5:], publish(t, env.NATS, accounts("acme", "hubspot", "b", 7)...)...)

	// Reconnect while a publisher keeps adding A's events.
	var wg sync.WaitGroup
	var during []uint64
	var pubErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i := range 60 {
			evs := accounts("acme", "dynamics", fmt.Sprintf("c%d", i), 1)
			if i%20 == 0 {
				evs = append(evs, accounts("globex", "dynamics", fmt.Sprintf("h%d", i), 1)...)
			}
			for _, ev := range evs {
				m, err := streams.EventMsg(ev)
				if err == nil {
					var ack *jetstream.PubAck
					if ack, err = env.NATS.Pub.Publish(ctx, m); err == nil && ev.Tenant == "acme" {
						during = append(during, ack.Sequence)
					}
				}
				if err != nil {
					pubErr = err
					return
				}
			}
		}
	}()
	re := env.dial(t, a.AccessToken, fmt.Sprintf("since=%d", since))
	wg.Wait()
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	want := append(missed, during...)
	got = readRecords(t, re, len(want), 10*time.Second)
	var seqs []uint64
	for _, f := range got {
		seqs = append(seqs, f.Seq)
	}
	if !slices.Equal(seqs, want) {
		t.Fatalf("resumed client got seqs %v\nwant %v", seqs, want)
	}
	// Then live.
	live := publish(t, env.NATS, accounts("acme", "salesforce", "z", 2)...)
	got = readRecords(t, re, 2, 5*time.Second)
	if got[0].Seq != live[0] || got[1].Seq != live[1] {
		t.Fatalf("live after resume: %+v, want seqs %v", got, live)
	}

	t.Run("unknown sequence", func(t *testing.T) {
		c := env.dial(t, a.AccessToken, "since=999999")
		fs := readUntilType(t, c, gateway.MsgResync, 5*time.Second)
		if fs[len(fs)-1].Raw["reason"] != "unknown sequence" {
			t.Fatalf("resync = %v", fs[len(fs)-1].Raw)
		}
		live := publish(t, env.NATS, accounts("acme", "salesforce", "y", 1)...)
		if got := readRecords(t, c, 1, 5*time.Second); got[0].Seq != live[0] {
			t.Fatalf("after resync: %+v", got)
		}
	})
	t.Run("too far behind", func(t *testing.T) {
		small := startLive(t, gateway.HubConfig{MaxReplay: 3}, nil)
		tok := small.Register(t, "acme", "admin@acme.example", pw)
		publish(t, small.NATS, accounts("acme", "salesforce", "a", 5)...)
		c := small.dial(t, tok.AccessToken, "since=0")
		fs := readUntilType(t, c, gateway.MsgResync, 5*time.Second)
		if r := fs[len(fs)-1].Raw; r["missed"] != float64(5) {
			t.Fatalf("resync = %v", r)
		}
	})
}

// TestLiveAuth: the WebSocket needs a token (header or ?token=), never
// takes the tenant from elsewhere, and checks its parameters.
func TestLiveAuth(t *testing.T) {
	env := startLive(t, gateway.HubConfig{}, nil)
	a := env.Register(t, "acme", "admin@acme.example", pw)
	cases := []struct {
		name, query string
		header      http.Header
		status      int
	}{
		{"no token", "", nil, 401},
		{"bad token", "token=nope", nil, 401},
		{"two tokens", "token=" + a.AccessToken + "&token=" + a.AccessToken, nil, 401},
		{"tenant parameter", "token=" + a.AccessToken + "&tenant=globex", nil, 422},
		{"bad since", "token=" + a.AccessToken + "&since=-1", nil, 422},
		{"header", "", http.Header{"Authorization": {"Bearer " + a.AccessToken}}, 101},
		{"query", "token=" + a.AccessToken, nil, 101},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, res, err := websocket.DefaultDialer.Dial(env.wsURL(tc.query), tc.header)
			if conn != nil {
				conn.Close()
			}
			if res == nil {
				t.Fatalf("no response: %v", err)
			}
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%v)", res.StatusCode, tc.status, err)
			}
			if tc.status != 101 {
				gatewaytest.ErrorOf(t, res)
			} else if res.Header.Get(gateway.HeaderTraceID) == "" {
				t.Fatal("101 without X-Trace-Id")
			}
		})
	}
	t.Run("plain GET is not an upgrade", func(t *testing.T) {
		res := env.Do(t, http.MethodGet, "/dcl/ws", a.AccessToken, nil)
		if res.StatusCode != 400 {
			t.Fatalf("status %d", res.StatusCode)
		}
		gatewaytest.ErrorOf(t, res)
	})
	t.Run("no hub", func(t *testing.T) {
		plain := gatewaytest.Start(t)
		tok := plain.Register(t, "acme", "admin@acme.example", pw)
		res := plain.Do(t, http.MethodGet, "/dcl/ws", tok.AccessToken, nil)
		if res.StatusCode != 503 {
			t.Fatalf("status %d, want 503", res.StatusCode)
		}
		gatewaytest.ErrorOf(t, res)
	})
}

// TestLiveNotificationsAndDeadLetters: job progress (live.<t>.job),
// connection status, drift and DLQ events reach their tenant only; a
// connection event's own seq does not pose as a stream sequence.
func TestLiveNotificationsAndDeadLetters(t *testing.T) {
	env := startLive(t, gateway.HubConfig{}, nil)
	a := env.Register(t, "acme", "admin@acme.example", pw)
	b := env.Register(t, "globex", "admin@globex.example", pw)
	ac, bc := env.dial(t, a.AccessToken, ""), env.dial(t, b.AccessToken, "")
	streamstest.Eventually(t, 5*time.Second, func() error {
		if env.Hub.Clients() != 2 {
			return fmt.Errorf("not connected")
		}
		return nil
	})
	nc := env.NATS.NC
	pubLive := func(subj string, v any) {
		b, _ := json.Marshal(v)
		if err := nc.Publish(subj, b); err != nil {
			t.Fatal(err)
		}
	}
	job := &streams.Job{ID: "j1", Tenant: "acme", Kind: "sync", Status: streams.JobRunning, RowsRead: 40, Total: 100, Done: 40}
	pubLive("live.acme.job", map[string]any{"type": "job.updated", "job": job})
	// A job of another tenant on A's subject is refused.
	pubLive("live.acme.job", map[string]any{"type": "job.updated", "job": &streams.Job{ID: "j2", Tenant: "globex"}})
	pubLive("live.acme.connection", map[string]any{"type": "connection.status", "seq": 7, "connection_id": "c1", "status": "FAILED"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := env.NATS.Pub.PublishDLQ(ctx, streams.DeadLetter{Tenant: "acme", Stage: "validation", Reason: "bad event",
		Subject: "canonical.acme.account", Sequence: 3, Attempts: 1, TraceID: "t1"}); err != nil {
		t.Fatal(err)
	}
	dm := nats.NewMsg("drift.acme.c1")
	dm.Data = []byte(`{"type":"drift.detected","finding_id":"f1","tenant_id":"acme","connection_id":"c1","system":"salesforce","object":"Account","severity":"medium","time":"2024-05-01T00:00:00Z"}`)
	if _, err := env.NATS.JS.PublishMsg(ctx, dm); err != nil {
		t.Fatal(err)
	}

	// The four sources are independent: their frames may come in any order.
	byType := map[string]frame{}
	for len(byType) < 4 {
		f, err := readFrame(ac, 5*time.Second)
		if err != nil {
			t.Fatalf("after %v: %v", byType, err)
		}
		if f.Type == gateway.MsgStats {
			continue
		}
		if _, dup := byType[f.Type]; dup {
			t.Fatalf("two %s frames (the other tenant's job forwarded?): %v", f.Type, f.Raw)
		}
		byType[f.Type] = f
	}
	if f, ok := byType["job.updated"]; !ok || !strings.Contains(string(f.Job), `"done":40`) {
		t.Fatalf("job progress not forwarded: %v", byType)
	}
	if f := byType["connection.status"]; f.Raw["connection_seq"] != float64(7) || f.Raw["seq"] != nil {
		t.Fatalf("connection frame = %v", f.Raw)
	}
	if f := byType["dlq.added"]; f.Raw["stage"] != "validation" || f.Raw["reason"] != "bad event" || f.Raw["dlq_seq"] == nil || f.Raw["seq"] != nil {
		t.Fatalf("dlq frame = %v", f.Raw)
	}
	if f := byType["drift.detected"]; f.Raw["finding_id"] != "f1" || f.Raw["drift_seq"] == nil {
		t.Fatalf("drift frame = %v", f.Raw)
	}
	// B: a marker of its own arrives, and nothing before it.
	publish(t, env.NATS, accounts("globex", "hubspot", "g", 1)...)
	if fs := readUntilType(t, bc, gateway.MsgRecordUpserted, 5*time.Second); len(fs) != 1 {
		t.Fatalf("tenant B received %v", fs)
	}
}

// TestLiveStatsAreCoalesced: a burst of events yields stats messages at
// most one per interval, counting every event.
func TestLiveStatsAreCoalesced(t *testing.T) {
	env := startLive(t, gateway.HubConfig{StatsInterval: 200 * time.Millisecond}, nil)
	a := env.Register(t, "acme", "admin@acme.example", pw)
	conn := env.dial(t, a.AccessToken, "")
	streamstest.Eventually(t, 5*time.Second, func() error {
		if env.Hub.Clients() != 1 {
			return fmt.Errorf("not connected")
		}
		return nil
	})
	publish(t, env.NATS, accounts("acme", "salesforce", "a", 30)...)
	total := 0
	var last time.Time
	for total < 30 {
		f, err := readFrame(conn, 5*time.Second)
		if err != nil {
			t.Fatalf("stats counted %d of 30: %v", total, err)
		}
		if f.Type != gateway.MsgStats {
			continue
		}
		if !last.IsZero() && f.At.Sub(last) < 100*time.Millisecond {
			t.Fatalf("stats %v after the previous one", f.At.Sub(last))
		}
		last = f.At
		total += int(f.Raw["records"].(float64))
	}
	if total != 30 {
		t.Fatalf("stats counted %d events", total)
	}
}

// TestLiveSeveralInstances: two gateways on one bus, each with its own
// hub (its own ordered consumers), each deliver every event to their own
// clients.
func TestLiveSeveralInstances(t *testing.T) {
	one := startLive(t, gateway.HubConfig{}, nil)
	a := one.Register(t, "acme", "admin@acme.example", pw)

	hub, err := gateway.NewHub(one.NATS.JS, gateway.HubConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-hub.Ready()
	srv, err := gateway.New(one.Config, gateway.Deps{Views: one.Views, Jobs: one.Jobs, Health: one.Health,
		JetStream: one.NATS.JS, Live: hub}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	two := &liveEnv{Env: &gatewaytest.Env{URL: hs.URL}, Hub: hub}

	c1, c2 := one.dial(t, a.AccessToken, ""), two.dial(t, a.AccessToken, "")
	streamstest.Eventually(t, 5*time.Second, func() error {
		if one.Hub.Clients() != 1 || hub.Clients() != 1 {
			return fmt.Errorf("not connected")
		}
		return nil
	})
	seqs := publish(t, one.NATS, accounts("acme", "salesforce", "a", 5)...)
	for i, c := range []*websocket.Conn{c1, c2} {
		got := readRecords(t, c, 5, 5*time.Second)
		for j, f := range got {
			if f.Seq != seqs[j] {
				t.Fatalf("instance %d: frame %d seq %d, want %d", i+1, j, f.Seq, seqs[j])
			}
		}
	}
}

// TestLiveChangedFields: a record's next version names exactly the fields
// that changed (extras keys included); its first version, and a version
// after a delete, say null (unknown), never a guess.
func TestLiveChangedFields(t *testing.T) {
	env := startLive(t, gateway.HubConfig{}, nil)
	a := env.Register(t, "acme", "admin@acme.example", pw)
	conn := env.dial(t, a.AccessToken, "")
	streamstest.Eventually(t, 5*time.Second, func() error {
		if n := env.Hub.Clients(); n != 1 {
			return fmt.Errorf("%d clients", n)
		}
		return nil
	})
	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	v1 := event("acme", "salesforce", canonical.AccountEntity, "r1", t0, canonical.OpUpsert, map[string]any{"Rating": "Hot", "City": "Berlin"})
	v2 := event("acme", "salesforce", canonical.AccountEntity, "r1", t0.Add(time.Minute), canonical.OpUpsert, map[string]any{"Rating": "Cold", "City": "Berlin"})
	v2.Record.(*canonical.Account).Name = "Renamed"
	v3 := event("acme", "salesforce", canonical.AccountEntity, "r1", t0.Add(2*time.Minute), canonical.OpUpsert, map[string]any{"Rating": "Cold", "City": "Berlin"})
	v3.Record.(*canonical.Account).Name = "Renamed"
	v4 := event("acme", "salesforce", canonical.AccountEntity, "r1", t0.Add(3*time.Minute), canonical.OpUpsert, map[string]any{"Rating": "Cold"})
	v4.Record.(*canonical.Account).Name = "Renamed"
	del := event("acme", "salesforce", canonical.AccountEntity, "r1", t0.Add(4*time.Minute), canonical.OpDelete, nil)
	v5 := event("acme", "salesforce", canonical.AccountEntity, "r1", t0.Add(5*time.Minute), canonical.OpUpsert, nil)
	publish(t, env.NATS, v1, v2, v3, v4, del, v5)

	got := readRecords(t, conn, 6, 10*time.Second)
	want := []any{nil, []any{"extras.Rating", "name"}, []any{}, []any{"extras.City"}, nil, nil}
	for i, f := range got {
		cf, present := f.Raw["changed_fields"]
		if !present {
			t.Fatalf("frame %d has no changed_fields: %v", i, f.Raw)
		}
		if !reflect.DeepEqual(cf, want[i]) {
			t.Fatalf("frame %d (%s) changed_fields = %#v, want %#v", i, f.Type, cf, want[i])
		}
	}
}
