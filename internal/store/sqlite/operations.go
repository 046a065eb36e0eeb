package sqlite

import (
	"context"
	"encoding/json"

	"github.com/berthml/berth/internal/store"
)

// StartOperation records an operation as InProgress.
func (s *Store) StartOperation(ctx context.Context, op *store.Operation) (int64, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO operations (endpoint, deployment, kind, state, error, started_at, ended_at) VALUES (?,?,?,?,NULL,?,'')`,
		op.Endpoint, op.Deployment, op.Kind, "InProgress", now())
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// FinishOperation records how an operation ended.
func (s *Store) FinishOperation(ctx context.Context, id int64, state string, errJSON json.RawMessage) error {
	_, err := s.db.ExecContext(ctx, `UPDATE operations SET state = ?, error = ?, ended_at = ? WHERE id = ?`, state, []byte(errJSON), now(), id)
	return err
}

// ListOperations returns an endpoint's newest operations.
func (s *Store) ListOperations(ctx context.Context, endpoint string, limit int) ([]*store.Operation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, endpoint, deployment, kind, state, error, started_at, ended_at FROM operations WHERE endpoint = ? ORDER BY id DESC LIMIT ?`, endpoint, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Operation
	for rows.Next() {
		var op store.Operation
		var errb []byte
		var started, ended string
		if err := rows.Scan(&op.ID, &op.Endpoint, &op.Deployment, &op.Kind, &op.State, &errb, &started, &ended); err != nil {
			return nil, err
		}
		if len(errb) > 0 {
			op.Error = errb
		}
		op.StartedAt, op.EndedAt = parseTime(started), parseTime(ended)
		out = append(out, &op)
	}
	return out, rows.Err()
}
