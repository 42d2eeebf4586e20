package subscriber

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/shopspring/decimal"

	"github.com/autonomos/autonomos/canonical"
)

func zzBatch(base int) []*canonical.Event {
	evs := make([]*canonical.Event, 1000)
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range evs {
		id := fmt.Sprintf("006Hs00000%08d", base+i)
		amt := decimal.RequireFromString("1234.5")
		o := &canonical.Opportunity{OpportunityID: id, Name: "Renewal " + id, Amount: &amt,
			Extras: map[string]any{"Description": "Multi-year renewal negotiated with procurement; includes premium support", "n": json.Number("12")}}
		evs[i] = &canonical.Event{ID: id, Tenant: "t", Op: canonical.OpUpsert, ConnectionID: "c", SourceSystem: "s", Time: at, MappingVersion: 1, Record: o}
	}
	return evs
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestZZDuckVariants(t *testing.T) {
	for _, variant := range []string{"current", "ckpt", "current", "ckpt"} {
		t.Run(variant, func(t *testing.T) {
			dsn := filepath.Join(t.TempDir(), "x.duckdb")
			if variant == "ckpt" {
				dsn += "?checkpoint_threshold=1GB"
			}
			d, err := OpenDuckDB(dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			tb, _ := tableOf(canonical.OpportunityEntity)
			q := tb.duckUpsert
			switch variant {
			case "nojsoncast":
				q = strings.Replace(q, "CAST(s.extras AS JSON)", "s.extras", 1)
			case "nowhere":
				q = q[:strings.Index(q, "\nWHERE")]
			case "plaininsert":
				q = q[:strings.Index(q, "\nON CONFLICT")]
			}
			ctx := context.Background()
			c0, w0 := cpuNow(), time.Now()
			for round := 0; round < 60; round++ {
				groups, _ := prepare(zzBatch(round * 1000))
				g := groups[0]
				conn, _ := d.db.Conn(ctx)
				conn.ExecContext(ctx, "BEGIN TRANSACTION")
				err := conn.Raw(func(dc any) error {
					types := make([]duckdb.TypeInfo, len(g.t.cols))
					names := make([]string, len(g.t.cols))
					for i, c := range g.t.cols {
						names[i] = c.name
						k := c.kind
						switch k {
						case kindInteger, kindTime, kindInt32, kindBool:
						default:
							k = kindText
						}
						types[i] = d.types[k]
					}
					a, err := duckdb.NewQueryAppender(dc.(driver.Conn), q, duckStaging, types, names)
					if err != nil {
						return err
					}
					row := make([]driver.Value, len(g.t.cols))
					for _, ev := range g.events {
						for i, c := range g.t.cols {
							switch c.kind {
							case kindInteger:
								row[i] = nil
							case kindTime:
								row[i] = storedTime(ev.Time)
							case kindInt32:
								row[i] = int32(ev.MappingVersion)
							case kindBool:
								row[i] = false
							default:
								s, ok, _ := textValue(ev, c, g.t.key)
								if ok {
									row[i] = s
								} else {
									row[i] = nil
								}
							}
						}
						a.AppendRow(row...)
					}
					return a.Close()
				})
				if err != nil {
					t.Fatal(err)
				}
				conn.ExecContext(ctx, "COMMIT")
				conn.Close()
			}
			t.Logf("%s: cpu %v wall %v per batch", variant, (cpuNow()-c0)/60, time.Since(w0)/60)
		})
	}
}

func TestZZDuckTiming(t *testing.T) {
	d, err := OpenDuckDB(filepath.Join(t.TempDir(), "x.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	for round := 0; round < 12; round++ {
		evs := zzBatch(round * 1000)
		groups, _ := prepare(evs)
		g := groups[0]
		conn, _ := d.db.Conn(ctx)
		t1 := time.Now()
		conn.ExecContext(ctx, "BEGIN TRANSACTION")
		var tApp, tFlush time.Duration
		conn.Raw(func(dc any) error {
			names := make([]string, len(g.t.cols))
			types := make([]duckdb.TypeInfo, len(g.t.cols))
			for i, c := range g.t.cols {
				names[i] = c.name
				k := c.kind
				switch k {
				case kindInteger, kindTime, kindInt32, kindBool:
				default:
					k = kindText
				}
				types[i] = d.types[k]
			}
			s := time.Now()
			a, err := duckdb.NewQueryAppender(dc.(driver.Conn), g.t.duckUpsert, duckStaging, types, names)
			if err != nil {
				t.Fatal(err)
			}
			row := make([]driver.Value, len(g.t.cols))
			for _, ev := range g.events {
				for i, c := range g.t.cols {
					switch c.kind {
					case kindInteger:
						row[i] = nil
					case kindTime:
						row[i] = storedTime(ev.Time)
					case kindInt32:
						row[i] = int32(ev.MappingVersion)
					case kindBool:
						row[i] = false
					default:
						s, ok, _ := textValue(ev, c, g.t.key)
						if ok {
							row[i] = s
						} else {
							row[i] = nil
						}
					}
				}
				a.AppendRow(row...)
			}
			tApp = time.Since(s)
			s = time.Now()
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			tFlush = time.Since(s)
			return nil
		})
		t2 := time.Now()
		conn.ExecContext(ctx, "COMMIT")
		t3 := time.Now()
		conn.Close()
		t.Logf("round %d: append %v merge %v commit %v total %v", round, tApp, tFlush, t3.Sub(t2), t3.Sub(t1))
	}
}

func benchLike(base int) []*canonical.Event {
	evs := zzBatch(base)
	for _, ev := range evs {
		o := ev.Record.(*canonical.Opportunity)
		s := "Negotiation"
		o.Stage = &s
		o.Currency = &s
		d, _ := canonical.ParseDate("2024-09-30")
		o.CloseDate = &d
		o.Extras = map[string]any{
			"Description":              "Multi-year renewal negotiated with procurement; includes premium support and a 5% uplift on the second and third year.",
			"LeadSource":               "Partner Referral",
			"NextStep":                 "Send the revised order form to legal for review",
			"ForecastCategory":         "Commit",
			"Type":                     "Existing Customer - Upgrade",
			"CampaignId":               "701Hs000000XyZaBCD",
			"IsPrivate":                false,
			"TotalOpportunityQuantity": json.Number("12"),
			"custom_fields":            map[string]any{"region": "EMEA", "segment": "Enterprise", "score": json.Number("87")},
		}
	}
	return evs
}
