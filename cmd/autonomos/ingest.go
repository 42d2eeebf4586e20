package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// cmdIngest sends a CSV file through a running system's upload API and
// follows the job to its end, with a progress bar on a terminal.
func cmdIngest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", envOr("AUTONOMOS_URL", "http://127.0.0.1:8080"), "base URL of the running system (AUTONOMOS_URL)")
	entity := fs.String("entity", "", "canonical entity of the file: account, opportunity or contact (required)")
	system := fs.String("system", "filesource", "source system whose mapping reads the file")
	email := fs.String("email", os.Getenv("AUTONOMOS_EMAIL"), "user to log in as (AUTONOMOS_EMAIL)")
	password := fs.String("password", os.Getenv("AUTONOMOS_PASSWORD"), "password (AUTONOMOS_PASSWORD)")
	token := fs.String("token", os.Getenv("AUTONOMOS_TOKEN"), "a bearer token instead of email and password (AUTONOMOS_TOKEN)")
	asJSON := fs.Bool("json", false, "print one JSON object (the final job) on stdout")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: autonomos ingest --entity E [--url URL] [--email E --password P | --token T] FILE.csv")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *entity == "" {
		fs.Usage()
		return 2
	}
	c := newAPIClient(*base)
	c.token = *token
	if c.token == "" {
		if *email == "" {
			fmt.Fprintln(stderr, "ingest: give --token or --email and --password")
			return 2
		}
		if err := c.login(ctx, *email, *password); err != nil {
			fmt.Fprintln(stderr, "ingest: login:", err)
			return 1
		}
	}
	jobID, trace, err := c.upload(ctx, fs.Arg(0), *entity, *system)
	if err != nil {
		fmt.Fprintln(stderr, "ingest: upload:", err)
		return 1
	}
	tty := term.IsTerminal(int(os.Stderr.Fd()))
	if !*asJSON {
		fmt.Fprintf(stderr, "job %s queued (trace %s)\n", jobID, trace)
	}
	last := ""
	j, err := c.waitJob(ctx, jobID, func(j *jobView) {
		if *asJSON {
			return
		}
		pct := 0.0
		if j.Total > 0 {
			pct = 100 * float64(j.Done) / float64(j.Total)
		}
		if tty {
			bar := strings.Repeat("█", int(pct/4)) + strings.Repeat("░", 25-int(pct/4))
			fmt.Fprintf(stderr, "\r%s %5.1f%%  rows %d  published %d  rejected %d ", bar, pct, j.RowsRead, j.Published, j.Rejected)
			return
		}
		line := fmt.Sprintf("%s %.0f%% rows=%d published=%d rejected=%d", j.Status, pct, j.RowsRead, j.Published, j.Rejected)
		if line != last {
			fmt.Fprintln(stderr, line)
			last = line
		}
	})
	if tty && !*asJSON {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "ingest:", err)
		return 1
	}
	if *asJSON {
		json.NewEncoder(stdout).Encode(j)
	} else {
		fmt.Fprintf(stdout, "%s: rows %d, published %d, rejected %d\n", j.Status, j.RowsRead, j.Published, j.Rejected)
		for _, e := range j.Errors {
			fmt.Fprintf(stdout, "  line %d %s: %s\n", e.Line, e.Column, e.Reason)
		}
		if j.Message != "" {
			fmt.Fprintln(stdout, " ", j.Message)
		}
	}
	if j.Status != "succeeded" {
		return 1
	}
	return 0
}
