package router

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/berthml/berth/internal/router/table"
	"github.com/berthml/berth/internal/telemetry"
)

// request is what the router learns about one scoring request on its way: when each
// phase ended, the deployment chosen, why it was throttled, and its spans. It lives on
// the stack of ServeHTTP.
type request struct {
	arrival  time.Time
	id       string
	clientID string
	dep      *table.Deployment
	// admitted is when the request passed admission; dequeued when it got a slot on an
	// instance (zero when it did not get that far).
	admitted, dequeued time.Time
	// throttled is the reason of a 429 (a telemetry.Reason constant), "" otherwise.
	throttled string
	// span is the request's span and worker its child around the instance's answer
	// (nil unless tracing).
	span, worker trace.Span
}

// Canonical header keys read on every answer, so no key is canonicalized per request.
const (
	runMsKey       = "X-Ms-Run-Fn-Exec-Ms"
	modelStatusKey = "Ms-Azureml-Model-Error-Statuscode"
)

// deploymentMetrics resolves the metrics of every deployment of t once, when the
// snapshot is built, so that a request only looks its deployment up by pointer; the
// metrics of deployments and endpoints no longer in t are forgotten.
func (r *Router) deploymentMetrics(t *table.Table) (map[*table.Deployment]*telemetry.Deployment, map[string]*telemetry.Deployment) {
	if r.metrics == nil {
		return nil, nil
	}
	deps := map[*table.Deployment]*telemetry.Deployment{}
	eps := map[string]*telemetry.Deployment{}
	var keep []*telemetry.Deployment
	for name, ep := range t.Endpoints {
		eps[name] = r.metrics.Deployment(name, "")
		keep = append(keep, eps[name])
		for _, d := range ep.Deployments {
			deps[d] = r.metrics.Deployment(name, d.Name)
			keep = append(keep, deps[d])
		}
	}
	r.metrics.Retain(keep)
	return deps, eps
}

// observe records an answered request in the metrics and ends its spans. h holds the
// answer's headers: the status run() returned and the time it took.
func (r *Router) observe(ctx context.Context, h http.Header, snap *snapshot, ep *table.Endpoint, sc *request, status int) {
	done := time.Now()
	if ep.Policy != nil {
		model, _ := strconv.Atoi(headerValue(h, modelStatusKey))
		status = ep.Policy.Status(status, model)
	}
	model, runTime := 0, time.Duration(0)
	if ms := headerValue(h, runMsKey); ms != "" {
		// run() answered: its own status, or the one a 424 carries.
		f, _ := strconv.ParseFloat(ms, 64)
		runTime = time.Duration(f * float64(time.Millisecond))
		model = status
		if m := headerValue(h, modelStatusKey); m != "" {
			model, _ = strconv.Atoi(m)
		}
	}
	if r.metrics != nil {
		m := snap.epMetrics[ep.Name]
		if sc.dep != nil {
			m = snap.depMetrics[sc.dep]
		}
		var queue time.Duration
		if !sc.dequeued.IsZero() {
			queue = sc.dequeued.Sub(sc.admitted)
		}
		m.Request(status, model, done.Sub(sc.arrival), queue, runTime)
		if sc.throttled != "" {
			m.Throttled(sc.throttled)
		}
	}
	if sc.span != nil {
		r.endSpans(ctx, sc, status, runTime, done)
	}
}

// headerValue is h[key]'s first value, for a key already canonical.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// startSpan starts the request's span, as a child of the client's traceparent when it
// sent one, and returns the request carrying it.
func (r *Router) startSpan(req *http.Request, sc *request, endpoint string) *http.Request {
	ctx := propagation.TraceContext{}.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
	ctx, sc.span = r.tracer.Start(ctx, "score", trace.WithTimestamp(sc.arrival), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("x-request-id", sc.id), attribute.String("berth.endpoint", endpoint)))
	return req.WithContext(ctx)
}

// workerSpan records the admission and queue spans, which have ended, starts the
// worker span, and passes its traceparent to the instance (and so to run()) in the
// request's headers.
func (r *Router) workerSpan(ctx context.Context, header http.Header, sc *request) context.Context {
	child := func(name string, start, end time.Time) {
		_, s := r.tracer.Start(ctx, name, trace.WithTimestamp(start))
		s.End(trace.WithTimestamp(end))
	}
	child("admission", sc.arrival, sc.admitted)
	child("queue", sc.admitted, sc.dequeued)
	ctx, sc.worker = r.tracer.Start(ctx, "worker", trace.WithTimestamp(sc.dequeued), trace.WithSpanKind(trace.SpanKindClient))
	header.Del("Traceparent")
	header.Del("Tracestate")
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(header))
	return ctx
}

// endSpans ends the worker span, with run()'s span inside it (ending when the worker
// answered, as long as the worker measured), and the request's span.
func (r *Router) endSpans(ctx context.Context, sc *request, status int, runTime time.Duration, done time.Time) {
	if sc.dep != nil {
		sc.span.SetAttributes(attribute.String("berth.deployment", sc.dep.Name))
	}
	sc.span.SetAttributes(attribute.Int("http.response.status_code", status))
	if sc.throttled != "" {
		sc.span.SetAttributes(attribute.String("berth.throttled", sc.throttled))
	}
	if sc.worker != nil {
		if runTime > 0 {
			ctx := trace.ContextWithSpan(ctx, sc.worker)
			_, run := r.tracer.Start(ctx, "run()", trace.WithTimestamp(done.Add(-runTime)))
			run.End(trace.WithTimestamp(done))
		}
		sc.worker.End(trace.WithTimestamp(done))
	}
	if status >= 500 {
		sc.span.SetStatus(codes.Error, http.StatusText(status))
	}
	sc.span.End(trace.WithTimestamp(done))
}

// Load reports the live load of every routed deployment for the metrics
// (telemetry.LoadSource): read from the snapshot at a scrape, not counted per request.
func (r *Router) Load(yield func(telemetry.DeploymentLoad)) {
	snap := r.snap.Load()
	for name, ep := range snap.t.Endpoints {
		for _, d := range ep.Deployments {
			l := telemetry.DeploymentLoad{Endpoint: name, Deployment: d.Name, Ready: len(d.Instances)}
			for _, in := range d.Instances {
				n := in.InFlight.Load()
				l.InFlight += n
				if in.Slots != nil {
					l.Queued += max(n-int64(len(in.Slots)), 0)
				}
			}
			if d.Gate != nil {
				l.InFlight = d.Gate.InFlight.Load()
			}
			if v, ok := r.stats.Load(name + "/" + d.Name); ok {
				st := v.(*MirrorStats)
				l.MirrorSent, l.MirrorFailed, l.MirrorDropped = st.Sent.Load(), st.Failed.Load(), st.Dropped.Load()
			}
			yield(l)
		}
	}
}
