package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/berthml/berth/internal/store"
)

// PutConnection creates or replaces a connection.
func (s *Store) PutConnection(ctx context.Context, c *store.Connection) error {
	t := now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO connections (name, public, sealed, created_at, updated_at) VALUES (?,?,?,?,?)
		ON CONFLICT(name) DO UPDATE SET public=excluded.public, sealed=excluded.sealed, updated_at=excluded.updated_at`,
		c.Name, nonNil(c.Public), nonNil(c.Sealed), t, t)
	return err
}

func scanConnection(r scanner) (*store.Connection, error) {
	var c store.Connection
	var created, updated string
	if err := r.Scan(&c.Name, &c.Public, &c.Sealed, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = parseTime(created), parseTime(updated)
	return &c, nil
}

// GetConnection returns a connection or store.ErrNotFound.
func (s *Store) GetConnection(ctx context.Context, name string) (*store.Connection, error) {
	return scanConnection(s.db.QueryRowContext(ctx, `SELECT name, public, sealed, created_at, updated_at FROM connections WHERE name = ?`, name))
}

// ListConnections returns every connection by name.
func (s *Store) ListConnections(ctx context.Context) ([]*store.Connection, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, public, sealed, created_at, updated_at FROM connections ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Connection
	for rows.Next() {
		c, err := scanConnection(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// DeleteConnection deletes a connection.
func (s *Store) DeleteConnection(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM connections WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("connection %q: %w", name, store.ErrNotFound)
	}
	return nil
}
