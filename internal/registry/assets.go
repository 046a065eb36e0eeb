package registry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/store"
)

// assetName is Azure's rule for asset names.
var assetName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$`)

// kinds describes what differs between the asset kinds; everything else is shared.
var kinds = map[string]kindRules{
	store.KindModel: {
		validate: validateModel,
		notFound: func(ref, name string) string {
			return fmt.Sprintf("; `berth model list` shows what is registered, `berth model create --name %s --path <folder>` registers it", name)
		},
		archived: "every version of it is archived (restore one with `berth model restore`)",
	},
	store.KindEnvironment: {
		notFound: func(ref, _ string) string {
			hint := "; `berth environment list` shows what is registered"
			if strings.HasPrefix(strings.TrimPrefix(ref, "azureml:"), "AzureML-") {
				hint += "; Azure's curated environments are not available locally: give the deployment an inline environment with a conda_file, or register one with `berth environment create`"
			}
			return hint
		},
		archived: "every version of it is archived",
	},
	store.KindData: {
		notFound: func(string, string) string { return "; `berth data list` shows what is registered" },
		archived: "every version of it is archived",
	},
}

// kindRules are the parts of registering and resolving that depend on the kind.
type kindRules struct {
	// validate adds the kind's own problems (nil: none beyond the shared checks).
	validate func(r *Registry, a *store.Asset) []*diag.Error
	// notFound is the hint appended when a reference resolves to nothing.
	notFound func(ref, name string) string
	// archived says why @latest found nothing when every version is archived.
	archived string
}

func rulesOf(kind string) (kindRules, error) {
	k, ok := kinds[kind]
	if !ok {
		return k, diag.New(diag.ResourceNotFound, "there are no %q assets: the kinds are model, environment and data", kind)
	}
	return k, nil
}

// CreateAsset registers a version of a model, environment or data asset. An empty
// version takes the next whole number; versions are immutable.
func (r *Registry) CreateAsset(ctx context.Context, a store.Asset) (*store.Asset, error) {
	rules, err := rulesOf(a.Kind)
	if err != nil {
		return nil, err
	}
	var problems []*diag.Error
	if !assetName.MatchString(a.Name) {
		problems = append(problems, &diag.Error{Code: diag.BadArgument, Target: "name",
			Message: fmt.Sprintf("%s name %q must start with a letter or digit and hold only letters, digits, '-', '_' and '.'", a.Kind, a.Name)})
	}
	if rules.validate != nil {
		problems = append(problems, rules.validate(r, &a)...)
	} else if a.Artifact != "" && !r.artifacts.Has(a.Artifact) {
		problems = append(problems, &diag.Error{Code: diag.BadArgument, Target: "path",
			Message: fmt.Sprintf("the files (%s) are not on the server: register with the berth CLI, which uploads them", a.Artifact)})
	}
	switch len(problems) {
	case 0:
	case 1:
		return nil, problems[0]
	default:
		return nil, &diag.Error{Code: diag.BadArgument, Message: fmt.Sprintf("%s %s was not registered", a.Kind, a.Name), Details: problems}
	}
	if a.Version == "" {
		if a.Version, err = r.nextVersion(ctx, a.Kind, a.Name); err != nil {
			return nil, err
		}
	}
	if err := r.store.CreateAsset(ctx, &a); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, &diag.Error{Code: diag.Conflict, Target: a.Name + ":" + a.Version,
				Message: fmt.Sprintf("%s %s version %s already exists and versions cannot change: register the new files as another version (or leave --version out to take the next one)", a.Kind, a.Name, a.Version)}
		}
		return nil, fmt.Errorf("register %s %s: %w", a.Kind, a.Name, err)
	}
	return r.store.GetAsset(ctx, a.Kind, a.Name, a.Version)
}

// validateModel checks a model's type and files.
func validateModel(r *Registry, m *store.Asset) []*diag.Error {
	var problems []*diag.Error
	switch m.Type {
	case "":
		m.Type = "custom_model"
	case "custom_model", "mlflow_model", "triton_model":
	default:
		problems = append(problems, &diag.Error{Code: diag.BadArgument, Target: "type",
			Message: fmt.Sprintf("model type %q must be custom_model, mlflow_model or triton_model", m.Type)})
	}
	root, err := r.artifacts.Path(m.Artifact)
	if err != nil {
		return append(problems, &diag.Error{Code: diag.BadArgument, Target: "path",
			Message: fmt.Sprintf("the model files (%s) are not on the server: register with the berth CLI, which uploads them", m.Artifact)})
	}
	if m.Type == "mlflow_model" {
		if _, err := os.Stat(filepath.Join(root, "MLmodel")); err != nil {
			problems = append(problems, &diag.Error{Code: diag.BadArgument, Target: "path",
				Message: "an mlflow_model must be a folder with an MLmodel file at its top"})
		}
	}
	return problems
}

// nextVersion is one more than the largest whole-number version of name.
func (r *Registry) nextVersion(ctx context.Context, kind, name string) (string, error) {
	all, err := r.store.ListAssets(ctx, kind, name)
	if err != nil {
		return "", err
	}
	next := 1
	for _, a := range all {
		if n, err := strconv.Atoi(a.Version); err == nil && n >= next {
			next = n + 1
		}
	}
	return strconv.Itoa(next), nil
}

// Ref is a parsed asset reference; an empty Version means @latest.
type Ref struct{ Name, Version string }

// ParseRef reads azureml:<name>:<version>, azureml:<name>@latest, or the same without
// the azureml: prefix.
func ParseRef(kind, s string) (Ref, error) {
	r := strings.TrimPrefix(s, "azureml:")
	switch {
	case strings.HasPrefix(r, "//"):
		return Ref{}, &diag.Error{Code: diag.ResourceNotFound, Target: s,
			Message: fmt.Sprintf("%s %s not found: registry and workspace asset ids are not available locally; register it with berth and refer to it as azureml:<name>:<version>", kind, s)}
	case strings.HasSuffix(r, "@latest"):
		return Ref{Name: strings.TrimSuffix(r, "@latest")}, nil
	}
	name, version, ok := strings.Cut(r, ":")
	if !ok || version == "" {
		return Ref{}, &diag.Error{Code: diag.BadArgument, Target: s,
			Message: fmt.Sprintf("%s reference %q needs a version: azureml:%s:<version> or azureml:%s@latest", kind, s, r, r)}
	}
	return Ref{Name: name, Version: version}, nil
}

// Resolve finds the asset a reference names (the newest version not archived for @latest).
func (r *Registry) Resolve(ctx context.Context, kind, reference string) (*store.Asset, error) {
	rules, err := rulesOf(kind)
	if err != nil {
		return nil, err
	}
	ref, err := ParseRef(kind, reference)
	if err != nil {
		return nil, err
	}
	notFound := func(why string) error {
		return &diag.Error{Code: diag.ResourceNotFound, Target: reference,
			Message: fmt.Sprintf("%s %s not found: %s%s", kind, reference, why, rules.notFound(reference, ref.Name))}
	}
	if ref.Version != "" {
		a, err := r.store.GetAsset(ctx, kind, ref.Name, ref.Version)
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFound(fmt.Sprintf("%s has no version %s", ref.Name, ref.Version))
		}
		return a, err
	}
	all, err := r.store.ListAssets(ctx, kind, ref.Name)
	if err != nil {
		return nil, err
	}
	for _, a := range all {
		if !a.Archived {
			return a, nil
		}
	}
	if len(all) > 0 {
		return nil, notFound(rules.archived)
	}
	return nil, notFound(fmt.Sprintf("no %s named %s is registered", kind, ref.Name))
}

// GetAsset returns a version, or the newest not archived for "" or "latest".
func (r *Registry) GetAsset(ctx context.Context, kind, name, version string) (*store.Asset, error) {
	if version == "" || version == "latest" {
		return r.Resolve(ctx, kind, name+"@latest")
	}
	return r.Resolve(ctx, kind, name+":"+version)
}

// ListAssets returns the versions of name, or every asset of the kind when name is "".
func (r *Registry) ListAssets(ctx context.Context, kind, name string) ([]*store.Asset, error) {
	if _, err := rulesOf(kind); err != nil {
		return nil, err
	}
	return r.store.ListAssets(ctx, kind, name)
}

// ArchiveAsset archives (or, with archived false, restores) a version.
func (r *Registry) ArchiveAsset(ctx context.Context, kind, name, version string, archived bool) error {
	if _, err := rulesOf(kind); err != nil {
		return err
	}
	err := r.store.SetAssetArchived(ctx, kind, name, version, archived)
	if errors.Is(err, store.ErrNotFound) {
		return &diag.Error{Code: diag.ResourceNotFound, Target: name + ":" + version,
			Message: fmt.Sprintf("%s %s has no version %s: `berth %s list --name %s` shows its versions", kind, name, version, kind, name)}
	}
	return err
}

// AnonymousName is the name inline models and environments are registered under, as
// Azure registers them; the version is a content hash.
const AnonymousName = "azureml_anonymous"

// RegisterAnonymous records an inline asset under AnonymousName unless that version is
// already there. It reports only storage failures.
func (r *Registry) RegisterAnonymous(ctx context.Context, a store.Asset) error {
	a.Name = AnonymousName
	if _, err := r.store.GetAsset(ctx, a.Kind, a.Name, a.Version); !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := r.store.CreateAsset(ctx, &a); err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("register anonymous %s: %w", a.Kind, err)
	}
	return nil
}
