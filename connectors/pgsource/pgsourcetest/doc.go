// Package pgsourcetest gives the Postgres connector's tests real
// Postgres: a Cluster of their own started from the installed binaries with
// wal_level = logical (the shared test server runs with replica), a Proxy
// that counts a connector's statements and injects faults the way a real
// server shows them (sessions ended by pg_terminate_backend, connections
// refused as "too many clients" or "starting up"), and a Source that serves
// connectortest.Run from real tables.
//
// Contract: a Cluster is started once per test binary (TestMain) and
// stopped at its end; each test takes a database of its own
// (Cluster.NewDatabase), so replication slots and publications never meet.
// As root the cluster runs as the postgres OS user. Everything a Source
// creates is removed by t.Cleanup.
package pgsourcetest
