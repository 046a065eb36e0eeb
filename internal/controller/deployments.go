package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/fleet"
	"github.com/berthml/berth/internal/quota"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/stage"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// DeploymentInput is a deployment spec plus the digests of its uploaded model and code.
type DeploymentInput struct {
	Spec          *spec.Deployment
	ModelArtifact string
	CodeArtifact  string
	// AllTraffic (create only): 100% of the endpoint's traffic once the deployment succeeds.
	AllTraffic bool
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

// admit checks that the endpoint exists and the input can be deployed, pins its asset
// references, and returns the spec to store.
func (c *Controller) admit(ctx context.Context, in *DeploymentInput, replacing bool) (json.RawMessage, error) {
	if _, err := c.GetEndpoint(ctx, in.Spec.EndpointName); err != nil {
		return nil, err
	}
	if err := c.pinReferences(ctx, in); err != nil {
		return nil, err
	}
	if err := c.busy(ctx, in.Spec.EndpointName); err != nil {
		return nil, err
	}
	t, err := c.endpointCluster(ctx, in.Spec.EndpointName)
	switch {
	case err != nil:
		return nil, err
	case t != nil:
		// The cluster's scheduler and quotas decide; this machine's do not apply.
		if err := c.checkCluster(*t, in.Spec); err != nil {
			return nil, err
		}
	default:
		if err := c.checkQuota(ctx, *in, replacing); err != nil {
			return nil, err
		}
	}
	if err := c.check(*in); err != nil {
		return nil, err
	}
	c.registerAnonymous(ctx, in)
	return json.Marshal(in.Spec)
}

// pinReferences pins model and environment references to the version they name now,
// so a restart or a later registration never changes what the deployment runs.
func (c *Controller) pinReferences(ctx context.Context, in *DeploymentInput) error {
	if m := in.Spec.Model; m.IsRef() {
		reg, err := c.cfg.Registry.Resolve(ctx, store.KindModel, m.Ref)
		if err != nil {
			return err
		}
		m.Ref = "azureml:" + reg.Name + ":" + reg.Version
		in.ModelArtifact, in.modelType = reg.Artifact, reg.Type
	}
	if env := in.Spec.Environment; env != nil && env.Ref != "" {
		a, err := c.cfg.Registry.Resolve(ctx, store.KindEnvironment, env.Ref)
		if _, curated := stage.CuratedFallback(env.Ref, err); curated {
			return nil // Azure's image: the deployment runs on an interpreter of this machine (stage)
		}
		if err != nil {
			return err
		}
		env.Ref = "azureml:" + a.Name + ":" + a.Version
	}
	return nil
}

// checkQuota asks the quota checker about the deployment against every stored one.
func (c *Controller) checkQuota(ctx context.Context, in DeploymentInput, replacing bool) error {
	deps, err := c.cfg.Store.ListDeployments(ctx, "")
	if err != nil {
		return err
	}
	var others []quota.Use
	for _, o := range deps {
		if o.State == wire.StateFailed || o.State == wire.StateDeleting {
			others = append(others, quota.Use{Endpoint: o.Endpoint, Deployment: o.Name}) // counts towards the per-endpoint limit only
			continue
		}
		od, err := spec.DecodeDeployment("stored deployment", o.Spec, nil)
		if err != nil {
			c.log.Warn("quota: read stored deployment", "endpoint", o.Endpoint, "deployment", o.Name, "err", err)
			continue
		}
		others = append(others, quota.Use{Endpoint: o.Endpoint, Deployment: o.Name, InstanceType: od.InstanceType, Count: od.InstanceCount})
	}
	ask := quota.Ask{Use: quota.Use{Endpoint: in.Spec.EndpointName, Deployment: in.Spec.Name, InstanceType: in.Spec.InstanceType, Count: in.Spec.InstanceCount},
		Replacing: replacing, FreeDisk: quota.FreeDisk(c.cfg.DataDir), DataDir: c.cfg.DataDir}
	if in.ModelArtifact != "" {
		if size, err := c.cfg.Artifacts.Size(in.ModelArtifact); err == nil {
			ask.ModelBytes = size
		}
	}
	return c.cfg.Quota.Deployment(ask, others)
}

// registerAnonymous records an inline model and an inline environment in the registry,
// so `berth model list` / `berth environment list` show what runs. Failing to record
// them changes nothing for the deployment.
func (c *Controller) registerAnonymous(ctx context.Context, in *DeploymentInput) {
	d := in.Spec
	var assets []store.Asset
	if m := d.Model; m != nil && !m.IsRef() && in.ModelArtifact != "" {
		assets = append(assets, store.Asset{Kind: store.KindModel, Version: strings.TrimPrefix(in.ModelArtifact, "sha256:")[:12], Type: m.Type,
			Description: "inline model of deployment " + d.EndpointName + "/" + d.Name,
			PathBase:    filepath.Base(filepath.Clean(m.Path)), Artifact: in.ModelArtifact})
	}
	if env := d.Environment; env != nil && env.Ref == "" && env.CondaFile != nil {
		if raw, err := json.Marshal(env); err == nil {
			sum := sha256.Sum256(raw)
			assets = append(assets, store.Asset{Kind: store.KindEnvironment, Version: hex.EncodeToString(sum[:])[:12], Spec: raw})
		}
	}
	for _, a := range assets {
		if err := c.cfg.Registry.RegisterAnonymous(ctx, a); err != nil {
			c.log.Warn("register inline asset", "kind", a.Kind, "deployment", d.Name, "err", err)
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
		if inProgress(d.State) {
			return &diag.Error{Code: diag.OperationCanceled, Target: endpoint,
				Message: fmt.Sprintf("an operation on endpoint %q is in progress (deployment %q is %s), so this one was not started and nothing changed: wait until it is Succeeded or Failed (`berth online-deployment show -e %s -n %s`), then retry",
					endpoint, d.Name, d.State, endpoint, d.Name)}
		}
	}
	return nil
}

func inProgress(state string) bool {
	return state == wire.StateCreating || state == wire.StateUpdating || state == wire.StateDeleting
}

// CreateDeployment stores a new deployment as Creating and starts provisioning it in
// the background. A deployment of the same name that is Failed is replaced (see
// replaceFailed); any other existing one is DeploymentAlreadyExists.
//
// The az CLI's `az ml online-deployment create` fails on an existing deployment (its
// SDK's begin_create_or_update would update it). Berth deliberately replaces a Failed
// one only, so that a deployment that failed is fixed from the corrected file with the
// same command, while one that works is never replaced by a create by mistake.
func (c *Controller) CreateDeployment(ctx context.Context, in DeploymentInput) (*store.Deployment, error) {
	d := in.Spec
	if _, err := c.GetEndpoint(ctx, d.EndpointName); err != nil {
		return nil, err
	}
	old, err := c.cfg.Store.GetDeployment(ctx, d.EndpointName, d.Name)
	switch {
	case err == nil && old.State != wire.StateFailed:
		return nil, deploymentExists(d.EndpointName, d.Name)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("create deployment: %w", err)
	}
	replacing := err == nil
	raw, err := c.admit(ctx, &in, replacing)
	if err != nil {
		return nil, err
	}
	if replacing {
		return c.replaceFailed(ctx, in, raw)
	}
	rec := &store.Deployment{Endpoint: d.EndpointName, Name: d.Name, Spec: raw,
		ModelArtifact: in.ModelArtifact, CodeArtifact: in.CodeArtifact, State: wire.StateCreating, AllTraffic: in.AllTraffic}
	if err := c.cfg.Store.CreateDeployment(ctx, rec); err != nil {
		switch {
		case errors.Is(err, store.ErrExists):
			return nil, deploymentExists(d.EndpointName, d.Name)
		case errors.Is(err, store.ErrNotFound):
			return nil, endpointNotFound(d.EndpointName)
		}
		return nil, fmt.Errorf("create deployment: %w", err)
	}
	k := fleet.Key{Endpoint: d.EndpointName, Deployment: d.Name}
	c.startProvision(ctx, k, c.newGeneration(k, false), c.startOp(ctx, k.Endpoint, k.Deployment, opCreate))
	return c.cfg.Store.GetDeployment(ctx, d.EndpointName, d.Name)
}

// UpdateDeployment stores the new spec as Updating and rolls it out in the background.
// A change of instance_count alone scales the serving instances in place; any other
// update starts a new set, which replaces the old one once all are ready.
func (c *Controller) UpdateDeployment(ctx context.Context, in DeploymentInput) (*store.Deployment, error) {
	d := in.Spec
	raw, err := c.admit(ctx, &in, true)
	if err != nil {
		return nil, err
	}
	scaleOnly := false
	rec, err := c.cfg.Store.UpdateDeployment(ctx, d.EndpointName, d.Name, func(r *store.Deployment) error {
		if inProgress(r.State) {
			return &diag.Error{Code: diag.Conflict, Target: d.Name,
				Message: fmt.Sprintf("deployment %q is %s: wait until it is Succeeded or Failed, then update it", d.Name, r.State)}
		}
		// A change of instance_count alone scales in place, on the interpreter the
		// deployment was built on. An update of nothing at all does nothing, unless the
		// deployment runs on an interpreter that is no longer the server's: then it is the
		// way to move it there, a new set built on the server's.
		scaleOnly = (instanceCount(r.Spec) != instanceCount(raw) || !c.keptElsewhere(r.Python)) && r.State == wire.StateSucceeded && r.ModelArtifact == in.ModelArtifact && r.CodeArtifact == in.CodeArtifact && sameButCount(r.Spec, raw)
		r.Spec, r.ModelArtifact, r.CodeArtifact = raw, in.ModelArtifact, in.CodeArtifact
		r.State, r.Error = wire.StateUpdating, nil
		if !scaleOnly {
			r.Python = "" // a new set: built on the server's interpreter
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, deploymentNotFound(d.EndpointName, d.Name)
	}
	if err != nil {
		return nil, err
	}
	k := fleet.Key{Endpoint: d.EndpointName, Deployment: d.Name}
	c.startProvision(ctx, k, c.newGeneration(k, scaleOnly), c.startOp(ctx, k.Endpoint, k.Deployment, opUpdate))
	return rec, nil
}

// keptElsewhere reports whether python, the interpreter a deployment was recorded on,
// is not the server's.
func (c *Controller) keptElsewhere(python string) bool {
	return python != "" && !c.stage.ServerRuns(python)
}

// instanceCount is the instance_count of a stored spec (0 when it has none).
func instanceCount(raw json.RawMessage) int {
	var d struct {
		InstanceCount int `json:"instance_count"`
	}
	json.Unmarshal(raw, &d)
	return d.InstanceCount
}

// sameButCount reports whether two stored specs differ at most in instance_count.
func sameButCount(a, b json.RawMessage) bool {
	norm := func(raw json.RawMessage) (string, bool) {
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil {
			return "", false
		}
		delete(m, "instance_count")
		out, err := json.Marshal(m)
		return string(out), err == nil
	}
	x, okx := norm(a)
	y, oky := norm(b)
	return okx && oky && x == y
}

// newGeneration returns the generation a rollout brings the deployment to: the one it
// serves when only its size changes, a new one otherwise.
func (c *Controller) newGeneration(k fleet.Key, scaleOnly bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g, ok := c.gens[k]; ok && scaleOnly {
		return g
	}
	c.nextGen++
	c.gens[k] = fmt.Sprintf("g%d", c.nextGen)
	return c.gens[k]
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
