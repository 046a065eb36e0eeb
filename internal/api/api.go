// Package api owns the control-plane REST API: it decodes requests, calls the
// controller and encodes answers and errors.
package api

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/controller"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// Config is what the API needs.
type Config struct {
	Controller *controller.Controller
	// Token is the admin token every call must present as a Bearer token.
	Token string
	// BaseURL is the server's public URL, used in scoring_uri.
	BaseURL func() string
	Log     *slog.Logger
}

type api struct {
	Config
}

// New returns the control-plane handler, serving under wire.APIPrefix.
func New(cfg Config) http.Handler {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	a := &api{cfg}
	mux := http.NewServeMux()
	p := wire.APIPrefix
	mux.HandleFunc("POST "+p+"/artifacts", a.putArtifact)
	mux.HandleFunc("HEAD "+p+"/artifacts/{digest}", a.hasArtifact)
	mux.HandleFunc("POST "+p+"/endpoints", a.createEndpoint)
	mux.HandleFunc("GET "+p+"/endpoints", a.listEndpoints)
	mux.HandleFunc("GET "+p+"/endpoints/{name}", a.getEndpoint)
	mux.HandleFunc("PATCH "+p+"/endpoints/{name}", a.updateEndpoint)
	mux.HandleFunc("DELETE "+p+"/endpoints/{name}", a.deleteEndpoint)
	mux.HandleFunc("POST "+p+"/endpoints/{name}/listkeys", a.listKeys)
	mux.HandleFunc("POST "+p+"/endpoints/{name}/regenerateKeys", a.regenerateKeys)
	mux.HandleFunc("POST "+p+"/endpoints/{name}/deployments", a.createDeployment)
	mux.HandleFunc("GET "+p+"/endpoints/{name}/deployments", a.listDeployments)
	mux.HandleFunc("GET "+p+"/endpoints/{name}/deployments/{dep}", a.getDeployment)
	mux.HandleFunc("PATCH "+p+"/endpoints/{name}/deployments/{dep}", a.updateDeployment)
	mux.HandleFunc("DELETE "+p+"/endpoints/{name}/deployments/{dep}", a.deleteDeployment)
	mux.HandleFunc("POST "+p+"/endpoints/{name}/deployments/{dep}/getLogs", a.getLogs)
	mux.HandleFunc("GET "+p+"/endpoints/{name}/operations", a.listOperations)
	mux.HandleFunc("GET "+p+"/artifacts/{digest}", a.getArtifact)
	mux.HandleFunc("POST "+p+"/models", a.createModel)
	mux.HandleFunc("GET "+p+"/models", a.listModels)
	mux.HandleFunc("GET "+p+"/models/{name}/versions/{version}", a.getModel)
	mux.HandleFunc("POST "+p+"/models/{name}/versions/{version}/archive", a.archiveModel)
	mux.HandleFunc("POST "+p+"/models/{name}/versions/{version}/restore", a.archiveModel)
	mux.HandleFunc("POST "+p+"/assets/{kind}", a.createAsset)
	mux.HandleFunc("GET "+p+"/assets/{kind}", a.listAssets)
	mux.HandleFunc("GET "+p+"/assets/{kind}/{name}/versions/{version}", a.getAsset)
	mux.HandleFunc("POST "+p+"/assets/{kind}/{name}/versions/{version}/archive", a.archiveAsset)
	mux.HandleFunc("POST "+p+"/assets/{kind}/{name}/versions/{version}/restore", a.archiveAsset)
	mux.HandleFunc("POST "+p+"/connections", a.putConnection)
	mux.HandleFunc("GET "+p+"/connections", a.listConnections)
	mux.HandleFunc("GET "+p+"/connections/{name}", a.getConnection)
	mux.HandleFunc("DELETE "+p+"/connections/{name}", a.deleteConnection)
	mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, diag.New(diag.ResourceNotFound, "no control-plane route %s %s", r.Method, r.URL.Path))
	})
	return a.requireToken(mux)
}

