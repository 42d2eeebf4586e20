package connectortest

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/streams"
)

func testConfig(t *testing.T, h Harness) {
	src := h.NewSource(t)
	good := connectors.Connection{ID: connID, Tenant: tenant, System: h.System, Config: src.Config(), Secrets: src.Secrets()}
	before := src.Requests()
	c, err := h.Factory(good, connectors.Deps{})
	if err != nil {
		t.Fatalf("a good connection is rejected: %v", err)
	}
	if len(c.Objects()) == 0 {
		t.Errorf("Objects() is empty")
	}
	if src.Requests() != before {
		t.Errorf("the factory called the source (%d requests); only Check and Fetch may", src.Requests()-before)
	}

	cases := append([]BadConfig{
		{Name: "unknown setting", Config: map[string]any{"no_such_setting": "x"}, Field: "config.no_such_setting"},
	}, h.BadConfigs...)
	for _, bc := range cases {
		t.Run(bc.Name, func(t *testing.T) {
			conn := good
			conn.Config = maps.Clone(good.Config)
			conn.Secrets = maps.Clone(good.Secrets)
			for k, v := range bc.Config {
				if v == nil {
					delete(conn.Config, k)
				} else {
					conn.Config[k] = v
				}
			}
			for k, v := range bc.Secrets {
				if v == "" {
					delete(conn.Secrets, k)
				} else {
					conn.Secrets[k] = v
				}
			}
			_, err := h.Factory(conn, connectors.Deps{})
			if err == nil {
				t.Fatalf("accepted; want an error naming %s", bc.Field)
			}
			if !namesField(err, bc.Field) {
				t.Errorf("error %q does not name %s with a *canonical.FieldError", err, bc.Field)
			}
			for k, v := range conn.Secrets {
				if len(v) >= 4 && strings.Contains(err.Error(), v) {
					t.Errorf("the error quotes secrets.%s", k)
				}
			}
		})
	}
	t.Run("empty connection", func(t *testing.T) {
		_, err := h.Factory(connectors.Connection{ID: connID, Tenant: tenant, System: h.System}, connectors.Deps{})
		var fe *canonical.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("an empty connection: %v, want field errors", err)
		}
	})
}

// namesField reports whether err (joined or not) holds a FieldError of field.
func namesField(err error, field string) bool {
	if err == nil {
		return false
	}
	var fe *canonical.FieldError
	if errors.As(err, &fe) && fe.Field == field {
		return true
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if namesField(e, field) {
				return true
			}
		}
	}
	if u := errors.Unwrap(err); u != nil {
		return namesField(u, field)
	}
	return false
}

