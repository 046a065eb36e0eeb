// Package registry owns registered assets — models, environments and data, one asset
// kind with immutable versions — and workspace connections with their sealed credentials.
package registry

import (
	"errors"
	"fmt"
	"io"

	"github.com/berthml/berth/internal/artifacts"
	"github.com/berthml/berth/internal/artifacts/archive"
	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/store"
)

// Store is the persistence the registry uses.
type Store interface {
	store.Assets
	store.Connections
}

// Registry registers assets and connections and resolves references to them. It is
// safe for concurrent use.
type Registry struct {
	store     Store
	artifacts *artifacts.Store
	sealer    *auth.Sealer
}

// New returns a registry. sealer may be nil: connections then cannot be stored.
func New(st Store, arts *artifacts.Store, sealer *auth.Sealer) *Registry {
	return &Registry{store: st, artifacts: arts, sealer: sealer}
}

// PutArtifact stores an uploaded tar stream and returns its digest and size.
// An upload that expands past the store's caps is OutOfQuota, naming the sizes.
func (r *Registry) PutArtifact(rd io.Reader) (string, int64, error) {
	digest, size, err := r.artifacts.Put(rd)
	var le *archive.LimitError
	if errors.As(err, &le) {
		return "", 0, &diag.Error{Code: diag.OutOfQuota, Target: "upload",
			Message: fmt.Sprintf("upload: %v: make the folder smaller, or ask the server's operator to raise the limit", le)}
	}
	return digest, size, err
}

// HasArtifact reports whether an artifact is stored.
func (r *Registry) HasArtifact(digest string) bool { return r.artifacts.Has(digest) }

// WriteArtifact writes a stored artifact as the tar stream it was uploaded as.
func (r *Registry) WriteArtifact(w io.Writer, digest string) error {
	root, err := r.artifacts.Path(digest)
	if err != nil {
		return &diag.Error{Code: diag.ResourceNotFound, Target: digest, Message: fmt.Sprintf("artifact %s is not stored", digest)}
	}
	return archive.WriteTar(w, root)
}
