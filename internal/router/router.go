// Package router owns the data plane: it authenticates scoring requests, applies the
// endpoint's rate limit and the deployment's admission limit, picks a deployment and an
// instance from the routing snapshot, forwards the request, mirrors a share of it, and
// maps model errors to the status codes Azure documents.
package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/router/table"
	"github.com/berthml/berth/internal/telemetry"
)

// Data-plane error codes (not deployment error codes, so they live here).
const (
	codeNoValidDeployment  diag.Code = "NoValidDeployment"
	codeServiceUnavailable diag.Code = "ServiceUnavailable"
	codeRequestTimeout     diag.Code = "RequestTimeout"
	codeBadGateway         diag.Code = "BadGateway"
	codeMethodNotAllowed   diag.Code = "MethodNotAllowed"
	codeTooManyRequests    diag.Code = "TooManyRequests"
	codeTooLarge           diag.Code = "RequestEntityTooLarge"
)

// mirrorLimit is how many mirrored requests may be in flight at once; more are dropped and counted.
const mirrorLimit = 64

// withDeadline bounds ctx by the deployment's request timeout counted from arrival.
// The controller always sets the timeout from request_settings.request_timeout_ms
// (defaulted by spec); a snapshot without one gets no deadline of Berth's own.
func withDeadline(ctx context.Context, dep *table.Deployment, arrival time.Time) (context.Context, context.CancelFunc) {
	if dep.RequestTimeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, arrival.Add(dep.RequestTimeout))
}

// Config tunes a Router. Zero values take the documented defaults.
type Config struct {
	Log *slog.Logger
	// MaxBodyBytes is the largest request body accepted (default 100 MiB).
	MaxBodyBytes int64
	// EndpointRPS is the per-endpoint rate limit in requests/s (default 500; < 0 disables).
	EndpointRPS float64
	// Tokens validates the tokens of aml_token and aad_token endpoints; nil refuses
	// every request to such endpoints.
	Tokens TokenValidator
	// Metrics counts requests per deployment; nil counts nothing.
	Metrics *telemetry.Scoring
	// Tracer traces scoring requests; nil traces nothing (no cost on the hot path).
	Tracer trace.Tracer
}

// snapshot is a published table plus what the hot path derives from it once.
type snapshot struct {
	t     *table.Table
	order map[string][]string // endpoint → deployments with weight > 0, sorted
	// depMetrics and epMetrics are the metrics of each deployment and of each
	// endpoint's requests refused before a deployment was chosen (nil without metrics).
	depMetrics map[*table.Deployment]*telemetry.Deployment
	epMetrics  map[string]*telemetry.Deployment
}

// Router is the scoring front door. It is safe for concurrent use.
type Router struct {
	cfg     Config
	log     *slog.Logger
	tokens  TokenValidator
	metrics *telemetry.Scoring
	tracer  trace.Tracer
	snap    atomic.Pointer[snapshot]
	http    *http.Client

	limiters sync.Map // endpoint name → *rate.Limiter

	mirrorSem chan struct{}
	mirrors   sync.WaitGroup
	closing   chan struct{} // closed by Close: mirrors in flight are cancelled
	closeOnce sync.Once
	stats     sync.Map // deployment key → *MirrorStats
}

// MirrorStats counts the mirrored copies sent to one deployment.
type MirrorStats struct {
	Sent, Failed, Dropped atomic.Int64
}

// New returns a router with an empty table.
func New(cfg Config) *Router {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 100 << 20
	}
	if cfg.EndpointRPS == 0 {
		cfg.EndpointRPS = 500
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	r := &Router{cfg: cfg, log: cfg.Log, tokens: cfg.Tokens, metrics: cfg.Metrics, tracer: cfg.Tracer, http: &http.Client{Transport: tr}, mirrorSem: make(chan struct{}, mirrorLimit), closing: make(chan struct{})}
	r.Swap(&table.Table{})
	return r
}

// Swap publishes a new routing table.
func (r *Router) Swap(t *table.Table) {
	s := &snapshot{t: t, order: map[string][]string{}}
	for name, ep := range t.Endpoints {
		var names []string
		for d, w := range ep.Traffic {
			if w > 0 {
				names = append(names, d)
			}
		}
		sort.Strings(names)
		s.order[name] = names
	}
	s.depMetrics, s.epMetrics = r.deploymentMetrics(t)
	r.snap.Store(s)
}

