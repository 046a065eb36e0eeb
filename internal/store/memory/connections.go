package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/berthml/berth/internal/store"
)

// PutConnection creates or replaces a connection; a replaced one keeps its creation time.
func (s *Store) PutConnection(ctx context.Context, c *store.Connection) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := cloneConnection(c)
	n.UpdatedAt = now()
	n.CreatedAt = n.UpdatedAt
	if old, ok := s.connections[c.Name]; ok {
		n.CreatedAt = old.CreatedAt
	}
	s.connections[c.Name] = n
	return nil
}

// GetConnection returns a connection or store.ErrNotFound.
func (s *Store) GetConnection(ctx context.Context, name string) (*store.Connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.connections[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneConnection(c), nil
}

// ListConnections returns every connection by name.
func (s *Store) ListConnections(ctx context.Context) ([]*store.Connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.Connection
	for _, c := range s.connections {
		out = append(out, cloneConnection(c))
	}
	slices.SortFunc(out, func(a, b *store.Connection) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteConnection deletes a connection.
func (s *Store) DeleteConnection(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.connections[name]; !ok {
		return fmt.Errorf("connection %q: %w", name, store.ErrNotFound)
	}
	delete(s.connections, name)
	return nil
}
