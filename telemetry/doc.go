// Package telemetry sets up OpenTelemetry tracing for AutonomOS and carries
// a trace's context across the places one request's work travels: from the
// gateway's HTTP request into a queued job, from the job into every
// CloudEvent it publishes (the CloudEvents distributed-tracing extension
// traceparent), and from the event into the subscriber that upserts it. So
// the spans of one upload (the request, then fetch, map and publish in the
// connector, then consume and upsert in each store) are one trace, and the
// trace id that X-Trace-Id shows is the one in every log line, audit record
// and event.
//
// New builds the process's TracerProvider from the standard OpenTelemetry
// environment: spans are exported over OTLP/HTTP (protobuf) only when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set
// (headers, timeout, compression and TLS from the matching OTEL_EXPORTER_OTLP_*
// variables, batching from OTEL_BSP_*, sampling from OTEL_TRACES_SAMPLER,
// the service from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES). Without
// an endpoint the provider still makes valid W3C trace and span ids, records
// nothing and exports nothing. Shutdown flushes what is buffered; main calls
// it last in its ordered shutdown. Nothing here is package-level state: the
// provider is passed to the parts that make spans.
package telemetry
