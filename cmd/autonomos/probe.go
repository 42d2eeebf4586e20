package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// probeResult is what probe prints (as JSON with --json).
type probeResult struct {
	Result         string  `json:"result"` // PASS or FAIL
	OpportunityID  string  `json:"opportunity_id"`
	Amount         string  `json:"amount,omitempty"`
	TraceID        string  `json:"trace_id,omitempty"`
	VisibleAfterMS float64 `json:"visible_after_ms,omitempty"`
	URL            string  `json:"url"`
	Reason         string  `json:"reason,omitempty"`
}

// cmdProbe is the functional probe: it starts a system of its own in a
// temporary data dir (or reaches --url), ingests one opportunity through the
// upload API, and polls the opportunities view with backoff for at most 10 s.
func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	o.bind(fs)
	target := fs.String("url", "", "probe a running system at this base URL instead of starting one")
	email := fs.String("email", "", "with --url: log in as this user instead of registering a probe tenant")
	password := fs.String("password", os.Getenv("AUTONOMOS_PASSWORD"), "with --email: the password (AUTONOMOS_PASSWORD)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the record to become visible")
	if err := o.parse(fs, args); err != nil {
		return 2
	}
	res := probeResult{Result: "FAIL"}
	print := func() int {
		if o.JSON {
			json.NewEncoder(stdout).Encode(res)
		} else if res.Result == "PASS" {
			fmt.Fprintf(stdout, "PASS opportunity_id=%s amount=%s trace_id=%s visible_after=%.0fms url=%s\n",
				res.OpportunityID, res.Amount, res.TraceID, res.VisibleAfterMS, res.URL)
		} else {
			fmt.Fprintf(stdout, "FAIL %s\n", res.Reason)
		}
		if res.Result == "PASS" {
			return 0
		}
		return 1
	}
	base := *target
	if base == "" {
		dir, err := os.MkdirTemp("", "autonomos-probe-")
		if err != nil {
			res.Reason = err.Error()
			return print()
		}
		defer os.RemoveAll(dir)
		o.DataDir = dir
		if !flagSet(fs, "http") {
			o.HTTP = "127.0.0.1:0"
		}
		if !flagSet(fs, "nats-listen") {
			o.NATSListen = "127.0.0.1:-1"
		}
		sysCtx, stop := context.WithCancel(ctx)
		sys, err := startSystem(sysCtx, o, newLogger(stderr, "warn"))
		if err != nil {
			stop()
			res.Reason = "start system: " + err.Error()
			return print()
		}
		defer func() { stop(); sys.wait() }()
		base = "http://" + sys.httpAddr
	}
	res.URL = base
	c := newAPIClient(base)
	if *email != "" {
		if err := c.login(ctx, *email, *password); err != nil {
			res.Reason = "login: " + err.Error()
			return print()
		}
	} else {
		tenant := "probe-" + randHex(4)
		if err := c.register(ctx, tenant, tenant+"@probe.invalid", randHex(12)); err != nil {
			res.Reason = "register a probe tenant: " + err.Error()
			return print()
		}
	}
	res.OpportunityID = "PROBE-" + randHex(6)
	res.Amount = "1234.56"
	csvPath := filepath.Join(os.TempDir(), res.OpportunityID+".csv")
	csv := "opportunity_id,account_id,name,stage,amount,currency,close_date,owner_id,probability,updated_at\n" +
		res.OpportunityID + ",PROBE-ACCOUNT,Probe deal,Prospecting," + res.Amount + ",USD," + time.Now().UTC().Format(time.DateOnly) +
		",probe,50," + time.Now().UTC().Format(time.RFC3339Nano) + "\n"
	if err := os.WriteFile(csvPath, []byte(csv), 0o600); err != nil {
		res.Reason = err.Error()
		return print()
	}
	defer os.Remove(csvPath)
	start := time.Now()
	jobID, trace, err := c.upload(ctx, csvPath, "opportunity", "")
	res.TraceID = trace
	if err != nil {
		res.Reason = "upload: " + err.Error()
		return print()
	}
	deadline := start.Add(*timeout)
	wait := 50 * time.Millisecond
	for {
		rows, err := c.view(ctx, "opportunities", url.Values{"opportunity_id": {res.OpportunityID}})
		if err == nil && len(rows) == 1 {
			if a, _ := rows[0]["amount"].(string); a != res.Amount && a != res.Amount+"0" {
				res.Reason = fmt.Sprintf("the view shows amount %v, want %s", rows[0]["amount"], res.Amount)
				return print()
			}
			res.VisibleAfterMS = float64(time.Since(start).Microseconds()) / 1000
			res.Result = "PASS"
			return print()
		}
		if time.Now().After(deadline) {
			res.Reason = fmt.Sprintf("opportunity %s not visible in /api/v1/dcl/views/opportunities after %v", res.OpportunityID, *timeout)
			if err != nil {
				res.Reason += " (last error: " + err.Error() + ")"
			}
			if j, jerr := c.job(ctx, jobID); jerr == nil {
				res.Reason += fmt.Sprintf("; job %s is %s, published %d, rejected %d %s", j.ID, j.Status, j.Published, j.Rejected, j.Message)
			}
			return print()
		}
		select {
		case <-ctx.Done():
			res.Reason = ctx.Err().Error()
			return print()
		case <-time.After(wait):
		}
		if wait < time.Second {
			wait = wait * 3 / 2
		}
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

var errUsage = errors.New("usage")
