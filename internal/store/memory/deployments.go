package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/berthml/berth/internal/store"
)

// CreateDeployment stores a new deployment; store.ErrNotFound without its endpoint,
// store.ErrExists if its name is taken in the endpoint.
func (s *Store) CreateDeployment(ctx context.Context, d *store.Deployment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.endpoints[d.Endpoint]; !ok {
		return fmt.Errorf("endpoint %q: %w", d.Endpoint, store.ErrNotFound)
	}
	k := deploymentKey{d.Endpoint, d.Name}
	if _, ok := s.deployments[k]; ok {
		return fmt.Errorf("deployment %q: %w", d.Name, store.ErrExists)
	}
	c := cloneDeployment(d)
	c.CreatedAt = now()
	c.UpdatedAt = c.CreatedAt
	s.deployments[k] = c
	return nil
}

// GetDeployment returns a deployment or store.ErrNotFound.
func (s *Store) GetDeployment(ctx context.Context, endpoint, name string) (*store.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deployments[deploymentKey{endpoint, name}]
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneDeployment(d), nil
}

// ListDeployments returns one endpoint's deployments, or all when endpoint is "", by
// endpoint then name.
func (s *Store) ListDeployments(ctx context.Context, endpoint string) ([]*store.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.Deployment
	for k, d := range s.deployments {
		if endpoint == "" || k.endpoint == endpoint {
			out = append(out, cloneDeployment(d))
		}
	}
	slices.SortFunc(out, func(a, b *store.Deployment) int {
		return cmp.Or(cmp.Compare(a.Endpoint, b.Endpoint), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

// UpdateDeployment applies fn to a copy of the stored deployment and stores the result
// unless fn fails. The endpoint, name and creation time stay as stored.
func (s *Store) UpdateDeployment(ctx context.Context, endpoint, name string, fn func(*store.Deployment) error) (*store.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := deploymentKey{endpoint, name}
	old, ok := s.deployments[k]
	if !ok {
		return nil, store.ErrNotFound
	}
	d := cloneDeployment(old)
	if err := fn(d); err != nil {
		return nil, err
	}
	d.UpdatedAt = now()
	stored := cloneDeployment(d)
	stored.Endpoint, stored.Name, stored.CreatedAt = old.Endpoint, old.Name, old.CreatedAt
	s.deployments[k] = stored
	return d, nil
}

// DeleteDeployment deletes a deployment.
func (s *Store) DeleteDeployment(ctx context.Context, endpoint, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := deploymentKey{endpoint, name}
	if _, ok := s.deployments[k]; !ok {
		return fmt.Errorf("deployment %q: %w", name, store.ErrNotFound)
	}
	delete(s.deployments, k)
	return nil
}
