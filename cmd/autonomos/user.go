package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/autonomos/autonomos/gateway"
	"github.com/autonomos/autonomos/streams"
)

// cmdUser manages users directly in the users bucket, for operators:
// `autonomos user add --tenant T --email E --password P [--role admin|viewer]`.
// It connects to --nats-url, or to the embedded server of a running system
// at --nats-listen.
func cmdUser(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(stderr, "usage: autonomos user add --tenant T --email E --password P [--role admin|viewer] [--nats-url URL]")
		return 2
	}
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats-url", envOr("AUTONOMOS_NATS_URL", ""), "NATS URL of the system (AUTONOMOS_NATS_URL); empty: nats://<--nats-listen>")
	listen := fs.String("nats-listen", envOr("AUTONOMOS_NATS_LISTEN", "127.0.0.1:4222"), "client address of a running system's embedded NATS")
	tenant := fs.String("tenant", "", "tenant (created when missing)")
	email := fs.String("email", "", "email address")
	password := fs.String("password", os.Getenv("AUTONOMOS_PASSWORD"), "password, at least 8 characters (AUTONOMOS_PASSWORD)")
	role := fs.String("role", "admin", "admin or viewer")
	asJSON := fs.Bool("json", false, "print the new user as one JSON object")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	url := *natsURL
	if url == "" {
		url = "nats://" + *listen
	}
	nc, err := streams.Connect(url, "autonomos-user")
	if err != nil {
		fmt.Fprintln(stderr, "user add:", err)
		return 1
	}
	defer nc.Close()
	js, err := streams.NewJetStream(nc, 0)
	if err != nil {
		fmt.Fprintln(stderr, "user add:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u, err := gateway.AddUser(ctx, js, *tenant, *email, *password, *role)
	if err != nil {
		fmt.Fprintln(stderr, "user add:", err)
		return 1
	}
	if *asJSON {
		json.NewEncoder(stdout).Encode(u)
	} else {
		fmt.Fprintf(stdout, "user %s (%s) added to tenant %s as %s\n", u.Email, u.ID, u.TenantID, u.Role)
	}
	return 0
}
