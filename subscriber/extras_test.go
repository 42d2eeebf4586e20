package subscriber

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"flat", `{"b":"x","a":1.50,"c":true,"d":null}`},
		{"nested", `{"n":{"z":[1,"two",{"y":false}],"a":{}},"e":[]}`},
		{"escapes", `{"s":"quote \" back \\ nl \n tab \t cr \r bs \b ff \f ctl \u0001 nul \u0000 html <&> ls \u2028 ps \u2029 é 😀"}`},
		{"big numbers", `{"n":12345678901234567890.123456789,"e":1e400,"neg":-0.0}`},
		{"odd keys", `{"":"empty","ключ":"v","a\"b":"q"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v any
			dec := json.NewDecoder(strings.NewReader(tc.in))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			got, err := appendJSON(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			{
				var buf jsonBuffer
				enc := json.NewEncoder(&buf)
				enc.SetEscapeHTML(false)
				if err := enc.Encode(v); err != nil {
					t.Fatal(err)
				}
				want = buf.b[:len(buf.b)-1] // Encode adds a newline
			}
			if string(got) != string(want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
	if _, err := appendJSON(nil, map[string]any{"f": func() {}}); err == nil {
		t.Fatal("an unencodable value was accepted")
	}
	if got, _ := appendJSON(nil, "\xff"); string(got) != `"\ufffd"` {
		t.Fatalf("invalid UTF-8: %s", got)
	}
}

type jsonBuffer struct{ b []byte }

func (j *jsonBuffer) Write(p []byte) (int, error) { j.b = append(j.b, p...); return len(p), nil }