func testCheck(t *testing.T, h Harness) {
	r := newRig(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := r.src.Requests()
	if err := r.connector().Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if r.src.Requests() == before {
		t.Errorf("Check did not call the source")
	}

	conn := r.conn()
	bad := map[string]string{}
	for k, v := range conn.Secrets {
		bad[k] = v + "-wrong"
	}
	conn.Secrets = bad
	c, err := h.Factory(conn, connectors.Deps{Log: r.log})
	if err != nil {
		t.Fatalf("factory with wrong secrets: %v", err)
	}
	err = c.Check(ctx)
	if err == nil {
		t.Fatal("Check passed with wrong credentials")
	}
	var pe *connectors.PermanentError
	if !errors.As(err, &pe) {
		t.Errorf("bad credentials must fail permanently: %v", err)
	}
	for k, v := range r.src.Secrets() {
		if strings.Contains(err.Error(), v) || strings.Contains(err.Error(), bad[k]) {
			t.Errorf("the Check error quotes secrets.%s: %v", k, err)
		}
	}
}

func testIncremental(t *testing.T, h Harness) {
	r := newRig(t, h)
	c := r.connector()
	objects := c.Objects()
	st := r.sync(c)
	r.checkFull(c, 0)
	if st.Pages < int64(2*len(objects)) {
		t.Errorf("a full sync fetched %d pages for %d objects; the source's page size should give several", st.Pages, len(objects))
	}
	wantRecords := 0
	for _, o := range objects {
		wantRecords += r.src.Count(o)
	}
	if int(st.RowsRead) != wantRecords || int(st.Published) != wantRecords {
		t.Errorf("full sync read %d and published %d, want %d", st.RowsRead, st.Published, wantRecords)
	}
	if n := total(r.counts(streams.StreamRaw, streams.RawFilter(tenant))); int(n) != wantRecords {
		t.Errorf("RAW holds %d records, want %d", n, wantRecords)
	}

	// Nothing changed: nothing is read, nothing published, few requests.
	canon := total(r.counts(streams.StreamCanonical, "canonical.>"))
	before := r.src.Requests()
	st = r.sync(r.connector())
	if st.RowsRead != 0 || st.Published != 0 {
		t.Errorf("a sync without changes read %d and published %d records, want 0", st.RowsRead, st.Published)
	}
	if n := r.src.Requests() - before; n > 4*len(objects) {
		t.Errorf("a sync without changes made %d requests for %d objects, want at most %d", n, len(objects), 4*len(objects))
	}
	if n := total(r.counts(streams.StreamCanonical, "canonical.>")); n != canon {
		t.Errorf("CANONICAL grew from %d to %d without a change", canon, n)
	}

	// Some changes: exactly the changed records are read.
	ids := r.ids(c)
	changed := map[string]bool{}
	for _, o := range objects {
		if len(ids[o]) < 2 {
			t.Fatalf("%s has %d records, want at least 2", o, len(ids[o]))
		}
		if err := r.src.Modify(o, ids[o][0]); err != nil {
			t.Fatal(err)
		}
		changed[ids[o][0]] = true
	}
	created, err := r.src.Create(objects[0])
	if err != nil {
		t.Fatal(err)
	}
	changed[created] = true
	nBefore := len(r.events())
	st = r.sync(r.connector())
	if int(st.RowsRead) != len(changed) || int(st.Published) != len(changed) {
		t.Errorf("after %d changes a sync read %d and published %d records", len(changed), st.RowsRead, st.Published)
	}
	for _, ev := range r.events()[nBefore:] {
		if !changed[ev.Subject] || !strings.HasSuffix(ev.Type, ".upserted") {
			t.Errorf("unexpected event %s %s", ev.Type, ev.Subject)
		}
		delete(changed, ev.Subject)
	}
	if len(changed) > 0 {
		t.Errorf("no event for changed records %v", changed)
	}

	// Deletes: one .deleted event per deleted record.
	deleted := map[string]bool{}
	for _, o := range objects {
		if err := r.src.Delete(o, ids[o][1]); err != nil {
			t.Fatal(err)
		}
		deleted[ids[o][1]] = true
	}
	nBefore = len(r.events())
	st = r.sync(r.connector())
	if int(st.Deleted) != len(deleted) || int(st.RowsRead) != len(deleted) {
		t.Errorf("after %d deletes a sync read %d records and published %d deletes", len(deleted), st.RowsRead, st.Deleted)
	}
	for _, ev := range r.events()[nBefore:] {
		if !deleted[ev.Subject] || !strings.HasSuffix(ev.Type, ".deleted") {
			t.Errorf("unexpected event %s %s", ev.Type, ev.Subject)
		}
		delete(deleted, ev.Subject)
	}
	if len(deleted) > 0 {
		t.Errorf("no .deleted event for %v", deleted)
	}

	// And quiet again.
	st = r.sync(r.connector())
	if st.RowsRead != 0 {
		t.Errorf("a sync after the deletes read %d records, want 0", st.RowsRead)
	}
}

func testTokenExpiry(t *testing.T, h Harness) {
	r := newRig(t, h)
	hk := &hooked{Connector: r.connector()}
	hk.after = func(n int, _ connectors.Page, _ error) {
		if n == 1 || n == 3 {
			r.src.ExpireTokens()
		}
	}
	r.sync(hk)
	r.checkFull(hk, 0)

	// Expired between syncs, with a change to read.
	ids := r.ids(hk)
	obj := hk.Objects()[0]
	if err := r.src.Modify(obj, ids[obj][0]); err != nil {
		t.Fatal(err)
	}
	r.src.ExpireTokens()
	if st := r.sync(hk); st.RowsRead != 1 {
		t.Errorf("read %d records after one change, want 1", st.RowsRead)
	}
}

func testStorm(t *testing.T, h Harness) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			r := newRig(t, h)
			hk := &hooked{Connector: r.connector()}
			hk.after = func(n int, _ connectors.Page, _ error) {
				if n == 1 { // a storm in the middle of the run
					r.src.FailNext(stormSize, status)
				}
			}
			start := time.Now()
			r.sync(hk)
			if el := time.Since(start); el < stormSize*time.Second {
				t.Errorf("survived %d answers %d with Retry-After: 1 in %v; Retry-After was not honoured", stormSize, status, el)
			}
			r.checkFull(hk, 0)
		})
	}
}

