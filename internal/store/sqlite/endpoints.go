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

const endpointCols = `name, spec, traffic, mirror_traffic, primary_key, secondary_key, state, error, local, created_at, updated_at`

func scanEndpoint(r scanner) (*store.Endpoint, error) {
	var e store.Endpoint
	var traffic, mirror, created, updated string
	var spec, errb []byte
	if err := r.Scan(&e.Name, &spec, &traffic, &mirror, &e.PrimaryKey, &e.SecondaryKey, &e.State, &errb, &e.Local, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	e.Spec, e.Error = spec, errb
	if len(e.Error) == 0 {
		e.Error = nil
	}
	json.Unmarshal([]byte(traffic), &e.Traffic)
	json.Unmarshal([]byte(mirror), &e.MirrorTraffic)
	e.CreatedAt, e.UpdatedAt = parseTime(created), parseTime(updated)
	return &e, nil
}

// CreateEndpoint stores a new endpoint; store.ErrExists if the name is taken.
func (s *Store) CreateEndpoint(ctx context.Context, e *store.Endpoint) error {
	t := now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO endpoints (`+endpointCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		e.Name, nonNil(e.Spec), mapJSON(e.Traffic), mapJSON(e.MirrorTraffic), e.PrimaryKey, e.SecondaryKey, e.State, []byte(e.Error), e.Local, t, t)
	if isUnique(err) {
		return fmt.Errorf("endpoint %q: %w", e.Name, store.ErrExists)
	}
	return err
}

// GetEndpoint returns an endpoint or store.ErrNotFound.
func (s *Store) GetEndpoint(ctx context.Context, name string) (*store.Endpoint, error) {
	return scanEndpoint(s.db.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM endpoints WHERE name = ?`, name))
}

// ListEndpoints returns every endpoint by name.
func (s *Store) ListEndpoints(ctx context.Context) ([]*store.Endpoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+endpointCols+` FROM endpoints ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Endpoint
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// UpdateEndpoint applies fn to the stored endpoint in one transaction.
func (s *Store) UpdateEndpoint(ctx context.Context, name string, fn func(*store.Endpoint) error) (*store.Endpoint, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	e, err := scanEndpoint(tx.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM endpoints WHERE name = ?`, name))
	if err != nil {
		return nil, err
	}
	local := e.Local
	if err := fn(e); err != nil {
		return nil, err
	}
	e.Local = local // kept as created
	e.UpdatedAt = parseTime(now())
	if _, err := tx.ExecContext(ctx, `UPDATE endpoints SET spec=?, traffic=?, mirror_traffic=?, primary_key=?, secondary_key=?, state=?, error=?, updated_at=? WHERE name=?`,
		nonNil(e.Spec), mapJSON(e.Traffic), mapJSON(e.MirrorTraffic), e.PrimaryKey, e.SecondaryKey, e.State, []byte(e.Error), e.UpdatedAt.Format(time.RFC3339Nano), name); err != nil {
		return nil, err
	}
	return e, tx.Commit()
}

// DeleteEndpoint deletes an endpoint and, by cascade, its deployments.
func (s *Store) DeleteEndpoint(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM endpoints WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("endpoint %q: %w", name, store.ErrNotFound)
	}
	return nil
}
