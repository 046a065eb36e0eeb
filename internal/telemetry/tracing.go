package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TracerName names Berth's instrumentation scope.
const TracerName = "github.com/berthml/berth"

// tracing is the tracer provider: an OTLP/HTTP exporter behind a batcher, or a no-op.
type tracing struct {
	enabled  bool
	exporter *otlptrace.Exporter // nil when disabled
	tracer   trace.Tracer
	provider *sdktrace.TracerProvider // nil when disabled
}

// newTracing exports to endpoint (a base URL; spans go to <endpoint>/v1/traces) or,
// when endpoint is "", returns a no-op tracer that costs nothing. The exporter reads
// the other OTEL_EXPORTER_OTLP_* variables (headers, timeout) itself, and the batcher
// OTEL_BSP_* (e.g. OTEL_BSP_SCHEDULE_DELAY).
// The exporter sends nothing until start.
func newTracing(endpoint string, log *slog.Logger) (*tracing, error) {
	if endpoint == "" {
		return &tracing{tracer: noop.NewTracerProvider().Tracer(TracerName)}, nil
	}
	url := strings.TrimRight(endpoint, "/") + "/v1/traces"
	exp := otlptracehttp.NewUnstarted(otlptracehttp.WithEndpointURL(url))
	res := resource.NewSchemaless(attribute.String("service.name", "berth"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	log.Info("exporting traces over OTLP/HTTP", "url", url)
	return &tracing{enabled: true, exporter: exp, tracer: tp.Tracer(TracerName), provider: tp}, nil
}

// start starts the exporter.
func (t *tracing) start(ctx context.Context) error {
	if t.exporter == nil {
		return nil
	}
	if err := t.exporter.Start(ctx); err != nil {
		return fmt.Errorf("start the OTLP exporter: %w (check OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_EXPORTER_OTLP_* variables)", err)
	}
	return nil
}

// shutdown exports the spans still batched, within ctx.
func (t *tracing) shutdown(ctx context.Context) {
	if t.provider != nil {
		t.provider.Shutdown(ctx)
	}
}
