package inference

import (
	"context"
	"net/http"
	"os"
	"sync"
	"time"
)

// Instance is a running instance without an HTTP server of its own: the pool of Python
// workers and the handler of /, /score and /swagger.json. Serve puts one behind an HTTP
// server, as azmlinfsrv does; berth serve's process runtime calls its handler
// in-process, so a scoring request crosses one process boundary (into the worker).
type Instance struct {
	h      *handler
	p      *pool
	cancel context.CancelFunc
	done   chan struct{} // closed when the instance has stopped
	err    error         // why it stopped; set before done is closed
	once   sync.Once
}

// Start checks cfg and starts the workers in the background; the handler answers 503
// until every worker has run init(). Done is closed when the workers could not start
// (Err is the *diag.Error, also written to cfg.StatusFile), when they keep dying, when
// ctx ends, or after Stop.
func Start(ctx context.Context, cfg Config) (*Instance, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return start(ctx, cfg, 0)
}

// start starts an instance whose cfg is already defaulted; port, when not 0, is the
// port of the HTTP server in front of it, for the banner.
func start(ctx context.Context, cfg Config, port int) (*Instance, error) {
	log := &logger{w: cfg.Log, pid: os.Getpid()}
	logBanner(log, cfg, port)
	pctx, cancel := context.WithCancel(ctx)
	p := &pool{cfg: cfg, log: log, done: pctx.Done(), fatal: make(chan error, 1)}
	i := &Instance{h: &handler{cfg: cfg, log: log, pool: p, col: newCollector(cfg.collector)}, p: p, cancel: cancel, done: make(chan struct{})}
	// Workers still starting (init() may take minutes) are stopped as soon as the
	// instance is: their start then fails and run returns.
	context.AfterFunc(pctx, p.killAll)
	go i.run(pctx, cfg, log)
	return i, nil
}

// run starts the workers and keeps them until the instance stops.
func (i *Instance) run(ctx context.Context, cfg Config, log *logger) {
	defer close(i.done)
	defer log.flush() // before done: the log file is closed then
	defer i.h.col.close()
	if cfg.builtinDir != "" {
		defer os.RemoveAll(cfg.builtinDir)
	}
	started := time.Now()
	stop := func() {
		i.h.ready.Store(false)
		i.cancel()
		i.p.stop()
	}
	if err := i.p.startAll(); err != nil {
		stopped := ctx.Err() // before stop cancels it
		if stopped == nil {
			err = withInterpreterHint(ctx, cfg, err)
		}
		stop()
		if stopped != nil {
			return // asked to stop while starting
		}
		i.err = reportStartFailure(log, cfg, err)
		return
	}
	// The status file holds the phases before the instance says ready: berth serve
	// reads it when its probe first succeeds.
	reportReady(log, cfg, i.p, started)
	i.h.ready.Store(true)
	select {
	case err := <-i.p.fatal:
		log.errorf("", "%v", err)
		i.err = err
	case <-ctx.Done():
	}
	stop()
}

// Handler serves /, /score and /swagger.json.
func (i *Instance) Handler() http.Handler { return i.h }

// Done is closed when the instance has stopped.
func (i *Instance) Done() <-chan struct{} { return i.done }

// Err says why the instance stopped (after Done): nil when it was asked to.
func (i *Instance) Err() error {
	select {
	case <-i.done:
		return i.err
	default:
		return nil
	}
}

// Stop stops every worker and waits for the instance to end.
func (i *Instance) Stop() {
	i.once.Do(i.cancel)
	<-i.done
}

// Pids returns the process ids of the live workers, e.g. for a memory watchdog.
func (i *Instance) Pids() []int { return i.p.pids() }
