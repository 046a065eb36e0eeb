// Package telemetry owns what Berth reports about itself: the Prometheus registry and
// its metrics (built once by the server, injected, never global), the in-memory history
// the studio charts, and the OpenTelemetry tracer provider (a no-op unless an OTLP
// endpoint is configured).
package telemetry

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
)

// Config is what New needs. Zero values take the documented defaults.
type Config struct {
	// Log receives telemetry's own problems (an exporter that fails); nil discards.
	Log *slog.Logger
	// OTLPEndpoint is the base URL of an OTLP/HTTP collector (OTEL_EXPORTER_OTLP_ENDPOINT);
	// traces go to <OTLPEndpoint>/v1/traces. "" exports nothing: the tracer is a no-op.
	OTLPEndpoint string
	// Step is the history's resolution (default 10s); History how much it keeps
	// (default 1h).
	Step, History time.Duration
	// Now returns the time (default time.Now).
	Now func() time.Time
}

// Telemetry is the server's registry, metrics, history and tracer. It is safe for
// concurrent use. Stop stops its ticker; Flush exports the last spans.
type Telemetry struct {
	cfg      Config
	log      *slog.Logger
	registry *prometheus.Registry

	// Scoring holds the data plane's metrics (the router's).
	Scoring *Scoring
	// Instances tracks the instances running in this process: CPU, memory, restarts.
	Instances *Instances
	deploy    *deployMetrics
	batch     *batchMetrics
	history   *history
	tracing   *tracing

	mu      sync.Mutex
	sources []LoadSource

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// New builds the registry with every Berth metric, Go's runtime and process metrics,
// and the tracer provider (whose exporter Start starts); it starts the history's
// ticker, which Stop stops.
func New(cfg Config) (*Telemetry, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Step <= 0 {
		cfg.Step = 10 * time.Second
	}
	if cfg.History <= 0 {
		cfg.History = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tr, err := newTracing(cfg.OTLPEndpoint, cfg.Log)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	t := &Telemetry{cfg: cfg, log: cfg.Log, registry: reg, tracing: tr, stop: make(chan struct{})}
	t.Scoring = newScoring(reg)
	t.Instances = newInstances(reg)
	t.deploy = newDeployMetrics(reg)
	t.batch = newBatchMetrics(reg)
	t.history = newHistory(int(cfg.History / cfg.Step))
	t.Scoring.forget = t.forget
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newLoadCollector(t))
	t.wg.Add(1)
	go t.tick()
	return t, nil
}

// Start starts the trace exporter, if any.
func (t *Telemetry) Start(ctx context.Context) error { return t.tracing.start(ctx) }

// Registry is the Prometheus registry every Berth metric is registered in.
func (t *Telemetry) Registry() *prometheus.Registry { return t.registry }

// Handler serves the registry in Prometheus's text format (GET /metrics).
func (t *Telemetry) Handler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{ErrorLog: slogPrinter{t.log}})
}

// Tracer is the tracer of Berth's spans; a no-op one when no OTLP endpoint is set.
func (t *Telemetry) Tracer() trace.Tracer { return t.tracing.tracer }

// Tracing reports whether spans are exported, so hot paths can skip building them.
func (t *Telemetry) Tracing() bool { return t.tracing.enabled }

// AddLoadSource adds what reports requests in flight and queued, ready instances and
// mirrored requests at each scrape (the router).
func (t *Telemetry) AddLoadSource(s LoadSource) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sources = append(t.sources, s)
}

func (t *Telemetry) loadSources() []LoadSource {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]LoadSource(nil), t.sources...)
}

// Stop stops the history's ticker.
func (t *Telemetry) Stop() {
	t.once.Do(func() { close(t.stop) })
	t.wg.Wait()
}

// Flush exports the spans not yet exported, within ctx, and stops the exporter.
func (t *Telemetry) Flush(ctx context.Context) { t.tracing.shutdown(ctx) }

// tick records a point of history every Step until Close.
func (t *Telemetry) tick() {
	defer t.wg.Done()
	tk := time.NewTicker(t.cfg.Step)
	defer tk.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tk.C:
			t.record(t.cfg.Now())
		}
	}
}

// forget drops what is kept about a deployment that left routing: its history, its
// restarts and its deploy phases (Scoring.Retain has dropped its request series).
func (t *Telemetry) forget(endpoint, deployment string) {
	t.history.drop(endpoint, deployment)
	l := prometheus.Labels{"endpoint": endpoint, "deployment": deployment}
	t.Instances.restarts.DeletePartialMatch(l)
	t.deploy.phases.DeletePartialMatch(l)
}

// slogPrinter lets promhttp report errors in the server's log.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics", "err", v) }