// Close cancels mirrored requests still in flight and waits for them.
func (r *Router) Close() {
	r.closeOnce.Do(func() { close(r.closing) })
	r.mirrors.Wait()
}

func writeError(w http.ResponseWriter, status int, code diag.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": string(code), "message": msg}})
}

// tooMany answers 429 with Azure's reason header and a Retry-After.
func tooMany(w http.ResponseWriter, reason, msg string) {
	w.Header().Set(instance.HeaderErrorReason, reason)
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusTooManyRequests, codeTooManyRequests, msg)
}

// sanitizeClientID keeps [A-Za-z0-9_-] and at most 40 characters, as Azure does.
func sanitizeClientID(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 40; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// hop-by-hop headers and those the router owns are not forwarded.
var dropRequest = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Authorization", "X-Request-Id", "X-Ms-Client-Request-Id"}

func (r *Router) limiter(endpoint string) *rate.Limiter {
	if v, ok := r.limiters.Load(endpoint); ok {
		return v.(*rate.Limiter)
	}
	burst := int(r.cfg.EndpointRPS)
	v, _ := r.limiters.LoadOrStore(endpoint, rate.NewLimiter(rate.Limit(r.cfg.EndpointRPS), max(burst, 1)))
	return v.(*rate.Limiter)
}

// ServeHTTP serves /endpoints/<endpoint>/score.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	sc := request{arrival: time.Now(), id: uuid.NewString()}
	h := w.Header()
	h.Set("X-Request-Id", sc.id)
	if c := req.Header.Get("X-Ms-Client-Request-Id"); c != "" {
		sc.clientID = sanitizeClientID(c)
		h.Set("X-Ms-Client-Request-Id", sc.clientID)
	}
	rest, ok := strings.CutPrefix(req.URL.Path, "/endpoints/")
	name, route, _ := strings.Cut(rest, "/")
	if !ok || (route != "score" && route != "swagger.json") {
		writeError(w, http.StatusNotFound, diag.ResourceNotFound, "no route "+req.URL.Path+": score with POST /endpoints/<endpoint>/score")
		return
	}
	if req.Method != http.MethodPost && req.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, "only GET and POST reach a deployment")
		return
	}
	snap := r.snap.Load()
	ep := snap.t.Endpoints[name]
	if ep == nil {
		writeError(w, http.StatusNotFound, diag.EndpointNotFound, "endpoint "+name+" does not exist")
		return
	}
	if ep.Policy != nil {
		w = policyWriter{w, ep.Policy}
	}
	if route == "score" && r.tracer != nil {
		req = r.startSpan(req, &sc, name)
	}
	status := r.score(w, req, snap, ep, route == "swagger.json", &sc)
	if status != 0 {
		r.observe(req.Context(), w.Header(), snap, ep, &sc, status)
	}
	if status != 0 && sc.dep != nil && r.log.Enabled(req.Context(), slog.LevelDebug) {
		r.log.Debug("score", "endpoint", name, "deployment", sc.dep.Name, "status", status, "duration", time.Since(sc.arrival), "request_id", sc.id)
	}
}

// score serves a request to endpoint ep and returns the status it answered (as a
// managed endpoint answers it; 0 for a swagger document, which is not counted).
func (r *Router) score(w http.ResponseWriter, req *http.Request, snap *snapshot, ep *table.Endpoint, swagger bool, sc *request) int {
	name := ep.Name
	if !r.authenticate(w, req, ep) {
		return http.StatusUnauthorized
	}
	if r.cfg.EndpointRPS > 0 && !r.limiter(name).Allow() {
		sc.throttled = telemetry.ReasonRateLimited
		tooMany(w, "rate_limited", "endpoint "+name+" is over its rate limit of "+strconv.FormatFloat(r.cfg.EndpointRPS, 'f', -1, 64)+" requests/s: retry with exponential backoff")
		return http.StatusTooManyRequests
	}
	if req.ContentLength > r.cfg.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, "the request body is larger than the limit of "+strconv.FormatInt(r.cfg.MaxBodyBytes, 10)+" bytes (berth serve --max-request-body)")
		return http.StatusRequestEntityTooLarge
	}
	dep, targeted := r.pickDeployment(w, req, ep, snap.order[name])
	if dep == nil {
		return http.StatusNotFound
	}
	sc.dep = dep
	w.Header().Set("Azureml-Model-Deployment", dep.Name)
	if swagger {
		r.swagger(w, req, dep)
		return 0
	}
	if len(dep.Instances) == 0 {
		writeError(w, http.StatusServiceUnavailable, codeServiceUnavailable, "deployment "+dep.Name+" has no ready instance: check it with `berth online-deployment show -e "+name+" -n "+dep.Name+"`")
		return http.StatusServiceUnavailable
	}
	if !admit(w, dep) {
		sc.throttled = telemetry.ReasonTooManyPending
		return http.StatusTooManyRequests
	}
	if dep.Gate != nil {
		defer dep.Gate.InFlight.Add(-1)
	}
	sc.admitted = time.Now()
	body := io.Reader(http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes))
	if !targeted {
		if m := r.mirrorTarget(ep); m != nil {
			// The copy needs the body twice: read it once, bounded by the body limit.
			b, err := io.ReadAll(body)
			if err != nil {
				return r.bodyError(w, err)
			}
			body = bytes.NewReader(b)
			r.mirror(name, m, req, b, sc.id)
		}
	}
	return r.forward(w, req, body, dep, sc)
}

