package router

import (
	"net/http"
	"strconv"

	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/router/table"
)

// policyWriter answers with the statuses of the endpoint's compute: the router decides
// as for a managed endpoint, and the policy maps the status when it is written, so no
// code path needs to know which compute serves (spec §6.3).
type policyWriter struct {
	http.ResponseWriter
	policy *table.ResponsePolicy
}

func (w policyWriter) WriteHeader(code int) {
	model, _ := strconv.Atoi(w.Header().Get(instance.HeaderErrorStatus))
	w.ResponseWriter.WriteHeader(w.policy.Status(code, model))
}

// Unwrap lets http.ResponseController reach the connection (flushes of streamed answers).
func (w policyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush flushes a streamed answer.
func (w policyWriter) Flush() { w.FlushError() }

// FlushError flushes a streamed answer and says why it could not.
func (w policyWriter) FlushError() error {
	return http.NewResponseController(w.ResponseWriter).Flush()
}
