package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/berthml/berth/internal/jobs"
	"github.com/berthml/berth/internal/runtime"
	"github.com/berthml/berth/internal/telemetry"
)

// metricsListener opens --metrics-addr, the token-free listener that serves only GET
// /metrics (its loopback address was checked with the configuration).
func (s *Server) metricsListener() error {
	if s.cfg.MetricsAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen on --metrics-addr %s: %w (choose another port, or leave --metrics-addr empty and scrape /metrics on --addr with the admin token)", s.cfg.MetricsAddr, err)
	}
	s.closers = append(s.closers, func() { ln.Close() })
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.tel.Handler())
	s.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes}
	s.metricsLn = ln
	s.log.Info("serving metrics without a token on loopback", "url", "http://"+ln.Addr().String()+"/metrics")
	return nil
}

// serveMetrics serves the metrics listener, if any, until shutdown.
func (s *Server) serveMetrics() {
	if s.metricsSrv == nil {
		return
	}
	if err := s.metricsSrv.Serve(s.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Warn("metrics listener stopped", "err", err)
	}
}

// trackedRuntime starts instances through next and reports them to telemetry: their
// processes (CPU, memory), their workers' restarts, and their own restarts (a start of
// an instance index that ran before is its keeper restarting it).
type trackedRuntime struct {
	next runtime.Runtime
	tel  *telemetry.Instances
	// last holds how each instance index last ended, keyed by endpoint/deployment/index.
	last lastExits
}

// processInstance is what a runtime.Instance offers when its processes can be measured.
type processInstance interface {
	runtime.Instance
	Pids() []int
}

func (r *trackedRuntime) Start(ctx context.Context, spec runtime.InstanceSpec) (runtime.Instance, error) {
	ep, dep := spec.Endpoint, spec.Deployment
	spec.WorkerExited = func(cause string) { r.tel.Restarted(ep, dep, cause) }
	if cause, ok := r.last.take(ep, dep, spec.Index); ok {
		r.tel.Restarted(ep, dep, cause)
	}
	inst, err := r.next.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	if p, ok := inst.(processInstance); ok {
		r.tel.Started(ep, dep, spec.Index, p)
	}
	return r.last.watch(ep, dep, spec.Index, inst), nil
}

// batchProgress adapts the jobs service's progress reports to telemetry.
func batchProgress(tel *telemetry.Telemetry) func(jobs.JobProgress) {
	return func(p jobs.JobProgress) {
		tel.BatchJob(telemetry.BatchProgress{Job: p.Job, Endpoint: p.Endpoint, Deployment: p.Deployment,
			Done: p.Done, Failed: p.Failed, FilesPerSecond: p.FilesPerSecond, Ended: p.Ended})
	}
}
