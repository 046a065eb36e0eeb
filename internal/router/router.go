// Package router owns the data plane: it authenticates scoring requests, picks a
// deployment and an instance from the routing snapshot, and forwards the request.
package router

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/router/table"
)

// Data-plane error codes (not deployment error codes, so they live here).
const (
	codeNoValidDeployment  diag.Code = "NoValidDeployment"
	codeServiceUnavailable diag.Code = "ServiceUnavailable"
	codeRequestTimeout     diag.Code = "RequestTimeout"
	codeBadGateway         diag.Code = "BadGateway"
	codeMethodNotAllowed   diag.Code = "MethodNotAllowed"
)

const defaultTimeout = 5 * time.Second

// snapshot is a published table plus what the hot path derives from it once.
type snapshot struct {
	t     *table.Table
	order map[string][]string // endpoint → deployments with weight > 0, sorted
}

// Router is the scoring front door. It is safe for concurrent use.
type Router struct {
	log  *slog.Logger
	snap atomic.Pointer[snapshot]
	http *http.Client
}

// New returns a router with an empty table.
func New(log *slog.Logger) *Router {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	r := &Router{log: log, http: &http.Client{Transport: tr}}
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
	r.snap.Store(s)
}

func writeError(w http.ResponseWriter, status int, code diag.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": string(code), "message": msg}})
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

// ServeHTTP serves /endpoints/<endpoint>/score.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	reqID := uuid.NewString()
	h := w.Header()
	h.Set("x-request-id", reqID)
	clientID := ""
	if c := req.Header.Get("x-ms-client-request-id"); c != "" {
		clientID = sanitizeClientID(c)
		h.Set("x-ms-client-request-id", clientID)
	}
	rest, ok := strings.CutPrefix(req.URL.Path, "/endpoints/")
	name, route, _ := strings.Cut(rest, "/")
	if !ok || route != "score" {
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
	if tok, ok := auth.BearerToken(req); !ok || !auth.Match(tok, ep.Keys...) {
		writeError(w, http.StatusUnauthorized, diag.Unauthorized, "missing or wrong key: send Authorization: Bearer <key> (berth online-endpoint get-credentials -n "+name+")")
		return
	}
	var dep *table.Deployment
	if target := req.Header.Get("azureml-model-deployment"); target != "" {
		dep = ep.Deployments[target]
		if dep == nil {
			writeError(w, http.StatusNotFound, diag.DeploymentNotFound, "deployment "+target+" does not exist on endpoint "+name)
			return
		}
	} else {
		order := snap.order[name]
		if chosen := ep.Choose(rand.IntN(100), order); chosen != "" {
			dep = ep.Deployments[chosen]
		}
		if dep == nil {
			writeError(w, http.StatusNotFound, codeNoValidDeployment, "No valid deployments to route to. Please check that the endpoint has at least one deployment with positive weight values or use a deployment specific header to route.")
			return
		}
	}
	h.Set("azureml-model-deployment", dep.Name)
	inst := dep.Pick()
	if inst == nil {
		writeError(w, http.StatusServiceUnavailable, codeServiceUnavailable, "deployment "+dep.Name+" has no ready instance: check it with `berth online-deployment show -e "+name+" -n "+dep.Name+"`")
		return
	}
	status := r.forward(w, req, dep, inst, reqID, clientID)
	if r.log.Enabled(req.Context(), slog.LevelDebug) {
		r.log.Debug("score", "endpoint", name, "deployment", dep.Name, "status", status, "duration", time.Since(start), "request_id", reqID)
	}
}

// forward sends the request to inst and copies the answer back; it returns the status.
func (r *Router) forward(w http.ResponseWriter, req *http.Request, dep *table.Deployment, inst *table.Instance, reqID, clientID string) int {
	timeout := dep.RequestTimeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(req.Context(), timeout)
	defer cancel()
	url := "http://" + inst.Addr + "/score"
	if req.URL.RawQuery != "" {
		url += "?" + req.URL.RawQuery
	}
	var body io.Reader
	if req.ContentLength != 0 {
		body = req.Body
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
	out.Header.Set("x-request-id", reqID)
	if clientID != "" {
		out.Header.Set("x-ms-client-request-id", clientID)
	}
	inst.InFlight.Add(1)
	resp, err := r.http.Do(out)
	if err != nil {
		inst.InFlight.Add(-1)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			writeError(w, http.StatusRequestTimeout, codeRequestTimeout, "the model did not answer within request_settings.request_timeout_ms ("+timeout.String()+"): raise it in the deployment, or make run() faster")
			return http.StatusRequestTimeout
		}
		writeError(w, http.StatusBadGateway, codeBadGateway, "instance of deployment "+dep.Name+" is unreachable: "+err.Error())
		return http.StatusBadGateway
	}
	defer resp.Body.Close()
	h := w.Header()
	for k, v := range resp.Header {
		switch k {
		case "X-Request-Id", "X-Ms-Client-Request-Id", "Connection", "Keep-Alive", "Transfer-Encoding":
			continue
		}
		h[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, err = io.Copy(w, resp.Body)
	inst.InFlight.Add(-1)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		r.log.Warn("response cut by the request timeout", "deployment", dep.Name, "request_id", reqID)
	}
	return resp.StatusCode
}
