package drift_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/autonomos/autonomos/agents/drift"
	"github.com/autonomos/autonomos/agents/shape"
)

func opp(i int) map[string]any {
	return map[string]any{
		"Id":             fmt.Sprintf("0065g00000Zx%04dAAJ", i),
		"Name":           fmt.Sprintf("Deal %d", i),
		"Amount":         float64(1000*i) + 0.5,
		"CloseDate":      "2024-07-31",
		"StageName":      "Prospecting",
		"SystemModstamp": "2024-05-03T09:00:00.000+0000",
	}
}

func with(r map[string]any, f func(map[string]any)) map[string]any {
	f(r)
	return r
}

// run observes baseline records, then changed ones, then flushes as a
// caught-up observer would, and returns every change seen.
func run(t *testing.T, baseline int, changed func(i int) map[string]any, n int) []*drift.Change {
	t.Helper()
	cfg := drift.Config{}
	cfg.Defaults()
	fp := drift.NewFingerprint("acme", "c1", "salesforce", "Opportunity")
	now := time.Unix(1700000000, 0)
	seq := uint64(0)
	var out []*drift.Change
	observe := func(r map[string]any) {
		seq++
		if _, ch := fp.Observe(r, seq, now, cfg); ch != nil {
			out = append(out, ch)
		}
	}
	for i := 1; i <= baseline; i++ {
		observe(opp(i))
	}
	for i := 1; i <= n; i++ {
		observe(changed(baseline + i))
	}
	if ch := fp.Flush(now, cfg.MinRecords, cfg); ch != nil {
		out = append(out, ch)
	}
	return out
}

func TestObserve(t *testing.T) {
	tests := []struct {
		name     string
		changed  func(i int) map[string]any
		n        int
		changes  int
		severity drift.Severity
		check    func(t *testing.T, ch *drift.Change)
	}{
		{name: "unchanged schema over many records", changed: opp, n: 500, changes: 0},
		{
			name: "a new field", n: 12, changes: 1, severity: drift.SeverityMedium,
			changed: func(i int) map[string]any {
				return with(opp(i), func(r map[string]any) { r["Competitor__c"] = "Globex" })
			},
			check: func(t *testing.T, ch *drift.Change) {
				if len(ch.Added) != 1 || ch.Added[0].Name != "Competitor__c" || ch.Added[0].Type() != shape.String {
					t.Fatalf("added = %+v", ch.Added)
				}
			},
		},
		{
			name: "a removed field", n: 7, changes: 1, severity: drift.SeverityCritical,
			changed: func(i int) map[string]any { return with(opp(i), func(r map[string]any) { delete(r, "StageName") }) },
			check: func(t *testing.T, ch *drift.Change) {
				if len(ch.Removed) != 1 || ch.Removed[0].Name != "StageName" {
					t.Fatalf("removed = %+v", ch.Removed)
				}
			},
		},
		{
			name: "a rename", n: 3, changes: 1, severity: drift.SeverityHigh,
			changed: func(i int) map[string]any {
				return with(opp(i), func(r map[string]any) { r["Amount__c"] = r["Amount"]; delete(r, "Amount") })
			},
			check: func(t *testing.T, ch *drift.Change) {
				if len(ch.Renames) != 1 || ch.Renames[0].From != "Amount" || ch.Renames[0].To != "Amount__c" {
					t.Fatalf("renames = %+v", ch.Renames)
				}
			},
		},
		{
			name: "a type change", n: 6, changes: 1, severity: drift.SeverityHigh,
			changed: func(i int) map[string]any {
				return with(opp(i), func(r map[string]any) { r["CloseDate"] = "07/31/2024" })
			},
			check: func(t *testing.T, ch *drift.Change) {
				if len(ch.TypeChanged) != 1 || ch.TypeChanged[0].From != shape.Date || ch.TypeChanged[0].To != shape.String {
					t.Fatalf("type changed = %+v", ch.TypeChanged)
				}
			},
		},
		{
			name: "one odd value is no type change", n: 1, changes: 0,
			changed: func(i int) map[string]any { return with(opp(i), func(r map[string]any) { r["CloseDate"] = "n/a" }) },
		},
		{
			name: "a delete marker is no evidence of removals", n: 3, changes: 0,
			changed: func(i int) map[string]any { return map[string]any{"Id": fmt.Sprintf("x%d", i)} },
		},
		{
			name: "a field missing from one record only", n: 5, changes: 0,
			changed: func(i int) map[string]any {
				r := opp(i)
				if i%5 == 0 {
					delete(r, "StageName")
				}
				return r
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(t, 10, tt.changed, tt.n)
			if len(got) != tt.changes {
				t.Fatalf("%d changes, want %d: %+v", len(got), tt.changes, got)
			}
			if tt.changes == 0 {
				return
			}
			if got[0].Severity != tt.severity {
				t.Fatalf("severity %s, want %s", got[0].Severity, tt.severity)
			}
			if tt.check != nil {
				tt.check(t, got[0])
			}
		})
	}
}

func TestLearningWidensSilently(t *testing.T) {
	cfg := drift.Config{}
	cfg.Defaults()
	fp := drift.NewFingerprint("acme", "c1", "hubspot", "deals")
	now := time.Unix(0, 0)
	for i, amount := range []string{"100", "250", "99.5", "1200"} {
		if _, ch := fp.Observe(map[string]any{"amount": amount}, uint64(i+1), now, cfg); ch != nil {
			t.Fatalf("change while learning: %+v", ch)
		}
	}
	if got := fp.Fields["amount"].Type(); got != shape.Decimal {
		t.Fatalf("type %s, want decimal", got)
	}
}

func TestARedeliveredRecordIsSkipped(t *testing.T) {
	cfg := drift.Config{}
	cfg.Defaults()
	fp := drift.NewFingerprint("acme", "c1", "salesforce", "Opportunity")
	now := time.Unix(0, 0)
	fp.Observe(opp(1), 5, now, cfg)
	fp.Observe(opp(2), 6, now, cfg)
	if save, _ := fp.Observe(opp(2), 6, now, cfg); save || fp.Records != 2 {
		t.Fatalf("redelivered record counted: save=%v records=%d", save, fp.Records)
	}
}

func TestFindingIDIsStable(t *testing.T) {
	a := drift.FindingID("acme", "c1", "salesforce", "Opportunity", 2, 41)
	if a != drift.FindingID("acme", "c1", "salesforce", "Opportunity", 2, 41) {
		t.Fatal("not deterministic")
	}
	if a == drift.FindingID("acme", "c1", "salesforce", "Opportunity", 2, 42) {
		t.Fatal("another change, the same id")
	}
}

func TestCompare(t *testing.T) {
	_, ch := drift.Compare([]map[string]any{opp(1), opp(2)}, []map[string]any{
		with(opp(3), func(r map[string]any) { r["Deal_Value__c"] = r["Amount"]; delete(r, "Amount") }),
	})
	if ch == nil || len(ch.Removed) != 1 || len(ch.Added) != 1 || ch.Severity != drift.SeverityHigh {
		t.Fatalf("change = %+v", ch)
	}
	if _, ch := drift.Compare([]map[string]any{opp(1)}, []map[string]any{opp(2)}); ch != nil {
		t.Fatalf("same shape is a change: %+v", ch)
	}
}
