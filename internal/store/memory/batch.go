package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/berthml/berth/internal/store"
)

// CreateBatchEndpoint stores a new batch endpoint; store.ErrExists if the name is taken.
func (s *Store) CreateBatchEndpoint(ctx context.Context, e *store.BatchEndpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.batchEndpoints[e.Name]; ok {
		return fmt.Errorf("batch endpoint %q: %w", e.Name, store.ErrExists)
	}
	c := cloneBatchEndpoint(e)
	c.CreatedAt = now()
	c.UpdatedAt = c.CreatedAt
	s.batchEndpoints[e.Name] = c
	return nil
}

// GetBatchEndpoint returns a batch endpoint or store.ErrNotFound.
func (s *Store) GetBatchEndpoint(ctx context.Context, name string) (*store.BatchEndpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.batchEndpoints[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneBatchEndpoint(e), nil
}

// ListBatchEndpoints returns every batch endpoint by name.
func (s *Store) ListBatchEndpoints(ctx context.Context) ([]*store.BatchEndpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.BatchEndpoint
	for _, e := range s.batchEndpoints {
		out = append(out, cloneBatchEndpoint(e))
	}
	slices.SortFunc(out, func(a, b *store.BatchEndpoint) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// UpdateBatchEndpoint applies fn to a copy of the stored batch endpoint and stores the
// result unless fn fails. The name and creation time stay as stored.
func (s *Store) UpdateBatchEndpoint(ctx context.Context, name string, fn func(*store.BatchEndpoint) error) (*store.BatchEndpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.batchEndpoints[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	e := cloneBatchEndpoint(old)
	if err := fn(e); err != nil {
		return nil, err
	}
	e.Name, e.CreatedAt = old.Name, old.CreatedAt
	e.UpdatedAt = now()
	s.batchEndpoints[name] = cloneBatchEndpoint(e)
	return e, nil
}

// DeleteBatchEndpoint deletes a batch endpoint and its deployments; its jobs stay.
func (s *Store) DeleteBatchEndpoint(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.batchEndpoints[name]; !ok {
		return fmt.Errorf("batch endpoint %q: %w", name, store.ErrNotFound)
	}
	delete(s.batchEndpoints, name)
	for k := range s.batchDeployments {
		if k.endpoint == name {
			delete(s.batchDeployments, k)
		}
	}
	return nil
}

// PutBatchDeployment creates or replaces a batch deployment, keeping the creation time
// of the one it replaces; store.ErrNotFound without its endpoint.
func (s *Store) PutBatchDeployment(ctx context.Context, d *store.BatchDeployment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.batchEndpoints[d.Endpoint]; !ok {
		return fmt.Errorf("batch endpoint %q: %w", d.Endpoint, store.ErrNotFound)
	}
	k := deploymentKey{d.Endpoint, d.Name}
	c := cloneBatchDeployment(d)
	c.UpdatedAt = now()
	c.CreatedAt = c.UpdatedAt
	if old, ok := s.batchDeployments[k]; ok {
		c.CreatedAt = old.CreatedAt
	}
	s.batchDeployments[k] = c
	return nil
}

// GetBatchDeployment returns a batch deployment or store.ErrNotFound.
func (s *Store) GetBatchDeployment(ctx context.Context, endpoint, name string) (*store.BatchDeployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.batchDeployments[deploymentKey{endpoint, name}]
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneBatchDeployment(d), nil
}

// ListBatchDeployments returns one endpoint's batch deployments, or all when endpoint
// is "", by endpoint then name.
func (s *Store) ListBatchDeployments(ctx context.Context, endpoint string) ([]*store.BatchDeployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.BatchDeployment
	for k, d := range s.batchDeployments {
		if endpoint == "" || k.endpoint == endpoint {
			out = append(out, cloneBatchDeployment(d))
		}
	}
	slices.SortFunc(out, func(a, b *store.BatchDeployment) int {
		return cmp.Or(cmp.Compare(a.Endpoint, b.Endpoint), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

// DeleteBatchDeployment deletes a batch deployment.
func (s *Store) DeleteBatchDeployment(ctx context.Context, endpoint, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := deploymentKey{endpoint, name}
	if _, ok := s.batchDeployments[k]; !ok {
		return fmt.Errorf("batch deployment %q: %w", name, store.ErrNotFound)
	}
	delete(s.batchDeployments, k)
	return nil
}
