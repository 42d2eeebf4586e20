package agents_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/autonomos/autonomos/agents"
)

// TestBenchDriftCorpus scores the built-in matcher on the shipped corpus
// and holds it to the bar: top-1 at least 90% and no wrong automatic apply.
func TestBenchDriftCorpus(t *testing.T) {
	res, err := agents.BenchDrift(filepath.Join("..", "testdata", "drift"), agents.BenchConfig{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Details {
		if !d.Correct {
			t.Logf("miss %s: expected %v, got %v", d.ID, d.Expected, d.Got)
		}
	}
	res.Details = nil
	b, _ := json.Marshal(res)
	fmt.Printf("bench drift: %s\n", b)
	if res.Cases < 60 {
		t.Errorf("corpus has %d cases, want at least 60", res.Cases)
	}
	if res.Top1 < 0.9 {
		t.Errorf("top1 = %.3f, want at least 0.90", res.Top1)
	}
	if res.WrongAutoApplies != 0 {
		t.Errorf("wrong automatic applies = %d, want 0", res.WrongAutoApplies)
	}
}

func TestLoadBenchCasesRejectsBadExpected(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bad.json"), `{"id":"bad","system":"salesforce","object":"Account","entity":"account","old":{"Id":"1"},"new":{"Id":"1"},"expected":"nothing"}`)
	if _, err := agents.LoadBenchCases(dir); err == nil {
		t.Fatal(`expected "nothing" accepted`)
	}
}