// pickDeployment chooses the deployment a request goes to: the one the
// azureml-model-deployment header names, else a weighted choice by traffic. It answers
// 404 itself and returns nil when there is none.
func (r *Router) pickDeployment(w http.ResponseWriter, req *http.Request, ep *table.Endpoint, order []string) (dep *table.Deployment, targeted bool) {
	if target := req.Header.Get("Azureml-Model-Deployment"); target != "" {
		dep = ep.Deployments[target]
		if dep == nil {
			writeError(w, http.StatusNotFound, diag.DeploymentNotFound, "deployment "+target+" does not exist on endpoint "+ep.Name)
		}
		return dep, true
	}
	if chosen := ep.Choose(rand.IntN(100), order); chosen != "" {
		dep = ep.Deployments[chosen]
	}
	if dep == nil {
		writeError(w, http.StatusNotFound, codeNoValidDeployment, noValidDeployment(ep))
	}
	return dep, false
}

// noValidDeployment is the 404 message when traffic picks no deployment: Azure's
// documented sentence, then the deployments that have no traffic and the command that
// sends traffic to one (preferring one with a ready instance).
func noValidDeployment(ep *table.Endpoint) string {
	documented := diag.NoValidDeploymentMessage
	var idle []string
	for name := range ep.Deployments {
		if ep.Traffic[name] <= 0 {
			idle = append(idle, name)
		}
	}
	if len(idle) == 0 {
		return documented
	}
	sort.Strings(idle)
	fix := idle[0]
	for _, name := range idle {
		if len(ep.Deployments[name].Instances) > 0 {
			fix = name
			break
		}
	}
	return fmt.Sprintf("%s Endpoint %s has %d deployment(s) with 0 traffic: %s. Send traffic to one with `berth online-endpoint update -n %s --traffic \"%s=100\"`",
		documented, ep.Name, len(idle), strings.Join(idle, ", "), ep.Name, fix)
}

// admit counts the request in the deployment's gate: at most 2 ×
// max_concurrent_requests_per_instance × instances in flight, else 429 at once. When it
// returns true with a gate, the caller must release the slot.
func admit(w http.ResponseWriter, dep *table.Deployment) bool {
	g := dep.Gate
	if g == nil {
		return true
	}
	limit := int64(2 * max(dep.MaxConcurrent, 1) * len(dep.Instances))
	if g.InFlight.Add(1) > limit {
		g.InFlight.Add(-1)
		tooMany(w, "too_many_pending_request", "deployment "+dep.Name+" already has "+strconv.FormatInt(limit, 10)+
			" requests in flight (2 × max_concurrent_requests_per_instance × instances): retry with exponential backoff, or add instances")
		return false
	}
	return true
}

func (r *Router) bodyError(w http.ResponseWriter, err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, "the request body is larger than the limit of "+strconv.FormatInt(mbe.Limit, 10)+" bytes (berth serve --max-request-body)")
		return http.StatusRequestEntityTooLarge
	}
	writeError(w, http.StatusBadRequest, diag.BadArgument, "read request body: "+err.Error())
	return http.StatusBadRequest
}

