package sealed

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/berthml/berth/internal/store"
)

// kubeconfigField is the field of a stored compute's spec that holds the credentials
// of a Kubernetes cluster (spec.Compute.Kubeconfig).
const kubeconfigField = "kubeconfig"

// mapField rewrites the kubeconfig of a compute's spec with fn; a spec without one is
// returned as is.
func mapField(c *store.Compute, fn func(string) (string, error)) (*store.Compute, error) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(c.Spec, &fields) != nil {
		return c, nil // not a spec object: nothing in it to seal
	}
	raw, ok := fields[kubeconfigField]
	if !ok {
		return c, nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("stored compute %s: kubeconfig: %w", c.Name, err)
	}
	v, err := fn(v)
	if err != nil {
		return nil, fmt.Errorf("compute %s: %w", c.Name, err)
	}
	fields[kubeconfigField], _ = json.Marshal(v)
	out := *c
	out.Spec, err = json.Marshal(fields)
	return &out, err
}

// PutCompute stores c with its kubeconfig sealed.
func (s *Store) PutCompute(ctx context.Context, c *store.Compute) error {
	sealed, err := mapField(c, s.seal)
	if err != nil {
		return err
	}
	return s.Store.PutCompute(ctx, sealed)
}

// GetCompute returns a compute with its kubeconfig opened.
func (s *Store) GetCompute(ctx context.Context, name string) (*store.Compute, error) {
	c, err := s.Store.GetCompute(ctx, name)
	if err != nil {
		return nil, err
	}
	return mapField(c, s.open)
}

// ListComputes returns every compute with its kubeconfig opened.
func (s *Store) ListComputes(ctx context.Context) ([]*store.Compute, error) {
	all, err := s.Store.ListComputes(ctx)
	if err != nil {
		return nil, err
	}
	for i, c := range all {
		if all[i], err = mapField(c, s.open); err != nil {
			return nil, err
		}
	}
	return all, nil
}
