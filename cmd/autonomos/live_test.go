package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/streams/streamstest"
)

// TestUploadIsLiveAndCountedTruthfully runs the whole system: two clients
// of tenant A and one of B on /dcl/ws; after A's upload, both A clients get
// every record event of it in file order and the job's progress, B gets
// nothing; /dcl/state and /dcl/graph then show exactly the store's counts.
func TestUploadIsLiveAndCountedTruthfully(t *testing.T) {
	sys, base := startTestSystem(t, false)
	a, b := registered(t, base, "acme"), registered(t, base, "globex")
	ws := "ws" + strings.TrimPrefix(base, "http") + "/dcl/ws?token="
	dial := func(tok string) *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial(ws+tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a1, a2, b1 := dial(a.token), dial(a.token), dial(b.token)
	// A connected client receives what is published after its handshake.

	var csv strings.Builder
	csv.WriteString("account_id,name,industry,region\n")
	const rows = 120
	for i := range rows {
		fmt.Fprintf(&csv, "A%03d,Company %d,Tech,EU\n", i, i)
	}
	path := filepath.Join(t.TempDir(), "accounts.csv")
	if err := os.WriteFile(path, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if j := uploadAndWait(t, a, path, "account"); j.Status != "succeeded" || j.Published != rows {
		t.Fatalf("job = %+v", j)
	}

	for name, c := range map[string]*websocket.Conn{"first": a1, "second": a2} {
		var ids []string
		var lastSeq uint64
		jobDone := false
		deadline := time.Now().Add(15 * time.Second)
		for len(ids) < rows || !jobDone {
			c.SetReadDeadline(deadline)
			_, msg, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("%s A client after %d records (job done %v): %v", name, len(ids), jobDone, err)
			}
			var f struct {
				Type string `json:"type"`
				Seq  uint64 `json:"seq"`
				ID   string `json:"id"`
				Job  struct {
					Status string `json:"status"`
				} `json:"job"`
			}
			if err := json.Unmarshal(msg, &f); err != nil {
				t.Fatal(err)
			}
			switch f.Type {
			case gateway.MsgRecordUpserted:
				if f.Seq <= lastSeq {
					t.Fatalf("%s: seq %d after %d", name, f.Seq, lastSeq)
				}
				lastSeq = f.Seq
				ids = append(ids, f.ID)
			case gateway.MsgJobUpdated:
				jobDone = jobDone || f.Job.Status == "succeeded"
			}
		}
		for i, id := range ids {
			if want := fmt.Sprintf("A%03d", i); id != want {
				t.Fatalf("%s: record %d is %s, want %s (file order)", name, i, id, want)
			}
		}
	}
	// B: a record of its own arrives first and alone.
	bpath := filepath.Join(t.TempDir(), "b.csv")
	os.WriteFile(bpath, []byte("account_id,name\nB1,Beta\n"), 0o600)
	uploadAndWait(t, b, bpath, "account")
	for {
		b1.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, msg, err := b1.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(msg), "A0") || strings.Contains(string(msg), `"tenant_id":"acme"`) {
			t.Fatalf("tenant B received %s", msg)
		}
		if strings.Contains(string(msg), `"id":"B1"`) {
			break
		}
	}

	// The numbers are the store's.
	ctx := context.Background()
	streamstest.Eventually(t, 10*time.Second, func() error {
		n, err := sys.reader().Count(ctx, "acme", canonical.AccountEntity)
		if err != nil || n != rows {
			return fmt.Errorf("store has %d accounts (%v)", n, err)
		}
		return nil
	})
	var st gateway.DCLState
	if _, err := a.do(ctx, http.MethodGet, "/dcl/state", nil, "", &st); err != nil {
		t.Fatal(err)
	}
	if st.Status != "ok" || len(st.Counts) != 1 || st.Counts[0].Count != rows || *st.Counts[0].SourceSystem != "filesource" ||
		len(st.RecentEvents) != 50 || st.RecentEvents[49].ID != fmt.Sprintf("A%03d", rows-1) || st.OpenDrift == nil || *st.OpenDrift != 0 {
		t.Fatalf("state = %+v", st)
	}
	var g gateway.Graph
	if _, err := a.do(ctx, http.MethodGet, "/dcl/graph", nil, "", &g); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"system:filesource>object:filesource/account": rows, "object:filesource/account>entity:account": rows,
		"entity:account>table:materialized_accounts": rows, "table:materialized_accounts>consumer:views": rows}
	for _, l := range g.Links {
		k := l.Source + ">" + l.Target
		if l.Value != want[k] {
			t.Errorf("link %s = %d, want %d", k, l.Value, want[k])
		}
		if k == "object:filesource/account>entity:account" && (l.MappedFields == nil || *l.MappedFields != 6 || l.ExtrasFields == nil || *l.ExtrasFields != 1) {
			t.Errorf("coverage of %s: mapped %v extras %v", k, l.MappedFields, l.ExtrasFields)
		}
	}
	if len(g.Links) != len(want) {
		t.Errorf("links %+v", g.Links)
	}
}
