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

	"github.com/berthml/berth/internal/instance"
)

// Werkzeug's descriptions, which azmlinfsrv answers as {"message": ...}.
const (
	msgNotFound         = "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again."
	msgMethodNotAllowed = "The method is not allowed for the requested URL."
)

// headerLimit is the longest request id azmlinfsrv accepts.
const headerLimit = 100

// Why a /score request's context ended, when the server ended it.
var (
	errWorkerTimeout = errors.New("WORKER_TIMEOUT elapsed")
)

// handler is the HTTP side of an instance.
type handler struct {
	cfg   Config
	log   *logger
	pool  *pool
	col   *collector // payload logging and sampling; nil: no data collector
	ready atomic.Bool

	corsOnce sync.Once
	cors     *corsPolicy // nil: no CORS
}

// writeMessage answers azmlinfsrv's error body, {"message": msg}.
func writeMessage(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if h.Get("X-Ms-Run-Function-Failed") == "" {
		h.Set("X-Ms-Run-Function-Failed", "False")
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// respWriter records the status and length of an answer for the access log, and adds
// the headers azmlinfsrv adds to every answer of its routes just before they are sent.
type respWriter struct {
	http.ResponseWriter
	s       *handler
	r       *http.Request
	ids     requestIDs
	status  int
	n       int
	written bool
}

func (w *respWriter) WriteHeader(status int) {
	if w.written {
		return
	}
	w.written, w.status = true, status
	w.s.headers(w.Header(), w.r, w.ids)
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the server's writer (to flush a stream).
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *respWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += n
	return n, err
}

// requestIDs are azmlinfsrv's request ids of one request.
type requestIDs struct{ request, legacy, client string }

// ids reads the request ids as azmlinfsrv does; a non-empty string is the 431 message.
func (s *handler) ids(r *http.Request) (requestIDs, string) {
	var ids requestIDs
	rid := r.Header.Get("X-Request-Id")
	if rid == "" {
		rid = uuid.NewString()
	}
	if len(rid) > headerLimit {
		return ids, fmt.Sprintf("x-request-id must not exceed %d characters", headerLimit)
	}
	ids.request = rid
	legacy, client := r.Header.Get("X-Ms-Request-Id"), r.Header.Get("X-Ms-Client-Request-Id")
	if legacy != "" {
		s.log.line('W', "azmlinfsrv", "x-ms-request-id header has been deprecated and will be removed from future versions of the server. Please use x-ms-client-request-id.")
		if client == "" {
			client = legacy
		}
	} else if legacy = client; legacy == "" {
		legacy = rid
	}
	if len(legacy) > headerLimit || len(client) > headerLimit {
		return ids, fmt.Sprintf("x-ms-request-id and x-ms-client-request-id must not exceed %d characters", headerLimit)
	}
	ids.legacy, ids.client = legacy, client
	return ids, ""
}

// headers adds what azmlinfsrv adds to every answer of its routes.
func (s *handler) headers(h http.Header, r *http.Request, ids requestIDs) {
	if !s.cfg.NoServerVersion {
		h.Add("X-Ms-Server-Version", Version)
	}
	if ids.request != "" {
		h.Set("X-Request-Id", ids.request)
	}
	if ids.legacy != "" {
		h.Set("X-Ms-Request-Id", ids.legacy)
	}
	if ids.client != "" {
		h.Set("X-Ms-Client-Request-Id", ids.client)
	}
	if t, ok := r.Header["Traceid"]; ok && len(t) > 0 {
		h.Add("TraceId", t[0])
	}
	s.corsOnce.Do(func() {
		if s.cfg.CORSOrigins != nil {
			s.cors = newCORS(s.cfg.CORSOrigins)
		}
	})
	if s.cors != nil {
		s.cors.apply(h, r)
	}
}

func (s *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	methods := routeMethods(r.URL.Path)
	if methods == "" {
		writeMessage(w, http.StatusNotFound, msgNotFound)
		return
	}
	if !strings.Contains(" "+methods+" ", " "+r.Method+" ") {
		writeMessage(w, http.StatusMethodNotAllowed, msgMethodNotAllowed)
		return
	}
	start := time.Now()
	ids, tooLong := s.ids(r)
	rw := &respWriter{ResponseWriter: w, s: s, r: r, ids: ids, status: http.StatusOK}
	if tooLong != "" {
		writeMessage(rw, http.StatusRequestHeaderFieldsTooLarge, tooLong)
		return
	}
	switch {
	case r.URL.Path == "/score":
		s.run(rw, r, ids.request)
	case r.Method == http.MethodOptions:
		rw.Header().Set("Allow", "GET, HEAD, OPTIONS")
		rw.WriteHeader(http.StatusOK)
	case r.URL.Path == "/":
		s.health(rw, r)
		return // azmlinfsrv does not log its probes
	default:
		s.swagger(rw, r)
	}
	path := r.URL.Path
	if r.URL.RawQuery != "" {
		path += "?" + r.URL.RawQuery
	}
	s.log.access(r.Method, path, rw.status, time.Since(start), rw.n)
}

// routeMethods are the methods azmlinfsrv's route at path answers ("": no such route).
func routeMethods(path string) string {
	switch path {
	case "/score":
		return "GET POST OPTIONS"
	case "/", "/swagger.json":
		return "GET HEAD OPTIONS"
	}
	return ""
}

func (s *handler) health(w http.ResponseWriter, r *http.Request) {
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
	w.Header().Set("Content-Type", "text/html; charset=utf-8") // Flask's type for a returned str
	io.WriteString(w, "Healthy")
}

// deadline bounds a /score request by SCORING_TIMEOUT_MS and WORKER_TIMEOUT, whichever
// is shorter; the context's cause says which ended it.
func (s *handler) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	// SCORING_TIMEOUT_MS is the worker's own alarm (it interrupts run(), and the worker
	// lives on); WORKER_TIMEOUT is the backstop that stops a worker the alarm cannot
	// reach, as gunicorn's does.
	d := s.cfg.WorkerTimeout
	if d <= 0 {
		return ctx, func() {}
	}
	if end, ok := ctx.Deadline(); ok && time.Until(end) < d {
		return ctx, func() {} // the caller's deadline (request_timeout_ms) comes first
	}
	return context.WithTimeoutCause(ctx, d, errWorkerTimeout)
}

// run hands the request to a worker and writes its answer.
func (s *handler) run(w http.ResponseWriter, r *http.Request, rid string) {
	if r.Method == http.MethodOptions && !s.pool.raw.Load() {
		w.WriteHeader(http.StatusOK) // a @rawhttp run() answers OPTIONS itself
		return
	}
	if !s.ready.Load() {
		writeMessage(w, http.StatusServiceUnavailable, "the workers are still running init()")
		return
	}
	buf, err := readRequestBody(r)
	defer buf.release()
	body := buf.b
	if err != nil {
		writeMessage(w, http.StatusBadRequest, "read request body: "+err.Error())
		return
	}
	req := requestHeader{ID: rid, Method: r.Method, Query: r.URL.RawQuery, TimeoutMs: s.cfg.ScoringTimeout.Milliseconds(), Collect: s.col.sample()}
	if req.Collect {
		if err := s.col.request(r, rid, body); err != nil {
			s.log.errorf(rid, "%v", err)
		}
	}
	if s.pool.wantsHeaders.Load() {
		req.Headers = make(map[string]string, len(r.Header)+1)
		for k, v := range r.Header {
			req.Headers[k] = strings.Join(v, ", ")
		}
		if r.Host != "" {
			req.Headers["Host"] = r.Host // net/http keeps it out of r.Header
		}
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			req.Remote = host
		}
	}
	ctx, cancel := s.deadline(r.Context())
	defer cancel()
	fh, out, st, err := s.pool.do(ctx, req, body)
	if err != nil {
		s.failed(w, ctx, err)
		return
	}
	h := w.Header()
	for _, kv := range fh.Headers {
		h.Add(kv[0], kv[1])
	}
	h.Set("X-Ms-Run-Fn-Exec-Ms", strconv.FormatFloat(fh.Ms, 'f', 3, 64))
	failed := "False"
	if fh.Failed || fh.Status >= 500 {
		failed = "True"
	}
	h.Set("X-Ms-Run-Function-Failed", failed)
	if !fh.Server {
		h.Set(instance.HeaderFromRun, "true")
	}
	if req.Collect && st == nil {
		// Before the answer: a client that has its answer finds both records on disk.
		if err := s.col.response(rid, fh.Status, h.Get("Content-Type"), out); err != nil {
			s.log.errorf(rid, "%v", err)
		}
	}
	w.WriteHeader(fh.Status)
	w.Write(out)
	if st != nil {
		s.relay(ctx, w, st)
	}
}

