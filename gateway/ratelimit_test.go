package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/gateway/gatewaytest"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/quota"
	"github.com/autonomos/autonomos/streams/quota/quotatest"
	"github.com/autonomos/autonomos/streams/streamstest"
)

// sharedGateways starts n gateway instances on one NATS, each with its own
// connection and quota keeper, sharing their rate limits.
func sharedGateways(t *testing.T, n int, cfg gateway.Config) []*gatewaytest.Env {
	t.Helper()
	nenv := streamstest.Start(t)
	ctx := context.Background()
	var out []*gatewaytest.Env
	for i := range n {
		name := "gw-" + strconv.Itoa(i)
		k, js := quotatest.Instance(t, nenv.URL, name, quota.Config{})
		jobs, err := streams.OpenJobStore(ctx, js)
		if err != nil {
			t.Fatal(err)
		}
		env := &gatewaytest.Env{NATS: nenv, Config: cfg, Views: &gatewaytest.StandInViews{}, Jobs: jobs,
			Health: &gatewaytest.StandInHealth{Components: []gateway.ComponentHealth{{Name: "nats", Status: gateway.StatusOK}}}}
		srv, err := gateway.New(cfg, gateway.Deps{Views: env.Views, Jobs: jobs, Health: env.Health, JetStream: js,
			Limiters: gateway.SharedLimits(k)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		env.Server = srv
		env.HTTP = httptest.NewServer(srv.Handler())
		env.HTTP.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 32
		t.Cleanup(env.HTTP.Close)
		env.URL = env.HTTP.URL
		out = append(out, env)
	}
	return out
}

func TestRateLimitSharedAcrossInstances(t *testing.T) {
	const rate, burst = 20.0, 10
	cfg := gateway.Config{
		JWTSecret:        gatewaytest.Secret,
		SpoolDir:         t.TempDir(),
		RateRead:         "20/s burst 10",
		RateWrite:        "1000/s burst 1000",
		LoginRateAccount: "1000/s burst 1000",
		LoginRateAddress: "1000/s burst 1000",
		Argon2:           gateway.Argon2Config{MemoryKiB: 1024, Iterations: 1, Parallelism: 1},
	}
	gws := sharedGateways(t, 2, cfg)
	acme := gws[0].Register(t, "acme", "admin@acme.example", pw)
	globex := gws[1].Register(t, "globex", "admin@globex.example", pw)

	get := func(gw *gatewaytest.Env, token string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, gw.URL+"/api/v1/dcl/views/accounts", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := gw.HTTP.Client().Do(req)
		if err != nil {
			t.Error(err)
			return nil
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}

	// acme hammers both instances for 3 s (at several times its rate,
	// even with the race detector on a busy machine: the limit is modest
	// for that); globex reads at 10/s, under its limit, through both too.
	const d = 3 * time.Second
	var accepted [2]atomic.Int64
	var refused atomic.Int64
	var mu sync.Mutex
	var a429 http.Header
	var globexRefused, globexDone atomic.Int64
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range 8 {
		gw := gws[i%2]
		wg.Go(func() {
			for time.Now().Before(deadline) {
				res := get(gw, acme.AccessToken)
				switch {
				case res == nil:
					return
				case res.StatusCode == http.StatusOK:
					accepted[i%2].Add(1)
				case res.StatusCode == http.StatusTooManyRequests:
					refused.Add(1)
					mu.Lock()
					if a429 == nil {
						a429 = res.Header
					}
					mu.Unlock()
				default:
					t.Errorf("status %d", res.StatusCode)
					return
				}
			}
		})
	}
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for n := 0; time.Now().Before(deadline); n++ {
			<-tick.C
			if res := get(gws[n%2], globex.AccessToken); res != nil && res.StatusCode != http.StatusOK {
				globexRefused.Add(1)
			}
			globexDone.Add(1)
		}
	})
	wg.Wait()
	took := time.Since(start)

	total := accepted[0].Load() + accepted[1].Load()
	want := burst + rate*took.Seconds()
	t.Logf("acme: %d + %d = %d accepted, %d refused in %v; burst + rate×time = %.0f; accepted/expected = %.1f%%",
		accepted[0].Load(), accepted[1].Load(), total, refused.Load(), took.Round(time.Millisecond), want, 100*float64(total)/want)
	floor := 0.9 * want
	if offered := total + refused.Load(); float64(offered) < want {
		// A machine too busy to send more than the limit admits cannot
		// show the limit; it can still show nothing was refused wrongly.
		t.Logf("only %d reads were sent, fewer than the limit admits: judging against them", offered)
		floor = 0.9 * float64(offered)
	}
	if float64(total) > 1.1*want || float64(total) < floor {
		t.Fatalf("acme got %d reads accepted by two instances, want within 10%% of %.0f", total, want)
	}
	if accepted[0].Load() == 0 || accepted[1].Load() == 0 {
		t.Fatal("an instance accepted nothing")
	}
	if n := globexRefused.Load(); n != 0 {
		t.Fatalf("globex, under its limit, was refused %d of %d reads", n, globexDone.Load())
	}
	if a429 == nil { // too busy to exceed the limit so far: a volley does
		var volley sync.WaitGroup
		for i := range 4 * burst {
			volley.Go(func() {
				if res := get(gws[i%2], acme.AccessToken); res != nil && res.StatusCode == http.StatusTooManyRequests {
					mu.Lock()
					a429 = res.Header
					mu.Unlock()
				}
			})
		}
		volley.Wait()
	}
	if a429 == nil {
		t.Fatal("no read was refused")
	}
	retry, err1 := strconv.Atoi(a429.Get("Retry-After"))
	reset, err2 := strconv.Atoi(a429.Get("RateLimit-Reset"))
	if err1 != nil || err2 != nil || retry < 1 || reset < 1 || a429.Get("RateLimit-Remaining") != "0" ||
		a429.Get("RateLimit-Limit") != strconv.Itoa(burst) || a429.Get("RateLimit-Policy") != "10;w=1" {
		t.Fatalf("429 headers %v", a429)
	}
}
