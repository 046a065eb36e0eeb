package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/berthml/berth/internal/artifacts/archive"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/store"
)

// assetName is Azure's rule for model names.
var assetName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$`)

// CreateModel registers a version of a model from an uploaded artifact. An empty
// version takes the next whole number; a taken version is refused (versions are
// immutable).
func (c *Controller) CreateModel(ctx context.Context, m store.Model) (*store.Model, error) {
	var problems []*diag.Error
	if !assetName.MatchString(m.Name) {
		problems = append(problems, &diag.Error{Code: diag.BadArgument, Target: "name",
			Message: fmt.Sprintf("model name %q must start with a letter or digit and hold only letters, digits, '-', '_' and '.'", m.Name)})
	}
	switch m.Type {
	case "":
		m.Type = "custom_model"
	case "custom_model", "mlflow_model", "triton_model":
	default:
		problems = append(problems, &diag.Error{Code: diag.BadArgument, Target: "type",
			Message: fmt.Sprintf("model type %q must be custom_model, mlflow_model or triton_model", m.Type)})
	}
	root, err := c.cfg.Artifacts.Path(m.Artifact)
	if err != nil {
		problems = append(problems, &diag.Error{Code: diag.BadArgument, Target: "path",
			Message: fmt.Sprintf("the model files (%s) are not on the server: register with the berth CLI, which uploads them", m.Artifact)})
	} else if m.Type == "mlflow_model" {
		if _, err := os.Stat(filepath.Join(root, "MLmodel")); err != nil {
			problems = append(problems, &diag.Error{Code: diag.BadArgument, Target: "path",
				Message: "an mlflow_model must be a folder with an MLmodel file at its top"})
		}
	}
	if len(problems) > 0 {
		return nil, &diag.Error{Code: diag.BadArgument, Message: fmt.Sprintf("model %s was not registered", m.Name), Details: problems}
	}
	if m.Version == "" {
		all, err := c.cfg.Store.ListModels(ctx, m.Name)
		if err != nil {
			return nil, err
		}
		versions := make([]string, len(all))
		for i, v := range all {
			versions[i] = v.Version
		}
		m.Version = nextVersion(versions)
	}
	if err := c.cfg.Store.CreateModel(ctx, &m); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, &diag.Error{Code: diag.Conflict, Target: m.Name + ":" + m.Version,
				Message: fmt.Sprintf("model %s version %s already exists and versions cannot change: register the new files as another version (or leave --version out to take the next one)", m.Name, m.Version)}
		}
		return nil, err
	}
	return c.cfg.Store.GetModel(ctx, m.Name, m.Version)
}

// ResolveModel finds the model a reference names: azureml:<name>:<version>,
// azureml:<name>@latest (the newest version not archived), or <name>:<version>.
func (c *Controller) ResolveModel(ctx context.Context, ref string) (*store.Model, error) {
	r, err := parseRef("model", ref)
	if err != nil {
		return nil, err
	}
	name, version := r.name, r.version
	notFound := func(why string) error {
		return &diag.Error{Code: diag.ResourceNotFound, Target: ref,
			Message: fmt.Sprintf("model %s not found: %s; `berth model list` shows what is registered, `berth model create --name %s --path <folder>` registers it", ref, why, name)}
	}
	if version != "" {
		m, err := c.cfg.Store.GetModel(ctx, name, version)
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFound(fmt.Sprintf("model %s has no version %s", name, version))
		}
		return m, err
	}
	all, err := c.cfg.Store.ListModels(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, m := range all {
		if !m.Archived {
			return m, nil
		}
	}
	if len(all) > 0 {
		return nil, notFound("every version of it is archived (restore one with `berth model restore`)")
	}
	return nil, notFound(fmt.Sprintf("no model named %s is registered", name))
}

// GetModel returns a version, or the newest one not archived for "latest".
func (c *Controller) GetModel(ctx context.Context, name, version string) (*store.Model, error) {
	if version == "" || version == "latest" {
		return c.ResolveModel(ctx, "azureml:"+name+"@latest")
	}
	return c.ResolveModel(ctx, "azureml:"+name+":"+version)
}

// ListModels returns the versions of name, or every model when name is "".
func (c *Controller) ListModels(ctx context.Context, name string) ([]*store.Model, error) {
	return c.cfg.Store.ListModels(ctx, name)
}

// ArchiveModel archives (or with archived false restores) a version.
func (c *Controller) ArchiveModel(ctx context.Context, name, version string, archived bool) error {
	err := c.cfg.Store.SetModelArchived(ctx, name, version, archived)
	if errors.Is(err, store.ErrNotFound) {
		return &diag.Error{Code: diag.ResourceNotFound, Target: name + ":" + version,
			Message: fmt.Sprintf("model %s has no version %s: `berth model list --name %s` shows its versions", name, version, name)}
	}
	return err
}

// WriteArtifact writes a stored artifact as the tar stream it was uploaded as.
func (c *Controller) WriteArtifact(w io.Writer, digest string) error {
	root, err := c.cfg.Artifacts.Path(digest)
	if err != nil {
		return &diag.Error{Code: diag.ResourceNotFound, Target: digest, Message: fmt.Sprintf("artifact %s is not stored", digest)}
	}
	return archive.WriteTar(w, root)
}
