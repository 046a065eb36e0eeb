package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/jobs"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// Batch is what the API needs of the batch service; *jobs.Service is one.
type Batch interface {
	PutCompute(ctx context.Context, c *spec.Compute) (*store.Compute, error)
	GetCompute(ctx context.Context, name string) (*store.Compute, error)
	ListComputes(ctx context.Context) ([]*store.Compute, error)
	DeleteCompute(ctx context.Context, name string) error

	CreateBatchEndpoint(ctx context.Context, ep *spec.BatchEndpoint) (*store.BatchEndpoint, error)
	GetBatchEndpoint(ctx context.Context, name string) (*store.BatchEndpoint, error)
	ListBatchEndpoints(ctx context.Context) ([]*store.BatchEndpoint, error)
	UpdateBatchEndpoint(ctx context.Context, name string, sp *spec.BatchEndpoint, def *string) (*store.BatchEndpoint, error)
	DeleteBatchEndpoint(ctx context.Context, name string) error

	PutBatchDeployment(ctx context.Context, in jobs.DeploymentInput, progress io.Writer) (*store.BatchDeployment, error)
	GetBatchDeployment(ctx context.Context, endpoint, name string) (*store.BatchDeployment, error)
	ListBatchDeployments(ctx context.Context, endpoint string) ([]*store.BatchDeployment, error)
	DeleteBatchDeployment(ctx context.Context, endpoint, name string) error

	Invoke(ctx context.Context, in jobs.Invocation) (*store.Job, error)
	GetJob(ctx context.Context, name string) (*store.Job, error)
	ListJobs(ctx context.Context, endpoint, deployment string) ([]*store.Job, error)
	CancelJob(ctx context.Context, name string) (*store.Job, error)
	JobLog(ctx context.Context, name string, offset int64) ([]byte, int64, error)
	OutputFolder(ctx context.Context, name, output string) (string, error)
	// WorkerHandler serves the pods of jobs on Kubernetes computes
	// (.../jobs/{name}/workers/{node}/{process}/{verb}).
	WorkerHandler() http.Handler
}

// batchRoutes registers the routes of computes, batch endpoints and jobs.
func (a *api) batchRoutes(mux *http.ServeMux) {
	p := wire.APIPrefix
	mux.HandleFunc("PUT "+p+"/computes/{name}", a.putCompute)
	mux.HandleFunc("GET "+p+"/computes", a.listComputes)
	mux.HandleFunc("GET "+p+"/computes/{name}", a.getCompute)
	mux.HandleFunc("DELETE "+p+"/computes/{name}", a.deleteCompute)
	mux.HandleFunc("POST "+p+"/batch-endpoints", a.createBatchEndpoint)
	mux.HandleFunc("GET "+p+"/batch-endpoints", a.listBatchEndpoints)
	mux.HandleFunc("GET "+p+"/batch-endpoints/{name}", a.getBatchEndpoint)
	mux.HandleFunc("PATCH "+p+"/batch-endpoints/{name}", a.updateBatchEndpoint)
	mux.HandleFunc("DELETE "+p+"/batch-endpoints/{name}", a.deleteBatchEndpoint)
	mux.HandleFunc("PUT "+p+"/batch-endpoints/{name}/deployments/{dep}", a.putBatchDeployment)
	mux.HandleFunc("GET "+p+"/batch-endpoints/{name}/deployments", a.listBatchDeployments)
	mux.HandleFunc("GET "+p+"/batch-endpoints/{name}/deployments/{dep}", a.getBatchDeployment)
	mux.HandleFunc("DELETE "+p+"/batch-endpoints/{name}/deployments/{dep}", a.deleteBatchDeployment)
	mux.HandleFunc("POST "+p+"/batch-endpoints/{name}/jobs", a.invokeBatch)
	a.jobRoutes(mux)
	if a.Batch != nil {
		mux.Handle("POST "+p+"/jobs/{name}/workers/{node}/{process}/{verb}", a.Batch.WorkerHandler())
	}
}

func (a *api) putCompute(w http.ResponseWriter, r *http.Request) {
	var body json.RawMessage
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	c, err := spec.DecodeCompute("request body", body, nil)
	if err != nil {
		writeError(w, err)
		return
	}
	if c.Name != r.PathValue("name") {
		writeError(w, &diag.Error{Code: diag.BadArgument, Target: "name",
			Message: fmt.Sprintf("the spec names compute %q but the request is for %q", c.Name, r.PathValue("name"))})
		return
	}
	rec, err := a.Batch.PutCompute(r.Context(), c)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, computeView(rec))
}

