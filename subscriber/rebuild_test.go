package subscriber_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams/streamstest"
	"github.com/autonomos/autonomos/subscriber"
)

// materialize publishes the churn, runs a subscriber per store until every
// count is right, and stops them.
func materialize(t *testing.T, env *streamstest.Env, stores []store) map[string]int64 {
	t.Helper()
	evs, want := churn(t)
	publish(t, env, evs)
	for _, s := range stores {
		r := start(t, env, s, subscriber.Config{})
		for k, n := range want {
			tenant, entity := splitKey(k)
			streamstest.Eventually(t, time.Minute, wantCount(s, tenant, canonical.Entity(entity), n))
		}
		r.stop()
	}
	return want
}

func splitKey(k string) (string, string) {
	for i := range k {
		if k[i] == '/' {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}

func snapshot(t *testing.T, s store, tenant string) map[canonical.Entity][]map[string]any {
	t.Helper()
	out := map[canonical.Entity][]map[string]any{}
	for _, e := range canonical.Entities {
		out[e] = withoutStoreTimes(all(t, s, tenant, e, 1000))
	}
	return out
}

func TestRebuildEqualsLiveRowForRow(t *testing.T) {
	env := streamstest.Start(t)
	stores := bothStores(t)
	want := materialize(t, env, stores)
	ctx := testCtx(t)

	live := map[string]map[canonical.Entity][]map[string]any{}
	for _, s := range stores {
		live[s.Name()+"/acme"] = snapshot(t, s, "acme")
		live[s.Name()+"/globex"] = snapshot(t, s, "globex")
		// A row the stream does not have: the rebuild drops it.
		apply(t, s, upsert(t, "acme", opp("GHOST", "not in the stream"), t0, 1))
	}
	var rb []subscriber.Rebuildable
	for _, s := range stores {
		rb = append(rb, s.(subscriber.Rebuildable))
	}
	st, err := subscriber.Rebuild(ctx, env.JS, rb, subscriber.ReplayOptions{Tenant: "acme"})
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	t.Logf("rebuild: %+v", st)
	for _, s := range stores {
		for _, tenant := range []string{"acme", "globex"} {
			got := snapshot(t, s, tenant)
			for _, e := range canonical.Entities {
				if !reflect.DeepEqual(got[e], live[s.Name()+"/"+tenant][e]) {
					t.Errorf("%s %s/%s: rebuilt table differs from the live one (%d rows vs %d)", s.Name(), tenant, e, len(got[e]), len(live[s.Name()+"/"+tenant][e]))
				}
				if n := count(t, s, tenant, e); n != want[tenant+"/"+string(e)] {
					t.Errorf("%s %s/%s: %d rows, want %d", s.Name(), tenant, e, n, want[tenant+"/"+string(e)])
				}
			}
		}
		fmt.Printf("rebuild %s: expected=%d acme opportunities, got=%d\n", s.Name(), want["acme/opportunity"], count(t, s, "acme", canonical.OpportunityEntity))
	}

	// One entity only.
	if _, err := subscriber.Rebuild(ctx, env.JS, rb, subscriber.ReplayOptions{Tenant: "globex", Entity: canonical.ContactEntity}); err != nil {
		t.Fatalf("Rebuild contacts: %v", err)
	}
	for _, s := range stores {
		if got := snapshot(t, s, "globex"); !reflect.DeepEqual(got, live[s.Name()+"/globex"]) {
			t.Errorf("%s: globex differs after a contact rebuild", s.Name())
		}
	}
}

func TestReplayFillsEmptyStores(t *testing.T) {
	env := streamstest.Start(t)
	stores := bothStores(t)
	materialize(t, env, stores)
	fresh := bothStores(t)
	ctx := testCtx(t)
	var sinks []subscriber.Sink
	for _, s := range fresh {
		sinks = append(sinks, s)
	}
	st, err := subscriber.Replay(ctx, env.JS, sinks, subscriber.ReplayOptions{Tenant: "acme", BatchSize: 500})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if st.Events == 0 || st.LastSeq == 0 {
		t.Fatalf("Replay read nothing: %+v", st)
	}
	for i, s := range fresh {
		if got, want := snapshot(t, s, "acme"), snapshot(t, stores[i], "acme"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: replayed tables differ from the live ones", s.Name())
		}
		if n := count(t, s, "globex", canonical.AccountEntity); n != 0 {
			t.Errorf("%s: replay of acme wrote %d globex accounts", s.Name(), n)
		}
	}
	// From a sequence past the end: nothing.
	st, err = subscriber.Replay(ctx, env.JS, sinks, subscriber.ReplayOptions{Tenant: "acme", FromSeq: st.LastSeq + 100})
	if err != nil || st.Events != 0 {
		t.Fatalf("Replay past the end: %+v, %v", st, err)
	}
}
