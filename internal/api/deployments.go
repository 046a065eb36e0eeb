package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/berthml/berth/internal/controller"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

func (a *api) deploymentView(d *store.Deployment) wire.Deployment {
	v := wire.Deployment{Spec: d.Spec, ProvisioningState: d.State, Python: runsOn(d), ModelArtifact: d.ModelArtifact, CodeArtifact: d.CodeArtifact,
		CreatedAt: d.CreatedAt.Format(time.RFC3339), UpdatedAt: d.UpdatedAt.Format(time.RFC3339)}
	v.Error = storedError(d.Error)
	v.Progress, v.Warnings = a.Controller.Rollout(d.Endpoint, d.Name)
	v.Phases = a.Controller.Phases(d.Endpoint, d.Name)
	if d.State == wire.StateSucceeded || d.State == wire.StateFailed {
		v.Progress = ""
	}
	for _, in := range a.Controller.Instances(d.Endpoint, d.Name) {
		v.Instances = append(v.Instances, wire.Instance{Index: in.Index, State: string(in.State), Address: in.Address, Restarts: in.Restarts, Phases: in.Phases})
	}
	return v
}

// runsOn is the interpreter a deployment runs on: its current version's, or, after an
// update that did not succeed, the one of the version that still serves.
func runsOn(d *store.Deployment) string {
	if v, ok := d.ServedVersion(); ok && d.Python == "" {
		return v.Python
	}
	return d.Python
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
	return controller.DeploymentInput{Spec: d, ModelArtifact: body.ModelArtifact, CodeArtifact: body.CodeArtifact, AllTraffic: body.AllTraffic}, nil
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
	data, onCluster, err := a.Controller.ClusterLogs(r.Context(), endpoint, name, container, tail)
	if !onCluster && err == nil {
		data, err = a.logs(endpoint, name, container, tail, body)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(data)
}

// logs reads the log get-logs asked for: one instance's, the previous instance's, or
// the most telling instance's.
func (a *api) logs(endpoint, name, container string, tail int, body wire.GetLogs) ([]byte, error) {
	switch {
	case body.Instance != nil:
		return a.Controller.InstanceLogs(endpoint, name, container, *body.Instance, tail)
	case body.Previous:
		index, err := a.Controller.PreviousInstance(endpoint, name)
		if err != nil {
			return nil, err
		}
		return a.Controller.InstanceLogs(endpoint, name, container, index, tail)
	}
	return a.Controller.Logs(endpoint, name, container, tail)
}