func (a *api) listComputes(w http.ResponseWriter, r *http.Request) {
	all, err := a.Batch.ListComputes(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]wire.Compute, 0, len(all))
	for _, c := range all {
		out = append(out, computeView(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getCompute(w http.ResponseWriter, r *http.Request) {
	c, err := a.Batch.GetCompute(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, computeView(c))
}

func (a *api) deleteCompute(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var eps []*store.Endpoint
	for _, local := range []bool{false, true} {
		some, err := a.Controller.ListEndpoints(r.Context(), local)
		if err != nil {
			writeError(w, err)
			return
		}
		eps = append(eps, some...)
	}
	var users []string
	for _, ep := range eps {
		var sp spec.Endpoint
		if json.Unmarshal(ep.Spec, &sp) == nil && strings.TrimPrefix(sp.Compute, "azureml:") == name {
			users = append(users, ep.Name)
		}
	}
	if len(users) > 0 {
		writeError(w, &diag.Error{Code: diag.Conflict, Target: name,
			Message: fmt.Sprintf("compute %q runs online endpoint(s) %s: delete them first (`berth online-endpoint delete -n <name>`)", name, strings.Join(users, ", "))})
		return
	}
	if err := a.Batch.DeleteCompute(r.Context(), name); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func computeView(c *store.Compute) wire.Compute {
	var sp spec.Compute
	_ = json.Unmarshal(c.Spec, &sp)
	tags := sp.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return wire.Compute{ID: wire.ComputeID(c.Name), Name: c.Name, Type: strings.ToLower(sp.Type), Size: sp.Size,
		MinInstances: sp.MinInstances, MaxInstances: sp.MaxInstances, IdleTimeBeforeScaleDown: sp.IdleTimeBeforeScaleDown,
		Tier: sp.Tier, Location: "local", Description: sp.Description, Tags: tags,
		ProvisioningState: wire.StateSucceeded, CreatedAt: c.CreatedAt.Format(time.RFC3339),
		Namespace: sp.Namespace, Image: sp.Image, Kubeconfig: sp.KubeconfigFile}
}

func (a *api) createBatchEndpoint(w http.ResponseWriter, r *http.Request) {
	var body wire.BatchEndpointCreate
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	ep, err := spec.DecodeBatchEndpoint("request body", body.Spec, nil)
	if err != nil {
		writeError(w, err)
		return
	}
	rec, err := a.Batch.CreateBatchEndpoint(r.Context(), ep)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, a.batchEndpointView(rec))
}

func (a *api) listBatchEndpoints(w http.ResponseWriter, r *http.Request) {
	all, err := a.Batch.ListBatchEndpoints(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]wire.BatchEndpoint, 0, len(all))
	for _, e := range all {
		out = append(out, a.batchEndpointView(e))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getBatchEndpoint(w http.ResponseWriter, r *http.Request) {
	e, err := a.Batch.GetBatchEndpoint(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.batchEndpointView(e))
}

func (a *api) updateBatchEndpoint(w http.ResponseWriter, r *http.Request) {
	var body wire.BatchEndpointUpdate
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	var sp *spec.BatchEndpoint
	if len(body.Spec) > 0 {
		ep, err := spec.DecodeBatchEndpoint("request body", body.Spec, nil)
		if err != nil {
			writeError(w, err)
			return
		}
		if ep.Name != name {
			writeError(w, &diag.Error{Code: diag.BadArgument, Target: "name",
				Message: fmt.Sprintf("the spec names batch endpoint %q but the request is for %q: an endpoint cannot be renamed", ep.Name, name)})
			return
		}
		sp = ep
	}
	e, err := a.Batch.UpdateBatchEndpoint(r.Context(), name, sp, body.DefaultDeployment)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.batchEndpointView(e))
}

func (a *api) deleteBatchEndpoint(w http.ResponseWriter, r *http.Request) {
	if err := a.Batch.DeleteBatchEndpoint(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) batchEndpointView(e *store.BatchEndpoint) wire.BatchEndpoint {
	var sp spec.BatchEndpoint
	_ = json.Unmarshal(e.Spec, &sp)
	v := wire.BatchEndpoint{ID: wire.BatchEndpointID(e.Name), Name: e.Name, Description: sp.Description,
		Tags: sp.Tags, Properties: sp.Properties, AuthMode: sp.AuthMode,
		Defaults: wire.BatchDefaults{DeploymentName: sp.Defaults.DeploymentName}, Location: "local",
		ProvisioningState: e.State, ScoringURI: a.BaseURL() + "/endpoints/" + e.Name + "/jobs",
		CreatedAt: e.CreatedAt.Format(time.RFC3339), UpdatedAt: e.UpdatedAt.Format(time.RFC3339)}
	if v.Tags == nil {
		v.Tags = map[string]string{}
	}
	if v.Properties == nil {
		v.Properties = map[string]string{}
	}
	if v.AuthMode == "" {
		v.AuthMode = "aad_token"
	}
	return v
}

// atoiDefault parses a query parameter, def when absent.
func atoiDefault(s string, def int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, diag.New(diag.BadArgument, "%q is not a non-negative integer", s)
	}
	return n, nil
}
