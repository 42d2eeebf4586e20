package subscriber_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/autonomos/autonomos/canonical"
	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/streamstest"
	"github.com/autonomos/autonomos/subscriber"
)

// nullSink accepts every batch; it stands for a store this test never reads.
type nullSink struct{}

func (nullSink) Name() string                                    { return "duckdb" }
func (nullSink) Apply(context.Context, []*canonical.Event) error { return nil }

func TestClaimBindsTheDurableToOneOwner(t *testing.T) {
	env := streamstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub := func(owner string) *subscriber.Subscriber {
		t.Helper()
		s, err := subscriber.New(env.JS, env.Pub, nullSink{}, subscriber.Config{Owner: owner, OwnerNote: "host:/data/" + owner}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// A durable made before owners existed is adopted by the first owner.
	if _, err := sub("").Claim(ctx); err != nil {
		t.Fatalf("claim without an owner: %v", err)
	}
	tests := []struct {
		name, owner string
		wantErr     bool
	}{
		{"first owner adopts an unowned durable", "file-a", false},
		{"the same owner again", "file-a", false},
		{"another owner is refused", "file-b", true},
		{"the owner after a refusal", "file-a", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sub(tc.owner).Claim(ctx)
			if tc.wantErr {
				if !errors.Is(err, subscriber.ErrOwned) || !strings.Contains(err.Error(), "file-a (host:/data/file-a)") {
					t.Fatalf("Claim by %s = %v; want ErrOwned naming the holder", tc.owner, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Claim by %s: %v", tc.owner, err)
			}
		})
	}
	c, err := env.JS.Consumer(ctx, streams.StreamCanonical, "dcl-duckdb")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CachedInfo().Config.Metadata[subscriber.MetaOwner]; got != "file-a" {
		t.Errorf("owner in metadata = %q, want file-a", got)
	}

	// A fresh durable is created bound in one step: of two owners the
	// second finds it taken.
	if err := env.JS.DeleteConsumer(ctx, streams.StreamCanonical, "dcl-duckdb"); err != nil {
		t.Fatal(err)
	}
	if _, err := sub("file-c").Claim(ctx); err != nil {
		t.Fatalf("claim of a fresh durable: %v", err)
	}
	if _, err := sub("file-a").Claim(ctx); !errors.Is(err, subscriber.ErrOwned) {
		t.Fatalf("claim of a durable created by another owner: %v, want ErrOwned", err)
	}
	// Run refuses too.
	if err := sub("file-a").Run(ctx); !errors.Is(err, subscriber.ErrOwned) {
		t.Fatalf("Run by another owner: %v, want ErrOwned", err)
	}
}

func TestDuckDBFileIDIsKeptByTheFile(t *testing.T) {
	dir := t.TempDir()
	open := func(name string) string {
		t.Helper()
		d, err := subscriber.OpenDuckDB(dir + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		id, err := d.FileID(context.Background())
		if err != nil || id == "" {
			t.Fatalf("FileID = %q, %v", id, err)
		}
		return id
	}
	a := open("a.duckdb")
	if again := open("a.duckdb"); again != a {
		t.Errorf("reopened file has id %s, was %s", again, a)
	}
	if b := open("b.duckdb"); b == a {
		t.Errorf("two files share the id %s", a)
	}
}
