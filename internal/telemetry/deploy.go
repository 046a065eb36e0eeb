package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/berthml/berth/internal/wire"
)

// deployBuckets span a cached environment (milliseconds) to a slow pip install.
func deployBuckets() []float64 {
	return []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
}

type deployMetrics struct {
	phases *prometheus.HistogramVec
}

func newDeployMetrics(reg prometheus.Registerer) *deployMetrics {
	m := &deployMetrics{phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "berth_deploy_phase_duration_seconds",
		Help:    "Duration of each phase of a deployment's provision: environment, artifact copy, import, init(), readiness.",
		Buckets: deployBuckets(),
	}, []string{"endpoint", "deployment", "phase"})}
	reg.MustRegister(m.phases)
	return m
}

// Operated records a finished operation on a deployment (op: "provision", "delete"):
// each phase's duration in berth_deploy_phase_duration_seconds, and a span "deployment
// <op>" from start to now with one child span per phase. ctx carries the span of the
// request that began the operation, if any.
func (t *Telemetry) Operated(ctx context.Context, op, endpoint, deployment string, start time.Time, phases []wire.Phase, failure error) {
	for _, p := range phases {
		s, e, ok := phaseTimes(p)
		if ok {
			t.deploy.phases.WithLabelValues(endpoint, deployment, p.Name).Observe(e.Sub(s).Seconds())
		}
	}
	if !t.tracing.enabled {
		return
	}
	attrs := trace.WithAttributes(attribute.String("berth.endpoint", endpoint), attribute.String("berth.deployment", deployment))
	ctx, span := t.tracing.tracer.Start(ctx, "deployment "+op, trace.WithTimestamp(start), attrs)
	for _, p := range phases {
		if s, e, ok := phaseTimes(p); ok {
			_, child := t.tracing.tracer.Start(ctx, p.Name, trace.WithTimestamp(s))
			child.End(trace.WithTimestamp(e))
		}
	}
	if failure != nil {
		span.SetStatus(codes.Error, failure.Error())
	}
	span.End()
}

func phaseTimes(p wire.Phase) (start, end time.Time, ok bool) {
	s, err1 := time.Parse(time.RFC3339Nano, p.Start)
	e, err2 := time.Parse(time.RFC3339Nano, p.End)
	return s, e, err1 == nil && err2 == nil && !e.Before(s)
}
