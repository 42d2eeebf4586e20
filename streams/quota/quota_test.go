package quota_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/quota"
	"github.com/autonomos/autonomos/streams/quota/quotatest"
	"github.com/autonomos/autonomos/streams/streamstest"
)

func TestKey(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"a tenant bucket stays readable", "gateway.read.acme", "gateway.read.acme"},
		{"an org with a port", "salesforce:acme.my.salesforce.com:8443", "salesforce=3Aacme.my.salesforce.com=3A8443"},
		{"dots that would leave empty tokens", ".a..b.", "=2Ea=2E.b=2E"},
		{"the escape byte itself", "a=3A", "a=3D3A"},
		{"spaces and slashes", "x y/z", "x=20y=2Fz"},
		{"empty", "", "=00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := quota.Key(tc.in); got != tc.want {
				t.Fatalf("Key(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// instance is one process's view of the bus: its own connection and Keeper.
func instance(t *testing.T, env *streamstest.Env, name string, cfg quota.Config) *quota.Keeper {
	t.Helper()
	k, _ := quotatest.Instance(t, env.URL, name, cfg)
	return k
}

// hammer takes from the named bucket of each keeper with workers goroutines
// per keeper for d, pausing a millisecond after each refusal, and returns
// what each keeper admitted and how long the run took.
func hammer(keepers []*quota.Keeper, name string, l quota.Limit, workers int, d time.Duration) ([]int, time.Duration) {
	counts := make([]atomic.Int64, len(keepers))
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i, k := range keepers {
		for range workers {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					if k.Bucket(name, l).Take(context.Background()).OK {
						counts[i].Add(1)
					} else {
						time.Sleep(time.Millisecond)
					}
				}
			})
		}
	}
	wg.Wait()
	out := make([]int, len(keepers))
	for i := range counts {
		out[i] = int(counts[i].Load())
	}
	return out, time.Since(start)
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func TestSharedAcrossInstances(t *testing.T) {
	env := streamstest.Start(t)
	a := instance(t, env, "a", quota.Config{})
	b := instance(t, env, "b", quota.Config{})
	l := quota.Limit{Rate: 200, Burst: 50}

	t.Run("two instances together get the rate once", func(t *testing.T) {
		got, took := hammer([]*quota.Keeper{a, b}, "both", l, 4, 2*time.Second)
		want := float64(l.Burst) + l.Rate*took.Seconds()
		total := sum(got)
		t.Logf("admitted %v = %d in %v; burst + rate×time = %.0f (%.1f%%)", got, total, took.Round(time.Millisecond), want, 100*float64(total)/want)
		// Never more than the shared bucket grants; at most one lease
		// per instance (5 tokens) may be left unspent at the end.
		if float64(total) > want || float64(total) < 0.9*want {
			t.Fatalf("admitted %d, want between 90%% and 100%% of %.0f", total, want)
		}
		if got[0] < total/4 || got[1] < total/4 {
			t.Fatalf("admitted %v: one instance starved", got)
		}
	})
	t.Run("one busy instance gets the whole rate", func(t *testing.T) {
		// b takes nothing: a is not held to half of the rate.
		got, took := hammer([]*quota.Keeper{a}, "only-a", l, 4, time.Second)
		want := float64(l.Burst) + l.Rate*took.Seconds()
		t.Logf("admitted %d in %v; burst + rate×time = %.0f", got[0], took.Round(time.Millisecond), want)
		if float64(got[0]) > want || float64(got[0]) < 0.9*want {
			t.Fatalf("admitted %d, want between 90%% and 100%% of %.0f", got[0], want)
		}
	})
	t.Run("another key is another bucket", func(t *testing.T) {
		for i := range l.Burst {
			if d := b.Bucket("fresh", l).Take(context.Background()); !d.OK {
				t.Fatalf("take %d of a fresh bucket refused: %+v", i, d)
			}
		}
	})
	t.Run("the state names both instances", func(t *testing.T) {
		kv, err := env.JS.KeyValue(context.Background(), streams.BucketQuotas)
		if err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(context.Background(), quota.Key("both"))
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Rate    float64              `json:"rate"`
			Burst   int                  `json:"burst"`
			Members map[string]time.Time `json:"members"`
		}
		if err := json.Unmarshal(e.Value(), &st); err != nil {
			t.Fatal(err)
		}
		if _, ok := st.Members["a"]; !ok || len(st.Members) != 2 || st.Rate != l.Rate || st.Burst != l.Burst {
			t.Fatalf("state %s", e.Value())
		}
	})
}

