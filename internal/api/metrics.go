package api

import (
	"net/http"
	"strconv"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

// Metrics is what the API needs of the server's in-memory metrics history.
type Metrics interface {
	// History returns the endpoint's points of the last minutes.
	History(endpoint string, minutes int) wire.EndpointMetrics
}

// maxHistoryMinutes is the most history the server keeps.
const maxHistoryMinutes = 60

// RequireAdmin guards h with the control plane's check: the admin token, or an access
// token of the admin identity that cfg.Tokens accepts (GET /metrics).
func RequireAdmin(cfg Config, h http.Handler) http.Handler {
	return (&api{cfg}).requireToken(h)
}

// endpointMetrics answers GET /endpoints/{name}/metrics?minutes=N (default and most 60).
func (a *api) endpointMetrics(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := a.Controller.GetEndpoint(r.Context(), name); err != nil {
		writeError(w, err)
		return
	}
	minutes := maxHistoryMinutes
	if q := r.URL.Query().Get("minutes"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n <= 0 || n > maxHistoryMinutes {
			writeError(w, diag.New(diag.BadArgument, "minutes=%q: want a whole number of minutes from 1 to %d (the server keeps an hour)", q, maxHistoryMinutes))
			return
		}
		minutes = n
	}
	if a.Metrics == nil {
		writeJSON(w, http.StatusOK, wire.EndpointMetrics{Endpoint: name, Deployments: []wire.DeploymentMetrics{}})
		return
	}
	writeJSON(w, http.StatusOK, a.Metrics.History(name, minutes))
}
