package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
)

// DeploymentInput is a deployment spec plus the digests of its uploaded model and code.
type DeploymentInput struct {
	Spec          *spec.Deployment
	ModelArtifact string
	CodeArtifact  string
	// modelType is the type of the registered model a reference resolved to.
	modelType string
}

// check returns every reason the input cannot be deployed, before anything is stored.
func (c *Controller) check(in DeploymentInput) error {
	var problems []*diag.Error
	d := in.Spec
	if d.Model != nil && !d.Model.IsRef() && in.ModelArtifact == "" {
		problems = append(problems, &diag.Error{Code: diag.BadArgument, Target: "model.path",
			Message: "the model files were not uploaded: deploy with the berth CLI, which uploads model.path"})
	}
	mlflow := in.modelType == "mlflow_model" || (d.Model != nil && !d.Model.IsRef() && d.Model.Type == "mlflow_model")
	if d.CodeConfiguration == nil && !mlflow {
		problems = append(problems, &diag.Error{Code: diag.BadArgument, Target: "code_configuration",
			Message: "code_configuration is required: set code (the folder with your scoring script) and scoring_script (e.g. score.py), or deploy an MLflow model (type: mlflow_model), which needs no code"})
	} else if d.CodeConfiguration != nil && in.CodeArtifact == "" {
		problems = append(problems, &diag.Error{Code: diag.BadArgument, Target: "code_configuration.code",
			Message: "the code folder was not uploaded: deploy with the berth CLI, which uploads code_configuration.code"})
	}
	for _, digest := range []string{in.ModelArtifact, in.CodeArtifact} {
		if digest != "" && !c.cfg.Artifacts.Has(digest) {
			problems = append(problems, &diag.Error{Code: diag.BadArgument, Target: digest,
				Message: fmt.Sprintf("artifact %s is not on the server: upload it first (the berth CLI does this)", digest)})
		}
	}
	if len(problems) == 0 {
		return nil
	}
	code := diag.BadArgument
	if len(problems) == 1 {
		code = problems[0].Code
	}
	return &diag.Error{Code: code, Message: fmt.Sprintf("deployment %q cannot be deployed", d.Name), Details: problems}
}

// admit checks that the endpoint exists and the input can be deployed, and returns the
// spec to store.
func (c *Controller) admit(ctx context.Context, in *DeploymentInput, replacing bool) (json.RawMessage, error) {
	if _, err := c.GetEndpoint(ctx, in.Spec.EndpointName); err != nil {
		return nil, err
	}
	if m := in.Spec.Model; m.IsRef() {
		// Pin the reference to the version it names now, so a restart or a later
		// registration never changes what this deployment runs.
		reg, err := c.ResolveModel(ctx, m.Ref)
		if err != nil {
			return nil, err
		}
		m.Ref = "azureml:" + reg.Name + ":" + reg.Version
		in.ModelArtifact, in.modelType = reg.Artifact, reg.Type
	}
	if env := in.Spec.Environment; env != nil && env.Ref != "" {
		a, err := c.ResolveAsset(ctx, AssetEnvironment, env.Ref)
		if err != nil {
			return nil, err
		}
		env.Ref = "azureml:" + a.Name + ":" + a.Version
	}
	if err := c.busy(ctx, in.Spec.EndpointName); err != nil {
		return nil, err
	}
	if err := c.checkQuota(ctx, *in, replacing); err != nil {
		return nil, err
	}
	if err := c.check(*in); err != nil {
		return nil, err
	}
	c.registerAnonymous(ctx, in)
	return json.Marshal(in.Spec)
}

// anonymousName is the name inline models and environments are registered under, as
// Azure registers them anonymously; the version is a content hash.
const anonymousName = "azureml_anonymous"

