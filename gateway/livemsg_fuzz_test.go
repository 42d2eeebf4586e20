package gateway

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/autonomos/autonomos/streams"
)

// FuzzLiveParsers feeds bus messages and cursors of any shape to the live
// view's parsers: they never panic, and whatever they accept names a
// valid tenant that is the subject's, and encodes to a JSON object with a
// type.
func FuzzLiveParsers(f *testing.F) {
	f.Add("canonical.acme.account", []byte(`{"id":"e1","type":"com.autonomos.canonical.account.upserted","subject":"1","tenantid":"acme","sourcesystem":"x","mappingversion":1,"time":"2024-05-01T00:00:00Z"}`))
	f.Add("live.acme.job", []byte(`{"type":"job.updated","job":{"id":"j","tenant_id":"acme"},"seq":3}`))
	f.Add("drift.acme.c1", []byte(`{"type":"drift.detected","tenant_id":"acme","time":"2024-05-01T00:00:00Z"}`))
	f.Add("dlq.acme.validation", []byte(`x`))
	f.Add("canonical.acme", []byte(`{}`))
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		check := func(v any, tenant string, err error) {
			if err != nil {
				return
			}
			if !streams.ValidToken(tenant) {
				t.Fatalf("accepted tenant %q from %q", tenant, subject)
			}
			var b []byte
			switch x := v.(type) {
			case []byte:
				b = x
			default:
				b, _ = json.Marshal(x)
			}
			var m map[string]any
			if json.Unmarshal(b, &m) != nil {
				t.Fatalf("not a JSON object: %s", b)
			}
			if typ, _ := m["type"].(string); typ == "" {
				t.Fatalf("no type: %s", b)
			}
		}
		rec, tenant, err := parseRecord(subject, 1, data)
		check(rec, tenant, err)
		if err == nil {
			var ce struct {
				Tenant string `json:"tenantid"`
			}
			_ = json.Unmarshal(data, &ce)
			if t2, _, _ := subjectTokens(subject, "canonical"); t2 != tenant || ce.Tenant != tenant {
				t.Fatalf("record of %q accepted on %q", ce.Tenant, subject)
			}
		}
		b, tenant, err := parseLive(subject, data)
		check(b, tenant, err)
		d, tenant, err := parseDrift(subject, 1, data, time.Time{})
		check(d, tenant, err)
		h := nats.Header{streams.HeaderDLQReason: {string(data)}}
		q, tenant, err := parseDLQ(subject, 1, h, time.Time{})
		check(q, tenant, err)
		_, _ = decodeFeedCursor(string(data))
	})
}
