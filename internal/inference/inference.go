// Package inference owns the instance: the HTTP server that Azure's inference server
// (azmlinfsrv) is, with probes and a pool of Python workers that run score.py.
package inference

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/inference/python"
	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/logs"
)

// Version is sent as x-ms-server-version.
const Version = "berth-inference/0.1"

// Config configures one instance.
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

	builtinDir string // where a built-in entry script was written; removed by Serve
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
	return nil
}

// threadVars are the thread-pool sizes of numerical libraries. Each worker gets one
// thread unless the deployment sets them, as multi-worker servers do, so that N workers
// do not start N × cores threads that fight over the same cores.
func threadVars() []string {
	return []string{"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"}
}

// workerEnv is the process environment and cfg.Env, plus the variables Azure sets for
// score.py and one thread per numerical library unless set.
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
	if c.ModelDir != "" {
		set("AZUREML_MODEL_DIR", c.ModelDir)
	}
	set("AZUREML_ENTRY_SCRIPT", filepath.Base(c.EntryScript))
	if os.Getenv("AML_APP_ROOT") == "" {
		set("AML_APP_ROOT", filepath.Dir(c.EntryScript))
	}
	set("WORKER_COUNT", strconv.Itoa(c.WorkerCount))
	return env
}

// logger writes azmlinfsrv-style lines: "<UTC time> <L> [<pid>] <logger> - [<request-id>] <message>".
type logger struct {
	w   io.Writer
	mu  sync.Mutex
	pid int
}

func (l *logger) line(level byte, name, rid, msg string) {
	if rid == "" {
		rid = "00000000-0000-0000-0000-000000000000"
	}
	s := fmt.Sprintf("%s %c [%d] %s - [%s] %s\n", logs.Stamp(time.Now()), level, l.pid, name, rid, msg)
	l.mu.Lock()
	io.WriteString(l.w, s)
	l.mu.Unlock()
}

func (l *logger) info(rid, msg string) { l.line('I', "azmlinfsrv", rid, msg) }
func (l *logger) errorf(rid, format string, args ...any) {
	l.line('E', "azmlinfsrv", rid, fmt.Sprintf(format, args...))
}
func (l *logger) access(rid, msg string) { l.line('I', "azmlinfsrv.access", rid, msg) }

// Serve runs the instance behind its own HTTP server, as azmlinfsrv does, until ctx is
// cancelled, the workers fail to start (it then returns the *diag.Error, also written
// to cfg.StatusFile) or keep dying.
func Serve(ctx context.Context, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w (is another server using it? choose another with --port)", cfg.Port, err)
	}
	inst, err := start(ctx, cfg, ln.Addr().(*net.TCPAddr).Port)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: inst.Handler(), ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		inst.Stop()
		return err
	case <-inst.Done():
		srv.Close()
		<-errc
		return inst.Err()
	case <-ctx.Done():
	}
	shut, cancelShut := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelShut()
	srv.Shutdown(shut)
	<-errc
	inst.Stop()
	return nil
}

func serverPort(port int) string {
	if port == 0 {
		return "none (in-process)"
	}
	return strconv.Itoa(port)
}

