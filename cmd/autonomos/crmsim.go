package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/autonomos/autonomos/connectors/crmsim"
)

// simServer is a running CRM simulator.
type simServer struct {
	sim  *crmsim.Sim
	base string
	done chan struct{}
}

// startSim serves a simulator on listen and evolves its data every evolve
// until ctx ends.
func startSim(ctx context.Context, listen string, seed int64, evolve time.Duration) (*simServer, error) {
	sim := crmsim.New(crmsim.Config{Seed: seed})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("crmsim cannot listen on %s: %w", listen, err)
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s := &simServer{sim: sim, base: "http://" + ln.Addr().String(), done: make(chan struct{})}
	go srv.Serve(ln)
	go func() {
		defer close(s.done)
		if evolve > 0 {
			sim.Run(ctx, evolve)
		} else {
			<-ctx.Done()
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	return s, nil
}

// connections returns, per simulated CRM, the connection a user would create.
func (s *simServer) connections(interval string) []map[string]any {
	c := s.sim.Credentials()
	return []map[string]any{
		{"name": "Salesforce (simulated)", "system": "salesforce", "interval": interval,
			"config":  map[string]any{"instance_url": s.base + "/salesforce", "login_url": s.base + "/salesforce", "api_version": "v59.0"},
			"secrets": map[string]string{"client_id": c.Salesforce.ClientID, "client_secret": c.Salesforce.ClientSecret}},
		{"name": "HubSpot (simulated)", "system": "hubspot", "interval": interval,
			"config":  map[string]any{"base_url": s.base + "/hubspot"},
			"secrets": map[string]string{"access_token": c.HubSpot.AccessToken}},
		{"name": "Dynamics 365 (simulated)", "system": "dynamics", "interval": interval,
			"config": map[string]any{"base_url": s.base + "/dynamics", "scope": s.base + "/dynamics/.default",
				"token_url": s.base + "/dynamics/" + url.PathEscape(c.Dynamics.TenantID) + "/oauth2/v2.0/token"},
			"secrets": map[string]string{"client_id": c.Dynamics.ClientID, "client_secret": c.Dynamics.ClientSecret}},
	}
}

// cmdCRMSim serves the simulator alone, for trying connectors by hand.
func cmdCRMSim(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("crmsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8089", "listen address")
	seed := fs.Int64("seed", 1, "data seed")
	evolve := fs.Duration("evolve", 5*time.Second, "modify some records this often (0: never)")
	asJSON := fs.Bool("json", false, "print the base URL and the connections to create as one JSON object")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	s, err := startSim(ctx, *listen, *seed, *evolve)
	if err != nil {
		fmt.Fprintln(stderr, "crmsim:", err)
		return 1
	}
	conns := s.connections("5m")
	if *asJSON {
		json.NewEncoder(stdout).Encode(map[string]any{"url": s.base, "connections": conns})
	} else {
		fmt.Fprintf(stdout, "CRM simulator at %s — create these connections (POST /api/v1/aam/connections):\n", s.base)
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(conns)
	}
	<-s.done
	return 0
}

// demoConnections creates (or, after a restart, points at the new simulator)
// one connection per simulated CRM for the demo tenant and syncs each now.
func demoConnections(ctx context.Context, c *apiClient, s *simServer, stderr io.Writer) error {
	var list struct {
		Data []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"data"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/aam/connections", nil, "", &list); err != nil {
		return fmt.Errorf("list connections: %w", err)
	}
	existing := map[string]string{}
	for _, d := range list.Data {
		existing[d.Name] = d.ID
	}
	var errs []error
	for _, conn := range s.connections("1m") {
		name := conn["name"].(string)
		var out struct {
			ID string `json:"id"`
		}
		if id, ok := existing[name]; ok {
			b, _ := json.Marshal(conn)
			if _, err := c.do(ctx, http.MethodPut, "/api/v1/aam/connections/"+id, bytesReader(b), "application/json", &out); err != nil {
				errs = append(errs, fmt.Errorf("update %s: %w", name, err))
				continue
			}
		} else if _, err := c.postJSON(ctx, "/api/v1/aam/connections", conn, &out); err != nil {
			errs = append(errs, fmt.Errorf("create %s: %w", name, err))
			continue
		}
		var job struct {
			JobID string `json:"job_id"`
		}
		if _, err := c.postJSON(ctx, "/api/v1/aam/connections/"+out.ID+"/sync", nil, &job); err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != http.StatusConflict {
				errs = append(errs, fmt.Errorf("sync %s: %w", name, err))
			}
			continue
		}
		fmt.Fprintf(stderr, "demo: %s syncing (job %s)\n", name, job.JobID)
	}
	return errors.Join(errs...)
}
