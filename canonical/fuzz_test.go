package canonical

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// requireFieldErrors fails unless every error in err is a *FieldError.
func requireFieldErrors(t *testing.T, err error) {
	t.Helper()
	for _, e := range unjoin(err) {
		var fe *FieldError
		if !errors.As(e, &fe) || fe.Field == "" {
			t.Fatalf("error does not name a field: %v", e)
		}
	}
}

func FuzzParseEvent(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "v1", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"specversion":"1.0"}`))
	f.Add([]byte(`{"specversion":"1.0","id":"x","source":"/connections/c","type":"com.autonomos.canonical.contact.deleted","subject":"1","time":"2024-01-01T00:00:00Z","tenantid":"t","schemaversion":"v1","sourcesystem":"s","mappingversion":"0","data":{"contact_id":"1","extras":{"a":[1,{"b":null}]}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParseEvent(b)
		if err != nil {
			requireFieldErrors(t, err)
			return
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("accepted an invalid event: %v", err)
		}
		out, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("accepted event does not marshal: %v", err)
		}
		ev2, err := ParseEvent(out)
		if err != nil {
			t.Fatalf("re-marshalled event does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(ev, ev2) {
			t.Fatalf("event changed on the wire:\n%#v\n%#v", ev, ev2)
		}
		out2, err := json.Marshal(ev2)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("marshalling is not stable (%v):\n%s\n%s", err, out, out2)
		}
	})
}

var mappingErrRE = regexp.MustCompile(`^f\.yaml:[1-9][0-9]*: \S`)

func FuzzParseMappingFile(f *testing.F) {
	// Small seeds: the fuzzer minimises every new input it finds, and
	// minimising a copy of a 3 KB shipped file takes most of a short run.
	// The shipped files themselves are checked in TestMappingFileYAMLRoundTrip.
	f.Add([]byte("# Salesforce-like\nsystem: salesforce\nobjects:\n  - object: Opportunity\n    entity: opportunity\n    version_field: SystemModstamp\n    deleted_field: IsDeleted\n    ignore: [attributes]\n    fields:\n      - {target: opportunity_id, source: Id}\n      - {target: name, source: Name, transforms: [trim]}\n      - {target: currency, source: CurrencyIsoCode, transforms: [upper], default: USD}\n      - {target: close_date, source: CloseDate, transforms: [{date: \"2006-01-02\"}]}\n"))
	f.Add([]byte("system: hubspot\nobjects:\n  - object: deals\n    entity: opportunity\n    version_field: hs_lastmodifieddate\n    version_formats: [\"2006-01-02T15:04:05Z07:00\"]\n    fields:\n      - {target: opportunity_id, source: hs_object_id}\n      - {target: name, source: dealname}\n      - target: stage\n        source: dealstage\n        transforms:\n          - map:\n              closedwon: Closed Won\n              \"7\": Consulting\n      - {target: probability, source: hs_probability, transforms: [{scale: \"100\"}]}\n"))
	f.Add([]byte("system: test\nobjects:\n  - object: o\n    entity: contact\n    fields:\n      - {target: contact_id, source: a.b}\n      - {target: title, sources: [x, y], transforms: [{concat: \", \"}]}\n      - {target: phone, constant: \"1\", transforms: [digits, {replace: [\"1\", \"2\"]}, {strip_prefix: [\"+\"]}]}\n"))
	f.Add([]byte("system: t\nobjects:\n  - &o {object: a, entity: account, fields: [{target: account_id, source: id}, {target: name, source: n, default: x}, {target: employee_count, source: e, transforms: [decimal]}]}\n"))
	f.Add([]byte("system: t\nobjects: [{object: a, entity: opportunity, fields: [{target: opportunity_id, source: id}, {target: name, source: n}, {target: amount, source: a, transforms: [{decimal: [\",\", \".\"]}, {scale: \"0.01\"}]}, {target: close_date, source: d, transforms: [{date: [\"02.01.2006\"]}]}]}]\n"))
	f.Add([]byte("system: x\nobjects: [\n"))
	f.Fuzz(checkMappingFile)
}

// checkMappingFile is FuzzParseMappingFile's property: a file is rejected
// with "file:line: reason", or it re-marshals to a file that parses the same,
// and its mappings run on any record without panicking.
func checkMappingFile(t *testing.T, b []byte) {
	{
		raws := []map[string]any{
			{},
			{"id": "1", "a": map[string]any{"b": "2"}, "x": "3", "n": "  ", "d": "01.02.2024", "IsDeleted": true, "archived": "true"},
		}
		mf, ms, err := ParseMappingFile("f.yaml", b)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !mappingErrRE.MatchString(line) {
					t.Fatalf("error is not file:line: reason: %q", err)
				}
			}
			return
		}
		if len(ms) != len(mf.Objects) {
			t.Fatalf("%d objects, %d mappings", len(mf.Objects), len(ms))
		}
		out, err := yaml.Marshal(mf)
		if err != nil {
			t.Fatalf("accepted file does not marshal: %v", err)
		}
		mf2, ms2, err := ParseMappingFile("f.yaml", out)
		if err != nil {
			t.Fatalf("re-marshalled file does not parse: %v\n%s", err, out)
		}
		if out2, err := yaml.Marshal(mf2); err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("marshalling is not stable (%v):\n%s\n%s", err, out, out2)
		}
		if len(ms2) != len(ms) {
			t.Fatalf("%d mappings, then %d", len(ms), len(ms2))
		}
		// Every compiled mapping runs without panicking, on every source field.
		for _, m := range ms {
			full := map[string]any{}
			for i, k := range m.SourceFields() {
				full[k] = []any{"1", " x ", "2024-05-01", json.Number("1e3"), true, nil}[i%6]
			}
			for _, raw := range append(raws, full) {
				res, err := m.Apply(raw)
				if err != nil {
					requireFieldErrors(t, err)
					continue
				}
				if err := validate(res.Record, res.Op == OpDelete); err != nil {
					t.Fatalf("Apply returned an invalid record: %v", err)
				}
			}
		}
	}
}

func FuzzParseViewQuery(f *testing.F) {
	f.Add("limit=10&cursor="+EncodeCursor("001AX"), uint8(0))
	f.Add("stage=Closed%20Won&amount=1e3&close_date=2024-06-30&probability=20", uint8(1))
	f.Add("email=a%40b.example&limit=1000", uint8(2))
	f.Add("limit=5&limit=6", uint8(0))
	f.Fuzz(func(t *testing.T, query string, n uint8) {
		e := Entities[int(n)%len(Entities)]
		if got, err := DecodeCursor(EncodeCursor(query)); err != nil || got != query {
			t.Fatalf("cursor round trip: %q, %v", got, err)
		}
		q, _ := url.ParseQuery(query)
		vq, err := ParseViewQuery("t1", e, q)
		if err != nil {
			requireFieldErrors(t, err)
			return
		}
		if vq.Limit < 1 || vq.Limit > MaxViewLimit {
			t.Fatalf("limit %d", vq.Limit)
		}
		again, err := ParseViewQuery("t1", e, vq.Values())
		if err != nil || !reflect.DeepEqual(again, vq) {
			t.Fatalf("Values round trip:\n%+v\n%+v (%v)", vq, again, err)
		}
		q2, err := url.ParseQuery(vq.Values().Encode())
		if err != nil {
			t.Fatal(err)
		}
		if again, err := ParseViewQuery("t1", e, q2); err != nil || !reflect.DeepEqual(again, vq) {
			t.Fatalf("URL round trip:\n%+v\n%+v (%v)", vq, again, err)
		}
	})
}
