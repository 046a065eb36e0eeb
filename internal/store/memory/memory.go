// Package memory owns an in-memory store.Store for tests and for anything that needs no
// durability: maps guarded by one mutex, with the same semantics as the SQLite store.
// Every record is deep-copied on the way in and on the way out, so callers can never
// change stored state through a pointer, map or slice they passed or got back.
package memory

import (
	"bytes"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/berthml/berth/internal/store"
)

// Store is a store.Store kept in memory. The zero value is not usable: call New.
type Store struct {
	mu          sync.Mutex
	endpoints   map[string]*store.Endpoint
	deployments map[deploymentKey]*store.Deployment
	assets      map[assetKey]*assetRow
	connections map[string]*store.Connection
	operations  []*store.Operation // by id, ascending
	lastOpID    int64

	computes         map[string]*store.Compute
	batchEndpoints   map[string]*store.BatchEndpoint
	batchDeployments map[deploymentKey]*store.BatchDeployment
	jobs             map[string]*store.Job
}

var _ store.Store = (*Store)(nil)

type deploymentKey struct{ endpoint, name string }

type assetKey struct{ kind, name, version string }

// assetRow keeps an asset with its creation rank among the versions of its name.
type assetRow struct {
	asset *store.Asset
	seq   int
}

// New returns an empty store.
func New() *Store {
	return &Store{
		endpoints:   map[string]*store.Endpoint{},
		deployments: map[deploymentKey]*store.Deployment{},
		assets:      map[assetKey]*assetRow{},
		connections: map[string]*store.Connection{},

		computes:         map[string]*store.Compute{},
		batchEndpoints:   map[string]*store.BatchEndpoint{},
		batchDeployments: map[deploymentKey]*store.BatchDeployment{},
		jobs:             map[string]*store.Job{},
	}
}

// Close does nothing: the store lives as long as its value.
func (s *Store) Close() error { return nil }

// now is the store's timestamp: UTC, without a monotonic reading, as SQLite returns it.
func now() time.Time { return time.Now().UTC() }

// cloneBytes copies b; empty stays nil when nilEmpty is set.
func cloneBytes(b []byte, nilEmpty bool) []byte {
	if nilEmpty && len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

// cloneTraffic copies a traffic map; it is never nil, as SQLite reads it back.
func cloneTraffic(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	maps.Copy(out, m)
	return out
}

func cloneEndpoint(e *store.Endpoint) *store.Endpoint {
	c := *e
	c.Spec = cloneBytes(e.Spec, false)
	c.Traffic = cloneTraffic(e.Traffic)
	c.MirrorTraffic = cloneTraffic(e.MirrorTraffic)
	c.Error = cloneBytes(e.Error, true)
	return &c
}

func cloneDeployment(d *store.Deployment) *store.Deployment {
	c := *d
	c.Spec = cloneBytes(d.Spec, false)
	c.Error = cloneBytes(d.Error, true)
	c.Serving = cloneBytes(d.Serving, true)
	return &c
}

func cloneAsset(a *store.Asset) *store.Asset {
	c := *a
	c.Tags = nil
	if len(a.Tags) > 0 {
		c.Tags = maps.Clone(a.Tags)
	}
	c.Spec = cloneBytes(a.Spec, true)
	return &c
}

func cloneConnection(c *store.Connection) *store.Connection {
	out := *c
	out.Public = cloneBytes(c.Public, false)
	out.Sealed = cloneBytes(c.Sealed, false)
	return &out
}

func cloneOperation(op *store.Operation) *store.Operation {
	c := *op
	c.Error = cloneBytes(op.Error, true)
	return &c
}

func cloneCompute(c *store.Compute) *store.Compute {
	out := *c
	out.Spec = cloneBytes(c.Spec, true)
	return &out
}

func cloneBatchEndpoint(e *store.BatchEndpoint) *store.BatchEndpoint {
	c := *e
	c.Spec = cloneBytes(e.Spec, true)
	return &c
}

func cloneBatchDeployment(d *store.BatchDeployment) *store.BatchDeployment {
	c := *d
	c.Spec = cloneBytes(d.Spec, true)
	c.Error = cloneBytes(d.Error, true)
	c.Warnings = slices.Clone(d.Warnings)
	if len(c.Warnings) == 0 {
		c.Warnings = nil // as SQLite reads an empty list back
	}
	return &c
}

func cloneJob(j *store.Job) *store.Job {
	c := *j
	c.Spec = cloneBytes(j.Spec, true)
	c.Progress = cloneBytes(j.Progress, true)
	c.Error = cloneBytes(j.Error, true)
	c.StartedAt, c.EndedAt = utc(j.StartedAt), utc(j.EndedAt)
	return &c
}

// utc returns t in UTC without a monotonic reading, as SQLite reads a time back; the
// zero time stays zero.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Round(0)
}