// registerAnonymous records an inline model and an inline environment in the registry,
// so `berth model list` / `berth environment list` show what runs. Failing to record
// them changes nothing for the deployment.
func (c *Controller) registerAnonymous(ctx context.Context, in *DeploymentInput) {
	d := in.Spec
	if m := d.Model; m != nil && !m.IsRef() && in.ModelArtifact != "" {
		version := strings.TrimPrefix(in.ModelArtifact, "sha256:")[:12]
		if _, err := c.cfg.Store.GetModel(ctx, anonymousName, version); errors.Is(err, store.ErrNotFound) {
			c.cfg.Store.CreateModel(ctx, &store.Model{Name: anonymousName, Version: version, Type: m.Type,
				Description: "inline model of deployment " + d.EndpointName + "/" + d.Name,
				PathBase:    filepath.Base(filepath.Clean(m.Path)), Artifact: in.ModelArtifact})
		}
	}
	if env := d.Environment; env != nil && env.Ref == "" && env.CondaFile != nil {
		raw, err := json.Marshal(env)
		if err != nil {
			return
		}
		sum := sha256.Sum256(raw)
		version := hex.EncodeToString(sum[:])[:12]
		if _, err := c.cfg.Store.GetAsset(ctx, AssetEnvironment, anonymousName, version); errors.Is(err, store.ErrNotFound) {
			c.cfg.Store.CreateAsset(ctx, &store.Asset{Kind: AssetEnvironment, Name: anonymousName, Version: version, Spec: raw})
		}
	}
}

// busy refuses a new operation on an endpoint while one of its deployments is still
// being created, updated or deleted, as Azure's operation lock does (409).
func (c *Controller) busy(ctx context.Context, endpoint string) error {
	deps, err := c.cfg.Store.ListDeployments(ctx, endpoint)
	if err != nil {
		return err
	}
	for _, d := range deps {
		switch d.State {
		case StateCreating, StateUpdating, StateDeleting:
			return &diag.Error{Code: diag.OperationCanceled, Target: endpoint,
				Message: fmt.Sprintf("an operation on endpoint %q is in progress (deployment %q is %s), so this one was not started and nothing changed: wait until it is Succeeded or Failed (`berth online-deployment show -e %s -n %s`), then retry",
					endpoint, d.Name, d.State, endpoint, d.Name)}
		}
	}
	return nil
}

// CreateDeployment stores a new deployment as Creating and starts provisioning it in
// the background.
func (c *Controller) CreateDeployment(ctx context.Context, in DeploymentInput) (*store.Deployment, error) {
	d := in.Spec
	raw, err := c.admit(ctx, &in, false)
	if err != nil {
		return nil, err
	}
	rec := &store.Deployment{Endpoint: d.EndpointName, Name: d.Name, Spec: raw,
		ModelArtifact: in.ModelArtifact, CodeArtifact: in.CodeArtifact, State: StateCreating}
	if err := c.cfg.Store.CreateDeployment(ctx, rec); err != nil {
		switch {
		case errors.Is(err, store.ErrExists):
			return nil, &diag.Error{Code: diag.DeploymentAlreadyExists, Target: d.Name,
				Message: fmt.Sprintf("deployment %q already exists on endpoint %q: change it with `berth online-deployment update -f <file>`, or choose another name", d.Name, d.EndpointName)}
		case errors.Is(err, store.ErrNotFound):
			return nil, endpointNotFound(d.EndpointName)
		}
		return nil, fmt.Errorf("create deployment: %w", err)
	}
	c.startProvision(d.EndpointName, d.Name, c.startOp(ctx, d.EndpointName, d.Name, opCreate))
	return c.cfg.Store.GetDeployment(ctx, d.EndpointName, d.Name)
}

