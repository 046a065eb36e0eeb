package telemetry

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Throttle reasons: the values of berth_throttled_requests_total's reason label, as
// the router writes them in ms-azureml-model-error-reason.
const (
	ReasonTooManyPending = "too_many_pending_request"
	ReasonRateLimited    = "rate_limited"
)

// throttleReasons are the reasons counted, in the order of Deployment.throttled.
func throttleReasons() [2]string { return [2]string{ReasonTooManyPending, ReasonRateLimited} }

// latencyBuckets span a fast in-process answer to request_timeout_ms's maximum (180 s).
func latencyBuckets() []float64 {
	return []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 180}
}

// Scoring is the data plane's metrics. The router resolves a *Deployment once per
// routing snapshot and records each request on it without building label strings.
type Scoring struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	throttled *prometheus.CounterVec

	mu   sync.Mutex
	deps map[[2]string]*Deployment
	// forget is called, under mu, with each deployment Retain drops (nil: nothing).
	forget func(endpoint, deployment string)
}

func newScoring(reg prometheus.Registerer) *Scoring {
	s := &Scoring{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_requests_total",
			Help: "Scoring requests answered, by status code, its class and the status run() returned (empty when run() did not answer). Azure: RequestsPerMinute.",
		}, []string{"endpoint", "deployment", "status_code", "status_code_class", "model_status_code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_request_duration_seconds",
			Help:    "Scoring request latency by phase: total (arrival to answer), queue (waiting for a free slot on an instance), run (run() itself, as the worker measured it). Azure: RequestLatency.",
			Buckets: latencyBuckets(),
		}, []string{"endpoint", "deployment", "phase"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_throttled_requests_total",
			Help: "Scoring requests answered 429, by reason (too_many_pending_request, rate_limited).",
		}, []string{"endpoint", "deployment", "reason"}),
		deps: map[[2]string]*Deployment{},
	}
	reg.MustRegister(s.requests, s.latency, s.throttled)
	return s
}

// Deployment returns the metrics of one deployment ("" for requests refused before a
// deployment was chosen), the same value for the same names. Call it when a routing
// snapshot is built, not per request.
func (s *Scoring) Deployment(endpoint, deployment string) *Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{endpoint, deployment}
	if d := s.deps[k]; d != nil {
		return d
	}
	d := &Deployment{s: s, endpoint: endpoint, deployment: deployment,
		total: s.latency.WithLabelValues(endpoint, deployment, "total"),
		queue: s.latency.WithLabelValues(endpoint, deployment, "queue"),
		run:   s.latency.WithLabelValues(endpoint, deployment, "run"),
		win:   &window{}}
	for i, r := range throttleReasons() {
		d.throttled[i] = s.throttled.WithLabelValues(endpoint, deployment, r)
	}
	s.deps[k] = d
	return d
}

// Retain forgets every deployment's metrics but keep's, the ones of the routing snapshot
// being published: their series leave the registry and their history goes, so that a
// deleted deployment neither exports stale values nor grows the registry. A request
// still recording on a forgotten Deployment is not counted.
func (s *Scoring) Retain(keep []*Deployment) {
	kept := make(map[*Deployment]bool, len(keep))
	for _, d := range keep {
		kept[d] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, d := range s.deps {
		if kept[d] {
			continue
		}
		delete(s.deps, k)
		d.dropped.Store(true)
		l := prometheus.Labels{"endpoint": k[0], "deployment": k[1]}
		s.requests.DeletePartialMatch(l)
		s.latency.DeletePartialMatch(l)
		s.throttled.DeletePartialMatch(l)
		if s.forget != nil {
			s.forget(k[0], k[1])
		}
	}
}

// each calls f with every deployment's metrics.
func (s *Scoring) each(f func(*Deployment)) {
	s.mu.Lock()
	ds := make([]*Deployment, 0, len(s.deps))
	for _, d := range s.deps {
		ds = append(ds, d)
	}
	s.mu.Unlock()
	for _, d := range ds {
		f(d)
	}
}

// maxStatus bounds the status codes counted without a lookup (HTTP's are 100–599).
const maxStatus = 600

// Deployment is one deployment's scoring metrics, with its label children resolved.
// Its methods are cheap enough for every request: a status seen before costs an
// atomic load, and no strings are built.
type Deployment struct {
	s                    *Scoring
	endpoint, deployment string
	total, queue, run    prometheus.Observer
	throttled            [2]prometheus.Counter
	// byStatus[status] counts answers with no model status; byModel[status][model] the
	// others (a 424 and the status run() returned, or run()'s own success).
	byStatus [maxStatus]atomic.Pointer[prometheus.Counter]
	byModel  [maxStatus]atomic.Pointer[statusCounters]
	win      *window // the history's current step
	// dropped is set, under s.mu, once Retain has forgotten the deployment.
	dropped atomic.Bool
}

// Request records one answered request: the status sent, the status run() returned
// (0 when run() did not answer), and its latencies (queue and run are skipped when
// zero: the request did not wait, or did not reach run()).
func (d *Deployment) Request(status, model int, total, queue, run time.Duration) {
	if d == nil {
		return
	}
	d.counter(status, model).Inc()
	d.total.Observe(total.Seconds())
	if queue > 0 {
		d.queue.Observe(queue.Seconds())
	}
	if run > 0 {
		d.run.Observe(run.Seconds())
	}
	d.win.add(status, total)
}

// Throttled records a 429 with its reason (one of the Reason constants).
func (d *Deployment) Throttled(reason string) {
	if d == nil {
		return
	}
	for i, r := range throttleReasons() {
		if r == reason {
			d.throttled[i].Inc()
			return
		}
	}
}

func (d *Deployment) counter(status, model int) prometheus.Counter {
	if status < 0 || status >= maxStatus || model < 0 || model >= maxStatus {
		status, model = 0, 0
	}
	slot := &d.byStatus[status]
	if model != 0 {
		inner := d.byModel[status].Load()
		if inner == nil {
			d.byModel[status].CompareAndSwap(nil, &statusCounters{})
			inner = d.byModel[status].Load()
		}
		slot = &inner[model]
	}
	if c := slot.Load(); c != nil {
		return *c
	}
	m := ""
	if model != 0 {
		m = strconv.Itoa(model)
	}
	// Two first requests may both resolve the child: WithLabelValues returns the same
	// one. s.mu orders this first use against Retain, which would leave the child behind.
	d.s.mu.Lock()
	defer d.s.mu.Unlock()
	if d.dropped.Load() {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_requests_total"}) // registered nowhere
	}
	c := d.s.requests.WithLabelValues(d.endpoint, d.deployment, strconv.Itoa(status), statusClass(status), m)
	slot.Store(&c)
	return c
}

// statusCounters holds one counter per status, resolved on first use.
type statusCounters [maxStatus]atomic.Pointer[prometheus.Counter]

func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "unknown"
	}
	return strconv.Itoa(status/100) + "xx"
}
