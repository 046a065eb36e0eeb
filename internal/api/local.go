package api

import (
	"net/http"
	"strconv"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

// localParam reads the request's namespace from ?local= (absent: managed).
func localParam(r *http.Request) (bool, error) {
	v := r.URL.Query().Get(wire.LocalParam)
	if v == "" {
		return false, nil
	}
	local, err := strconv.ParseBool(v)
	if err != nil {
		return false, &diag.Error{Code: diag.BadArgument, Target: wire.LocalParam,
			Message: "query parameter " + wire.LocalParam + "=" + strconv.Quote(v) + " is not true or false"}
	}
	return local, nil
}

// scoped serves a route under /endpoints/{name} only when the endpoint is in the
// request's namespace (local or managed); otherwise it answers EndpointNotFound.
func (a *api) scoped(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		local, err := localParam(r)
		if err == nil {
			err = a.Controller.CheckNamespace(r.Context(), r.PathValue("name"), local)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		h(w, r)
	}
}
