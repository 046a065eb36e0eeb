// Package inference owns the instance: the HTTP server that Azure's inference server
// (azmlinfsrv) is, with probes and a pool of Python workers that run score.py.
package inference

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/inference/python"
	"github.com/berthml/berth/internal/instance"
)

// Version is sent as x-ms-server-version: azmlinfsrv's format, naming the release of
// azmlinfsrv whose behaviour Berth reproduces.
const Version = "azmlinfsrv/" + CompatibleVersion

// ErrPortInUse means another process listens on a port the server needs.
var ErrPortInUse = errors.New("port already in use")

// Config configures one instance. Its zero value, apart from EntryScript, is what berth
// serve runs in-process; `berth inference-server` fills it from azmlinfsrv's flags,
// environment variables and config file.
type Config struct {
	EntryScript string    // path to score.py (required)
	ModelDir    string    // AZUREML_MODEL_DIR for the workers ("" = inherit)
	Host        string    // default 0.0.0.0, like azmlinfsrv
	Port        int       // default 5001
	WorkerCount int       // default 1
	Python      string    // interpreter, default instance.DefaultPython
	StatusFile  string    // where the startup status (instance.Status) is written, if set
	Log         io.Writer // the inference-server log, default os.Stdout
	// Env holds KEY=VALUE variables the workers get besides the server's own (the
	// deployment's environment_variables when berth serve runs the instance in-process).
	Env []string
	// Dir is the workers' working directory ("" = the server's).
	Dir string
	// Label are extra worker arguments that name it in `ps` (--endpoint E --deployment D
	// --instance N); the worker ignores them.
	Label []string
	// AppRoot is AML_APP_ROOT for the workers when the environment does not set it
	// ("" = Dir, else the entry script's folder); swagger files are looked up there too.
	AppRoot string
	// HealthPort, when not 0, is a second listener of Serve (SEPERATE_HEALTH_ENDPOINT).
	HealthPort int
	// ScoringTimeout bounds each /score request (SCORING_TIMEOUT_MS): past it the answer
	// is 500 "Scoring timeout after <ms> ms" and the worker is replaced. 0: no bound.
	ScoringTimeout time.Duration
	// WorkerTimeout is gunicorn's --timeout (WORKER_TIMEOUT): a request running longer
	// has its worker stopped and its connection closed without an answer. 0: no bound.
	WorkerTimeout time.Duration
	// CORSOrigins enables CORS for these origins ("*" for any), as flask-cors does for
	// azmlinfsrv; nil: no CORS headers.
	CORSOrigins []string
	// NoServerVersion leaves out the x-ms-server-version header
	// (SERVER_VERSION_LOG_RESPONSE_ENABLED set to anything but true).
	NoServerVersion bool
	// WorkerExited is told why a worker exited and is being replaced: WorkerCrashed or
	// WorkerStopped (nil: nobody listens). Workers stopped with the instance are not told.
	WorkerExited func(cause string)
	// ServiceName, ServiceVersion and ServicePathPrefix shape the generated
	// /swagger.json (defaults "ML service", "1.0" and "").
	ServiceName, ServiceVersion, ServicePathPrefix string

	builtinDir string        // where a built-in entry script was written; removed by Serve
	started    startupInfo   // what `berth inference-server` resolved, for the settings block
	httpPort   int           // the port Serve listens on (0: in-process)
	healthPort int           // the health port Serve listens on
	listenWait time.Duration // between tries of a port in use (0: a second, as gunicorn)
	// interpreters are searched for a module score.py cannot import (nil: this
	// machine's, instance.MachineInterpreters).
	interpreters *instance.Interpreters
	// collector is what the instance collects (instance.EnvDataCollector in Env or the
	// environment); nil: nothing.
	collector *instance.Collector
}

