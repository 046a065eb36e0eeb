package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/berthml/berth/internal/controller"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

func (a *api) endpointView(e *store.Endpoint) wire.Endpoint {
	var sp spec.Endpoint
	if err := json.Unmarshal(e.Spec, &sp); err != nil {
		// The view still shows what the store has; the log says which record is damaged.
		a.Log.Error("stored endpoint spec is unreadable", "endpoint", e.Name, "err", err)
	}
	v := wire.Endpoint{
		ID: wire.EndpointID(e.Name), Name: e.Name, Description: sp.Description, Tags: sp.Tags, AuthMode: authMode(e),
		Kind: "Managed", Location: "local", ProvisioningState: e.State,
		ScoringURI:          a.BaseURL() + "/endpoints/" + e.Name + "/score",
		Identity:            identityOf(sp.Identity),
		OpenAPIURI:          a.BaseURL() + "/endpoints/" + e.Name + "/swagger.json",
		Traffic:             e.Traffic,
		MirrorTraffic:       e.MirrorTraffic,
		PublicNetworkAccess: "enabled",
		Properties:          map[string]string{"berth.endpoint": e.Name},
		Local:               e.Local,
		CreatedAt:           e.CreatedAt.Format(time.RFC3339),
		UpdatedAt:           e.UpdatedAt.Format(time.RFC3339),
	}
	if sp.PublicNetworkAccess != "" {
		v.PublicNetworkAccess = sp.PublicNetworkAccess
	}
	for k, val := range sp.Properties {
		v.Properties[k] = val
	}
	if v.Tags == nil {
		v.Tags = map[string]string{}
	}
	if v.Traffic == nil {
		v.Traffic = map[string]int{}
	}
	if v.MirrorTraffic == nil {
		v.MirrorTraffic = map[string]int{}
	}
	v.Error = storedError(e.Error)
	return v
}

func (a *api) createEndpoint(w http.ResponseWriter, r *http.Request) {
	var body wire.EndpointCreate
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	ep, err := spec.DecodeEndpoint("request body", body.Spec, nil)
	if err != nil {
		writeError(w, err)
		return
	}
	local, err := localParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if a.Batch != nil {
		// Batch and online endpoints share one table of names (jobs refuses the reverse).
		if _, err := a.Batch.GetBatchEndpoint(r.Context(), ep.Name); err == nil {
			writeError(w, &diag.Error{Code: diag.EndpointAlreadyExists, Target: ep.Name,
				Message: fmt.Sprintf("a batch endpoint named %q already exists, and batch and online endpoints share one table of names: choose another name", ep.Name)})
			return
		}
	}
	rec, err := a.Controller.CreateEndpoint(r.Context(), ep, local)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, a.endpointView(rec))
}

func (a *api) listEndpoints(w http.ResponseWriter, r *http.Request) {
	local, err := localParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	eps, err := a.Controller.ListEndpoints(r.Context(), local)
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]wire.Endpoint, 0, len(eps))
	for _, e := range eps {
		out = append(out, a.endpointView(e))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getEndpoint(w http.ResponseWriter, r *http.Request) {
	rec, err := a.Controller.GetEndpoint(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.endpointView(rec))
}

func (a *api) updateEndpoint(w http.ResponseWriter, r *http.Request) {
	var body wire.EndpointUpdate
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	ch := controller.EndpointChange{Traffic: body.Traffic, MirrorTraffic: body.MirrorTraffic}
	if len(body.Spec) > 0 {
		ep, err := spec.DecodeEndpoint("request body", body.Spec, nil)
		if err != nil {
			writeError(w, err)
			return
		}
		if ep.Name != name {
			writeError(w, &diag.Error{Code: diag.BadArgument, Target: "name",
				Message: fmt.Sprintf("the spec names endpoint %q but the request is for %q: an endpoint cannot be renamed", ep.Name, name)})
			return
		}
		ch.Spec = ep
	}
	rec, err := a.Controller.UpdateEndpoint(r.Context(), name, ch)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.endpointView(rec))
}

func (a *api) deleteEndpoint(w http.ResponseWriter, r *http.Request) {
	if err := a.Controller.DeleteEndpoint(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) listKeys(w http.ResponseWriter, r *http.Request) {
	rec, err := a.Controller.GetEndpoint(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	creds, err := a.credentials(rec)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, creds)
}

func (a *api) regenerateKeys(w http.ResponseWriter, r *http.Request) {
	var body wire.RegenerateKeys
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	rec, err := a.Controller.RegenerateKey(r.Context(), r.PathValue("name"), body.KeyType)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.Keys{PrimaryKey: rec.PrimaryKey, SecondaryKey: rec.SecondaryKey})
}

func (a *api) listOperations(w http.ResponseWriter, r *http.Request) {
	ops, err := a.Controller.Operations(r.Context(), r.PathValue("name"), 20)
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]wire.Operation, 0, len(ops))
	for _, op := range ops {
		v := wire.Operation{ID: op.ID, Deployment: op.Deployment, Kind: op.Kind, State: op.State, StartedAt: op.StartedAt.Format(time.RFC3339)}
		if !op.EndedAt.IsZero() {
			v.EndedAt = op.EndedAt.Format(time.RFC3339)
		}
		v.Error = storedError(op.Error)
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// identityOf is the endpoint's identity block for show, nil when it has none.
func identityOf(id *spec.Identity) any {
	if id == nil {
		return nil
	}
	return id
}
