package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/berthml/berth/internal/store"
)

// CreateJob stores a new job; store.ErrExists if the name is taken.
func (s *Store) CreateJob(ctx context.Context, j *store.Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[j.Name]; ok {
		return fmt.Errorf("job %q: %w", j.Name, store.ErrExists)
	}
	c := cloneJob(j)
	c.CreatedAt = now()
	c.UpdatedAt = c.CreatedAt
	s.jobs[j.Name] = c
	return nil
}

// GetJob returns a job or store.ErrNotFound.
func (s *Store) GetJob(ctx context.Context, name string) (*store.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneJob(j), nil
}

// ListJobs returns the jobs of an endpoint (all when endpoint is ""), of one of its
// deployments when deployment is not "", newest first (then by name, descending).
func (s *Store) ListJobs(ctx context.Context, endpoint, deployment string) ([]*store.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.Job
	for _, j := range s.jobs {
		if (endpoint == "" || j.Endpoint == endpoint) && (deployment == "" || j.Deployment == deployment) {
			out = append(out, cloneJob(j))
		}
	}
	slices.SortFunc(out, func(a, b *store.Job) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.Name, a.Name))
	})
	return out, nil
}

// UpdateJob applies fn to a copy of the stored job and stores the result unless fn
// fails. The name and creation time stay as stored.
func (s *Store) UpdateJob(ctx context.Context, name string, fn func(*store.Job) error) (*store.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.jobs[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	j := cloneJob(old)
	if err := fn(j); err != nil {
		return nil, err
	}
	j.Name, j.CreatedAt = old.Name, old.CreatedAt
	j.UpdatedAt = now()
	stored := cloneJob(j)
	s.jobs[name] = stored
	return cloneJob(stored), nil
}