func TestWindowIsNeverExceeded(t *testing.T) {
	env := streamstest.Start(t)
	keepers := []*quota.Keeper{instance(t, env, "a", quota.Config{}), instance(t, env, "b", quota.Config{})}

	t.Run("a long window: every instance stops at the count", func(t *testing.T) {
		l := quota.Limit{Burst: 100, Window: time.Hour, PerWindow: 37}
		var ok atomic.Int64
		var wg sync.WaitGroup
		for _, k := range keepers {
			for range 3 {
				wg.Go(func() {
					for {
						err := k.Bucket("daily", l).Wait(context.Background())
						var ex *quota.ExhaustedError
						if errors.As(err, &ex) {
							if time.Until(ex.Until) < 59*time.Minute {
								t.Errorf("exhausted until %v, want about an hour from now", ex.Until)
							}
							return
						}
						if err != nil {
							t.Error(err)
							return
						}
						ok.Add(1)
					}
				})
			}
		}
		wg.Wait()
		if n := ok.Load(); n != int64(l.PerWindow) {
			t.Fatalf("admitted %d in the window, want exactly %d", n, l.PerWindow)
		}
	})
	t.Run("short windows: each one holds its count", func(t *testing.T) {
		l := quota.Limit{Rate: 1000, Burst: 100, Window: 400 * time.Millisecond, PerWindow: 10}
		var mu sync.Mutex
		var at []time.Time
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		var wg sync.WaitGroup
		for _, k := range keepers {
			for range 3 {
				wg.Go(func() {
					for k.Bucket("short", l).Wait(ctx) == nil {
						mu.Lock()
						at = append(at, time.Now())
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		start := windowStart(t, env, "short")
		perWindow := map[int]int{}
		for _, x := range at {
			perWindow[int(math.Floor(float64(x.Sub(start))/float64(l.Window)))]++
		}
		t.Logf("admitted per window: %v", perWindow)
		if len(perWindow) < 3 {
			t.Fatalf("admissions span %d windows, want at least 3", len(perWindow))
		}
		for w, n := range perWindow {
			if n > l.PerWindow {
				t.Fatalf("window %d admitted %d, more than %d", w, n, l.PerWindow)
			}
		}
	})
}

// windowStart reads the start of the current window of the named bucket.
func windowStart(t *testing.T, env *streamstest.Env, name string) time.Time {
	t.Helper()
	kv, err := env.JS.KeyValue(context.Background(), streams.BucketQuotas)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), quota.Key(name))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		WindowStart time.Time `json:"window_start"`
	}
	if err := json.Unmarshal(e.Value(), &st); err != nil || st.WindowStart.IsZero() {
		t.Fatalf("state %s: %v", e.Value(), err)
	}
	return st.WindowStart
}

// flakyKV is the quotas bucket with a switch that makes it unreachable.
type flakyKV struct {
	jetstream.KeyValue
	down atomic.Bool
}

var errUnreachable = errors.New("nats: timeout")

func (f *flakyKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if f.down.Load() {
		return nil, errUnreachable
	}
	return f.KeyValue.Get(ctx, key)
}

func (f *flakyKV) Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error) {
	if f.down.Load() {
		return 0, errUnreachable
	}
	return f.KeyValue.Update(ctx, key, v, rev)
}

func (f *flakyKV) Create(ctx context.Context, key string, v []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	if f.down.Load() {
		return 0, errUnreachable
	}
	return f.KeyValue.Create(ctx, key, v, opts...)
}

func gauge(t *testing.T, c prometheus.Collector, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestLocalFallbackWhenNATSIsUnreachable(t *testing.T) {
	env := streamstest.Start(t)
	kv, err := env.JS.KeyValue(context.Background(), streams.BucketQuotas)
	if err != nil {
		t.Fatal(err)
	}
	flaky := &flakyKV{KeyValue: kv}
	logs := &syncBuffer{}
	a := quota.New(flaky, quota.Config{Instance: "a", Retry: 300 * time.Millisecond},
		slog.New(slog.NewJSONHandler(logs, nil)))
	b := instance(t, env, "b", quota.Config{})
	l := quota.Limit{Rate: 1, Burst: 10}
	ctx := context.Background()
	// Both instances share the bucket, so a's fallback takes half of it.
	for range 2 {
		if !a.Bucket("t", l).Take(ctx).OK || !b.Bucket("t", l).Take(ctx).OK {
			t.Fatal("a fresh bucket refused")
		}
	}

	flaky.down.Store(true)
	admitted := 0
	for range 20 {
		d := a.Bucket("t", l).Take(ctx)
		if !d.Local {
			t.Fatalf("decision %+v while NATS is unreachable, want a local one", d)
		}
		if d.OK {
			admitted++
		} else if d.RetryAfter <= 0 {
			t.Fatalf("a local refusal without a retry time: %+v", d)
		}
	}
	if admitted != l.Burst/2 {
		t.Fatalf("the fallback admitted %d at once, want burst/2 = %d", admitted, l.Burst/2)
	}
	if !a.Local() || gauge(t, a, "autonomos_quota_local_fallback") != 1 {
		t.Fatal("the keeper does not report its local fallback")
	}
	if n := strings.Count(logs.String(), "deciding locally"); n != 1 {
		t.Fatalf("the switch to local decisions was logged %d times, want once: %s", n, logs)
	}

	flaky.down.Store(false)
	streamstest.Eventually(t, 5*time.Second, func() error {
		if d := a.Bucket("t", l).Take(ctx); d.Local {
			return fmt.Errorf("still local: %+v", d)
		}
		return nil
	})
	if a.Local() || gauge(t, a, "autonomos_quota_local_fallback") != 0 || !strings.Contains(logs.String(), "reachable again") {
		t.Fatalf("the recovery is not reported: %s", logs)
	}
}

func TestServerGoneFailsFast(t *testing.T) {
	env := streamstest.Start(t)
	const timeout = 300 * time.Millisecond
	k := instance(t, env, "a", quota.Config{Timeout: timeout})
	l := quota.Limit{Rate: 100, Burst: 1}
	if !k.Bucket("t", l).Take(context.Background()).OK {
		t.Fatal("a fresh bucket refused")
	}
	env.Server.Shutdown()
	// The first decision may wait for one lease's timeout (the client may
	// not have noticed yet); the next ones decide locally at once.
	start := time.Now()
	d := k.Bucket("t", l).Take(context.Background())
	if took := time.Since(start); took > timeout+time.Second || !d.Local || !d.OK {
		t.Fatalf("first decision %+v after %v with the server gone, want a local admission within the timeout", d, took)
	}
	start = time.Now()
	var ds []quota.Decision
	for range 50 {
		ds = append(ds, k.Bucket("t", l).Take(context.Background()))
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Fatalf("50 decisions took %v with the server gone, want no waiting", took)
	}
	if slices.ContainsFunc(ds, func(d quota.Decision) bool { return !d.Local }) {
		t.Fatalf("decisions %+v, want local ones", ds)
	}
}

func TestConcurrentTakersShareOneLease(t *testing.T) {
	env := streamstest.Start(t)
	k := instance(t, env, "a", quota.Config{})
	l := quota.Limit{Rate: 1000, Burst: 1000} // leases of 100
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if !k.Bucket("t", l).Take(context.Background()).OK {
				t.Error("refused with tokens to spare")
			}
		})
	}
	wg.Wait()
	if v := counter(t, k, "autonomos_quota_tokens_leased_total"); v != 100 {
		t.Fatalf("leased %v tokens for 50 takes, want one lease of 100", v)
	}
}

func counter(t *testing.T, c prometheus.Collector, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
