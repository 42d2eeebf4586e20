package agents_test

import (
	"os"
	"testing"

	"github.com/autonomos/autonomos/agents/match"
)

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func matchProposal(target, previous, source string) match.Proposal {
	return match.Proposal{Need: match.Need{Target: target, Kind: match.NeedBroken, Previous: previous}, Source: source, Proposer: "test"}
}
