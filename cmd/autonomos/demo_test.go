package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/autonomos/autonomos/streams/streamstest"
)

// TestDemoShowsEverySourceWithin60s runs `autonomos demo` — what `make run`
// starts — as a real process on a fresh data dir, and within 60 s of its
// start finds, through the views API as the printed demo user, records from
// each of the three simulated CRMs and from the sample CSVs.
func TestDemoShowsEverySourceWithin60s(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real process")
	}
	bin := autonomosBin(t)
	examples, err := filepath.Abs(filepath.Join("..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "demo.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	cmd := exec.Command(bin, "demo", "--json", "--data-dir", t.TempDir(), "--http", "127.0.0.1:0",
		"--nats-listen", "127.0.0.1:-1", "--examples", examples)
	cmd.Env = append(os.Environ(), "AUTONOMOS_NATS_URL=", "AUTONOMOS_POSTGRES_URL=")
	cmd.Stderr = logf
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	failLog := func(format string, args ...any) {
		t.Helper()
		b, _ := os.ReadFile(logPath)
		t.Fatalf(format+"\ndemo log:\n%s", append(args, tail(string(b), 4000))...)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		failLog("demo printed nothing: %v", err)
	}
	go io.Copy(io.Discard, stdout)
	var ready struct{ URL string }
	if json.Unmarshal([]byte(line), &ready); ready.URL == "" {
		failLog("demo printed %q", line)
	}
	c := newAPIClient(ready.URL)
	if err := c.login(context.Background(), demoEmail, demoPassword); err != nil {
		failLog("demo login: %v", err)
	}
	want := map[string][]string{
		"accounts":      {"salesforce", "hubspot", "dynamics", "filesource"},
		"opportunities": {"salesforce", "hubspot", "dynamics", "filesource"},
		"contacts":      {"salesforce", "hubspot", "dynamics", "filesource"},
	}
	deadline := 60*time.Second - time.Since(t0)
	streamstest.Eventually(t, deadline, func() error {
		for view, systems := range want {
			for _, sys := range systems {
				var page struct {
					Data []map[string]any `json:"data"`
				}
				if _, err := c.do(context.Background(), http.MethodGet, "/api/v1/dcl/views/"+view+"?limit=1&source_system="+sys, nil, "", &page); err != nil {
					return fmt.Errorf("%s from %s: %w", view, sys, err)
				}
				if len(page.Data) == 0 || page.Data[0]["source_system"] != sys {
					return fmt.Errorf("no %s from %s yet", view, sys)
				}
			}
		}
		return nil
	})
	t.Logf("every source visible in every view %v after the demo started", time.Since(t0).Round(time.Millisecond))
}