// UpdateDeployment stores the new spec as Updating and rolls it out in the background:
// new instances start, and replace the old ones only once all are ready.
func (c *Controller) UpdateDeployment(ctx context.Context, in DeploymentInput) (*store.Deployment, error) {
	d := in.Spec
	raw, err := c.admit(ctx, &in, true)
	if err != nil {
		return nil, err
	}
	rec, err := c.cfg.Store.UpdateDeployment(ctx, d.EndpointName, d.Name, func(r *store.Deployment) error {
		if r.State == StateCreating || r.State == StateUpdating || r.State == StateDeleting {
			return &diag.Error{Code: diag.Conflict, Target: d.Name,
				Message: fmt.Sprintf("deployment %q is %s: wait until it is Succeeded or Failed, then update it", d.Name, r.State)}
		}
		r.Spec, r.ModelArtifact, r.CodeArtifact = raw, in.ModelArtifact, in.CodeArtifact
		r.State, r.Error = StateUpdating, nil
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, deploymentNotFound(d.EndpointName, d.Name)
	}
	if err != nil {
		return nil, err
	}
	c.startProvision(d.EndpointName, d.Name, c.startOp(ctx, d.EndpointName, d.Name, opUpdate))
	return rec, nil
}

// GetDeployment returns the stored deployment or DeploymentNotFound.
func (c *Controller) GetDeployment(ctx context.Context, endpoint, name string) (*store.Deployment, error) {
	if _, err := c.GetEndpoint(ctx, endpoint); err != nil {
		return nil, err
	}
	d, err := c.cfg.Store.GetDeployment(ctx, endpoint, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, deploymentNotFound(endpoint, name)
	}
	return d, err
}

// ListDeployments returns the endpoint's deployments.
func (c *Controller) ListDeployments(ctx context.Context, endpoint string) ([]*store.Deployment, error) {
	if _, err := c.GetEndpoint(ctx, endpoint); err != nil {
		return nil, err
	}
	return c.cfg.Store.ListDeployments(ctx, endpoint)
}

// DeleteDeployment stops the deployment's instances and deletes it. A deployment that
// still has live traffic is not deleted.
func (c *Controller) DeleteDeployment(ctx context.Context, endpoint, name string) error {
	ep, err := c.GetEndpoint(ctx, endpoint)
	if err != nil {
		return err
	}
	if _, err := c.GetDeployment(ctx, endpoint, name); err != nil {
		return err
	}
	if err := c.busy(ctx, endpoint); err != nil {
		return err
	}
	if w := ep.Traffic[name]; w > 0 {
		return &diag.Error{Code: diag.BadArgument, Target: name,
			Message: fmt.Sprintf("deployment %q still receives %d%% of the traffic of endpoint %q: move it elsewhere first, e.g. `berth online-endpoint update -n %s --traffic \"%s=0 ...\"`", name, w, endpoint, endpoint, name)}
	}
	op := c.startOp(ctx, endpoint, name, opDelete)
	defer c.endOp(op, nil)
	if _, err := c.cfg.Store.UpdateDeployment(ctx, endpoint, name, func(r *store.Deployment) error {
		r.State = StateDeleting
		return nil
	}); err != nil {
		return err
	}
	c.stopDeployment(endpoint, name)
	if err := c.cfg.Store.DeleteDeployment(ctx, endpoint, name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// Zero-weight entries of a deleted deployment leave the traffic map.
	if _, err := c.cfg.Store.UpdateEndpoint(ctx, endpoint, func(e *store.Endpoint) error {
		delete(e.Traffic, name)
		delete(e.MirrorTraffic, name)
		return nil
	}); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := os.RemoveAll(filepath.Join(c.cfg.DataDir, "instances", endpoint, name)); err != nil {
		c.log.Warn("remove deployment files", "endpoint", endpoint, "deployment", name, "err", err)
	}
	c.publish(ctx)
	return nil
}

// Recover re-provisions every deployment found in the store, as after a restart.
// Deployments left in Deleting are deleted.
func (c *Controller) Recover(ctx context.Context) error {
	eps, err := c.cfg.Store.ListEndpoints(ctx)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	for _, ep := range eps {
		if ep.State == StateDeleting {
			if err := c.DeleteEndpoint(ctx, ep.Name); err != nil {
				c.log.Warn("recover: finish deleting endpoint", "endpoint", ep.Name, "err", err)
			}
		}
	}
	deps, err := c.cfg.Store.ListDeployments(ctx, "")
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	for _, d := range deps {
		switch d.State {
		case StateDeleting:
			if err := c.cfg.Store.DeleteDeployment(ctx, d.Endpoint, d.Name); err != nil {
				c.log.Warn("recover: finish deleting deployment", "endpoint", d.Endpoint, "deployment", d.Name, "err", err)
			}
			os.RemoveAll(filepath.Join(c.cfg.DataDir, "instances", d.Endpoint, d.Name))
		case StateFailed:
			// Nothing ran; the error stays for the user to read.
		default:
			c.startProvision(d.Endpoint, d.Name, 0)
		}
	}
	c.publish(ctx)
	return nil
}
