package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/stage"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// DeploymentInput is a batch deployment to create or replace: its validated spec and
// the digests of its uploaded model and code.
type DeploymentInput struct {
	Spec          *spec.BatchDeployment
	ModelArtifact string
	CodeArtifact  string
	// SetDefault makes it the endpoint's default deployment (--set-default).
	SetDefault bool
}

// PutBatchDeployment admits a batch deployment, builds its environment, and stores it,
// replacing one of the same name as Azure's batch create does. Nothing is stored when
// it cannot run: the deployment it would replace stays as it was.
func (s *Service) PutBatchDeployment(ctx context.Context, in DeploymentInput, progress io.Writer) (*store.BatchDeployment, error) {
	d := in.Spec
	if _, err := s.GetBatchEndpoint(ctx, d.EndpointName); err != nil {
		return nil, err
	}
	comp, err := s.GetCompute(ctx, computeOf(d))
	if err != nil {
		return nil, err
	}
	cs, err := computeSpec(comp)
	if err != nil {
		return nil, err
	}
	onCluster := cs.Type == spec.KubernetesComputeType
	if onCluster {
		if err := s.checkClusterDeployment(cs, in); err != nil {
			return nil, err
		}
	}
	if err := s.pinModel(ctx, &in); err != nil {
		return nil, err
	}
	if err := s.checkSources(in); err != nil {
		return nil, err
	}
	var env stage.Env
	if !onCluster { // pods run the Python of their image
		if env, err = s.cfg.Stage.Environment(ctx, d.AsDeployment(), progress); err != nil {
			return nil, err
		}
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	rec := &store.BatchDeployment{Endpoint: d.EndpointName, Name: d.Name, Spec: raw,
		ModelArtifact: in.ModelArtifact, CodeArtifact: in.CodeArtifact, State: wire.StateSucceeded,
		Python: env.Base, Warnings: env.Warnings}
	if err := s.cfg.Store.PutBatchDeployment(ctx, rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, batchEndpointNotFound(d.EndpointName)
		}
		return nil, err
	}
	if in.SetDefault {
		name := d.Name
		if _, err := s.UpdateBatchEndpoint(ctx, d.EndpointName, nil, &name); err != nil {
			return nil, err
		}
	}
	return s.cfg.Store.GetBatchDeployment(ctx, d.EndpointName, d.Name)
}

// pinModel pins a model reference to the version it names now and takes its files.
func (s *Service) pinModel(ctx context.Context, in *DeploymentInput) error {
	m := in.Spec.Model
	if !m.IsRef() {
		return nil
	}
	reg, err := s.cfg.Registry.Resolve(ctx, store.KindModel, m.Ref)
	if err != nil {
		return err
	}
	m.Ref = "azureml:" + reg.Name + ":" + reg.Version
	in.ModelArtifact = reg.Artifact
	return nil
}

// checkSources checks that the model and code were uploaded, and that a deployment
// without a scoring script has an MLflow model to score with.
func (s *Service) checkSources(in DeploymentInput) error {
	d := in.Spec
	if in.ModelArtifact == "" || !s.cfg.Registry.HasArtifact(in.ModelArtifact) {
		return &diag.Error{Code: diag.BadArgument, Target: "model",
			Message: fmt.Sprintf("batch deployment %q has no model files on the server: give model a path (model: {path: ./model}) or a registered model (azureml:<name>:<version>), and run the command again so the CLI uploads it", d.Name)}
	}
	if d.CodeConfiguration != nil {
		if in.CodeArtifact == "" || !s.cfg.Registry.HasArtifact(in.CodeArtifact) {
			return &diag.Error{Code: diag.BadArgument, Target: "code_configuration.code",
				Message: "the code folder was not uploaded: run the command again so the CLI uploads it"}
		}
		return nil
	}
	root, err := s.cfg.Artifacts.Path(in.ModelArtifact)
	if err == nil && hasMLmodel(root) {
		return nil
	}
	return &diag.Error{Code: diag.BadArgument, Target: "code_configuration",
		Message: fmt.Sprintf("batch deployment %q has no scoring script and its model is not an MLflow model (no MLmodel file): add code_configuration {code, scoring_script} with init() and run(mini_batch), or deploy an MLflow model", d.Name)}
}

// hasMLmodel reports whether an artifact holds an MLflow model, at its root or in the
// one folder it holds.
func hasMLmodel(root string) bool {
	if _, err := os.Stat(filepath.Join(root, "MLmodel")); err == nil {
		return true
	}
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 1 || !entries[0].IsDir() {
		return false
	}
	_, err = os.Stat(filepath.Join(root, entries[0].Name(), "MLmodel"))
	return err == nil
}

// GetBatchDeployment returns a batch deployment, or DeploymentNotFound.
func (s *Service) GetBatchDeployment(ctx context.Context, endpoint, name string) (*store.BatchDeployment, error) {
	if _, err := s.GetBatchEndpoint(ctx, endpoint); err != nil {
		return nil, err
	}
	d, err := s.cfg.Store.GetBatchDeployment(ctx, endpoint, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &diag.Error{Code: diag.DeploymentNotFound, Target: name,
			Message: fmt.Sprintf("batch deployment %q does not exist on batch endpoint %q: see `berth batch-deployment list -e %s`", name, endpoint, endpoint)}
	}
	return d, err
}

// ListBatchDeployments lists a batch endpoint's deployments.
func (s *Service) ListBatchDeployments(ctx context.Context, endpoint string) ([]*store.BatchDeployment, error) {
	if _, err := s.GetBatchEndpoint(ctx, endpoint); err != nil {
		return nil, err
	}
	return s.cfg.Store.ListBatchDeployments(ctx, endpoint)
}

// DeleteBatchDeployment deletes a batch deployment, cancels its running jobs, and
// clears the endpoint's default when it named it.
func (s *Service) DeleteBatchDeployment(ctx context.Context, endpoint, name string) error {
	if _, err := s.GetBatchDeployment(ctx, endpoint, name); err != nil {
		return err
	}
	s.cancelWhere(ctx, func(r *run) bool { return r.endpoint == endpoint && r.deployment == name })
	if err := s.cfg.Store.DeleteBatchDeployment(ctx, endpoint, name); err != nil {
		return err
	}
	_, err := s.cfg.Store.UpdateBatchEndpoint(ctx, endpoint, func(e *store.BatchEndpoint) error {
		sp, err := endpointSpec(e)
		if err != nil || sp.Defaults.DeploymentName != name {
			return err
		}
		sp.Defaults.DeploymentName = ""
		e.Spec, err = json.Marshal(sp)
		return err
	})
	return err
}

// decodeDeployment decodes a stored batch deployment.
func decodeDeployment(d *store.BatchDeployment) (*spec.BatchDeployment, error) {
	var sp spec.BatchDeployment
	if err := json.Unmarshal(d.Spec, &sp); err != nil {
		return nil, fmt.Errorf("stored batch deployment %s/%s: %w", d.Endpoint, d.Name, err)
	}
	return &sp, nil
}