func (c *Config) defaults() error {
	if c.EntryScript == "" {
		return errors.New("--entry_script is required: the path of your score.py")
	}
	if c.EntryScript == instance.BuiltinMLflow {
		// Write the built-in script where the workers can import it.
		dir, err := os.MkdirTemp("", "berth-mlflow-")
		if err != nil {
			return err
		}
		c.builtinDir = dir
		c.EntryScript = filepath.Join(dir, "mlflow_score.py")
		if err := os.WriteFile(c.EntryScript, []byte(python.MLflow), 0o644); err != nil {
			return err
		}
	}
	abs, err := filepath.Abs(c.EntryScript)
	if err != nil {
		return err
	}
	c.EntryScript = abs
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("entry script: %w", err)
	}
	if c.ModelDir != "" {
		if c.ModelDir, err = filepath.Abs(c.ModelDir); err != nil {
			return err
		}
	}
	if c.Host == "" {
		c.Host = "0.0.0.0"
	}
	if c.Port == 0 {
		c.Port = 5001
	}
	if c.WorkerCount <= 0 {
		c.WorkerCount = 1
	}
	if c.Python == "" {
		c.Python = instance.DefaultPython
	}
	if c.Log == nil {
		c.Log = os.Stdout
	}
	if c.AppRoot == "" {
		c.AppRoot = c.Dir
	}
	if c.AppRoot == "" {
		c.AppRoot = filepath.Dir(c.EntryScript)
	}
	if c.ServiceName == "" {
		c.ServiceName = "ML service"
	}
	if c.ServiceVersion == "" {
		c.ServiceVersion = "1.0"
	}
	if c.collector, err = instance.ReadCollector(c.Env, os.Getenv); err != nil {
		return fmt.Errorf("data collector: %w", err)
	}
	return nil
}

// threadVars are the thread-pool sizes of numerical libraries. Each worker gets one
// thread unless the deployment sets them, as multi-worker servers do, so that N workers
// do not start N × cores threads that fight over the same cores.
func threadVars() []string {
	return []string{"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"}
}

// workerEnv is the process environment and cfg.Env, plus the variables azmlinfsrv sets
// for score.py (and no others: AZUREML_MODEL_DIR stays unset without a model folder),
// and one thread per numerical library unless set.
func (c *Config) workerEnv() []string {
	env := append(os.Environ(), c.Env...)
	has := func(k string) bool {
		for _, kv := range env {
			if strings.HasPrefix(kv, k+"=") {
				return true
			}
		}
		return false
	}
	for _, k := range threadVars() {
		if !has(k) {
			env = append(env, k+"=1")
		}
	}
	set := func(k, v string) { env = append(env, k+"="+v) }
	if !has("AML_APP_ROOT") {
		set("AML_APP_ROOT", c.AppRoot)
	}
	set("AZUREML_ENTRY_SCRIPT", c.EntryScript) // azmlinfsrv's realpath of --entry_script
	if c.ModelDir != "" {
		set("AZUREML_MODEL_DIR", c.ModelDir)
	}
	set("WORKER_COUNT", strconv.Itoa(c.WorkerCount))
	set("TRANSPORT_PROTOCOL", "grpc") // azmlinfsrv sets it whenever --rest is not given
	if !c.NoServerVersion {
		set("HTTP_X_MS_SERVER_VERSION", Version)
	}
	if c.httpPort != 0 {
		set("SERVER_PORT", strconv.Itoa(c.httpPort))
		health := c.httpPort
		if c.healthPort != 0 {
			health = c.healthPort
		}
		set("HEALTH_PORT", strconv.Itoa(health))
	}
	set("AML_APP_INSIGHTS_ENABLED", strconv.FormatBool(c.started.appInsights()))
	env = append(env, c.started.flagEnv...)
	if c.collector != nil {
		// The collector as resolved (with its rotation size): the last value wins.
		if v, err := c.collector.Env(); err == nil {
			set(instance.EnvDataCollector, v)
		}
	}
	return env
}

