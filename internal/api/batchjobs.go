package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/berthml/berth/internal/artifacts/archive"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/jobs"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

func (a *api) jobRoutes(mux *http.ServeMux) {
	p := wire.APIPrefix
	mux.HandleFunc("GET "+p+"/jobs", a.listJobs)
	mux.HandleFunc("GET "+p+"/jobs/{job}", a.getJob)
	mux.HandleFunc("POST "+p+"/jobs/{job}/cancel", a.cancelJob)
	mux.HandleFunc("GET "+p+"/jobs/{job}/log", a.jobLog)
	mux.HandleFunc("GET "+p+"/jobs/{job}/outputs/{output}", a.jobOutput)
}

func (a *api) putBatchDeployment(w http.ResponseWriter, r *http.Request) {
	var body wire.BatchDeploymentPut
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	d, err := spec.DecodeBatchDeployment("request body", body.Spec, nil)
	if err != nil {
		writeError(w, err)
		return
	}
	if d.EndpointName != r.PathValue("name") || d.Name != r.PathValue("dep") {
		writeError(w, &diag.Error{Code: diag.BadArgument, Target: "name",
			Message: fmt.Sprintf("the spec names deployment %s/%s but the request is for %s/%s", d.EndpointName, d.Name, r.PathValue("name"), r.PathValue("dep"))})
		return
	}
	in := jobs.DeploymentInput{Spec: d, ModelArtifact: body.ModelArtifact, CodeArtifact: body.CodeArtifact, SetDefault: body.SetDefault}
	rec, err := a.Batch.PutBatchDeployment(r.Context(), in, io.Discard)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, batchDeploymentView(rec))
}

func (a *api) listBatchDeployments(w http.ResponseWriter, r *http.Request) {
	all, err := a.Batch.ListBatchDeployments(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]wire.Deployment, 0, len(all))
	for _, d := range all {
		out = append(out, batchDeploymentView(d))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getBatchDeployment(w http.ResponseWriter, r *http.Request) {
	d, err := a.Batch.GetBatchDeployment(r.Context(), r.PathValue("name"), r.PathValue("dep"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, batchDeploymentView(d))
}

func (a *api) deleteBatchDeployment(w http.ResponseWriter, r *http.Request) {
	if err := a.Batch.DeleteBatchDeployment(r.Context(), r.PathValue("name"), r.PathValue("dep")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func batchDeploymentView(d *store.BatchDeployment) wire.Deployment {
	return wire.Deployment{Spec: d.Spec, ProvisioningState: d.State, Error: storedError(d.Error), Python: d.Python, Warnings: d.Warnings,
		CreatedAt: d.CreatedAt.Format(time.RFC3339), UpdatedAt: d.UpdatedAt.Format(time.RFC3339)}
}

func (a *api) invokeBatch(w http.ResponseWriter, r *http.Request) {
	var body wire.JobCreate
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	var o spec.JobOverrides
	if len(body.Overrides) > 0 {
		if err := json.Unmarshal(body.Overrides, &o); err != nil {
			writeError(w, diag.New(diag.BadArgument, "overrides: %v", err))
			return
		}
	}
	j, err := a.Batch.Invoke(r.Context(), jobs.Invocation{Endpoint: r.PathValue("name"), Deployment: body.Deployment,
		Input: body.Input, Name: body.Name, ExperimentName: body.ExperimentName, OutputPath: body.OutputPath, Overrides: o})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, a.jobView(j))
}

func (a *api) listJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	all, err := a.Batch.ListJobs(r.Context(), q.Get("endpoint"), q.Get("deployment"))
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]wire.Job, 0, len(all))
	for _, j := range all {
		out = append(out, a.jobView(j))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getJob(w http.ResponseWriter, r *http.Request) {
	j, err := a.Batch.GetJob(r.Context(), r.PathValue("job"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.jobView(j))
}

func (a *api) cancelJob(w http.ResponseWriter, r *http.Request) {
	j, err := a.Batch.CancelJob(r.Context(), r.PathValue("job"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.jobView(j))
}

func (a *api) jobLog(w http.ResponseWriter, r *http.Request) {
	offset, err := atoiDefault(r.URL.Query().Get("offset"), 0)
	if err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("job")
	text, next, err := a.Batch.JobLog(r.Context(), name, offset)
	if err != nil {
		writeError(w, err)
		return
	}
	j, err := a.Batch.GetJob(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.JobLog{Offset: offset, Next: next, Text: string(text), Job: a.jobView(j)})
}

// jobOutput streams a job's output folder as a tar in the artifact format.
func (a *api) jobOutput(w http.ResponseWriter, r *http.Request) {
	dir, err := a.Batch.OutputFolder(r.Context(), r.PathValue("job"), r.PathValue("output"))
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	if err := archive.WriteTar(w, dir); err != nil {
		a.Log.Warn("job output", "job", r.PathValue("job"), "err", err)
	}
}

// jobView is a job shaped like `az ml job show` of a batch job.
func (a *api) jobView(j *store.Job) wire.Job {
	set, in, outDir, exp := jobs.Settings(j)
	v := wire.Job{ID: wire.JobID(j.Name), Name: j.Name, DisplayName: j.Name, Type: "pipeline", Status: j.Status,
		ExperimentName: exp, EndpointName: j.Endpoint, DeploymentName: j.Deployment,
		Inputs:   map[string]wire.JobIO{"input_data": {Type: inputType(in), Path: inputPath(in), Mode: "ro_mount"}},
		Outputs:  map[string]wire.JobIO{jobs.OutputName: {Type: "uri_folder", Path: outDir, Mode: "rw_mount"}},
		Services: map[string]wire.JobServ{"Studio": {Endpoint: a.BaseURL() + "/#/jobs/" + j.Name, JobServiceType: "Studio"}},
		Error:    storedError(j.Error),
		Creation: wire.JobCreationContext{CreatedAt: j.CreatedAt.Format(time.RFC3339)},
		Properties: map[string]string{"azureml.batchrun": "true", "output_action": set.OutputAction,
			"output_file_name": set.OutputFileName, "mini_batch_size": fmt.Sprint(set.MiniBatchSize)},
	}
	v.Settings, _ = json.Marshal(set)
	if !j.StartedAt.IsZero() {
		v.StartTime = j.StartedAt.Format(time.RFC3339)
	}
	if !j.EndedAt.IsZero() {
		v.EndTime = j.EndedAt.Format(time.RFC3339)
	}
	v.Progress = jobs.ProgressView(j, time.Now())
	return v
}

func inputType(in wire.JobInput) string {
	if in.Type == "" {
		return "uri_folder"
	}
	return in.Type
}

func inputPath(in wire.JobInput) string {
	if in.LocalPath != "" {
		return in.LocalPath
	}
	return in.Path
}
