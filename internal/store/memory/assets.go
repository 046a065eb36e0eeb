package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/berthml/berth/internal/store"
)

// CreateAsset registers an asset version; store.ErrExists when the version is taken.
func (s *Store) CreateAsset(ctx context.Context, a *store.Asset) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := assetKey{a.Kind, a.Name, a.Version}
	if _, ok := s.assets[k]; ok {
		return fmt.Errorf("%s %s version %s: %w", a.Kind, a.Name, a.Version, store.ErrExists)
	}
	// seq ranks the versions of one name by creation, as the SQLite store does.
	seq := 0
	for k2, r := range s.assets {
		if k2.kind == a.Kind && k2.name == a.Name {
			seq = max(seq, r.seq)
		}
	}
	c := cloneAsset(a)
	c.Archived = false
	c.CreatedAt = now()
	s.assets[k] = &assetRow{asset: c, seq: seq + 1}
	return nil
}

// GetAsset returns one asset version or store.ErrNotFound.
func (s *Store) GetAsset(ctx context.Context, kind, name, version string) (*store.Asset, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.assets[assetKey{kind, name, version}]
	if !ok {
		return nil, store.ErrNotFound
	}
	return cloneAsset(r.asset), nil
}

// ListAssets returns the versions of name (all of the kind when name is ""), by name
// and newest first within a name.
func (s *Store) ListAssets(ctx context.Context, kind, name string) ([]*store.Asset, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rows []*assetRow
	for k, r := range s.assets {
		if k.kind == kind && (name == "" || k.name == name) {
			rows = append(rows, r)
		}
	}
	slices.SortFunc(rows, func(a, b *assetRow) int {
		return cmp.Or(cmp.Compare(a.asset.Name, b.asset.Name), cmp.Compare(b.seq, a.seq))
	})
	out := make([]*store.Asset, 0, len(rows))
	for _, r := range rows {
		out = append(out, cloneAsset(r.asset))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// SetAssetArchived archives or restores an asset version; store.ErrNotFound otherwise.
func (s *Store) SetAssetArchived(ctx context.Context, kind, name, version string, archived bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.assets[assetKey{kind, name, version}]
	if !ok {
		return fmt.Errorf("%s %s version %s: %w", kind, name, version, store.ErrNotFound)
	}
	r.asset.Archived = archived
	return nil
}
