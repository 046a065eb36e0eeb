package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berthml/berth/internal/store"
)

const batchEndpointCols = `name, spec, state, created_at, updated_at`

func scanBatchEndpoint(r scanner) (*store.BatchEndpoint, error) {
	var e store.BatchEndpoint
	var created, updated string
	var spec []byte
	if err := r.Scan(&e.Name, &spec, &e.State, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	e.Spec = nilIfEmpty(spec)
	e.CreatedAt, e.UpdatedAt = parseTime(created), parseTime(updated)
	return &e, nil
}

// CreateBatchEndpoint stores a new batch endpoint; store.ErrExists if the name is taken.
func (s *Store) CreateBatchEndpoint(ctx context.Context, e *store.BatchEndpoint) error {
	t := now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO batch_endpoints (`+batchEndpointCols+`) VALUES (?,?,?,?,?)`,
		e.Name, nonNil(e.Spec), e.State, t, t)
	if isUnique(err) {
		return fmt.Errorf("batch endpoint %q: %w", e.Name, store.ErrExists)
	}
	return err
}

// GetBatchEndpoint returns a batch endpoint or store.ErrNotFound.
func (s *Store) GetBatchEndpoint(ctx context.Context, name string) (*store.BatchEndpoint, error) {
	return scanBatchEndpoint(s.db.QueryRowContext(ctx, `SELECT `+batchEndpointCols+` FROM batch_endpoints WHERE name = ?`, name))
}

// ListBatchEndpoints returns every batch endpoint by name.
func (s *Store) ListBatchEndpoints(ctx context.Context) ([]*store.BatchEndpoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+batchEndpointCols+` FROM batch_endpoints ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.BatchEndpoint
	for rows.Next() {
		e, err := scanBatchEndpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// UpdateBatchEndpoint applies fn to the stored batch endpoint in one transaction.
func (s *Store) UpdateBatchEndpoint(ctx context.Context, name string, fn func(*store.BatchEndpoint) error) (*store.BatchEndpoint, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	e, err := scanBatchEndpoint(tx.QueryRowContext(ctx, `SELECT `+batchEndpointCols+` FROM batch_endpoints WHERE name = ?`, name))
	if err != nil {
		return nil, err
	}
	created := e.CreatedAt
	if err := fn(e); err != nil {
		return nil, err
	}
	e.Name, e.CreatedAt = name, created // kept as stored
	e.UpdatedAt = parseTime(now())
	if _, err := tx.ExecContext(ctx, `UPDATE batch_endpoints SET spec=?, state=?, updated_at=? WHERE name=?`,
		nonNil(e.Spec), e.State, e.UpdatedAt.Format(time.RFC3339Nano), name); err != nil {
		return nil, err
	}
	return e, tx.Commit()
}

// DeleteBatchEndpoint deletes a batch endpoint and, by cascade, its deployments; its
// jobs stay.
func (s *Store) DeleteBatchEndpoint(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM batch_endpoints WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("batch endpoint %q: %w", name, store.ErrNotFound)
	}
	return nil
}

const batchDeploymentCols = `endpoint, name, spec, model_artifact, code_artifact, state, error, python, warnings, created_at, updated_at`

func scanBatchDeployment(r scanner) (*store.BatchDeployment, error) {
	var d store.BatchDeployment
	var created, updated string
	var spec, errb []byte
	var warnings string
	if err := r.Scan(&d.Endpoint, &d.Name, &spec, &d.ModelArtifact, &d.CodeArtifact, &d.State, &errb, &d.Python, &warnings, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	d.Spec, d.Error = nilIfEmpty(spec), nilIfEmpty(errb)
	if err := json.Unmarshal([]byte(warnings), &d.Warnings); err != nil {
		return nil, fmt.Errorf("batch deployment %s/%s: read its warnings: %w", d.Endpoint, d.Name, err)
	}
	if len(d.Warnings) == 0 {
		d.Warnings = nil
	}
	d.CreatedAt, d.UpdatedAt = parseTime(created), parseTime(updated)
	return &d, nil
}

// warningsJSON is how a list of warnings is stored: a JSON array, never null.
func warningsJSON(w []string) string {
	if len(w) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(w)
	return string(b)
}

// PutBatchDeployment creates or replaces a batch deployment, keeping the creation time
// of the one it replaces; store.ErrNotFound without its endpoint.
func (s *Store) PutBatchDeployment(ctx context.Context, d *store.BatchDeployment) error {
	t := now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO batch_deployments (`+batchDeploymentCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(endpoint, name) DO UPDATE SET spec=excluded.spec, model_artifact=excluded.model_artifact,
			code_artifact=excluded.code_artifact, state=excluded.state, error=excluded.error, python=excluded.python,
			warnings=excluded.warnings, updated_at=excluded.updated_at`,
		d.Endpoint, d.Name, nonNil(d.Spec), d.ModelArtifact, d.CodeArtifact, d.State, []byte(d.Error), d.Python, warningsJSON(d.Warnings), t, t)
	if isForeignKey(err) {
		return fmt.Errorf("batch endpoint %q: %w", d.Endpoint, store.ErrNotFound)
	}
	return err
}

// GetBatchDeployment returns a batch deployment or store.ErrNotFound.
func (s *Store) GetBatchDeployment(ctx context.Context, endpoint, name string) (*store.BatchDeployment, error) {
	return scanBatchDeployment(s.db.QueryRowContext(ctx, `SELECT `+batchDeploymentCols+` FROM batch_deployments WHERE endpoint = ? AND name = ?`, endpoint, name))
}

// ListBatchDeployments returns one endpoint's batch deployments, or all when endpoint
// is "", by endpoint then name.
func (s *Store) ListBatchDeployments(ctx context.Context, endpoint string) ([]*store.BatchDeployment, error) {
	q := `SELECT ` + batchDeploymentCols + ` FROM batch_deployments WHERE (? = '' OR endpoint = ?) ORDER BY endpoint, name`
	rows, err := s.db.QueryContext(ctx, q, endpoint, endpoint)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.BatchDeployment
	for rows.Next() {
		d, err := scanBatchDeployment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DeleteBatchDeployment deletes a batch deployment.
func (s *Store) DeleteBatchDeployment(ctx context.Context, endpoint, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM batch_deployments WHERE endpoint = ? AND name = ?`, endpoint, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("batch deployment %q: %w", name, store.ErrNotFound)
	}
	return nil
}
