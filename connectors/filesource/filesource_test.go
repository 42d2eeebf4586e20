package filesource_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/config"
	"github.com/autonomos/autonomos/connectors"
	"github.com/autonomos/autonomos/connectors/filesource"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
)

func TestReaderFormats(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantLines []int
		wantName  []string
		wantErrAt []int
	}{
		{"comma crlf", "id,name\r\n1,a\r\n2,b\r\n", []int{2, 3}, []string{"a", "b"}, nil},
		{"bom semicolon", "\ufeffid;name\n1;a\n2;\"b;c\"\n", []int{2, 3}, []string{"a", "b;c"}, nil},
		{"tab", "id\tname\n1\ta\n", []int{2}, []string{"a"}, nil},
		{"quoted newline keeps line numbers", "id,name\n1,\"x\ny\"\n2,b\n", []int{2, 4}, []string{"x\ny", "b"}, nil},
		{"wrong field count", "id,name\n1,a\n2\n3,c\n", []int{2, 4}, []string{"a", "c"}, []int{3}},
		{"bare quote", "id,name\n1,a\n2,b\"x\n3,c\n", []int{2, 4}, []string{"a", "c"}, []int{3}},
		{"blank line skipped", "id,name\n1,a\n\n3,c\n", []int{2, 4}, []string{"a", "c"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := filesource.NewReader(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Header(); got[0] != "id" || got[1] != "name" {
				t.Fatalf("header %q", got)
			}
			var lines, errLines []int
			var names []string
			for {
				row, err := r.Next()
				if err == io.EOF {
					break
				}
				if re, ok := err.(*filesource.RowError); ok {
					errLines = append(errLines, re.Line)
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				lines = append(lines, row.Line)
				names = append(names, row.Values["name"].(string))
			}
			if fmt.Sprint(lines) != fmt.Sprint(tc.wantLines) || fmt.Sprint(names) != fmt.Sprint(tc.wantName) || fmt.Sprint(errLines) != fmt.Sprint(tc.wantErrAt) {
				t.Fatalf("lines %v names %q errors at %v; want %v %q %v", lines, names, errLines, tc.wantLines, tc.wantName, tc.wantErrAt)
			}
		})
	}
}

func TestReaderRejectsBadHeader(t *testing.T) {
	for _, in := range []string{"", "id,id\n1,2\n", "id,,x\n"} {
		if _, err := filesource.NewReader(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("NewReader(%q) = %v, want a line 1 error", in, err)
		}
	}
}

type fixture struct {
	env  *streamstest.Env
	jobs *streams.JobStore
	in   *filesource.Ingester
	dir  string
}

func start(t *testing.T) *fixture {
	t.Helper()
	env := streamstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	jobs, err := streams.OpenJobStore(ctx, env.JS)
	if err != nil {
		t.Fatal(err)
	}
	maps, err := connectors.NewMappings(config.MappingFS(), nil)
	if err != nil {
		t.Fatal(err)
	}
	in := filesource.New(filesource.Config{BatchSize: 500}, env.Pub, jobs, maps, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &fixture{env: env, jobs: jobs, in: in, dir: t.TempDir()}
}

func (f *fixture) ingest(t *testing.T, tenant string, entity canonical.Entity, content string) *streams.Job {
	t.Helper()
	p := filepath.Join(f.dir, fmt.Sprintf("%d.csv", time.Now().UnixNano()))
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := f.in.IngestFile(context.Background(), filesource.Request{Tenant: tenant, Entity: entity, Path: p, Name: "test.csv", TraceID: strings.Repeat("ab", 16)})
	if err != nil {
		t.Fatal(err)
	}
	var job *streams.Job
	streamstest.Eventually(t, 60*time.Second, func() error {
		j, err := f.jobs.Get(context.Background(), tenant, id)
		if err != nil {
			return err
		}
		if !j.Finished() {
			return fmt.Errorf("job %s is %s (%d rows)", id, j.Status, j.RowsRead)
		}
		job = j
		return nil
	})
	return job
}

func (f *fixture) streamCount(t *testing.T, filter string) uint64 {
	t.Helper()
	s, err := f.env.JS.Stream(context.Background(), streams.StreamCanonical)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func opportunities(n, badAt int) string {
	var b strings.Builder
	b.WriteString("opportunity_id,account_id,name,stage,amount,currency,close_date,owner_id,probability,updated_at,region\n")
	for i := 1; i <= n; i++ {
		amount := fmt.Sprintf("%d.50", i)
		if i == badAt {
			amount = "12.50x"
		}
		fmt.Fprintf(&b, "OPP-%05d,ACC-%03d,Deal %d,Prospecting,%s,usd,2025-01-%02d,U1,40,2024-06-01T10:00:00Z,EMEA\n", i, i%100, i, amount, i%28+1)
	}
	return b.String()
}

func TestOneBadRowAmongTenThousand(t *testing.T) {
	f := start(t)
	job := f.ingest(t, "acme", canonical.OpportunityEntity, opportunities(10000, 4321))
	if job.Status != streams.JobSucceeded || job.RowsRead != 10000 || job.Published != 9999 || job.Rejected != 1 {
		t.Fatalf("job = %+v", job)
	}
	if len(job.Errors) != 1 || job.Errors[0].Line != 4322 || job.Errors[0].Column != "amount" {
		t.Fatalf("errors = %+v, want one at line 4322 column amount", job.Errors)
	}
	if n := f.streamCount(t, "canonical.acme.>"); n != 9999 {
		t.Fatalf("CANONICAL holds %d events for acme, want 9999", n)
	}
	dlq, err := f.env.JS.Stream(context.Background(), streams.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := dlq.GetLastMsgForSubject(context.Background(), "dlq.acme.mapping")
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	if r := msg.Header.Get(streams.HeaderDLQReason); !strings.Contains(r, "line 4322") || !strings.Contains(r, "amount") {
		t.Fatalf("dead-letter reason %q", r)
	}
	// A re-run of the same file adds no event.
	again := f.ingest(t, "acme", canonical.OpportunityEntity, opportunities(10000, 4321))
	if again.Published != 9999 {
		t.Fatalf("re-run published %d", again.Published)
	}
	if n := f.streamCount(t, "canonical.acme.>"); n != 9999 {
		t.Fatalf("after a re-run CANONICAL holds %d events for acme, want 9999", n)
	}
}

func TestRowErrorsNameLineColumnAndReason(t *testing.T) {
	f := start(t)
	csv := "account_id,name,annual_revenue,employee_count,updated_at\n" +
		"A1,Acme,100.5,10,2024-01-01T00:00:00Z\n" +
		"A2,,5,1,2024-01-01T00:00:00Z\n" + // missing required name
		"A3,Beta,1e,2,2024-01-01T00:00:00Z\n" + // bad decimal
		"A4,Gamma,7,x,2024-01-01T00:00:00Z\n" + // bad integer
		"A5,Delta,7,3\n" + // short row
		"A6,Eps,8,4,yesterday\n" // bad version
	job := f.ingest(t, "acme", canonical.AccountEntity, csv)
	want := []struct {
		line int
		col  string
	}{{3, "name"}, {4, "annual_revenue"}, {5, "employee_count"}, {6, ""}, {7, "updated_at"}}
	if job.Published != 1 || job.Rejected != 5 || len(job.Errors) != len(want) {
		t.Fatalf("job = %+v", job)
	}
	for i, w := range want {
		if e := job.Errors[i]; e.Line != w.line || e.Column != w.col || e.Reason == "" {
			t.Errorf("error %d = %+v, want line %d column %q", i, e, w.line, w.col)
		}
	}
}
