package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/berthml/berth/internal/store"
)

// CreateAsset registers an asset version; store.ErrExists when the version is taken.
func (s *Store) CreateAsset(ctx context.Context, a *store.Asset) error {
	tags, err := json.Marshal(a.Tags)
	if err != nil {
		return fmt.Errorf("%s %s version %s: tags: %w", a.Kind, a.Name, a.Version, err)
	}
	// seq numbers the versions of one name in creation order: "newest first" is seq
	// descending, whatever the version strings look like.
	_, err = s.db.ExecContext(ctx, `INSERT INTO assets (kind, name, version, seq, type, description, tags, path_base, spec, artifact, archived, created_at)
		VALUES (?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM assets WHERE kind = ? AND name = ?), ?, ?, ?, ?, ?, ?, 0, ?)`,
		a.Kind, a.Name, a.Version, a.Kind, a.Name, a.Type, a.Description, string(tags), a.PathBase, nonNil(a.Spec), a.Artifact, now())
	if isUnique(err) {
		return fmt.Errorf("%s %s version %s: %w", a.Kind, a.Name, a.Version, store.ErrExists)
	}
	return err
}

const assetCols = `kind, name, version, type, description, tags, path_base, spec, artifact, archived, created_at`

func scanAsset(r scanner) (*store.Asset, error) {
	var a store.Asset
	var spec []byte
	var tags, created string
	if err := r.Scan(&a.Kind, &a.Name, &a.Version, &a.Type, &a.Description, &tags, &a.PathBase, &spec, &a.Artifact, &a.Archived, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, store.ErrNotFound
		}
		return nil, err
	}
	if err := json.Unmarshal([]byte(tags), &a.Tags); err != nil {
		return nil, fmt.Errorf("%s %s version %s: tags: %w", a.Kind, a.Name, a.Version, err)
	}
	if len(a.Tags) == 0 {
		a.Tags = nil
	}
	a.Spec, a.CreatedAt = nilIfEmpty(spec), parseTime(created)
	return &a, nil
}

// GetAsset returns one asset version or store.ErrNotFound.
func (s *Store) GetAsset(ctx context.Context, kind, name, version string) (*store.Asset, error) {
	return scanAsset(s.db.QueryRowContext(ctx, `SELECT `+assetCols+` FROM assets WHERE kind = ? AND name = ? AND version = ?`, kind, name, version))
}

// ListAssets returns the versions of name (all of the kind when name is ""), by name
// and newest first within a name.
func (s *Store) ListAssets(ctx context.Context, kind, name string) ([]*store.Asset, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+assetCols+` FROM assets WHERE kind = ? AND (? = '' OR name = ?) ORDER BY name, seq DESC`, kind, name, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Asset
	for rows.Next() {
		a, err := scanAsset(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// SetAssetArchived archives or restores an asset version; store.ErrNotFound otherwise.
func (s *Store) SetAssetArchived(ctx context.Context, kind, name, version string, archived bool) error {
	res, err := s.db.ExecContext(ctx, `UPDATE assets SET archived = ? WHERE kind = ? AND name = ? AND version = ?`, archived, kind, name, version)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s %s version %s: %w", kind, name, version, store.ErrNotFound)
	}
	return nil
}