func testCancel(t *testing.T, h Harness) {
	r := newRig(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cancelledAt := make(chan time.Time, 1)
	hk := &hooked{Connector: r.connector()}
	hk.before = func(n int) {
		if n == 2 { // the source stalls with 503s; the sync is cancelled meanwhile
			r.src.FailNext(1000, http.StatusServiceUnavailable)
			time.AfterFunc(300*time.Millisecond, func() { cancelledAt <- time.Now(); cancel() })
		}
	}
	_, err := r.runner.Sync(ctx, r.conn(), hk, "", nil)
	returned := time.Now()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled sync returned %v, want context.Canceled", err)
	}
	var cancelled time.Time
	select {
	case cancelled = <-cancelledAt:
	default:
		t.Fatal("the sync ended before it was cancelled")
	}
	if d := returned.Sub(cancelled); d > cancelWait {
		t.Errorf("the sync returned %v after cancel, want within %v", d, cancelWait)
	}
	r.src.FailNext(0, http.StatusServiceUnavailable)

	// Nothing is published after Fetch and Sync returned.
	fetches := hk.fetches()
	c0 := total(r.counts(streams.StreamCanonical, "canonical.>"))
	r0 := total(r.counts(streams.StreamRaw, "raw.>"))
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		if c, rw := total(r.counts(streams.StreamCanonical, "canonical.>")), total(r.counts(streams.StreamRaw, "raw.>")); c != c0 || rw != r0 {
			t.Fatalf("published after the sync returned: CANONICAL %d → %d, RAW %d → %d", c0, c, r0, rw)
		}
	}
	if hk.fetches() != fetches {
		t.Errorf("Fetch was called after Sync returned")
	}

	// Fetch with an already cancelled ctx returns its error at once.
	done, stop := context.WithCancel(context.Background())
	stop()
	start := time.Now()
	if _, err := r.connector().Fetch(done, hk.Objects()[0], ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch under a cancelled ctx returned %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > cancelWait {
		t.Errorf("Fetch under a cancelled ctx took %v", d)
	}

	// The interrupted sync completes later with nothing lost or doubled.
	r.sync(r.connector())
	r.checkFull(hk, 0)
}

func testRestart(t *testing.T, h Harness, at int) {
	r := newRig(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hk := &hooked{Connector: r.connector()}
	hk.before = func(n int) {
		if n == at {
			cancel()
		}
	}
	first, err := r.runner.Sync(ctx, r.conn(), hk, "", nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("the interrupted sync returned %v, want context.Canceled", err)
	}
	cur, err := r.runner.Cursor(context.Background(), tenant, connID, hk.Objects()[0])
	if err != nil || cur == "" {
		t.Fatalf("no checkpoint after %d fetches: %q, %v", at-1, cur, err)
	}

	// A new connector and a new runner, on the same cursors.
	cursors, err := r.env.JS.KeyValue(context.Background(), streams.BucketCursors)
	if err != nil {
		t.Fatal(err)
	}
	r.runner = connectors.NewRunner(r.env.Pub, cursors, r.mappings, r.log)
	c := r.connector()
	st := r.sync(c)
	r.checkFull(c, 0)
	all := 0
	for _, o := range c.Objects() {
		all += r.src.Count(o)
	}
	// Every page before the interruption was checkpointed: the resumed
	// sync reads exactly the rest.
	if int(first.RowsRead+st.RowsRead) != all {
		t.Errorf("the interrupted sync read %d records and the resumed one %d, want %d in all", first.RowsRead, st.RowsRead, all)
	}
}
