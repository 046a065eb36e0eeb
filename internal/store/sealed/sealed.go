// Package sealed owns endpoint keys at rest: a store.Store wrapper that seals each
// endpoint's keys before they are written and opens them when they are read, so
// berth.db never holds a usable key.
package sealed

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/store"
)

// prefix marks a sealed key; a key without it was written before keys were sealed.
const prefix = "sealed:"

// Store is a store.Store whose endpoint keys are sealed at rest.
type Store struct {
	store.Store
	sealer *auth.Sealer
}

// Wrap returns inner with its endpoint keys sealed by sealer.
func Wrap(inner store.Store, sealer *auth.Sealer) *Store {
	return &Store{Store: inner, sealer: sealer}
}

func (s *Store) seal(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, prefix) {
		return key, nil
	}
	b, err := s.sealer.Seal([]byte(key))
	if err != nil {
		return "", fmt.Errorf("seal endpoint key: %w", err)
	}
	return prefix + base64.RawStdEncoding.EncodeToString(b), nil
}

func (s *Store) open(key string) (string, error) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return key, nil // written before keys were sealed; Migrate seals it
	}
	b, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("open endpoint key: %w", err)
	}
	plain, err := s.sealer.Open(b)
	if err != nil {
		return "", fmt.Errorf("open endpoint key (was the data dir's secret.key replaced?): %w", err)
	}
	return string(plain), nil
}

// sealed returns a copy of e with its keys sealed.
func (s *Store) sealed(e *store.Endpoint) (*store.Endpoint, error) {
	c := *e
	var err error
	if c.PrimaryKey, err = s.seal(e.PrimaryKey); err != nil {
		return nil, err
	}
	c.SecondaryKey, err = s.seal(e.SecondaryKey)
	return &c, err
}

// opened opens e's keys in place.
func (s *Store) opened(e *store.Endpoint) (*store.Endpoint, error) {
	var err error
	if e.PrimaryKey, err = s.open(e.PrimaryKey); err != nil {
		return nil, err
	}
	e.SecondaryKey, err = s.open(e.SecondaryKey)
	return e, err
}

// CreateEndpoint stores e with its keys sealed.
func (s *Store) CreateEndpoint(ctx context.Context, e *store.Endpoint) error {
	c, err := s.sealed(e)
	if err != nil {
		return err
	}
	return s.Store.CreateEndpoint(ctx, c)
}

// GetEndpoint returns the endpoint with its keys opened.
func (s *Store) GetEndpoint(ctx context.Context, name string) (*store.Endpoint, error) {
	e, err := s.Store.GetEndpoint(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.opened(e)
}

// ListEndpoints returns every endpoint with its keys opened.
func (s *Store) ListEndpoints(ctx context.Context) ([]*store.Endpoint, error) {
	eps, err := s.Store.ListEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range eps {
		if _, err := s.opened(e); err != nil {
			return nil, err
		}
	}
	return eps, nil
}

// UpdateEndpoint gives fn the endpoint with its keys opened and writes them sealed.
func (s *Store) UpdateEndpoint(ctx context.Context, name string, fn func(*store.Endpoint) error) (*store.Endpoint, error) {
	e, err := s.Store.UpdateEndpoint(ctx, name, func(e *store.Endpoint) error {
		if _, err := s.opened(e); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
		sealed, err := s.sealed(e)
		if err != nil {
			return err
		}
		*e = *sealed
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.opened(e)
}

// Migrate seals the keys of endpoints written before keys were sealed; it returns how
// many it sealed.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	eps, err := s.Store.ListEndpoints(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range eps {
		if strings.HasPrefix(e.PrimaryKey, prefix) && strings.HasPrefix(e.SecondaryKey, prefix) {
			continue
		}
		if _, err := s.UpdateEndpoint(ctx, e.Name, func(*store.Endpoint) error { return nil }); err != nil {
			return n, fmt.Errorf("seal the keys of endpoint %q: %w", e.Name, err)
		}
		n++
	}
	return n, nil
}
