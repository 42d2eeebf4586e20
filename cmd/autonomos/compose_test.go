package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestComposeFileIsValid reads compose.yaml (the production-like topology)
// the way Compose does — anchors and merge keys resolved, ${VAR:?...}
// required — and checks what this binary would make of it: every autonomos
// service's command is a known subcommand whose flags and environment parse
// with the real option parser (roles, stores, replicas and the rest), the
// NATS cluster has three nodes that route to each other, the gateway
// publishes its port, and a service run as several replicas never shares
// one DuckDB file between them.
func TestComposeFileIsValid(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Ports       []string          `yaml:"ports"`
			Volumes     []string          `yaml:"volumes"`
			DependsOn   map[string]any    `yaml:"depends_on"`
			Deploy      struct {
				Replicas int `yaml:"replicas"`
			} `yaml:"deploy"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	required := regexp.MustCompile(`\$\{([A-Z0-9_]+):\?[^}]*\}`)
	var nats []string
	apps := 0
	for name, svc := range doc.Services {
		for _, v := range svc.Volumes {
			if vol, _, ok := strings.Cut(v, ":"); ok && !strings.HasPrefix(vol, ".") && !strings.HasPrefix(vol, "/") {
				if _, declared := doc.Volumes[vol]; !declared {
					t.Errorf("service %s mounts undeclared volume %q", name, vol)
				}
			}
		}
		for dep := range svc.DependsOn {
			if _, ok := doc.Services[dep]; !ok {
				t.Errorf("service %s depends on unknown service %q", name, dep)
			}
		}
		switch {
		case strings.HasPrefix(svc.Image, "nats:"):
			nats = append(nats, name)
			joined := strings.Join(svc.Command, " ")
			for _, want := range []string{"-js", "--cluster_name", "--routes"} {
				if !strings.Contains(joined, want) {
					t.Errorf("NATS node %s: command lacks %s", name, want)
				}
			}
			continue
		case !strings.HasPrefix(svc.Image, "autonomos"):
			continue
		}
		apps++
		if len(svc.Command) == 0 || svc.Command[0] != "serve" {
			t.Errorf("service %s: command %q, want serve ...", name, svc.Command)
			continue
		}
		env := map[string]string{}
		for k, v := range svc.Environment {
			env[k] = required.ReplaceAllString(v, "from-the-environment")
		}
		o, roles, stores, err := composeOptions(svc.Command[1:], env)
		if err != nil {
			t.Errorf("service %s: autonomos %s: %v", name, strings.Join(svc.Command, " "), err)
			continue
		}
		if o.NATSURL == "" || len(strings.Split(o.NATSURL, ",")) != 3 {
			t.Errorf("service %s: NATS URL %q, want the three cluster nodes", name, o.NATSURL)
		}
		if o.Postgres == "" {
			t.Errorf("service %s: no Postgres URL", name)
		}
		if roles["gateway"] && len(svc.Ports) == 0 {
			t.Errorf("service %s runs the gateway and publishes no port", name)
		}
		if svc.Deploy.Replicas > 1 && roles["subscriber"] && stores["duckdb"] {
			t.Errorf("service %s: %d replicas would share one DuckDB consumer between files (run them --stores postgres)", name, svc.Deploy.Replicas)
		}
	}
	if len(nats) != 3 {
		t.Errorf("NATS nodes %v, want 3", nats)
	}
	if apps == 0 {
		t.Fatal("no autonomos services in compose.yaml")
	}
}

// composeOptions parses a serve command line under env the way serve does.
func composeOptions(args []string, env map[string]string) (options, map[string]bool, map[string]bool, error) {
	saved := map[string]*string{}
	for k, v := range env {
		if old, ok := os.LookupEnv(k); ok {
			saved[k] = &old
		} else {
			saved[k] = nil
		}
		os.Setenv(k, v)
	}
	defer func() {
		for k, v := range saved {
			if v == nil {
				os.Unsetenv(k)
			} else {
				os.Setenv(k, *v)
			}
		}
	}()
	var o options
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.bind(fs)
	if err := o.parse(fs, args); err != nil {
		return o, nil, nil, err
	}
	roles, err := o.roles()
	if err != nil {
		return o, nil, nil, err
	}
	stores, err := o.stores(roles)
	return o, roles, stores, err
}
