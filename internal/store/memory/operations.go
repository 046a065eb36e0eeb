package memory

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"

	"github.com/berthml/berth/internal/store"
)

// StartOperation records an operation as InProgress and returns its id; ids increase.
func (s *Store) StartOperation(ctx context.Context, op *store.Operation) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastOpID++
	s.operations = append(s.operations, &store.Operation{
		ID: s.lastOpID, Endpoint: op.Endpoint, Deployment: op.Deployment, Kind: op.Kind,
		State: "InProgress", StartedAt: now(),
	})
	return s.lastOpID, nil
}

// FinishOperation records how an operation ended. An unknown id changes nothing.
func (s *Store) FinishOperation(ctx context.Context, id int64, state string, errJSON json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := slices.BinarySearchFunc(s.operations, id, func(op *store.Operation, id int64) int {
		return cmp.Compare(op.ID, id)
	})
	if !found {
		return nil
	}
	op := s.operations[i]
	op.State, op.Error, op.EndedAt = state, cloneBytes(errJSON, true), now()
	return nil
}

// ListOperations returns an endpoint's operations, newest first, at most limit (no
// bound when limit is negative, as SQLite's LIMIT).
func (s *Store) ListOperations(ctx context.Context, endpoint string, limit int) ([]*store.Operation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.Operation
	for i := len(s.operations) - 1; i >= 0 && (limit < 0 || len(out) < limit); i-- {
		if op := s.operations[i]; op.Endpoint == endpoint {
			out = append(out, cloneOperation(op))
		}
	}
	return out, nil
}
