package controller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/store"
)

// Kinds of registered assets besides models.
const (
	AssetEnvironment = "environment"
	AssetData        = "data"
)

// ref is a parsed asset reference.
type ref struct {
	name, version string // version "" means @latest
}

// parseRef reads azureml:<name>:<version>, azureml:<name>@latest, or the same without
// the azureml: prefix.
func parseRef(kind, s string) (ref, error) {
	r := strings.TrimPrefix(s, "azureml:")
	switch {
	case strings.HasPrefix(r, "//"):
		return ref{}, &diag.Error{Code: diag.ResourceNotFound, Target: s,
			Message: fmt.Sprintf("%s %s not found: registry and workspace asset ids are not available locally; register it with berth and refer to it as azureml:<name>:<version>", kind, s)}
	case strings.HasSuffix(r, "@latest"):
		return ref{name: strings.TrimSuffix(r, "@latest")}, nil
	}
	name, version, ok := strings.Cut(r, ":")
	if !ok || version == "" {
		return ref{}, &diag.Error{Code: diag.BadArgument, Target: s,
			Message: fmt.Sprintf("%s reference %q needs a version: azureml:%s:<version> or azureml:%s@latest", kind, s, r, r)}
	}
	return ref{name: name, version: version}, nil
}

// nextVersion is one more than the largest whole-number version.
func nextVersion(versions []string) string {
	next := 1
	for _, v := range versions {
		if n, err := strconv.Atoi(v); err == nil && n >= next {
			next = n + 1
		}
	}
	return strconv.Itoa(next)
}

func checkKind(kind string) error {
	if kind != AssetEnvironment && kind != AssetData {
		return diag.New(diag.ResourceNotFound, "there are no %q assets: the kinds are environment and data", kind)
	}
	return nil
}

// CreateAsset registers a version of an environment or data asset. An empty version
// takes the next whole number; versions are immutable.
func (c *Controller) CreateAsset(ctx context.Context, a store.Asset) (*store.Asset, error) {
	if err := checkKind(a.Kind); err != nil {
		return nil, err
	}
	if !assetName.MatchString(a.Name) {
		return nil, &diag.Error{Code: diag.BadArgument, Target: "name",
			Message: fmt.Sprintf("%s name %q must start with a letter or digit and hold only letters, digits, '-', '_' and '.'", a.Kind, a.Name)}
	}
	if a.Artifact != "" && !c.cfg.Artifacts.Has(a.Artifact) {
		return nil, &diag.Error{Code: diag.BadArgument, Target: "path",
			Message: fmt.Sprintf("the files (%s) are not on the server: register with the berth CLI, which uploads them", a.Artifact)}
	}
	if a.Version == "" {
		all, err := c.cfg.Store.ListAssets(ctx, a.Kind, a.Name)
		if err != nil {
			return nil, err
		}
		versions := make([]string, len(all))
		for i, v := range all {
			versions[i] = v.Version
		}
		a.Version = nextVersion(versions)
	}
	if err := c.cfg.Store.CreateAsset(ctx, &a); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, &diag.Error{Code: diag.Conflict, Target: a.Name + ":" + a.Version,
				Message: fmt.Sprintf("%s %s version %s already exists and versions cannot change: register it as another version (or leave --version out to take the next one)", a.Kind, a.Name, a.Version)}
		}
		return nil, err
	}
	return c.cfg.Store.GetAsset(ctx, a.Kind, a.Name, a.Version)
}

// ResolveAsset finds the asset a reference names (newest not archived for @latest).
func (c *Controller) ResolveAsset(ctx context.Context, kind, reference string) (*store.Asset, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	r, err := parseRef(kind, reference)
	if err != nil {
		return nil, err
	}
	notFound := func(why string) error {
		hint := ""
		if kind == AssetEnvironment && strings.HasPrefix(strings.TrimPrefix(reference, "azureml:"), "AzureML-") {
			hint = "; Azure's curated environments are not available locally: give the deployment an inline environment with a conda_file, or register one with `berth environment create`"
		}
		return &diag.Error{Code: diag.ResourceNotFound, Target: reference,
			Message: fmt.Sprintf("%s %s not found: %s; `berth %s list` shows what is registered%s", kind, reference, why, kind, hint)}
	}
	if r.version != "" {
		a, err := c.cfg.Store.GetAsset(ctx, kind, r.name, r.version)
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFound(fmt.Sprintf("%s has no version %s", r.name, r.version))
		}
		return a, err
	}
	all, err := c.cfg.Store.ListAssets(ctx, kind, r.name)
	if err != nil {
		return nil, err
	}
	for _, a := range all {
		if !a.Archived {
			return a, nil
		}
	}
	if len(all) > 0 {
		return nil, notFound("every version of it is archived")
	}
	return nil, notFound(fmt.Sprintf("no %s named %s is registered", kind, r.name))
}

// GetAsset returns a version, or the newest not archived for "latest".
func (c *Controller) GetAsset(ctx context.Context, kind, name, version string) (*store.Asset, error) {
	if version == "" || version == "latest" {
		return c.ResolveAsset(ctx, kind, name+"@latest")
	}
	return c.ResolveAsset(ctx, kind, name+":"+version)
}

// ListAssets returns the versions of name, or every asset of the kind.
func (c *Controller) ListAssets(ctx context.Context, kind, name string) ([]*store.Asset, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	return c.cfg.Store.ListAssets(ctx, kind, name)
}

// ArchiveAsset archives (or restores) a version.
func (c *Controller) ArchiveAsset(ctx context.Context, kind, name, version string, archived bool) error {
	err := c.cfg.Store.SetAssetArchived(ctx, kind, name, version, archived)
	if errors.Is(err, store.ErrNotFound) {
		return &diag.Error{Code: diag.ResourceNotFound, Target: name + ":" + version,
			Message: fmt.Sprintf("%s %s has no version %s", kind, name, version)}
	}
	return err
}
