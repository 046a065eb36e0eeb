package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/berthml/berth/internal/store"
)

// CreateEndpoint stores a new endpoint; store.ErrExists if the name is taken.
func (s *Store) CreateEndpoint(ctx context.Context, e *store.Endpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.endpoints[e.Name]; ok {
		return fmt.Errorf("endpoint %q: %w", e.Name, store.ErrExists)
	}
	c := cloneEndpoint(e)
	c.CreatedAt = now()
	c.UpdatedAt = c.CreatedAt
	s.endpoints[e.Name] = c
	return nil
}

// GetEndpoint returns an endpoint or store.ErrNotFound.
func (s *Store) GetEndpoint(ctx context.Context, name string) (*store.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.endpoints[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneEndpoint(e), nil
}

// ListEndpoints returns every endpoint by name.
func (s *Store) ListEndpoints(ctx context.Context) ([]*store.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.Endpoint
	for _, e := range s.endpoints {
		out = append(out, cloneEndpoint(e))
	}
	slices.SortFunc(out, func(a, b *store.Endpoint) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// UpdateEndpoint applies fn to a copy of the stored endpoint and stores the result
// unless fn fails. The name, creation time and Local stay as stored.
func (s *Store) UpdateEndpoint(ctx context.Context, name string, fn func(*store.Endpoint) error) (*store.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.endpoints[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	e := cloneEndpoint(old)
	if err := fn(e); err != nil {
		return nil, err
	}
	e.Local = old.Local // kept as created
	e.UpdatedAt = now()
	stored := cloneEndpoint(e)
	stored.Name, stored.CreatedAt = old.Name, old.CreatedAt
	s.endpoints[name] = stored
	return e, nil
}

// DeleteEndpoint deletes an endpoint and its deployments.
func (s *Store) DeleteEndpoint(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.endpoints[name]; !ok {
		return fmt.Errorf("endpoint %q: %w", name, store.ErrNotFound)
	}
	delete(s.endpoints, name)
	for k := range s.deployments {
		if k.endpoint == name {
			delete(s.deployments, k)
		}
	}
	return nil
}