func (a *api) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := auth.BearerToken(r)
		if !ok || !auth.Match(tok, a.Token) {
			writeError(w, diag.New(diag.Unauthorized, "missing or wrong admin token: the berth CLI reads it from <data-dir>/server.json, or pass --token / BERTH_TOKEN"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeError is the one place an error becomes an HTTP status and a JSON body.
func writeError(w http.ResponseWriter, err error) {
	de := diag.As(err)
	if de == nil {
		de = &diag.Error{Code: diag.InternalServerError, Message: err.Error()}
	}
	writeJSON(w, de.Code.HTTPStatus(), wire.ErrorBody{Error: toWire(de)})
}

func toWire(e *diag.Error) *wire.Error {
	w := &wire.Error{Code: string(e.Code), Message: e.Message, Target: e.Target}
	for _, d := range e.Details {
		w.Details = append(w.Details, toWire(d))
	}
	return w
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return diag.New(diag.BadArgument, "request body: %v", err)
	}
	return nil
}

func (a *api) putArtifact(w http.ResponseWriter, r *http.Request) {
	digest, size, err := a.Controller.PutArtifact(r.Body)
	if err != nil {
		writeError(w, diag.New(diag.BadArgument, "upload: %v", err))
		return
	}
	writeJSON(w, http.StatusCreated, wire.Artifact{Digest: digest, Size: size})
}

func (a *api) hasArtifact(w http.ResponseWriter, r *http.Request) {
	if a.Controller.HasArtifact(r.PathValue("digest")) {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusNotFound)
}

func (a *api) endpointView(e *store.Endpoint) wire.Endpoint {
	var sp spec.Endpoint
	json.Unmarshal(e.Spec, &sp)
	v := wire.Endpoint{
		Name: e.Name, Description: sp.Description, Tags: sp.Tags, AuthMode: "key",
		Kind: "Managed", Location: "local", ProvisioningState: e.State,
		ScoringURI:          a.BaseURL() + "/endpoints/" + e.Name + "/score",
		OpenAPIURI:          a.BaseURL() + "/endpoints/" + e.Name + "/swagger.json",
		Traffic:             e.Traffic,
		MirrorTraffic:       e.MirrorTraffic,
		PublicNetworkAccess: "enabled",
		Properties:          map[string]string{"berth.endpoint": e.Name},
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
	if len(e.Error) > 0 {
		json.Unmarshal(e.Error, &v.Error)
	}
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
	rec, err := a.Controller.CreateEndpoint(r.Context(), ep)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, a.endpointView(rec))
}

func (a *api) listEndpoints(w http.ResponseWriter, r *http.Request) {
	eps, err := a.Controller.ListEndpoints(r.Context())
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
	writeJSON(w, http.StatusOK, wire.Keys{PrimaryKey: rec.PrimaryKey, SecondaryKey: rec.SecondaryKey})
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

func (a *api) deploymentView(d *store.Deployment) wire.Deployment {
	v := wire.Deployment{Spec: d.Spec, ProvisioningState: d.State,
		CreatedAt: d.CreatedAt.Format(time.RFC3339), UpdatedAt: d.UpdatedAt.Format(time.RFC3339)}
	if len(d.Error) > 0 {
		json.Unmarshal(d.Error, &v.Error)
	}
	v.Progress, v.Warnings = a.Controller.Rollout(d.Endpoint, d.Name)
	if d.State == "Succeeded" || d.State == "Failed" {
		v.Progress = ""
	}
	for _, in := range a.Controller.Instances(d.Endpoint, d.Name) {
		v.Instances = append(v.Instances, wire.Instance{Index: in.Index, State: in.State, Address: in.Address, Restarts: in.Restarts, Phases: in.Phases})
	}
	return v
}

func (a *api) deploymentInput(r *http.Request) (controller.DeploymentInput, error) {
	var body wire.DeploymentPut
	if err := decode(r, &body); err != nil {
		return controller.DeploymentInput{}, err
	}
	d, err := spec.DecodeDeployment("request body", body.Spec, nil)
	if err != nil {
		return controller.DeploymentInput{}, err
	}
	if name := r.PathValue("name"); d.EndpointName != name {
		return controller.DeploymentInput{}, &diag.Error{Code: diag.BadArgument, Target: "endpoint_name",
			Message: fmt.Sprintf("the spec names endpoint %q but the request is for endpoint %q", d.EndpointName, name)}
	}
	if dep := r.PathValue("dep"); dep != "" && d.Name != dep {
		return controller.DeploymentInput{}, &diag.Error{Code: diag.BadArgument, Target: "name",
			Message: fmt.Sprintf("the spec names deployment %q but the request is for %q: a deployment cannot be renamed", d.Name, dep)}
	}
	return controller.DeploymentInput{Spec: d, ModelArtifact: body.ModelArtifact, CodeArtifact: body.CodeArtifact}, nil
}

func (a *api) createDeployment(w http.ResponseWriter, r *http.Request) {
	in, err := a.deploymentInput(r)
	if err != nil {
		writeError(w, err)
		return
	}
	rec, err := a.Controller.CreateDeployment(r.Context(), in)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, a.deploymentView(rec))
}

func (a *api) updateDeployment(w http.ResponseWriter, r *http.Request) {
	in, err := a.deploymentInput(r)
	if err != nil {
		writeError(w, err)
		return
	}
	rec, err := a.Controller.UpdateDeployment(r.Context(), in)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.deploymentView(rec))
}

func (a *api) listDeployments(w http.ResponseWriter, r *http.Request) {
	deps, err := a.Controller.ListDeployments(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]wire.Deployment, 0, len(deps))
	for _, d := range deps {
		out = append(out, a.deploymentView(d))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getDeployment(w http.ResponseWriter, r *http.Request) {
	d, err := a.Controller.GetDeployment(r.Context(), r.PathValue("name"), r.PathValue("dep"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.deploymentView(d))
}

func (a *api) deleteDeployment(w http.ResponseWriter, r *http.Request) {
	if err := a.Controller.DeleteDeployment(r.Context(), r.PathValue("name"), r.PathValue("dep")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) getLogs(w http.ResponseWriter, r *http.Request) {
	var body wire.GetLogs
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	endpoint, name := r.PathValue("name"), r.PathValue("dep")
	if _, err := a.Controller.GetDeployment(r.Context(), endpoint, name); err != nil {
		writeError(w, err)
		return
	}
	container := ""
	switch body.ContainerType {
	case "", "InferenceServer", "inference-server":
		container = "inference-server"
	case "StorageInitializer", "storage-initializer":
		container = "storage-initializer"
	default:
		writeError(w, &diag.Error{Code: diag.BadArgument, Target: "containerType",
			Message: fmt.Sprintf("container %q is not one of inference-server, storage-initializer", body.ContainerType)})
		return
	}
	tail := body.Tail
	if tail <= 0 {
		tail = 5000
	}
	data, err := a.Controller.Logs(endpoint, name, container, tail)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(data)
}

func (a *api) putConnection(w http.ResponseWriter, r *http.Request) {
	var body wire.Connection
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	conn := controller.Connection(body)
	if err := a.Controller.PutConnection(r.Context(), conn); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, conn.Masked())
}

func (a *api) listConnections(w http.ResponseWriter, r *http.Request) {
	conns, err := a.Controller.ListConnections(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, conns)
}

func (a *api) getConnection(w http.ResponseWriter, r *http.Request) {
	conn, err := a.Controller.GetConnection(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, conn.Masked())
}

func (a *api) deleteConnection(w http.ResponseWriter, r *http.Request) {
	if err := a.Controller.DeleteConnection(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
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
		if len(op.Error) > 0 {
			json.Unmarshal(op.Error, &v.Error)
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getArtifact(w http.ResponseWriter, r *http.Request) {
	digest := r.PathValue("digest")
	if !a.Controller.HasArtifact(digest) {
		writeError(w, diag.New(diag.ResourceNotFound, "artifact %s is not stored", digest))
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	if err := a.Controller.WriteArtifact(w, digest); err != nil {
		a.Log.Error("write artifact", "digest", digest, "err", err)
	}
}

func modelView(m *store.Model) wire.Model {
	stage := "Development"
	if m.Archived {
		stage = "Archived"
	}
	tags := m.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return wire.Model{ID: "azureml:" + m.Name + ":" + m.Version, Name: m.Name, Version: m.Version, Type: m.Type,
		Description: m.Description, Tags: tags, Path: m.PathBase, Artifact: m.Artifact, Stage: stage,
		CreatedAt: m.CreatedAt.Format(time.RFC3339)}
}

func (a *api) createModel(w http.ResponseWriter, r *http.Request) {
	var body wire.ModelCreate
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	m, err := a.Controller.CreateModel(r.Context(), store.Model{Name: body.Name, Version: body.Version, Type: body.Type,
		Description: body.Description, Tags: body.Tags, PathBase: body.PathBase, Artifact: body.Artifact})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, modelView(m))
}

func (a *api) listModels(w http.ResponseWriter, r *http.Request) {
	ms, err := a.Controller.ListModels(r.Context(), r.URL.Query().Get("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]wire.Model, 0, len(ms))
	for _, m := range ms {
		out = append(out, modelView(m))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getModel(w http.ResponseWriter, r *http.Request) {
	m, err := a.Controller.GetModel(r.Context(), r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, modelView(m))
}

func (a *api) archiveModel(w http.ResponseWriter, r *http.Request) {
	name, version := r.PathValue("name"), r.PathValue("version")
	archived := strings.HasSuffix(r.URL.Path, "/archive")
	if err := a.Controller.ArchiveModel(r.Context(), name, version, archived); err != nil {
		writeError(w, err)
		return
	}
	m, err := a.Controller.GetModel(r.Context(), name, version)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, modelView(m))
}

// assetView flattens an asset's spec next to its identity, as `az ml environment show`
// prints it; an environment built here also shows its build log.
func (a *api) assetView(as *store.Asset) map[string]any {
	v := map[string]any{}
	json.Unmarshal(as.Spec, &v)
	stage := "Development"
	if as.Archived {
		stage = "Archived"
	}
	v["id"] = "azureml:" + as.Name + ":" + as.Version
	v["name"], v["version"], v["stage"] = as.Name, as.Version, stage
	v["created_at"] = as.CreatedAt.Format(time.RFC3339)
	if as.Artifact != "" {
		v["artifact"] = as.Artifact
	}
	if log := a.Controller.EnvironmentBuildLog(as); log != "" {
		v["build_log"] = log
	}
	return v
}

func (a *api) createAsset(w http.ResponseWriter, r *http.Request) {
	var body wire.AssetCreate
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	as, err := a.Controller.CreateAsset(r.Context(), store.Asset{Kind: r.PathValue("kind"), Name: body.Name, Version: body.Version, Spec: body.Spec, Artifact: body.Artifact})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, a.assetView(as))
}

func (a *api) listAssets(w http.ResponseWriter, r *http.Request) {
	list, err := a.Controller.ListAssets(r.Context(), r.PathValue("kind"), r.URL.Query().Get("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]map[string]any, 0, len(list))
	for _, as := range list {
		out = append(out, a.assetView(as))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getAsset(w http.ResponseWriter, r *http.Request) {
	as, err := a.Controller.GetAsset(r.Context(), r.PathValue("kind"), r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.assetView(as))
}

func (a *api) archiveAsset(w http.ResponseWriter, r *http.Request) {
	kind, name, version := r.PathValue("kind"), r.PathValue("name"), r.PathValue("version")
	if err := a.Controller.ArchiveAsset(r.Context(), kind, name, version, strings.HasSuffix(r.URL.Path, "/archive")); err != nil {
		writeError(w, err)
		return
	}
	as, err := a.Controller.GetAsset(r.Context(), kind, name, version)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.assetView(as))
}
