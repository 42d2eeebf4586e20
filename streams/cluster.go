package streams

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxReplicas is the most replicas JetStream keeps of a stream.
const MaxReplicas = 5

// ClusterReplicas is the replica count AutoReplicas picks on a cluster of at
// least that many servers (DESIGN.md: streams at replicas 3).
const ClusterReplicas = 3

// AutoReplicas picks the replicas of the topology when none is configured,
// and says why:
//   - the CANONICAL stream exists: its replicas, so that a restart while a
//     node is down never scales the streams down;
//   - the server is not part of a cluster (its INFO names none): 1;
//   - the cluster advertises at least ClusterReplicas servers (the servers
//     the connection knows: the URLs it was given and the connect_urls the
//     cluster gossips): ClusterReplicas;
//   - otherwise 1.
//
// The count is of servers, not of JetStream peers: a cluster whose servers
// do not all run JetStream, or one started with no_advertise, should be
// given its replicas explicitly.
func AutoReplicas(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) (int, string, error) {
	s, err := js.Stream(ctx, StreamCanonical)
	switch {
	case err == nil:
		if n := s.CachedInfo().Config.Replicas; n > 0 {
			return n, fmt.Sprintf("the %s stream exists with %d", StreamCanonical, n), nil
		}
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return 0, "", fmt.Errorf("stream %s: %w", StreamCanonical, err)
	}
	cluster := nc.ConnectedClusterName()
	if cluster == "" {
		return 1, "the NATS server is not part of a cluster", nil
	}
	n := len(nc.Servers())
	if n >= ClusterReplicas {
		return ClusterReplicas, fmt.Sprintf("cluster %q advertises %d servers", cluster, n), nil
	}
	return 1, fmt.Sprintf("cluster %q advertises only %d servers", cluster, n), nil
}

// ReplicaChange is a stream or bucket whose replicas Provision changed.
type ReplicaChange struct {
	Stream   string // the stream's name (KV_<bucket> for a bucket)
	From, To int
}

// Provision is Ensure that reports the streams and buckets whose replicas
// it changed (JetStream moves a stream to a new replica count in place, its
// consumers with it). When some cannot take the new count (too few peers,
// or a server that is not clustered), the error names them.
func Provision(ctx context.Context, js jetstream.JetStream, c TopologyConfig) ([]ReplicaChange, error) {
	var names []string
	want := map[string]int{}
	for _, sc := range StreamConfigs(c) {
		names, want[sc.Name] = append(names, sc.Name), sc.Replicas
	}
	for _, kc := range BucketConfigs(c) {
		name := "KV_" + kc.Bucket
		names, want[name] = append(names, name), kc.Replicas
	}
	replicas := func(name string) int {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return 0 // missing, or unknown: Ensure reports what matters
		}
		return s.CachedInfo().Config.Replicas
	}
	before := map[string]int{}
	for _, n := range names {
		before[n] = replicas(n)
	}
	err := Ensure(ctx, js, c)
	var changes []ReplicaChange
	var stuck []string
	for _, n := range names {
		after := replicas(n)
		if before[n] != 0 && after != before[n] {
			changes = append(changes, ReplicaChange{Stream: n, From: before[n], To: after})
		}
		if after != want[n] {
			stuck = append(stuck, fmt.Sprintf("%s at %d", n, after))
		}
	}
	if err != nil && len(stuck) > 0 {
		err = fmt.Errorf("replicas %d refused for %s: %w", c.Replicas, strings.Join(stuck, ", "), err)
	}
	return changes, err
}
