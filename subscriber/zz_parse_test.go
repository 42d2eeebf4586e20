package subscriber_test

import (
	"testing"

	"github.com/autonomos/autonomos/canonical"
)

func BenchmarkZZParse(b *testing.B) {
	evs := benchBatch("t", 0, t0)
	raw, _ := evs[0].MarshalJSON()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := canonical.ParseEvent(raw); err != nil {
			b.Fatal(err)
		}
	}
}
