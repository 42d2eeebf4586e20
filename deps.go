//go:build tools

package tools

import (
	_ "github.com/alexedwards/argon2id"
	_ "github.com/cloudevents/sdk-go/v2"
	_ "github.com/duckdb/duckdb-go/v2"
	_ "github.com/golang-jwt/jwt/v5"
	_ "github.com/gorilla/websocket"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/labstack/echo/v4"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go/jetstream"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/shopspring/decimal"
	_ "golang.org/x/time/rate"
	_ "gopkg.in/yaml.v3"
)
