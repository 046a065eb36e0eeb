package router

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/berthml/berth/internal/router/table"
)

// mirrorTarget returns the deployment that should get a copy of this request, if any.
func (r *Router) mirrorTarget(ep *table.Endpoint) *table.Deployment {
	for name, pct := range ep.Mirror {
		if pct > 0 && rand.IntN(100) < pct {
			return ep.Deployments[name]
		}
	}
	return nil
}

// mirror sends a copy of the request to dep in the background and discards the answer.
func (r *Router) mirror(endpoint string, dep *table.Deployment, req *http.Request, body []byte, reqID string) {
	stats := r.Mirror(endpoint, dep.Name)
	select {
	case r.mirrorSem <- struct{}{}:
	default:
		stats.Dropped.Add(1)
		return
	}
	header := req.Header.Clone()
	method, query := req.Method, req.URL.RawQuery
	r.mirrors.Add(1)
	go func() {
		defer r.mirrors.Done()
		defer func() { <-r.mirrorSem }()
		stats.Sent.Add(1)
		inst := dep.Pick()
		if inst == nil {
			stats.Failed.Add(1)
			return
		}
		// The copy outlives the client's request, but not its timeout or the router.
		ctx, cancel := withDeadline(context.WithoutCancel(req.Context()), dep, time.Now())
		defer cancel()
		go func() {
			select {
			case <-r.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		for _, k := range dropRequest {
			header.Del(k)
		}
		header.Set("X-Request-Id", reqID)
		resp, err := r.call(ctx, inst, method, "/score", query, header, body)
		if err != nil {
			stats.Failed.Add(1)
			r.log.Debug("mirror", "endpoint", endpoint, "deployment", dep.Name, "err", err, "request_id", reqID)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			stats.Failed.Add(1)
		}
		r.log.Debug("mirror", "endpoint", endpoint, "deployment", dep.Name, "status", resp.StatusCode, "request_id", reqID)
	}()
}

// Mirror returns the mirror counters of a deployment.
func (r *Router) Mirror(endpoint, deployment string) *MirrorStats {
	v, _ := r.stats.LoadOrStore(endpoint+"/"+deployment, &MirrorStats{})
	return v.(*MirrorStats)
}
