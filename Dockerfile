# The image compose.yaml builds: the UI (npm), then the binary (cgo, for
# DuckDB), on a small glibc runtime. Build with `docker build -t autonomos .`.
FROM node:22-bookworm AS ui
WORKDIR /src/ui
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY ui/ ./
RUN npm run build

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=ui /src/ui/dist ./ui/dist
RUN CGO_ENABLED=1 go build -buildvcs=false -trimpath -ldflags="-s -w" -o /out/autonomos ./cmd/autonomos

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates wget \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /data autonomos \
    && mkdir -p /data && chown autonomos /data
COPY --from=build /out/autonomos /usr/local/bin/autonomos
COPY examples /usr/share/autonomos/examples
USER autonomos
WORKDIR /data
ENV AUTONOMOS_DATA_DIR=/data AUTONOMOS_HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["autonomos"]
CMD ["serve"]