// logBanner writes the start-up lines azmlinfsrv writes.
func logBanner(log *logger, cfg Config, port int) {
	log.info("", "Azure ML Inferencing HTTP server (Berth) "+Version)
	for _, kv := range [][2]string{
		{"Entry Script Name", cfg.EntryScript}, {"Model Directory", cfg.ModelDir},
		{"Worker Count", strconv.Itoa(cfg.WorkerCount)}, {"Server Port", serverPort(port)},
		{"Python", cfg.Python},
	} {
		log.info("", fmt.Sprintf("%-18s %s", kv[0]+":", kv[1]))
	}
	if port == 0 {
		log.info("", "Routes: served in-process by berth serve's router at /endpoints/<endpoint>/score")
		return
	}
	log.info("", fmt.Sprintf("Routes: Liveness Probe: GET 127.0.0.1:%d/  Score: POST 127.0.0.1:%d/score", port, port))
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

// handler is the HTTP side of an instance.
type handler struct {
	cfg   Config
	log   *logger
	pool  *pool
	ready atomic.Bool
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (s *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/":
		if !s.ready.Load() {
			http.Error(w, "Not ready: workers are running init()", http.StatusServiceUnavailable)
			return
		}
		// Healthy means a worker answers, as azmlinfsrv's GET / needs a free worker; the
		// caller's timeout bounds the wait, and a worker that does not answer is replaced.
		if err := s.pool.ping(r.Context()); err != nil {
			http.Error(w, "Not healthy: no worker answered ("+err.Error()+")", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "Healthy")
	case "/score":
		s.score(w, r)
	case "/swagger.json":
		s.swagger(w, r)
	default:
		writeMessage(w, http.StatusNotFound, "no route "+r.URL.Path+": the routes are /, /score and /swagger.json")
	}
}

func (s *handler) score(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := r.Header.Get("x-request-id")
	client := r.Header.Get("x-ms-client-request-id")
	if len(rid) > 100 || len(client) > 100 || len(r.Header.Get("x-ms-request-id")) > 100 {
		writeMessage(w, http.StatusRequestHeaderFieldsTooLarge, "x-request-id, x-ms-request-id and x-ms-client-request-id must be at most 100 characters")
		return
	}
	if rid == "" {
		rid = uuid.NewString()
	}
	h := w.Header()
	h.Set("x-request-id", rid)
	h.Set("x-ms-request-id", rid)
	if client != "" {
		h.Set("x-ms-client-request-id", client)
	}
	h.Set("x-ms-server-version", Version)
	status := s.run(w, r, rid)
	s.log.access(rid, fmt.Sprintf("%s /score %d %.3fms", r.Method, status, float64(time.Since(start).Microseconds())/1000))
}

// run hands the request to a worker and writes its answer; it returns the status.
func (s *handler) run(w http.ResponseWriter, r *http.Request, rid string) int {
	switch r.Method {
	case http.MethodPost, http.MethodGet:
	case http.MethodOptions:
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	default:
		writeMessage(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on /score: use GET or POST")
		return http.StatusMethodNotAllowed
	}
	if !s.ready.Load() {
		writeMessage(w, http.StatusServiceUnavailable, "the workers are still running init()")
		return http.StatusServiceUnavailable
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeMessage(w, http.StatusBadRequest, "read request body: "+err.Error())
		return http.StatusBadRequest
	}
	var headers map[string]string
	if s.pool.wantsHeaders.Load() {
		headers = make(map[string]string, len(r.Header))
		for k, v := range r.Header {
			headers[k] = strings.Join(v, ", ")
		}
	}
	fh, out, err := s.pool.do(r.Context(), requestHeader{ID: rid, Method: r.Method, Query: r.URL.RawQuery, Headers: headers}, body)
	h := w.Header()
	if err != nil {
		h.Set("x-ms-run-function-failed", "True")
		if errors.Is(err, errWorkerDied) {
			s.log.errorf(rid, "%v; a new worker is starting", err)
			h.Set(instance.HeaderErrorReason, "worker_process_exited")
			writeMessage(w, http.StatusBadGateway, err.Error()+"; the worker is being restarted: check the log for what ended it (out of memory, os._exit, a crash in a C extension)")
			return http.StatusBadGateway
		}
		if errors.Is(err, errAbandoned) {
			s.log.errorf(rid, "the request ended before run() answered (%v): its worker was stopped and a new one is starting", context.Cause(r.Context()))
			writeMessage(w, http.StatusGatewayTimeout, "the request ended before run() answered")
			return http.StatusGatewayTimeout
		}
		writeMessage(w, http.StatusServiceUnavailable, "no worker became free before the request ended: "+err.Error())
		return http.StatusServiceUnavailable
	}
	for _, kv := range fh.Headers {
		h.Add(kv[0], kv[1])
	}
	h.Set("x-ms-run-fn-exec-ms", strconv.FormatFloat(fh.Ms, 'f', 3, 64))
	failed := "False"
	if fh.Failed || fh.Status >= 500 {
		failed = "True"
	}
	h.Set("x-ms-run-function-failed", failed)
	if !fh.Server {
		h.Set(instance.HeaderFromRun, "true")
	}
	w.WriteHeader(fh.Status)
	w.Write(out)
	return fh.Status
}

func (s *handler) swagger(w http.ResponseWriter, r *http.Request) {
	version := r.URL.Query().Get("version")
	names := map[string][]string{
		"": {"swagger2.json", "swagger.json"}, "2": {"swagger2.json", "swagger.json"}, "2.0": {"swagger2.json", "swagger.json"},
		"3": {"swagger3.json"}, "3.0": {"swagger3.json"}, "3.1": {"swagger3.1.json"},
	}
	files, ok := names[version]
	if !ok {
		writeMessage(w, http.StatusNotFound, "swagger version "+version+" is not supported: use 2, 3 or 3.1")
		return
	}
	for _, f := range files {
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(s.cfg.EntryScript), f)); err == nil {
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
			return
		}
	}
	var input, output any = map[string]any{"type": "object", "example": map[string]any{}}, map[string]any{"type": "object", "example": map[string]any{}}
	if sc := s.pool.schemas.Load(); sc != nil {
		input, output = sc.Input, sc.Output
	}
	paths := map[string]any{
		"/":             map[string]any{"get": map[string]any{"description": "Liveness probe", "responses": map[string]any{"200": map[string]any{"description": "Healthy"}}}},
		"/score":        map[string]any{"post": map[string]any{"description": "Run the model", "responses": map[string]any{"200": map[string]any{"description": "Success"}}}},
		"/swagger.json": map[string]any{"get": map[string]any{"description": "This document", "responses": map[string]any{"200": map[string]any{"description": "Success"}}}},
	}
	var doc map[string]any
	info := map[string]any{"title": "ML service", "version": "1.0"}
	if strings.HasPrefix(version, "3") {
		openapi := "3.0.1"
		if version == "3.1" {
			openapi = "3.1.0"
		}
		doc = map[string]any{"openapi": openapi, "info": info, "paths": paths,
			"components": map[string]any{"schemas": map[string]any{"ServiceInput": input, "ServiceOutput": output}}}
	} else {
		doc = map[string]any{"swagger": "2.0", "info": info, "schemes": []string{"https"}, "paths": paths,
			"definitions": map[string]any{"ServiceInput": input, "ServiceOutput": output}}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(doc)
}