// acquireSlot waits for a free slot on the instance, up to max_queue_wait_ms and the
// request's deadline. It returns 0 with the slot taken, or the status it answered.
func (r *Router) acquireSlot(ctx context.Context, w http.ResponseWriter, inst *table.Instance, dep *table.Deployment) int {
	if inst.Slots == nil {
		return 0
	}
	select {
	case inst.Slots <- struct{}{}:
		return 0
	default:
	}
	var queueWait <-chan time.Time
	if dep.MaxQueueWait > 0 {
		t := time.NewTimer(dep.MaxQueueWait)
		defer t.Stop()
		queueWait = t.C
	}
	select {
	case inst.Slots <- struct{}{}:
		return 0
	case <-queueWait:
		tooMany(w, "too_many_pending_request", "the request waited longer than request_settings.max_queue_wait_ms ("+dep.MaxQueueWait.String()+") for a free slot: add instances or raise max_concurrent_requests_per_instance")
		return http.StatusTooManyRequests
	case <-ctx.Done():
		return r.timeout(w, dep, dep.RequestTimeout)
	}
}

// forward waits for a free slot on an instance, sends the request and copies the answer
// back, turning run() failures into 424; it returns the status sent.
func (r *Router) forward(w http.ResponseWriter, req *http.Request, body io.Reader, dep *table.Deployment, sc *request) int {
	timeout := dep.RequestTimeout
	reqID, clientID := sc.id, sc.clientID
	// The timeout counts from arrival, time in the queue included.
	ctx, cancel := withDeadline(req.Context(), dep, sc.arrival)
	defer cancel()
	inst := dep.Pick()
	inst.InFlight.Add(1)
	defer inst.InFlight.Add(-1)
	status := r.acquireSlot(ctx, w, inst, dep)
	sc.dequeued = time.Now()
	if status != 0 {
		if status == http.StatusTooManyRequests {
			sc.throttled = telemetry.ReasonTooManyPending
		}
		return status
	}
	if inst.Slots != nil {
		defer func() { <-inst.Slots }()
	}
	if r.tracer != nil {
		ctx = r.workerSpan(ctx, req.Header, sc)
	}
	if inst.Handler != nil {
		return r.serveLocal(ctx, w, req, body, inst, dep, reqID, clientID)
	}
	url := "http://" + inst.Addr + "/score"
	if req.URL.RawQuery != "" {
		url += "?" + req.URL.RawQuery
	}
	if req.ContentLength == 0 {
		body = nil
	}
	out, err := http.NewRequestWithContext(ctx, req.Method, url, body)
	if err != nil {
		writeError(w, http.StatusBadGateway, codeBadGateway, err.Error())
		return http.StatusBadGateway
	}
	out.ContentLength = req.ContentLength
	for k, v := range req.Header {
		out.Header[k] = v
	}
	for _, k := range dropRequest {
		out.Header.Del(k)
	}
	out.Header.Set("X-Request-Id", reqID)
	if clientID != "" {
		out.Header.Set("X-Ms-Client-Request-Id", clientID)
	}
	resp, err := r.http.Do(out)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return r.bodyError(w, mbe)
		case ctx.Err() != nil && req.Context().Err() == nil:
			return r.timeout(w, dep, timeout)
		}
		writeError(w, http.StatusBadGateway, codeBadGateway, "instance of deployment "+dep.Name+" is unreachable: "+err.Error())
		return http.StatusBadGateway
	}
	defer resp.Body.Close()
	h := w.Header()
	for k, v := range resp.Header {
		switch k {
		case "X-Request-Id", "X-Ms-Client-Request-Id", "Connection", "Keep-Alive", "Transfer-Encoding", instance.HeaderFromRun:
			continue
		}
		h[k] = v
	}
	status = modelError(h, resp.StatusCode, resp.Header.Get(instance.HeaderFromRun) != "")
	w.WriteHeader(status)
	if _, err := relay(w, resp); err != nil && ctx.Err() != nil {
		r.log.Warn("response cut by the request timeout", "deployment", dep.Name, "request_id", reqID)
	}
	return status
}

func (r *Router) timeout(w http.ResponseWriter, dep *table.Deployment, timeout time.Duration) int {
	writeError(w, http.StatusRequestTimeout, codeRequestTimeout, "the model did not answer within request_settings.request_timeout_ms ("+timeout.String()+", queue time included): raise it in deployment "+dep.Name+", or make run() faster")
	return http.StatusRequestTimeout
}

// modelError gives an answer the client's status: one that run() produced with a status
// of 400 or more is a model error, which Azure reports as 424 with the model's own
// status and the reason in headers; any other answer keeps its status.
func modelError(h http.Header, status int, fromRun bool) int {
	if status < 400 || !fromRun {
		return status
	}
	h.Set(instance.HeaderErrorStatus, strconv.Itoa(status))
	h.Set(instance.HeaderErrorReason, "model_error")
	return http.StatusFailedDependency
}
