package drift

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// decodeStd is DecodeRecord by encoding/json alone: the reference.
func decodeStd(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var rec map[string]any
	if err := dec.Decode(&rec); err != nil {
		return nil, err
	}
	return rec, nil
}

var decodeCorpus = []string{
	`{}`, ` { } `, `{"a":"b"}`, `{"a":1,"b":-0.5e+3,"c":true,"d":false,"e":null}`, `{"a":"x","a":"y"}`,
	`{"Id":"006BNCH0000000042","Amount":"12345.67","CloseDate":"2026-03-14","Name":"Enterprise — analytics suite"}`,
	`{"a":{"b":1}}`, `{"a":[1,2]}`, `{"a":"\u00e9"}`, `{"a":"tab\there"}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`,
	`{"a":1e}`, `{"a":tru}`, `{"a":1}x`, `{"a":1} {"b":2}`, `{"a":1,}`, `{,}`, `{"a" 1}`, `{"a":1`, `null`, `[]`, `"x"`, ``,
	"{\"a\":\"\xff\"}", "{\"\xff\":1}", "{\"a\":\"\x01\"}", `{"":""}`, "\n{\"a\"\t:\r\"b\" }\n",
}

func TestDecodeRecordAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range decodeCorpus {
		checkDecode(t, []byte(s))
	}
	// The fast path takes the records connectors publish.
	if _, ok := decodeFlat([]byte(decodeCorpus[5])); !ok {
		t.Errorf("a flat record went the slow way: %s", decodeCorpus[5])
	}
}

func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	got, gerr := DecodeRecord(b)
	want, werr := decodeStd(b)
	if werr == nil && want == nil {
		if gerr == nil {
			t.Errorf("DecodeRecord(%q) = %v, want the null record refused", b, got)
		}
		return
	}
	if (gerr != nil) != (werr != nil) {
		t.Fatalf("DecodeRecord(%q): error %v, encoding/json's %v", b, gerr, werr)
	}
	if gerr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeRecord(%q) = %#v, encoding/json gives %#v", b, got, want)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, s := range decodeCorpus {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b) })
}
