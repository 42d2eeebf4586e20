package subscriber

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/autonomos/autonomos/canonical"
)

// appendJSON appends the JSON encoding of a decoded JSON value (the extras of
// a parsed event hold maps, slices, strings, json.Numbers, bools and nils),
// with object keys sorted so that the same extras always give the same text.
// It is several times faster than encoding/json's reflection; values of
// other types fall back to json.Marshal.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return canonical.AppendQuoted(b, v, false), nil
	case json.Number:
		if v == "" || !json.Valid([]byte(v)) {
			return json.Marshal(v) // reports the invalid number
		}
		return append(b, v...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = canonical.AppendQuoted(b, k, false)
			b = append(b, ':')
			var err error
			if b, err = appendJSON(b, v[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}
