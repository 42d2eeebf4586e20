package pgsource_test

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/autonomos/autonomos/connectors/pgsource/pgsourcetest"
)

// The logical-WAL cluster is started once per test binary, on first use,
// and stopped when the tests end.
var (
	clusterOnce sync.Once
	cluster     *pgsourcetest.Cluster
	clusterErr  error
)

func logicalCluster(t testing.TB) *pgsourcetest.Cluster {
	t.Helper()
	clusterOnce.Do(func() { cluster, clusterErr = pgsourcetest.StartCluster(nil) })
	if clusterErr != nil {
		t.Fatalf("start a wal_level=logical cluster: %v", clusterErr)
	}
	return cluster
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	code := m.Run()
	if cluster != nil {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop the test cluster:", err)
		}
	}
	os.Exit(code)
}
