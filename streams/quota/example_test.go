package quota_test

import (
	"context"
	"fmt"
	"os"

	"github.com/autonomos/autonomos/streams"
	"github.com/autonomos/autonomos/streams/quota"
)

// Two processes on one NATS share a tenant's bucket of three requests: what
// one spends, the other cannot.
func ExampleKeeper_Bucket() {
	dir, _ := os.MkdirTemp("", "quota-example")
	defer os.RemoveAll(dir)
	srv, err := streams.StartEmbedded(streams.EmbeddedConfig{Listen: "127.0.0.1:-1", StoreDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown()

	ctx := context.Background()
	open := func(name string) *quota.Keeper {
		nc, _ := streams.Connect(srv.ClientURL(), name)
		js, _ := streams.NewJetStream(nc, 0)
		_ = streams.Ensure(ctx, js, streams.TopologyConfig{}) // idempotent: every process may call it
		k, err := quota.Open(ctx, js, quota.Config{Instance: name}, nil)
		if err != nil {
			panic(err)
		}
		return k
	}
	a, b := open("gateway-a"), open("gateway-b")

	limit := quota.Limit{Rate: 1.0 / 3600, Burst: 3} // three an hour
	for _, k := range []*quota.Keeper{a, a, b, b} {
		d := k.Bucket("gateway.read.acme", limit).Take(ctx)
		fmt.Printf("%s: ok=%t remaining=%d\n", k.Instance(), d.OK, d.Remaining)
	}
	// Output:
	// gateway-a: ok=true remaining=2
	// gateway-a: ok=true remaining=1
	// gateway-b: ok=true remaining=0
	// gateway-b: ok=false remaining=0
}
