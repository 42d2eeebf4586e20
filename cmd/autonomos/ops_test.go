package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
)

type dlqPage struct {
	Data       []streams.DeadLetterEntry `json:"data"`
	NextCursor *string                   `json:"next_cursor"`
}

// A poison message (valid JSON, impossible entity) on canonical.<t>.account
// does not block the records behind it; it ends in the DLQ, where the API and
// the CLI show it, and a redrive sends it through again.
func TestPoisonMessageGoesToTheDLQAndCanBeRedriven(t *testing.T) {
	sys, base := startTestSystem(t, true)
	c := registered(t, base, "acme")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	nc, err := nats.Connect(sys.natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := streams.NewJetStream(nc, 0)
	poison := nats.NewMsg("canonical.acme.account")
	poison.Data = []byte(`{"specversion":"1.0","id":"poison-1","type":"com.autonomos.canonical.spaceship.upserted","source":"/connections/x","subject":"S-1","tenantid":"acme","data":{"spaceship_id":"S-1"}}`)
	poison.Header.Set(streams.HeaderTenant, "acme")
	if _, err := js.PublishMsg(ctx, poison); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	csv := filepath.Join(dir, "a.csv")
	body := "account_id,name,updated_at\n"
	for i := range 200 {
		body += fmt.Sprintf("A-%03d,Account %d,2024-01-01T00:00:00Z\n", i, i)
	}
	os.WriteFile(csv, []byte(body), 0o600)
	j := uploadAndWait(t, c, csv, "account")
	if j.Published != 200 {
		t.Fatalf("job %+v", j)
	}
	streamstest.Eventually(t, 30*time.Second, func() error {
		for _, st := range sys.stores {
			if n := len(allRows(t, st, "acme", canonical.AccountEntity)); n != 200 {
				return fmt.Errorf("%s holds %d accounts", st.Name(), n)
			}
		}
		return nil
	})
	var page dlqPage
	streamstest.Eventually(t, 30*time.Second, func() error {
		if _, err := c.do(ctx, http.MethodGet, "/api/v1/dcl/dlq?limit=10", nil, "", &page); err != nil {
			return err
		}
		if len(page.Data) != 2 { // one per durable consumer
			return fmt.Errorf("%d dead letters, want 2", len(page.Data))
		}
		return nil
	})
	fmt.Printf("poison: expected=200 postgres=%d duckdb=%d dlq=%d\n",
		len(allRows(t, sys.pg, "acme", canonical.AccountEntity)), len(allRows(t, sys.duck, "acme", canonical.AccountEntity)), len(page.Data))
	e := page.Data[0]
	if e.Stage != "validation" || e.Subject != "canonical.acme.account" || e.Sequence == 0 || e.Reason == "" || page.Data[0].Seq < page.Data[1].Seq {
		t.Errorf("dead letter: %+v", e)
	}
	// Another tenant sees none of it.
	other := registered(t, base, "globex")
	var op dlqPage
	if _, err := other.do(ctx, http.MethodGet, "/api/v1/dcl/dlq", nil, "", &op); err != nil || len(op.Data) != 0 {
		t.Errorf("globex sees %d dead letters (%v)", len(op.Data), err)
	}
	if _, err := other.do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/dcl/dlq/%d", e.Seq), nil, "", nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("globex reads acme's dead letter: %v", err)
	}

	// The CLI, on the system's NATS.
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"dlq", "ls", "--nats-url", sys.natsURL, "--tenant", "acme", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("dlq ls: %d %s", code, errb.String())
	}
	var cli dlqPage
	if err := json.Unmarshal(out.Bytes(), &cli); err != nil || len(cli.Data) != 2 {
		t.Fatalf("dlq ls --json: %s (%v)", out.String(), err)
	}
	out.Reset()
	if code := run(ctx, []string{"dlq", "show", fmt.Sprint(e.Seq), "--nats-url", sys.natsURL}, &out, &errb); code != 0 || !strings.Contains(out.String(), "spaceship") {
		t.Fatalf("dlq show: %d %s %s", code, out.String(), errb.String())
	}

	// Redrive through the API: both dead letters go, the message is
	// republished once, and (still poison) comes back to the DLQ.
	var res streams.RedriveResult
	if _, err := c.postJSON(ctx, "/api/v1/dcl/dlq/redrive", map[string]any{"all": true}, &res); err != nil || res.Redriven != 2 || len(res.Failed) != 0 {
		t.Fatalf("redrive: %+v %v", res, err)
	}
	streamstest.Eventually(t, 30*time.Second, func() error {
		var p dlqPage
		if _, err := c.do(ctx, http.MethodGet, "/api/v1/dcl/dlq", nil, "", &p); err != nil {
			return err
		}
		if len(p.Data) != 2 || p.Data[1].Seq <= e.Seq {
			return fmt.Errorf("%d dead letters after the redrive, want 2 new ones", len(p.Data))
		}
		return nil
	})
	// CLI redrive of one.
	out.Reset()
	if code := run(ctx, []string{"dlq", "redrive", "--all", "--nats-url", sys.natsURL, "--tenant", "acme", "--json"}, &out, &errb); code != 0 || !strings.Contains(out.String(), `"redriven":2`) {
		t.Fatalf("dlq redrive: %d %s %s", code, out.String(), errb.String())
	}

	// Rebuild through the API keeps every row.
	var rb map[string]any
	if _, err := c.postJSON(ctx, "/api/v1/dcl/rebuild", map[string]any{"entity": "account"}, &rb); err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if rb["events"] != float64(200) {
		t.Errorf("rebuild: %v", rb)
	}
	fmt.Printf("rebuild via API: expected=200 postgres=%d duckdb=%d\n",
		len(allRows(t, sys.pg, "acme", canonical.AccountEntity)), len(allRows(t, sys.duck, "acme", canonical.AccountEntity)))
	for _, st := range sys.stores {
		if n := len(allRows(t, st, "acme", canonical.AccountEntity)); n != 200 {
			t.Errorf("%s holds %d accounts after the rebuild", st.Name(), n)
		}
	}
}
