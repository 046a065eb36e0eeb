package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"

	"github.com/berthml/berth/internal/batch"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// Invocation is a job to create on a batch endpoint (`batch-endpoint invoke`).
type Invocation struct {
	Endpoint       string
	Deployment     string // "" = the endpoint's default
	Input          wire.JobInput
	Name           string // "" = generated
	ExperimentName string
	OutputPath     string // azureml://datastores/... ("" = the job's own folder)
	Overrides      spec.JobOverrides
}

// jobSpec is what a stored job runs: fixed when it is invoked.
type jobSpec struct {
	Deployment     json.RawMessage `json:"deployment"` // spec.BatchDeployment
	ModelArtifact  string          `json:"model_artifact,omitempty"`
	CodeArtifact   string          `json:"code_artifact,omitempty"`
	Python         string          `json:"python,omitempty"` // the deployment's interpreter (store.BatchDeployment.Python)
	Input          wire.JobInput   `json:"input"`
	Source         source          `json:"source"`
	OutputDir      string          `json:"output_dir"`
	OutputPath     string          `json:"output_path,omitempty"`
	Settings       batch.Settings  `json:"settings"`
	Nodes          int             `json:"nodes"`
	Compute        string          `json:"compute"`
	ExperimentName string          `json:"experiment_name"`
}

// OutputName is the name of a model deployment's one output, as Azure names it.
const OutputName = "score"

// Invoke creates a job and starts it.
func (s *Service) Invoke(ctx context.Context, in Invocation) (*store.Job, error) {
	ep, err := s.GetBatchEndpoint(ctx, in.Endpoint)
	if err != nil {
		return nil, err
	}
	depName := in.Deployment
	if depName == "" {
		depName = DefaultDeployment(ep)
	}
	if depName == "" {
		return nil, &diag.Error{Code: diag.DeploymentNotFound, Target: in.Endpoint,
			Message: diag.NoValidDeploymentMessage + fmt.Sprintf(" Batch endpoint %q has no default deployment: run `berth batch-endpoint update -n %s --set defaults.deployment_name=<deployment>`, or invoke with -d <deployment>", in.Endpoint, in.Endpoint)}
	}
	dep, err := s.GetBatchDeployment(ctx, in.Endpoint, depName)
	if err != nil {
		return nil, err
	}
	js, err := s.plan(ctx, dep, in)
	if err != nil {
		return nil, err
	}
	name := in.Name
	if name == "" {
		name = "batchjob-" + uuid.NewString()
	} else if err := spec.ValidateName("name", name); err != nil {
		return nil, err
	}
	js.OutputDir = filepath.Join(s.jobDir(name), "outputs", OutputName)
	if in.OutputPath != "" {
		if js.OutputDir, err = s.datastorePath(in.OutputPath); err != nil {
			return nil, err
		}
	}
	if err := outputFree(js); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(js)
	if err != nil {
		return nil, err
	}
	job := &store.Job{Name: name, Endpoint: in.Endpoint, Deployment: depName, Status: wire.JobNotStarted, Spec: raw}
	if err := s.cfg.Store.CreateJob(ctx, job); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, &diag.Error{Code: diag.Conflict, Target: name,
				Message: fmt.Sprintf("a job named %q already exists: choose another --job-name, or leave it out for a generated one", name)}
		}
		return nil, err
	}
	s.start(ctx, job, js)
	return s.cfg.Store.GetJob(ctx, name)
}

// plan fixes what a job runs: the deployment as it is now, the input, the settings
// with the invocation's overrides, and the nodes its compute allows.
func (s *Service) plan(ctx context.Context, dep *store.BatchDeployment, in Invocation) (jobSpec, error) {
	d, err := decodeDeployment(dep)
	if err != nil {
		return jobSpec{}, err
	}
	src, err := s.resolveInput(ctx, in.Input)
	if err != nil {
		return jobSpec{}, err
	}
	comp, err := s.GetCompute(ctx, computeOf(d))
	if err != nil {
		return jobSpec{}, err
	}
	cs, err := computeSpec(comp)
	if err != nil {
		return jobSpec{}, err
	}
	set, nodes := effective(d, in.Overrides)
	if cs.MaxInstances > 0 && nodes > cs.MaxInstances && cs.Type != spec.KubernetesComputeType {
		nodes = cs.MaxInstances
	}
	exp := in.ExperimentName
	if exp == "" {
		exp = in.Endpoint
	}
	return jobSpec{Deployment: dep.Spec, ModelArtifact: dep.ModelArtifact, CodeArtifact: dep.CodeArtifact, Python: dep.Python,
		Input: in.Input, Source: src, OutputPath: in.OutputPath, Settings: set, Nodes: nodes,
		Compute: comp.Name, ExperimentName: exp}, nil
}

// effective is a deployment's settings with a job's overrides applied.
func effective(d *spec.BatchDeployment, o spec.JobOverrides) (batch.Settings, int) {
	st := d.Settings
	set := batch.Settings{
		MiniBatchSize: st.MiniBatchSize, MaxConcurrencyPerInstance: st.MaxConcurrencyPerInstance,
		MaxRetries: spec.DefaultBatchMaxRetries, Timeout: time.Duration(st.RetrySettings.Timeout) * time.Second,
		ErrorThreshold: spec.DefaultErrorThreshold, OutputAction: st.OutputAction,
		OutputFileName: st.OutputFileName, LoggingLevel: st.LoggingLevel,
	}
	if st.ErrorThreshold != nil {
		set.ErrorThreshold = *st.ErrorThreshold
	}
	if st.RetrySettings.MaxRetries != nil {
		set.MaxRetries = *st.RetrySettings.MaxRetries
	}
	nodes := d.Resources.InstanceCount
	if o.InstanceCount > 0 {
		nodes = o.InstanceCount
	}
	if o.MiniBatchSize > 0 {
		set.MiniBatchSize = o.MiniBatchSize
	}
	if o.MaxRetries != nil {
		set.MaxRetries = *o.MaxRetries
	}
	if o.Timeout > 0 {
		set.Timeout = time.Duration(o.Timeout) * time.Second
	}
	if o.ErrorThreshold != nil {
		set.ErrorThreshold = *o.ErrorThreshold
	}
	if o.OutputFileName != "" {
		set.OutputFileName = o.OutputFileName
	}
	return set, max(nodes, 1)
}

// outputFree refuses an output file that exists: batch jobs never overwrite one.
func outputFree(js jobSpec) error {
	if js.Settings.OutputAction == spec.OutputSummaryOnly {
		return nil
	}
	file := filepath.Join(js.OutputDir, js.Settings.OutputFileName)
	if _, err := os.Stat(file); err == nil {
		return &diag.Error{Code: diag.UserError, Target: "output_file_name",
			Message: fmt.Sprintf("the output file %s already exists, and a batch job never overwrites its output: give the job a unique folder (--output-path azureml://datastores/%s/paths/<new folder>) or another file name (--set output_file_name=<name>)", file, DefaultDatastore)}
	}
	return nil
}
