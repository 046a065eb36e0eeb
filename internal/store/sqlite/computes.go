package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/berthml/berth/internal/store"
)

const computeCols = `name, spec, created_at, updated_at`

// PutCompute creates or replaces a compute; a replaced one keeps its creation time.
func (s *Store) PutCompute(ctx context.Context, c *store.Compute) error {
	t := now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO computes (`+computeCols+`) VALUES (?,?,?,?)
		ON CONFLICT(name) DO UPDATE SET spec=excluded.spec, updated_at=excluded.updated_at`,
		c.Name, nonNil(c.Spec), t, t)
	return err
}

func scanCompute(r scanner) (*store.Compute, error) {
	var c store.Compute
	var created, updated string
	var spec []byte
	if err := r.Scan(&c.Name, &spec, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	c.Spec = nilIfEmpty(spec)
	c.CreatedAt, c.UpdatedAt = parseTime(created), parseTime(updated)
	return &c, nil
}

// GetCompute returns a compute or store.ErrNotFound.
func (s *Store) GetCompute(ctx context.Context, name string) (*store.Compute, error) {
	return scanCompute(s.db.QueryRowContext(ctx, `SELECT `+computeCols+` FROM computes WHERE name = ?`, name))
}

// ListComputes returns every compute by name.
func (s *Store) ListComputes(ctx context.Context) ([]*store.Compute, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+computeCols+` FROM computes ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Compute
	for rows.Next() {
		c, err := scanCompute(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// DeleteCompute deletes a compute.
func (s *Store) DeleteCompute(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM computes WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("compute %q: %w", name, store.ErrNotFound)
	}
	return nil
}
