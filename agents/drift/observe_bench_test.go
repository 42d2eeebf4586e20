package drift_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/autonomos/autonomos/agents/drift"
)

// crmRecord is a raw record shaped like a CRM export's opportunity row: ids,
// free text, picklists, amounts, dates, timestamps, booleans, counts.
func crmRecord(i int) map[string]any {
	amount := 5000 + (i*7919)%995000
	return map[string]any{
		"opportunity_id": fmt.Sprintf("006BNCH%010d", i), "account_id": fmt.Sprintf("001BNCH%010d", i%977),
		"name":  fmt.Sprintf("Enterprise — analytics suite, %d seats", 10+i%490),
		"stage": "Negotiation/Review", "amount": fmt.Sprintf("%d.%02d", amount, i%100), "currency": "USD",
		"close_date": "2026-03-14", "owner_id": fmt.Sprintf("005BNCH%08d", i%977), "probability": fmt.Sprint(i % 101),
		"updated_at":  time.Unix(1700000000+int64(i), 0).UTC().Format(time.RFC3339),
		"description": "Evaluating the integration platform against a competing offer; procurement wants a 7% multi-year discount.",
		"lead_source": "Partner Referral", "forecast_category": "Best Case", "type": "Existing Customer - Upgrade",
		"campaign_id": fmt.Sprintf("701BNCH%08d", i%211), "is_private": "false", "total_quantity": fmt.Sprint(1 + i%250),
		"expected_revenue": fmt.Sprintf("%d.%02d", amount/2, i%100), "last_activity_date": "2026-01-02",
		"pricebook_id": "01sBNCH000000AAAAAA", "synced_quote_id": fmt.Sprintf("0Q0BNCH%08d", i), "region": "EMEA",
		"segment": "Mid-Market", "territory": fmt.Sprintf("TERR-%03d", i%173), "competitor": "Globex Corporation",
		"fiscal_quarter": "FY2025-Q3", "website": "https://www.example.com/deals", "phone": "+1 (415) 555-0100",
		"contact_email": fmt.Sprintf("buyer%d@example.com", i%50),
	}
}

// BenchmarkObserve is the schema observer's work per raw record once the
// fingerprint is settled: decode the body, fold it in.
func BenchmarkObserve(b *testing.B) {
	const n = 1024
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i], _ = json.Marshal(crmRecord(i))
	}
	cfg := drift.Config{}
	cfg.Defaults()
	fp := drift.NewFingerprint("acme", "c1", "filesource", "opportunity")
	now := time.Unix(1700000000, 0)
	seq := uint64(0)
	for i := range 64 { // settle every field
		rec, _ := drift.DecodeRecord(bodies[i%n])
		seq++
		fp.Observe(rec, seq, now, cfg)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		rec, err := drift.DecodeRecord(bodies[i%n])
		if err != nil {
			b.Fatal(err)
		}
		seq++
		if _, ch := fp.Observe(rec, seq, now, cfg); ch != nil {
			b.Fatalf("a settled shape reported a change: %+v", ch)
		}
	}
}
