package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// CreateBatchEndpoint stores a new batch endpoint. Batch and online endpoints share
// one table of names, as scoring URIs do.
func (s *Service) CreateBatchEndpoint(ctx context.Context, ep *spec.BatchEndpoint) (*store.BatchEndpoint, error) {
	if _, err := s.cfg.Store.GetEndpoint(ctx, ep.Name); err == nil {
		return nil, &diag.Error{Code: diag.EndpointAlreadyExists, Target: ep.Name,
			Message: fmt.Sprintf("an online endpoint named %q already exists, and batch and online endpoints share one table of names: choose another name", ep.Name)}
	}
	if ep.Defaults.DeploymentName != "" {
		return nil, &diag.Error{Code: diag.BadArgument, Target: "defaults.deployment_name",
			Message: fmt.Sprintf("defaults.deployment_name cannot name a deployment when the endpoint is created, because it has none yet: create the deployment with `berth batch-deployment create -e %s -f deployment.yml --set-default`", ep.Name)}
	}
	raw, err := json.Marshal(ep)
	if err != nil {
		return nil, err
	}
	rec := &store.BatchEndpoint{Name: ep.Name, Spec: raw, State: wire.StateSucceeded}
	if err := s.cfg.Store.CreateBatchEndpoint(ctx, rec); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, &diag.Error{Code: diag.EndpointAlreadyExists, Target: ep.Name,
				Message: fmt.Sprintf("batch endpoint %q already exists: choose another name, or change it with `berth batch-endpoint update -n %s`", ep.Name, ep.Name)}
		}
		return nil, err
	}
	return s.cfg.Store.GetBatchEndpoint(ctx, ep.Name)
}

// GetBatchEndpoint returns a batch endpoint, or EndpointNotFound.
func (s *Service) GetBatchEndpoint(ctx context.Context, name string) (*store.BatchEndpoint, error) {
	e, err := s.cfg.Store.GetBatchEndpoint(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, batchEndpointNotFound(name)
	}
	return e, err
}

// ListBatchEndpoints returns every batch endpoint.
func (s *Service) ListBatchEndpoints(ctx context.Context) ([]*store.BatchEndpoint, error) {
	return s.cfg.Store.ListBatchEndpoints(ctx)
}

// UpdateBatchEndpoint replaces an endpoint's spec (when sp is not nil) and/or its
// default deployment (when def is not nil), which must exist.
func (s *Service) UpdateBatchEndpoint(ctx context.Context, name string, sp *spec.BatchEndpoint, def *string) (*store.BatchEndpoint, error) {
	if _, err := s.GetBatchEndpoint(ctx, name); err != nil {
		return nil, err
	}
	want := ""
	if sp != nil {
		want = sp.Defaults.DeploymentName
	}
	if def != nil {
		want = *def
	}
	if want != "" {
		if _, err := s.GetBatchDeployment(ctx, name, want); err != nil {
			return nil, err
		}
	}
	rec, err := s.cfg.Store.UpdateBatchEndpoint(ctx, name, func(e *store.BatchEndpoint) error {
		cur, err := endpointSpec(e)
		if err != nil {
			return err
		}
		if sp != nil {
			keep := cur.Defaults
			cur = sp
			if cur.Defaults.DeploymentName == "" && def == nil {
				cur.Defaults = keep
			}
		}
		if def != nil {
			cur.Defaults.DeploymentName = *def
		}
		e.Spec, err = json.Marshal(cur)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, batchEndpointNotFound(name)
	}
	return rec, err
}

// DeleteBatchEndpoint deletes a batch endpoint and its deployments; its jobs stay
// listed, and running ones are canceled.
func (s *Service) DeleteBatchEndpoint(ctx context.Context, name string) error {
	if _, err := s.GetBatchEndpoint(ctx, name); err != nil {
		return err
	}
	s.cancelWhere(ctx, func(r *run) bool { return r.endpoint == name })
	return s.cfg.Store.DeleteBatchEndpoint(ctx, name)
}

// endpointSpec decodes a stored batch endpoint.
func endpointSpec(e *store.BatchEndpoint) (*spec.BatchEndpoint, error) {
	var sp spec.BatchEndpoint
	if err := json.Unmarshal(e.Spec, &sp); err != nil {
		return nil, fmt.Errorf("stored batch endpoint %s: %w", e.Name, err)
	}
	return &sp, nil
}

// DefaultDeployment is the deployment an invocation without one runs on ("" if none).
func DefaultDeployment(e *store.BatchEndpoint) string {
	sp, err := endpointSpec(e)
	if err != nil {
		return ""
	}
	return sp.Defaults.DeploymentName
}

func batchEndpointNotFound(name string) *diag.Error {
	return &diag.Error{Code: diag.EndpointNotFound, Target: name,
		Message: fmt.Sprintf("batch endpoint %q does not exist: create it with `berth batch-endpoint create -n %s -f endpoint.yml`, or see `berth batch-endpoint list`", name, name)}
}
