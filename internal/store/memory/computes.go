package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/berthml/berth/internal/store"
)

// PutCompute creates or replaces a compute; a replaced one keeps its creation time.
func (s *Store) PutCompute(ctx context.Context, c *store.Compute) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := cloneCompute(c)
	n.UpdatedAt = now()
	n.CreatedAt = n.UpdatedAt
	if old, ok := s.computes[c.Name]; ok {
		n.CreatedAt = old.CreatedAt
	}
	s.computes[c.Name] = n
	return nil
}

// GetCompute returns a compute or store.ErrNotFound.
func (s *Store) GetCompute(ctx context.Context, name string) (*store.Compute, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.computes[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneCompute(c), nil
}

// ListComputes returns every compute by name.
func (s *Store) ListComputes(ctx context.Context) ([]*store.Compute, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.Compute
	for _, c := range s.computes {
		out = append(out, cloneCompute(c))
	}
	slices.SortFunc(out, func(a, b *store.Compute) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteCompute deletes a compute.
func (s *Store) DeleteCompute(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.computes[name]; !ok {
		return fmt.Errorf("compute %q: %w", name, store.ErrNotFound)
	}
	delete(s.computes, name)
	return nil
}