// Serve runs the instance behind its own HTTP server, as azmlinfsrv does, until ctx is
// cancelled, the workers fail to start (it then returns the *diag.Error, also written
// to cfg.StatusFile) or keep dying. A port in use is retried for a few seconds, as
// gunicorn does, then is an error wrapping ErrPortInUse.
func Serve(ctx context.Context, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	log := &logger{w: cfg.Log, pid: os.Getpid()}
	ln, err := listen(ctx, log, cfg.Host, cfg.Port, cfg.listenWait)
	if err != nil {
		return err
	}
	lns := []net.Listener{ln}
	cfg.httpPort = ln.Addr().(*net.TCPAddr).Port
	if cfg.HealthPort != 0 && cfg.HealthPort != cfg.Port {
		hl, err := listen(ctx, log, cfg.Host, cfg.HealthPort, cfg.listenWait)
		if err != nil {
			ln.Close()
			return err
		}
		lns = append(lns, hl)
		cfg.healthPort = hl.Addr().(*net.TCPAddr).Port
	}
	inst, err := start(ctx, cfg, cfg.httpPort)
	if err != nil {
		for _, l := range lns {
			l.Close()
		}
		return err
	}
	// Like gunicorn bound to both addresses, both listeners serve the same routes.
	srv := &http.Server{Handler: inst.Handler(), ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, len(lns))
	for _, l := range lns {
		go func() { errc <- srv.Serve(l) }()
	}
	wait := func() {
		for range lns {
			<-errc
		}
	}
	select {
	case err := <-errc:
		srv.Close()
		for range lns[1:] {
			<-errc
		}
		inst.Stop()
		return err
	case <-inst.Done():
		srv.Close()
		wait()
		return inst.Err()
	case <-ctx.Done():
	}
	shut, cancelShut := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelShut()
	srv.Shutdown(shut)
	wait()
	inst.Stop()
	return nil
}

// listenTries is how many times a port in use is tried, a wait apart, as gunicorn does.
const listenTries = 5

// listen binds host:port, retrying while the port is in use.
func listen(ctx context.Context, log *logger, host string, port int, wait time.Duration) (net.Listener, error) {
	if wait == 0 {
		wait = time.Second
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	for try := 1; ; try++ {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		log.line('E', "azmlinfsrv", fmt.Sprintf("Connection in use: ('%s', %d)", host, port))
		if try == listenTries {
			log.line('E', "azmlinfsrv", fmt.Sprintf("Can't connect to ('%s', %d)", host, port))
			return nil, fmt.Errorf("listen on %s: %w: another server is using port %d; stop it or choose another port with --port (or --health_port)", addr, ErrPortInUse, port)
		}
		retry := "Retrying in 1 second." // gunicorn's words
		if wait != time.Second {
			retry = fmt.Sprintf("Retrying in %s.", wait)
		}
		log.line('E', "azmlinfsrv", retry)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// startAll starts the workers together and makes them take requests; the first failure is
// returned once every start has ended (the pool's stop then kills the started ones).
func (p *pool) startAll() error {
	type startResult struct {
		w   *worker
		err error
	}
	n := p.cfg.WorkerCount
	results := make(chan startResult, n)
	for i := 0; i < n; i++ {
		go func() {
			w, err := p.start()
			results <- startResult{w, err}
		}()
	}
	var startErr error
	for i := 0; i < n; i++ {
		r := <-results
		if r.err != nil {
			if startErr == nil {
				startErr = r.err
			}
			continue
		}
		p.add(r.w)
	}
	return startErr
}

// reportStartFailure logs why the workers could not start, writes it to the status
// file for berth serve, and returns it as a *diag.Error.
func reportStartFailure(log *logger, cfg Config, startErr error) error {
	de := diag.As(startErr)
	if de == nil {
		de = &diag.Error{Code: diag.UserScriptImportError, Message: startErr.Error()}
	}
	log.errorf("", "%s: %s", de.Code, de.Message)
	if cfg.StatusFile != "" {
		if err := instance.WriteStatus(cfg.StatusFile, instance.Status{Error: de}); err != nil {
			log.errorf("", "%v", err)
		}
	}
	return de
}

// reportReady logs the start phases and writes them to the status file.
func reportReady(log *logger, cfg Config, p *pool, started time.Time) {
	p.phasesMu.Lock()
	phases := p.phases
	p.phasesMu.Unlock()
	phases.ReadyMs = float64(time.Since(started).Microseconds()) / 1000
	log.info("", fmt.Sprintf("Server is ready: all workers ran init() (import %.0f ms, init() %.0f ms, ready after %.0f ms)", phases.ImportMs, phases.InitMs, phases.ReadyMs))
	if cfg.StatusFile != "" {
		if err := instance.WriteStatus(cfg.StatusFile, instance.Status{Phases: &phases}); err != nil {
			log.errorf("", "%v", err)
		}
	}
}
