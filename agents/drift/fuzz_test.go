package drift_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/autonomos/autonomos/agents/drift"
	"github.com/autonomos/autonomos/agents/shape"
)

// FuzzFingerprint feeds arbitrary JSON through flattening, type inference
// and a fingerprint: nothing may panic, every non-empty value's mask holds
// string, and a record observed twice into a fresh fingerprint is no
// change.
func FuzzFingerprint(f *testing.F) {
	for _, s := range []string{
		`{"Id":"0015g00000QxYzAAAF","Amount":185000.5,"CloseDate":"2024-07-31","IsDeleted":false}`,
		`{"a":{"b":{"c":{"d":{"e":1}}}},"arr":[1,2,{"x":null}]}`,
		`{"email":"x@y.example","phone":"+1 (415) 555-0132","web":"https://a.example/b?c=d"}`,
		`{"n":1e400,"s":"\u0000\ud800","":"blank key"}`,
		`{"num":-0.000000000000000000001,"date":"0000-00-00","dt":"2024-05-02T16:20:01.000+0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var rec map[string]any
		if dec.Decode(&rec) != nil || rec == nil {
			return
		}
		flat := shape.Flatten(rec)
		if len(flat) > shape.MaxFields {
			t.Fatalf("%d fields", len(flat))
		}
		for k, v := range flat {
			if len(k) > shape.MaxNameLen {
				t.Fatalf("name of %d bytes", len(k))
			}
			m, ok := shape.Infer(v)
			if ok && !m.Has(shape.String) {
				t.Fatalf("%s: mask %v lacks string", k, m.Types())
			}
			if !ok && m != 0 {
				t.Fatalf("%s: empty value with mask %v", k, m.Types())
			}
			if len(shape.Sample(v)) > shape.MaxSampleLen {
				t.Fatalf("%s: long sample", k)
			}
		}
		fp := drift.NewFingerprint("t", "c", "s", "o")
		cfg := drift.Config{}
		cfg.Defaults()
		now := time.Unix(0, 0)
		fp.Observe(rec, 1, now, cfg)
		if _, ch := fp.Observe(rec, 2, now, cfg); ch != nil {
			t.Fatalf("the same record twice is a change: %+v", ch)
		}
		if ch := fp.Flush(now, 1, cfg); ch != nil {
			t.Fatalf("the same record twice is a change on flush: %+v", ch)
		}
		if _, err := json.Marshal(fp); err != nil {
			t.Fatalf("fingerprint does not encode: %v", err)
		}
	})
}
