package router

import (
	"io"
	"net/http"
	"time"

	"github.com/berthml/berth/internal/router/table"
)

// swagger serves the OpenAPI document of the chosen deployment (its openapi_uri).
func (r *Router) swagger(w http.ResponseWriter, req *http.Request, dep *table.Deployment) {
	inst := dep.Pick()
	if inst == nil {
		writeError(w, http.StatusServiceUnavailable, codeServiceUnavailable, "deployment "+dep.Name+" has no ready instance")
		return
	}
	ctx, cancel := withDeadline(req.Context(), dep, time.Now())
	defer cancel()
	resp, err := r.call(ctx, inst, http.MethodGet, "/swagger.json", req.URL.RawQuery, nil, nil)
	if err != nil {
		writeError(w, http.StatusBadGateway, codeBadGateway, "instance of deployment "+dep.Name+" is unreachable: "+err.Error())
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}
