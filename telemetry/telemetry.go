package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// Scope is the instrumentation scope every AutonomOS span is made under.
const Scope = "github.com/autonomos/autonomos"

// The standard environment variables New reads itself; the SDK and the
// OTLP exporter read the others (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT,
// _COMPRESSION, _CERTIFICATE, OTEL_BSP_*, OTEL_TRACES_SAMPLER[_ARG],
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES).
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
)

// Config tunes New. The zero value is usable.
type Config struct {
	// ServiceName is the service.name resource attribute unless
	// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES name one (default
	// "autonomos").
	ServiceName string `yaml:"service_name"`
	// SpanProcessors also receive every span, whether or not spans are
	// exported (tests record them with tracetest.SpanRecorder). With any,
	// spans are sampled as OTEL_TRACES_SAMPLER says, as when exporting.
	SpanProcessors []sdktrace.SpanProcessor `yaml:"-"`
}

// Provider is the process's TracerProvider. It is safe for concurrent use;
// Shutdown flushes it and ends it.
type Provider struct {
	*sdktrace.TracerProvider
	endpoint string
}

// New builds a Provider from cfg and the standard OpenTelemetry environment
// (see the package doc). It exports over OTLP/HTTP only when an endpoint
// variable is set (and OTEL_TRACES_EXPORTER is not "none", OTEL_SDK_DISABLED
// not "true"); otherwise its spans still have valid W3C ids but are neither
// recorded nor exported. Settings it cannot honour (another exporter or
// protocol, bad resource attributes) are one joined error.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.ServiceName == "" {
		cfg.ServiceName = "autonomos"
	}
	var errs []error
	endpoint, err := endpointFromEnv()
	if err != nil {
		errs = append(errs, err)
	}
	// Later options win: the environment overrides the default service name.
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName(cfg.ServiceName)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		errs = append(errs, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithIDGenerator(idGenerator{})}
	if endpoint != "" {
		// The exporter reads the endpoint, headers, timeout, compression
		// and TLS settings from the environment itself.
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	for _, sp := range cfg.SpanProcessors {
		opts = append(opts, sdktrace.WithSpanProcessor(sp))
	}
	if endpoint == "" && len(cfg.SpanProcessors) == 0 {
		// Nothing would receive a span: make ids, record nothing.
		opts = append(opts, sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	return &Provider{TracerProvider: sdktrace.NewTracerProvider(opts...), endpoint: endpoint}, nil
}

// Endpoint is the URL spans are exported to, "" when they are not.
func (p *Provider) Endpoint() string { return p.endpoint }

// Shutdown exports the spans still buffered, waiting at most until ctx
// ends, and stops the provider: spans started afterwards are not recorded.
func (p *Provider) Shutdown(ctx context.Context) error {
	if err := p.TracerProvider.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flush spans to %s: %w", p.endpoint, err)
	}
	return nil
}

// endpointFromEnv returns the traces URL to export to ("" for none), or an
// error for a setting that asks for something New does not do.
func endpointFromEnv() (string, error) {
	if strings.EqualFold(strings.TrimSpace(os.Getenv(EnvSDKDisabled)), "true") {
		return "", nil
	}
	switch v := strings.TrimSpace(os.Getenv(EnvTracesExporter)); v {
	case "", "otlp":
	case "none":
		return "", nil
	default:
		return "", fmt.Errorf("%s=%q: only otlp (OTLP/HTTP) or none is supported", EnvTracesExporter, v)
	}
	endpoint := strings.TrimSpace(os.Getenv(EnvTracesEndpoint))
	if endpoint == "" {
		if base := strings.TrimSpace(os.Getenv(EnvEndpoint)); base != "" {
			endpoint = strings.TrimRight(base, "/") + "/v1/traces"
		}
	}
	if endpoint == "" {
		return "", nil
	}
	proto, name := strings.TrimSpace(os.Getenv(EnvTracesProtocol)), EnvTracesProtocol
	if proto == "" {
		proto, name = strings.TrimSpace(os.Getenv(EnvProtocol)), EnvProtocol
	}
	if proto != "" && proto != "http/protobuf" {
		return "", fmt.Errorf("%s=%q: only http/protobuf is supported", name, proto)
	}
	return endpoint, nil
}
