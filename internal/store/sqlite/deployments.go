package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/berthml/berth/internal/store"
)

const deploymentCols = `endpoint, name, spec, model_artifact, code_artifact, state, error, all_traffic, python, serving, created_at, updated_at`

func scanDeployment(r scanner) (*store.Deployment, error) {
	var d store.Deployment
	var created, updated string
	var spec, errb, serving []byte
	if err := r.Scan(&d.Endpoint, &d.Name, &spec, &d.ModelArtifact, &d.CodeArtifact, &d.State, &errb, &d.AllTraffic, &d.Python, &serving, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	d.Spec, d.Error, d.Serving = spec, errb, serving
	if len(d.Error) == 0 {
		d.Error = nil
	}
	if len(d.Serving) == 0 {
		d.Serving = nil
	}
	d.CreatedAt, d.UpdatedAt = parseTime(created), parseTime(updated)
	return &d, nil
}

// CreateDeployment stores a new deployment; store.ErrNotFound without its endpoint.
func (s *Store) CreateDeployment(ctx context.Context, d *store.Deployment) error {
	t := now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO deployments (`+deploymentCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		d.Endpoint, d.Name, nonNil(d.Spec), d.ModelArtifact, d.CodeArtifact, d.State, []byte(d.Error), d.AllTraffic, d.Python, []byte(d.Serving), t, t)
	switch {
	case isUnique(err):
		return fmt.Errorf("deployment %q: %w", d.Name, store.ErrExists)
	case isForeignKey(err):
		return fmt.Errorf("endpoint %q: %w", d.Endpoint, store.ErrNotFound)
	}
	return err
}

// GetDeployment returns a deployment or store.ErrNotFound.
func (s *Store) GetDeployment(ctx context.Context, endpoint, name string) (*store.Deployment, error) {
	return scanDeployment(s.db.QueryRowContext(ctx, `SELECT `+deploymentCols+` FROM deployments WHERE endpoint = ? AND name = ?`, endpoint, name))
}

// ListDeployments returns one endpoint's deployments, or all when endpoint is "".
func (s *Store) ListDeployments(ctx context.Context, endpoint string) ([]*store.Deployment, error) {
	q := `SELECT ` + deploymentCols + ` FROM deployments WHERE (? = '' OR endpoint = ?) ORDER BY endpoint, name`
	rows, err := s.db.QueryContext(ctx, q, endpoint, endpoint)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Deployment
	for rows.Next() {
		d, err := scanDeployment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// UpdateDeployment applies fn to the stored deployment in one transaction.
func (s *Store) UpdateDeployment(ctx context.Context, endpoint, name string, fn func(*store.Deployment) error) (*store.Deployment, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	d, err := scanDeployment(tx.QueryRowContext(ctx, `SELECT `+deploymentCols+` FROM deployments WHERE endpoint = ? AND name = ?`, endpoint, name))
	if err != nil {
		return nil, err
	}
	if err := fn(d); err != nil {
		return nil, err
	}
	d.UpdatedAt = parseTime(now())
	if _, err := tx.ExecContext(ctx, `UPDATE deployments SET spec=?, model_artifact=?, code_artifact=?, state=?, error=?, all_traffic=?, python=?, serving=?, updated_at=? WHERE endpoint=? AND name=?`,
		nonNil(d.Spec), d.ModelArtifact, d.CodeArtifact, d.State, []byte(d.Error), d.AllTraffic, d.Python, []byte(d.Serving), d.UpdatedAt.Format(time.RFC3339Nano), endpoint, name); err != nil {
		return nil, err
	}
	return d, tx.Commit()
}

// DeleteDeployment deletes a deployment.
func (s *Store) DeleteDeployment(ctx context.Context, endpoint, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM deployments WHERE endpoint = ? AND name = ?`, endpoint, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("deployment %q: %w", name, store.ErrNotFound)
	}
	return nil
}
