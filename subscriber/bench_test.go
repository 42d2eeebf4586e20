package subscriber_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams/streamstest"
	"github.com/autonomos/autonomos/subscriber"
)

// benchBatch builds 1,000 opportunities of about 1 KB each as canonical
// events (as ParseEvent returns them: extras hold strings and json.Numbers),
// keys base..base+999, at source time at.
func benchBatch(tenant string, base int, at time.Time) []*canonical.Event {
	evs := make([]*canonical.Event, 1000)
	for i := range evs {
		id := fmt.Sprintf("006Hs00000%08d", base+i)
		o := &canonical.Opportunity{
			OpportunityID: id, AccountID: ptr(fmt.Sprintf("001Hs00000%08d", (base+i)%5000)), Name: "Renewal " + id + " — enterprise plan, 3 years",
			Stage: ptr("Negotiation/Review"), Amount: dec(fmt.Sprintf("%d.%02d", 10000+i*37, i%100)), Currency: ptr("USD"),
			CloseDate: date("2024-09-30"), OwnerID: ptr("005Hs000001AbCdEF"), Probability: pct("65.5"),
			Extras: map[string]any{
				"Description":              "Multi-year renewal negotiated with procurement; includes premium support and a 5% uplift on the second and third year.",
				"LeadSource":               "Partner Referral",
				"NextStep":                 "Send the revised order form to legal for review",
				"ForecastCategory":         "Commit",
				"Type":                     "Existing Customer - Upgrade",
				"CampaignId":               "701Hs000000XyZaBCD",
				"IsPrivate":                false,
				"TotalOpportunityQuantity": json.Number("12"),
				"ExpectedRevenue":          json.Number("6881.25"),
				"LastActivityDate":         "2024-08-14",
				"Pricebook2Id":             "01sHs000000AAAAAA",
				"SyncedQuoteId":            "0Q0Hs000000BBBBBB",
				"custom_fields":            map[string]any{"region": "EMEA", "segment": "Enterprise", "score": json.Number("87")},
			},
		}
		evs[i] = &canonical.Event{
			ID:     canonical.EventID(tenant, "salesforce", canonical.OpportunityEntity, id, at.Format(time.RFC3339Nano), canonical.OpUpsert),
			Tenant: tenant, Op: canonical.OpUpsert, ConnectionID: "conn-bench", SourceSystem: "salesforce", SourceObject: "Opportunity",
			Time: at, TraceID: "0123456789abcdef0123456789abcdef", MappingVersion: 1, Record: o,
		}
	}
	return evs
}

// cpuTime is the process's user+system CPU time: for DuckDB the store's
// work, for Postgres only the client's share.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchApply applies 1,000-event batches: "insert" writes new records,
// "update" newer versions of records already stored.
func benchApply(b *testing.B, s store) {
	ctx := context.Background()
	b.Run("insert", func(b *testing.B) {
		var cpu time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			evs := benchBatch("bench", i*1000, t0)
			c := cpuTime()
			b.StartTimer()
			if err := s.Apply(ctx, evs); err != nil {
				b.Fatal(err)
			}
			cpu += cpuTime() - c
		}
		b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/1k-events")
	})
	b.Run("update", func(b *testing.B) {
		if err := s.Apply(ctx, benchBatch("bench-upd", 0, t0)); err != nil {
			b.Fatal(err)
		}
		var cpu time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			evs := benchBatch("bench-upd", 0, t0.Add(time.Duration(i+1)*time.Second))
			c := cpuTime()
			b.StartTimer()
			if err := s.Apply(ctx, evs); err != nil {
				b.Fatal(err)
			}
			cpu += cpuTime() - c
		}
		b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/1k-events")
	})
}

func BenchmarkPostgresApply(b *testing.B) { benchApply(b, openPostgres(b)) }

func BenchmarkDuckDBApply(b *testing.B) { benchApply(b, openDuckDB(b)) }

// BenchmarkApplySmall applies batches of new records of 1, 10 and 100
// events: what a batch costs whatever its size, which is what bounds a sink
// (and the publish-to-visible latency) under light load, when batches are
// small.
func BenchmarkApplySmall(b *testing.B) {
	for _, s := range []store{openPostgres(b), openDuckDB(b)} {
		for _, n := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("%s/%d", s.Name(), n), func(b *testing.B) {
				ctx := context.Background()
				tenant := fmt.Sprintf("small-%d", n)
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					evs := benchBatch(tenant, i*n, t0)[:n]
					b.StartTimer()
					if err := s.Apply(ctx, evs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/batch")
			})
		}
	}
}

// BenchmarkSubscriber measures a sink fed by a Subscriber from a pre-filled
// CANONICAL stream: fetch, parse, apply, ack. Each op is 1,000 events.
// The -traced variants carry a traceparent per event (one trace per 1,000)
// and record every consume and upsert span.
func BenchmarkSubscriber(b *testing.B) {
	for _, name := range []string{"postgres", "duckdb", "postgres-traced", "duckdb-traced"} {
		b.Run(name, func(b *testing.B) {
			env := streamstest.Start(b)
			var s store
			if strings.HasPrefix(name, "postgres") {
				s = openPostgres(b)
			} else {
				s = openDuckDB(b)
			}
			var cfg subscriber.Config
			traced := strings.HasSuffix(name, "-traced")
			if traced {
				cfg.Tracing, _ = recorded(b)
			}
			for i := range b.N {
				evs := benchBatch("bench", i*1000, t0)
				if traced {
					for _, ev := range evs {
						ev.Traceparent = fmt.Sprintf("00-%032x-%016x-01", i+1, i+1)
					}
				}
				publish(b, env, evs)
			}
			sub, err := subscriber.New(env.JS, env.Pub, s, cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			c := cpuTime()
			b.ResetTimer()
			go func() { done <- sub.Run(ctx) }()
			for sub.Stats().Applied < uint64(b.N*1000) {
				time.Sleep(time.Millisecond) // a benchmark's clock, not a test's wait
			}
			b.StopTimer()
			cpu := cpuTime() - c
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/1k-events")
		})
	}
}