// relay writes a streamed answer's chunks as run() yields them. When the generator
// raises or the worker dies after the status was sent, the connection is cut so the
// client sees an incomplete answer rather than a complete-looking one.
func (s *handler) relay(ctx context.Context, w http.ResponseWriter, st *stream) {
	rc := http.NewResponseController(w)
	rc.Flush()
	for {
		b, err := st.Next(ctx)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			s.log.errorf("", "the streamed answer was cut short: %v", err)
			panic(http.ErrAbortHandler)
		}
		if _, err := w.Write(b); err != nil {
			st.Abandon()
			return
		}
		rc.Flush()
	}
}

// failed answers a request that run() did not answer.
func (s *handler) failed(w http.ResponseWriter, ctx context.Context, err error) {
	w.Header().Set("X-Ms-Run-Function-Failed", "True")
	switch cause := context.Cause(ctx); {
	case errors.Is(err, errWorkerDied):
		s.log.errorf("", "%v; a new worker is starting", err)
		w.Header().Set(instance.HeaderErrorReason, "worker_process_exited")
		writeMessage(w, http.StatusBadGateway, err.Error()+"; the worker is being restarted: check the log for what ended it (out of memory, os._exit, a crash in a C extension)")
	case ctx.Err() != nil && errors.Is(cause, errWorkerTimeout):
		// gunicorn kills a worker silent for longer than --timeout: the client's
		// connection is closed without an answer.
		s.log.line('C', "azmlinfsrv", fmt.Sprintf("WORKER TIMEOUT: run() ran longer than WORKER_TIMEOUT (%d s); its worker was stopped and a new one is starting", int(s.cfg.WorkerTimeout/time.Second)))
		panic(http.ErrAbortHandler)
	case errors.Is(err, errClientGone):
		s.log.errorf("", "the client closed the connection before run() answered: its answer is dropped (the worker is stopped only if run() still runs at the request's deadline)")
		writeMessage(w, http.StatusGatewayTimeout, "the request ended before run() answered")
	case errors.Is(err, errAbandoned):
		s.log.errorf("", "the request ended before run() answered (%v): its worker was stopped and a new one is starting", context.Cause(ctx))
		writeMessage(w, http.StatusGatewayTimeout, "the request ended before run() answered")
	default:
		writeMessage(w, http.StatusServiceUnavailable, "no worker became free before the request ended: "+err.Error())
	}
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
	for _, dir := range []string{s.cfg.AppRoot, filepath.Dir(s.cfg.EntryScript)} {
		for _, f := range files {
			if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("X-Ms-Run-Function-Failed", "False")
				w.Write(b)
				return
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Ms-Run-Function-Failed", "False")
	json.NewEncoder(w).Encode(s.swaggerDoc(version))
}

// swaggerDoc generates the document azmlinfsrv generates from the script's schemas.
func (s *handler) swaggerDoc(version string) map[string]any {
	var input, output any = map[string]any{"type": "object", "example": map[string]any{}}, map[string]any{"type": "object", "example": map[string]any{}}
	if sc := s.pool.schemas.Load(); sc != nil {
		input, output = sc.Input, sc.Output
	}
	prefix := ""
	if p := strings.Trim(s.cfg.ServicePathPrefix, "/"); p != "" {
		prefix = "/" + p
	}
	paths := map[string]any{
		prefix + "/":             map[string]any{"get": map[string]any{"description": "Liveness probe", "responses": map[string]any{"200": map[string]any{"description": "Healthy"}}}},
		prefix + "/score":        map[string]any{"post": map[string]any{"description": "Run the model", "responses": map[string]any{"200": map[string]any{"description": "Success"}}}},
		prefix + "/swagger.json": map[string]any{"get": map[string]any{"description": "This document", "responses": map[string]any{"200": map[string]any{"description": "Success"}}}},
	}
	info := map[string]any{"title": s.cfg.ServiceName, "version": s.cfg.ServiceVersion}
	if strings.HasPrefix(version, "3") {
		openapi := "3.0.1"
		if version == "3.1" {
			openapi = "3.1.0"
		}
		return map[string]any{"openapi": openapi, "info": info, "paths": paths,
			"components": map[string]any{"schemas": map[string]any{"ServiceInput": input, "ServiceOutput": output}}}
	}
	return map[string]any{"swagger": "2.0", "info": info, "schemes": []string{"https"}, "paths": paths,
		"definitions": map[string]any{"ServiceInput": input, "ServiceOutput": output}}
}

// bodies holds request-body buffers between requests: a body is needed only until it
// has been written to a worker's pipe.
var bodies = sync.Pool{New: func() any { return new(bodyBuf) }}

// keptBody is the largest buffer given back to bodies; larger ones are left to the GC.
const keptBody = 1 << 20

type bodyBuf struct{ b []byte }

// readRequestBody reads r's body into a buffer from bodies, sized by Content-Length when
// the client sent one. Give the buffer back with release once the body is not needed.
func readRequestBody(r *http.Request) (*bodyBuf, error) {
	buf := bodies.Get().(*bodyBuf)
	b := buf.b[:0]
	if n := r.ContentLength; n >= int64(cap(b)) && n < keptBody {
		b = make([]byte, 0, n+1) // +1: room for the read that finds EOF
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			buf.b = b
			if err == io.EOF {
				err = nil
			}
			return buf, err
		}
	}
}

func (buf *bodyBuf) release() {
	if cap(buf.b) > keptBody {
		buf.b = nil
	}
	bodies.Put(buf)
}
