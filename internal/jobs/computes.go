package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
)

// PutCompute creates or replaces a compute. A Kubernetes compute is stored only once
// its cluster answered and its namespace exists.
func (s *Service) PutCompute(ctx context.Context, c *spec.Compute) (*store.Compute, error) {
	if c.Type == spec.KubernetesComputeType {
		if s.cfg.Clusters == nil {
			return nil, diag.New(diag.BadArgument, "this server cannot attach Kubernetes computes")
		}
		source := c.KubeconfigFile
		if source == "" {
			source = "the kubeconfig of compute " + c.Name
		}
		if err := s.cfg.Clusters.CheckCluster(ctx, []byte(c.Kubeconfig), source, c.Namespace); err != nil {
			return nil, err
		}
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	rec := &store.Compute{Name: c.Name, Spec: raw}
	if err := s.cfg.Store.PutCompute(ctx, rec); err != nil {
		return nil, err
	}
	return s.cfg.Store.GetCompute(ctx, c.Name)
}

// GetCompute returns a compute, or ComputeNotFound with the command that creates it.
func (s *Service) GetCompute(ctx context.Context, name string) (*store.Compute, error) {
	c, err := s.cfg.Store.GetCompute(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, computeNotFound(name)
	}
	return c, err
}

// ListComputes returns every compute.
func (s *Service) ListComputes(ctx context.Context) ([]*store.Compute, error) {
	return s.cfg.Store.ListComputes(ctx)
}

// DeleteCompute deletes a compute no batch deployment uses.
func (s *Service) DeleteCompute(ctx context.Context, name string) error {
	if _, err := s.GetCompute(ctx, name); err != nil {
		return err
	}
	deps, err := s.cfg.Store.ListBatchDeployments(ctx, "")
	if err != nil {
		return err
	}
	var users []string
	for _, d := range deps {
		if sp, err := decodeDeployment(d); err == nil && computeOf(sp) == name {
			users = append(users, d.Endpoint+"/"+d.Name)
		}
	}
	if len(users) > 0 {
		return &diag.Error{Code: diag.Conflict, Target: name,
			Message: fmt.Sprintf("compute %q is used by batch deployment(s) %s: delete them first (`berth batch-deployment delete -e <endpoint> -n <name>`)", name, strings.Join(users, ", "))}
	}
	return s.cfg.Store.DeleteCompute(ctx, name)
}

// computeSpec decodes a stored compute.
func computeSpec(c *store.Compute) (*spec.Compute, error) {
	var sp spec.Compute
	if err := json.Unmarshal(c.Spec, &sp); err != nil {
		return nil, fmt.Errorf("stored compute %s: %w", c.Name, err)
	}
	return &sp, nil
}

// computeOf is the compute name a deployment names.
func computeOf(d *spec.BatchDeployment) string {
	return strings.TrimPrefix(d.Compute, "azureml:")
}

func computeNotFound(name string) *diag.Error {
	return &diag.Error{Code: diag.ComputeNotFound, Target: name,
		Message: fmt.Sprintf("compute %q was not found in this workspace: create it with `berth compute create -n %s --type amlcompute --min-instances 0 --max-instances 2`, or name an existing one (`berth compute list`)", name, name)}
}
